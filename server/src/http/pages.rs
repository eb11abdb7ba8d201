//! The workspace's pages: one askama template each (`server/templates/`,
//! compiled into the binary, every value auto-escaped), and [`WebError`],
//! what a page handler answers instead of a page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::accounts::{Account, Permission, Role};
use crate::audit::AuditEntry;
use crate::dashboard::Overview;
use crate::i18n::Texts;
use crate::storage::StorageError;

/// What every signed-in page's header shows.
pub struct Nav {
    pub org: String,
    /// The page's path, where the language picker comes back to.
    pub here: String,
    pub name: String,
    pub role: Role,
    /// The region the account works on (`None`: the whole country).
    pub region: Option<String>,
    /// The session's CSRF token, for the forms on the page.
    pub csrf: String,
    pub codes: bool,
    pub audit: bool,
    pub users: bool,
    pub quick_count: bool,
    pub sms: bool,
}

impl Nav {
    pub fn new(org: &str, here: &str, account: &Account, csrf: String) -> Self {
        Self {
            org: org.to_string(),
            here: here.to_string(),
            name: account.name.clone(),
            role: account.role,
            region: account.region.clone(),
            csrf,
            codes: account.may(Permission::Enroll),
            audit: account.may(Permission::ReadAudit),
            users: account.may(Permission::ManageUsers),
            quick_count: account.may(Permission::QuickCount),
            sms: account.may(Permission::ReadSms),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub t: Texts,
    pub nonce: String,
    pub name: String,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "forbidden.html")]
pub struct ForbiddenPage {
    pub t: Texts,
    pub nav: Nav,
    pub what: &'static str,
    pub roles: String,
    /// For a refusal by region: the region of what was asked for.
    pub outside: Option<String>,
    /// For a refusal of something national to an account of one region.
    pub national: bool,
}

#[derive(Template)]
#[template(path = "refused.html")]
pub struct RefusedPage {
    pub t: Texts,
    /// The message id of the reason.
    pub reason: &'static str,
    /// What the parser said, for a form that was not the page's.
    pub detail: Option<String>,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub t: Texts,
    pub nav: Nav,
    pub o: Overview,
    pub may_revoke: bool,
}

/// One audit entry as the page shows it.
pub struct AuditLine {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

impl From<&AuditEntry> for AuditLine {
    fn from(e: &AuditEntry) -> Self {
        Self {
            seq: e.seq,
            at: crate::i18n::time(Some(e.at_ms)),
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub t: Texts,
    pub nav: Nav,
    pub entries: Vec<AuditLine>,
    pub first: u64,
    pub last: u64,
    /// The `before` of the next page, if there are older entries.
    pub older: Option<u64>,
}

/// One account as the page shows it.
pub struct UserLine {
    pub name: String,
    pub role: Role,
    pub region: String,
    pub totp: bool,
    pub last_login: String,
    pub failed_logins: u32,
    pub disabled: bool,
}

impl From<&Account> for UserLine {
    fn from(a: &Account) -> Self {
        Self {
            name: a.name.clone(),
            role: a.role,
            region: a.region.clone().unwrap_or_default(),
            totp: a.totp_sealed.is_some(),
            last_login: crate::i18n::time(a.last_login_ms),
            failed_logins: a.failed_logins,
            disabled: a.disabled,
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub t: Texts,
    pub nav: Nav,
    pub users: Vec<UserLine>,
    /// The regions a new account may be given.
    pub regions: Vec<String>,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "pvt.html")]
pub struct PvtPage {
    pub t: Texts,
    pub nav: Nav,
    pub view: Option<super::pvt::PvtView>,
}

#[derive(Template)]
#[template(path = "forms.html")]
pub struct FormsPage {
    pub t: Texts,
    pub nav: Nav,
    pub forms: Vec<super::forms::FormLine>,
    pub may_publish: bool,
    pub problem: Option<String>,
    /// What was pasted, shown again beside a problem (or what a workbook
    /// converted to, to review before publishing).
    pub definition: String,
    /// What converting a workbook noticed (missing translations, columns
    /// not read), one line each.
    pub notes: Vec<String>,
}

/// A second-factor key being set up, as the account page shows it once.
pub struct TotpSetup {
    /// The `otpauth://` URI as an SVG QR `data:` URI.
    pub qr: String,
    /// The key in base32, for typing in by hand.
    pub key: String,
    /// The key sealed to the organisation, carried back by the form.
    pub sealed: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub t: Texts,
    pub nav: Nav,
    /// Whether a second factor is set.
    pub totp: bool,
    pub setup: Option<TotpSetup>,
    pub problem: Option<String>,
}

/// A code just issued, as the page shows it.
pub struct IssuedCode {
    pub text: String,
    /// The QR code as an SVG `data:` URI (the page's policy allows images
    /// from `data:` only).
    pub qr: String,
    pub observer: String,
    pub stations: String,
    pub valid_hours: u32,
}

#[derive(Template)]
#[template(path = "codes.html")]
pub struct CodesPage {
    pub t: Texts,
    pub nav: Nav,
    pub issued: Option<IssuedCode>,
    pub problem: Option<String>,
    /// What the forms held, when they are shown again with a problem.
    pub stations: String,
    pub name: String,
    pub batch: String,
    /// The codes issued, newest first.
    pub codes: Vec<CodeLine>,
}

/// One code issued, as the list shows it.
pub struct CodeLine {
    pub observer: String,
    pub stations: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// "unused", "used" or "expired" (a message id's suffix).
    pub state: &'static str,
    pub device: String,
}

impl CodeLine {
    pub fn new(c: &crate::storage::IssuedCode, now_ms: i64) -> Self {
        let state = match (c.used_at_ms, c.expires_at_ms <= now_ms) {
            (Some(_), _) => "used",
            (None, true) => "expired",
            (None, false) => "unused",
        };
        Self {
            observer: c.name.clone().unwrap_or_default(),
            stations: c.stations.join(", "),
            created_at_ms: c.created_at_ms,
            expires_at_ms: c.expires_at_ms,
            state,
            device: c.device.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "sms.html")]
pub struct SmsPage {
    pub t: Texts,
    pub nav: Nav,
    pub status: crate::sms::Status,
}

#[derive(Template)]
#[template(path = "observers.html")]
pub struct ObserversPage {
    pub t: Texts,
    pub nav: Nav,
    pub may_revoke: bool,
    pub q: String,
    /// Each observer found, and whether its device is revoked.
    pub found: Vec<(crate::coverage::DeviceLine, bool)>,
    pub total: usize,
}

#[derive(Template)]
#[template(path = "cards.html")]
pub struct CardsPage {
    pub t: Texts,
    pub nav: Nav,
    pub cards: Vec<IssuedCode>,
}

#[derive(Template)]
#[template(path = "revoke.html")]
pub struct RevokePage {
    pub t: Texts,
    pub nav: Nav,
    pub device: String,
    pub observer: String,
    pub stations: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage {
    pub t: Texts,
    pub nav: Nav,
    pub q: super::review::QueueQuery,
    /// The filters as a query string (for the next page's link).
    pub filters: String,
    pub items: Vec<crate::review::QueueItem>,
    /// The `after` of the next page.
    pub next: Option<String>,
    pub states: Vec<&'static str>,
    pub phases: Vec<&'static str>,
    pub categories: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "record.html")]
pub struct RecordPage {
    pub t: Texts,
    pub nav: Nav,
    pub v: crate::record_view::RecordView,
    pub may_review: bool,
    /// The signed-in verifier holds the claim.
    pub mine: bool,
    /// Someone else holds it: who, until when.
    pub held: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "coverage.html")]
pub struct CoveragePage {
    pub t: Texts,
    pub nav: Nav,
    pub c: crate::coverage::Coverage,
    pub may_plan: bool,
    /// The registry's regions, for the filter.
    pub regions: Vec<String>,
    /// The deadlines as the form's fields show them (`YYYY-MM-DDTHH:MM`,
    /// in the centre's time zone).
    pub deadlines: Vec<(&'static str, String)>,
    /// The plan's time zone as set (empty: UTC).
    pub time_zone: String,
}

/// A page with `status`.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => WebError::Internal(e.to_string()).into_response(),
    }
}

/// What a page handler answers when it does not answer its page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No live session: to the login page (nothing else is learnt).
    #[error("not signed in")]
    SignIn,
    /// The account's role may not do this.
    #[error("forbidden")]
    Forbidden(Box<ForbiddenPage>),
    /// A state-changing request without its session's CSRF token, or from
    /// another origin: refused before anything changes.
    #[error("{0}")]
    Refused(&'static str),
    /// A form that is not the one the page sends (413 when too large).
    #[error("the form was not filled in as sent: {0}")]
    BadForm(#[from] axum::extract::rejection::FormRejection),
    /// A long form's body over its limit, too slow, or cut (read by the
    /// server's body policy, which drains an oversized one first).
    #[error(transparent)]
    Body(#[from] crate::body::BodyError),
    /// A query that is not what the page's links send.
    #[error("{0}")]
    BadQuery(&'static str),
    /// No such thing (an account, a device).
    #[error("{0}")]
    NotFound(&'static str),
    /// Another verifier's claim holds the record.
    #[error("held by {account} until {until}")]
    Held { account: String, until: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A bug or a lost blocking task.
    #[error("{0}")]
    Internal(String),
}

impl std::fmt::Debug for ForbiddenPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForbiddenPage")
            .field("what", &self.what)
            .finish()
    }
}

impl WebError {
    /// The refusal for `account` lacking `needs`.
    pub fn forbidden(nav: Nav, what: &'static str, needs: Permission) -> Self {
        let roles: Vec<&str> = Role::allowed(needs).iter().map(|r| r.as_str()).collect();
        WebError::Forbidden(Box::new(ForbiddenPage {
            t: Texts::current(),
            nav,
            what,
            roles: roles.join(" or "),
            outside: None,
            national: false,
        }))
    }

    /// The refusal of something national (the audit log, the day's plan)
    /// to an account of one region.
    pub fn national(nav: Nav, what: &'static str) -> Self {
        WebError::Forbidden(Box::new(ForbiddenPage {
            t: Texts::current(),
            nav,
            what,
            roles: String::new(),
            outside: None,
            national: true,
        }))
    }

    /// The refusal for an account of one region asking for something of
    /// `region` (`None`: a station the registry does not hold).
    pub fn outside_region(nav: Nav, what: &'static str, region: Option<&str>) -> Self {
        let outside = match region {
            Some(r) => r.to_string(),
            None => Texts::current().get("region-unknown"),
        };
        WebError::Forbidden(Box::new(ForbiddenPage {
            t: Texts::current(),
            nav,
            what,
            roles: String::new(),
            outside: Some(outside),
            national: false,
        }))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn => Redirect::to("/login").into_response(),
            WebError::Forbidden(p) => page(StatusCode::FORBIDDEN, p.as_ref()),
            WebError::Refused(reason) => refused(StatusCode::FORBIDDEN, reason, None),
            WebError::BadForm(e) => {
                let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                };
                refused(status, "refused-form", Some(e.body_text()))
            }
            WebError::Body(e) => {
                use crate::body::BodyError as B;
                let status = match &e {
                    B::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    B::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
                    B::Interrupted { .. } => StatusCode::BAD_REQUEST,
                    B::Busy => StatusCode::SERVICE_UNAVAILABLE,
                };
                refused(status, "refused-form", Some(e.to_string()))
            }
            WebError::BadQuery(reason) => refused(StatusCode::BAD_REQUEST, reason, None),
            WebError::NotFound(reason) => refused(StatusCode::NOT_FOUND, reason, None),
            WebError::Held { account, until } => {
                let detail = Texts::current().arg2("held-by", "account", &account, "until", &until);
                refused(StatusCode::CONFLICT, "refused-held", Some(detail))
            }
            WebError::Storage(e) => super::ApiError::from(e).into_response(),
            WebError::Internal(e) => {
                super::ApiError::internal("a workspace page", &e).into_response()
            }
        }
    }
}

fn refused(status: StatusCode, reason: &'static str, detail: Option<String>) -> Response {
    page(
        status,
        &RefusedPage {
            t: Texts::current(),
            reason,
            detail,
        },
    )
}

/// Runs a blocking storage call off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let (lang, zone) = (crate::i18n::current(), crate::i18n::zone());
    tokio::task::spawn_blocking(move || crate::i18n::sync_scope(lang, zone, f))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
}
