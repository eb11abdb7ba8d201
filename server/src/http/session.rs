//! Signing in and out of the workspace, and [`SignedIn`], the extractor
//! every workspace page starts with. The decisions (passwords, throttling,
//! session lifetime, CSRF tokens) are [`crate::accounts`]'; this module
//! maps them to cookies, forms and redirects.
//!
//! Cookies carry the `__Host-` prefix, so that a browser only accepts
//! them over HTTPS, for this host and path `/`, from this host: a
//! neighbour on a shared domain cannot plant a session (fixation). Every
//! sign-in issues a new token whatever the request carried. The sign-in
//! form itself carries a nonce that must match a cookie set with it, so
//! that another site cannot sign a coordinator in to an account of its
//! choosing.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::Deserialize;

use super::AppState;
use super::pages::{LoginPage, Nav, WebError, blocking, page};
use crate::accounts::{self, Account, Permission, Session, SessionToken};
use crate::audit::{self, Draft};
use crate::guard::{AddressKey, ClientAddr};
use crate::i18n::{Lang, Texts};
use crate::second_factor;

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-observer_session";

/// The reader's language, when they picked one.
pub const LANG_COOKIE: &str = "__Host-observer_lang";

/// The sign-in form's nonce cookie.
pub const LOGIN_COOKIE: &str = "__Host-observer_login";

