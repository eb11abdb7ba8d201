//! Enrollment codes in the workspace: one at a time (shown once, as a QR
//! code and as text), a batch from a list of observers (printable cards,
//! one per observer), and the list of codes issued, used and expired
//! (never their text, which is not kept). Every code issued is an audit
//! entry naming the stations and the observer, never the code.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;

use super::AppState;
use super::pages::{CardsPage, CodeLine, CodesPage, IssuedCode, WebError, blocking, page};
use super::scope;
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::audit::{self, Draft};
use crate::coordinator::SetupError;
use crate::enrollment::{BatchError, CodeProblem};
use crate::i18n::Texts;

/// Codes the page lists, newest first.
const LISTED: u32 = 200;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the form held, shown again beside a problem.
#[derive(Default)]
struct Filled {
    stations: String,
    name: String,
    batch: String,
}

async fn codes_page_with(
    app: &Arc<AppState>,
    signed: &SignedIn,
    status: StatusCode,
    issued: Option<IssuedCode>,
    problem: Option<String>,
    filled: Filled,
) -> Result<Response, WebError> {
    let codes = listed(app, signed).await?;
    let now = now_ms();
    Ok(page(
        status,
        &CodesPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            issued,
            problem,
            stations: filled.stations,
            name: filled.name,
            batch: filled.batch,
            codes: codes.iter().map(|c| CodeLine::new(c, now)).collect(),
        },
    ))
}

/// The newest codes issued, for an account of one region only those
/// whose stations are all in it.
async fn listed(
    app: &Arc<AppState>,
    signed: &SignedIn,
) -> Result<Vec<crate::storage::IssuedCode>, WebError> {
    let app = app.clone();
    let mine = signed.account.clone();
    blocking(move || {
        let storage = app.storage.as_ref();
        let codes = storage.codes(LISTED)?;
        if mine.region.is_none() {
            return Ok(codes);
        }
        let registry = crate::registry::current(storage)?;
        let region_of = |s: &str| registry.as_ref().and_then(|r| r.region_of(s));
        Ok(codes
            .into_iter()
            .filter(|c| {
                !c.stations.is_empty() && c.stations.iter().all(|s| mine.covers(region_of(s)))
            })
            .collect())
    })
    .await
}

/// Why a code or a batch was not issued, kept typed until it is put into
/// the reader's language back on the request's task.
enum Refusal {
    Code(CodeProblem),
    Batch(BatchError),
    /// Anything else the issuer refused (its own English text).
    Other(String),
}

impl Refusal {
    /// From an issuer's error: storage failures are the page's error, the
    /// rest a refusal shown on the form.
    fn of(e: SetupError) -> Result<Self, WebError> {
        match e {
            SetupError::Storage(e) => Err(e.into()),
            SetupError::Code(p) => Ok(Refusal::Code(p)),
            other => Ok(Refusal::Other(other.to_string())),
        }
    }

    fn text(&self) -> String {
        let t = Texts::current();
        match self {
            Refusal::Code(p) => p.text(&t),
            Refusal::Batch(b) => b.text(&t),
            Refusal::Other(text) => text.clone(),
        }
    }
}

/// `GET /codes`: the forms that issue codes, and the codes issued.
pub async fn codes_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-codes", Permission::Enroll)?;
    codes_page_with(&app, &signed, StatusCode::OK, None, None, Filled::default()).await
}

/// `GET /api/v1/codes`: the codes issued, newest first, as JSON.
pub async fn codes_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-codes", Permission::Enroll)?;
    Ok(Json(listed(&app, &signed).await?).into_response())
}

#[derive(Deserialize)]
pub struct IssueForm {
    csrf: String,
    stations: String,
    #[serde(default)]
    name: String,
    valid_hours: u32,
}