/// How long a sign-in form stays usable, in seconds.
const LOGIN_FORM_SECS: i64 = 600;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The value of cookie `name` in the request, if any.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` for this server only: HTTPS, script-proof, never sent
/// along with a request another site starts. `max_age` 0 removes it.
fn set_cookie(name: &'static str, value: String, max_age_secs: i64) -> HeaderValue {
    let c = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie text is a valid header")
}

/// Refuses a state-changing request that another site started. A browser
/// says where a request comes from in `Sec-Fetch-Site`, which a page cannot
/// set: only `same-origin` (or `none`, typed by the user) passes; a sibling
/// subdomain (`same-site`) is another site here. Without it, `Origin` must
/// be this server (`null`, what a browser sends under our
/// `Referrer-Policy: no-referrer` when it lacks `Sec-Fetch-Site`, is
/// refused). A client that sends neither (a script, not a browser) still
/// needs the CSRF token, which only a page of this server holds.
fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    let refused = || Err(WebError::Refused("refused-cross-site"));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => refused(),
        };
    }
    match text(header::ORIGIN) {
        Some(origin) if origin != format!("https://{}", text(header::HOST).unwrap_or_default()) => {
            refused()
        }
        _ => Ok(()),
    }
}

/// A coordinator with a live session.
pub struct SignedIn {
    pub account: Account,
    token: SessionToken,
    /// The request's path (where the language picker comes back to).
    path: String,
}

impl SignedIn {
    /// The page header for this coordinator.
    pub fn nav(&self, org: &str) -> Nav {
        Nav::new(org, &self.path, &self.account, self.token.csrf())
    }

    /// Refuses unless the account's role may do `p` (a 403 page naming
    /// the roles that may).
    pub fn require(&self, org: &str, what: &'static str, p: Permission) -> Result<(), WebError> {
        if self.account.may(p) {
            Ok(())
        } else if self.account.role.may(p) {
            Err(WebError::national(self.nav(org), what))
        } else {
            Err(WebError::forbidden(self.nav(org), what, p))
        }
    }

    /// The region this account is limited to (`None`: the whole country).
    pub fn region(&self) -> Option<&str> {
        self.account.region.as_deref()
    }

    /// Refuses a state-changing request from another origin or without
    /// this session's CSRF token.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), WebError> {
        same_origin(headers)?;
        if self.token.csrf_matches(csrf) {
            Ok(())
        } else {
            Err(WebError::Refused("refused-csrf"))
        }
    }

    /// Who the audit log names.
    pub fn actor(&self) -> String {
        audit::account_actor(&self.account.name)
    }
}

/// The live session a request's cookie names, and its account.
async fn signed_in(
    app: &Arc<AppState>,
    headers: &HeaderMap,
    path: &str,
) -> Result<SignedIn, WebError> {
    let token =
        SessionToken::from_cookie(&cookie_value(headers, SESSION_COOKIE).ok_or(WebError::SignIn)?);
    if token.as_str().len() > 128 {
        return Err(WebError::SignIn);
    }
    let digest = token.digest();
    let app = app.clone();
    let account = blocking(move || {
        let store = app.storage.account_store();
        let now = now_ms();
        let Some(session) = store.session(&digest)? else {
            return Ok(None);
        };
        if !session.live(now) {
            store.end_session(&digest)?;
            return Ok(None);
        }
        let account = store.account(&session.account)?.filter(|a| !a.disabled);
        if account.is_some() && session.stale_by(now) {
            store.touch_session(&digest, now)?;
        }
        Ok(account)
    })
    .await?
    .ok_or(WebError::SignIn)?;
    Ok(SignedIn {
        account,
        token,
        path: path.to_string(),
    })
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        signed_in(app, &parts.headers, parts.uri.path()).await
    }
}

fn random_text<const N: usize>() -> Result<String, WebError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| WebError::Internal("the random number generator failed".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The sign-in form with a fresh nonce (and its cookie).
fn login_form(status: StatusCode, name: String, problem: Option<String>) -> Response {
    let nonce = match random_text::<16>() {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let mut r = page(
        status,
        &LoginPage {
            t: Texts::current(),
            nonce: nonce.clone(),
            name,
            problem,
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, nonce, LOGIN_FORM_SECS),
    );
    r
}

/// `GET /login`.
pub async fn login_page(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if signed_in(&app, &headers, "/login").await.is_ok() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    /// The authenticator app's code, for an account with a second factor.
    #[serde(default)]
    code: String,
    nonce: String,
}

/// What a sign-in attempt came to.
enum Attempt {
    SignedIn(SessionToken),
    Wrong,
    Wait(std::time::Duration),
}

/// `POST /login`.
pub async fn login(
    State(app): State<Arc<AppState>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    match try_login(app, client, headers, form).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_login(
    app: Arc<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    same_origin(&headers)?;
    let Form(form) = form?;
    let expected = cookie_value(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || expected != form.nonce {
        return Ok(login_form(
            StatusCode::FORBIDDEN,
            String::new(),
            Some(Texts::current().get("login-expired")),
        ));
    }
    if let Some(Extension(ClientAddr(addr))) = client
        && let Err(limited) = app.rates.login(AddressKey::of(addr.ip()))
    {
        let mut r = login_form(
            StatusCode::TOO_MANY_REQUESTS,
            String::new(),
            Some(Texts::current().arg("login-address-limit", "secs", limited.retry_after_secs)),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_secs),
        );
        return Ok(r);
    }
    let name = form.name.trim().to_string();
    let password = form.password;
    let code = form.code;
    let slots = app.login_slots.clone();
    let permit = slots
        .acquire_owned()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let app2 = app.clone();
    let name2 = name.clone();
    let attempt = blocking(move || {
        let _permit = permit;
        let store = app2.storage.account_store();
        let now = now_ms();
        let account = if accounts::check_name(&name2).is_ok() {
            store.account(&name2)?
        } else {
            None
        };
        if let Some(wait) = account
            .as_ref()
            .and_then(|a| accounts::login_wait(a.failed_logins, a.last_failed_ms, now))
        {
            return Ok(Attempt::Wait(wait));
        }
        let mut ok = accounts::password_matches(account.as_ref(), &password);
        // The code is checked whatever the password was (so that the time
        // taken does not say whether the password was right), a code is
        // spent only with the right password, and a wrong code reads as
        // a wrong password: a guesser learns nothing about which of the
        // two was wrong, and both count as a failure.
        if let Some(a) = account.as_ref().filter(|a| second_factor::required(a)) {
            let sealed = a.totp_sealed.as_deref().unwrap_or_default();
            let now_secs = u64::try_from(now / 1000).unwrap_or_default();
            let step = second_factor::check(
                &app2.seal,
                &a.name,
                sealed,
                a.totp_last_step,
                &code,
                now_secs,
            )
            .map_err(|e| WebError::Internal(e.to_string()))?;
            ok = match step {
                Some(step) if ok => store.use_totp_step(&a.name, step)?,
                _ => false,
            };
        }
        let subject = if accounts::check_name(&name2).is_ok() {
            name2.clone()
        } else {
            "(not an account name)".into()
        };
        if let Some(a) = &account {
            store.note_login(&a.name, ok, now)?;
        }
        let action = if ok {
            "account.login"
        } else {
            "account.login_failed"
        };
        let draft = Draft {
            actor: audit::account_actor(&subject),
            action,
            subject,
            detail: serde_json::json!({}),
        };
        if !ok {
            audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
            return Ok(Attempt::Wrong);
        }
        let token = SessionToken::generate().map_err(|e| WebError::Internal(e.to_string()))?;
        store.create_session(
            &Session {
                digest: token.digest(),
                account: name2,
                created_at_ms: now,
                last_seen_ms: now,
            },
            now,
        )?;
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(Attempt::SignedIn(token))
    })
    .await?;
    Ok(match attempt {
        Attempt::SignedIn(token) => {
            tracing::info!("a coordinator signed in");
            let mut r = Redirect::to("/").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    token.as_str().to_string(),
                    accounts::SESSION_LIFETIME.as_secs() as i64,
                ),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, String::new(), 0),
            );
            r
        }
        Attempt::Wrong => login_form(
            StatusCode::UNAUTHORIZED,
            name,
            Some(Texts::current().get("login-wrong")),
        ),
        Attempt::Wait(wait) => {
            let secs = wait.as_secs().max(1);
            let mut r = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                name,
                Some(Texts::current().arg("login-wait", "secs", secs)),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
    })
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: Result<SignedIn, WebError>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    let signed = signed?;
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let digest = signed.token.digest();
    let actor = signed.actor();
    let subject = signed.account.name.clone();
    blocking(move || {
        app.storage.account_store().end_session(&digest)?;
        let draft = Draft {
            actor,
            action: "account.logout",
            subject,
            detail: serde_json::json!({}),
        };
        audit::append(app.storage.as_ref(), &app.key, draft, now_ms())?;
        Ok(())
    })
    .await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, String::new(), 0),
    );
    Ok(r)
}

/// The language a request is answered in: the one its reader picked (a
/// cookie), else their browser's first shipped one.
pub fn request_language(headers: &HeaderMap) -> Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|l| Lang::parse(&l))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct LanguageQuery {
    lang: String,
    back: Option<String>,
}

/// `GET /language?lang=kk&back=/path`: the reader's language, kept in a
/// cookie for a year, then back to the page (one of this server's paths
/// only: never a redirect elsewhere).
pub async fn set_language(
    query: Result<axum::extract::Query<LanguageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let axum::extract::Query(q) = query.map_err(|_| WebError::BadQuery("refused-query"))?;
    let lang = Lang::parse(&q.lang).ok_or(WebError::BadQuery("refused-query"))?;
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&back).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANG_COOKIE, lang.tag().to_string(), 365 * 24 * 3600),
    );
    Ok(r)
}