/// The QR code of `text` as an SVG `data:` URI.
pub(super) fn qr_data_uri(text: &str) -> Result<String, WebError> {
    use base64::Engine as _;
    let qr = qrcode::QrCode::new(text.as_bytes()).map_err(|e| WebError::Internal(e.to_string()))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

fn audit_draft(actor: &str, stations: &[String], name: Option<&str>, hours: u32) -> Draft {
    Draft {
        actor: actor.to_string(),
        action: "code.issued",
        subject: stations.join(", "),
        detail: serde_json::json!({ "stations": stations, "name": name, "valid_hours": hours }),
    }
}

/// `POST /codes`: issues a one-time enrollment code and shows it once, as
/// a QR code and as text.
pub async fn issue_code(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<IssueForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-codes", Permission::Enroll)?;
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let stations: Vec<String> = form
        .stations
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    scope::require_stations(&app, &signed, "may-codes", stations.clone()).await?;
    let name = Some(form.name.trim().to_string()).filter(|n| !n.is_empty());
    let app2 = app.clone();
    let actor = signed.actor();
    let (stations2, name2, hours) = (stations.clone(), name.clone(), form.valid_hours);
    let issued = blocking(move || {
        let now = now_ms();
        let code = match app2.issuer.issue(
            app2.storage.as_ref(),
            &stations2,
            name2.as_deref(),
            hours,
            now,
        ) {
            Ok(code) => code,
            Err(e) => return Ok(Err(Refusal::of(e)?)),
        };
        let draft = audit_draft(&actor, &stations2, name2.as_deref(), hours);
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(Ok(code.to_text()))
    })
    .await?;
    match issued {
        Ok(text) => {
            tracing::info!(
                stations = stations.len(),
                "enrollment code issued in the workspace"
            );
            let issued = IssuedCode {
                qr: qr_data_uri(&text)?,
                text,
                observer: name.unwrap_or_else(|| Texts::current().get("an-observer")),
                stations: stations.join(", "),
                valid_hours: form.valid_hours,
            };
            codes_page_with(
                &app,
                &signed,
                StatusCode::OK,
                Some(issued),
                None,
                Filled::default(),
            )
            .await
        }
        Err(problem) => {
            let filled = Filled {
                stations: form.stations,
                name: form.name,
                ..Filled::default()
            };
            codes_page_with(
                &app,
                &signed,
                StatusCode::BAD_REQUEST,
                None,
                Some(problem.text()),
                filled,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct BatchForm {
    csrf: String,
    observers: String,
    valid_hours: u32,
}

/// `POST /codes/batch`: one code per observer of a list, shown once, as
/// printable cards (a QR code, the code's text, the name and stations).
pub async fn issue_batch(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: Result<SignedIn, WebError>,
    form: Result<Form<BatchForm>, FormRejection>,
) -> Result<Response, WebError> {
    // The body (up to 256 KiB) is read before the session is judged, so
    // that a refusal reaches a client still sending it.
    let signed = signed?;
    signed.require(&app.org, "may-codes", Permission::Enroll)?;
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let app2 = app.clone();
    let text = form.observers.clone();
    let parsed = blocking(move || {
        Ok(
            match crate::enrollment::parse_batch(app2.storage.as_ref(), &text) {
                Ok(b) => Ok(b),
                Err(BatchError::Storage(e)) => return Err(e.into()),
                Err(e) => Err(Refusal::Batch(e)),
            },
        )
    })
    .await?;
    if let Ok(batch) = &parsed {
        let stations = batch.iter().flat_map(|l| l.stations.clone()).collect();
        scope::require_stations(&app, &signed, "may-codes", stations).await?;
    }
    let app2 = app.clone();
    let actor = signed.actor();
    let hours = form.valid_hours;
    let issued = blocking(move || {
        let storage = app2.storage.as_ref();
        let batch = match parsed {
            Ok(b) => b,
            Err(problem) => return Ok(Err(problem)),
        };
        let now = now_ms();
        let codes = match app2.issuer.issue_batch(storage, &batch, hours, now) {
            Ok(c) => c,
            Err(e) => return Ok(Err(Refusal::of(e)?)),
        };
        for l in &batch {
            let draft = audit_draft(&actor, &l.stations, Some(&l.name), hours);
            audit::append(storage, &app2.key, draft, now)?;
        }
        Ok(Ok(batch
            .into_iter()
            .zip(codes)
            .map(|(l, c)| (l, c.to_text()))
            .collect::<Vec<_>>()))
    })
    .await?;
    match issued {
        Ok(cards) => {
            tracing::info!(codes = cards.len(), "a batch of enrollment codes issued");
            let cards = cards
                .into_iter()
                .map(|(l, text)| {
                    Ok(IssuedCode {
                        qr: qr_data_uri(&text)?,
                        text,
                        observer: l.name,
                        stations: l.stations.join(", "),
                        valid_hours: hours,
                    })
                })
                .collect::<Result<Vec<_>, WebError>>()?;
            Ok(page(
                StatusCode::OK,
                &CardsPage {
                    t: Texts::current(),
                    nav: signed.nav(&app.org),
                    cards,
                },
            ))
        }
        Err(problem) => {
            let filled = Filled {
                batch: form.observers,
                ..Filled::default()
            };
            codes_page_with(
                &app,
                &signed,
                StatusCode::BAD_REQUEST,
                None,
                Some(problem.text()),
                filled,
            )
            .await
        }
    }
}
