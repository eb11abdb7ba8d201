//! The forms in the workspace: every version phones may fill in (those
//! that ship with Observer and those the organisation published), and for
//! an admin a form to publish a new version by pasting its definition
//! (`docs/forms.md`), checked exactly as `forms publish` checks a file,
//! or by uploading an XLSForm workbook, which is converted and shown for
//! review (with what the conversion noticed) before it is published.
//! A published version is never changed; each publication is audited.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use observer_core::forms::{FormDefinition, default_forms};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::pages::{FormsPage, WebError, blocking, page};
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::audit::{self, Draft};
use crate::i18n::Texts;
use crate::publish::{PublishError, Published, definition_text, publish};

/// One form version as the list shows it.
#[derive(Debug, Serialize)]
pub struct FormLine {
    pub id: String,
    pub version: u32,
    pub kind: String,
    /// The title in every language the form has.
    pub title: std::collections::BTreeMap<String, String>,
    pub fields: usize,
    pub rules: usize,
    pub sealed: bool,
    /// `shipped` with Observer, or `published` by the organisation.
    pub source: &'static str,
}

impl FormLine {
    fn of(def: &FormDefinition, source: &'static str) -> Self {
        Self {
            id: def.id.clone(),
            version: def.version,
            kind: def.kind.clone(),
            title: def.title.clone(),
            fields: def.fields.len(),
            rules: def.rules.len(),
            sealed: def.sealed,
            source,
        }
    }

    /// The title in `lang`, else English, else any.
    pub fn title_in(&self, lang: &str) -> String {
        self.title
            .get(lang)
            .or_else(|| self.title.get("en"))
            .or_else(|| self.title.values().next())
            .cloned()
            .unwrap_or_default()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every form version, shipped first, each by id and version.
async fn lines(app: &Arc<AppState>) -> Result<Vec<FormLine>, WebError> {
    let app = app.clone();
    blocking(move || {
        let mut all: Vec<FormLine> = default_forms()
            .iter()
            .map(|d| FormLine::of(d, "shipped"))
            .collect();
        for f in app.storage.forms()? {
            // A stored definition was checked when it was published.
            if let Ok(def) = FormDefinition::parse(&f.definition) {
                all.push(FormLine::of(&def, "published"));
            }
        }
        all.sort_by(|a, b| {
            (a.source != "shipped", &a.id, a.version).cmp(&(
                b.source != "shipped",
                &b.id,
                b.version,
            ))
        });
        Ok(all)
    })
    .await
}

async fn forms_page_with(
    app: &Arc<AppState>,
    signed: &SignedIn,
    status: StatusCode,
    problem: Option<String>,
    definition: String,
    notes: Vec<String>,
) -> Result<Response, WebError> {
    Ok(page(
        status,
        &FormsPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            forms: lines(app).await?,
            may_publish: signed.account.may(Permission::PublishForms),
            problem,
            definition,
            notes,
        },
    ))
}

/// `GET /forms`.
pub async fn forms_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    forms_page_with(
        &app,
        &signed,
        StatusCode::OK,
        None,
        String::new(),
        Vec::new(),
    )
    .await
}

/// `GET /api/v1/forms`: the same list as JSON.
pub async fn forms_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    Ok(Json(lines(&app).await?).into_response())
}

#[derive(Deserialize)]
pub struct PublishForm {
    csrf: String,
    definition: String,
}

/// Longest body `POST /forms` reads: a definition at its limit,
/// URL-encoded (three bytes for each of its own), and the token.
pub const MAX_BODY_BYTES: usize = 3 * observer_core::forms::MAX_DEFINITION_BYTES + 4 * 1024;

/// The admin who may publish forms, with the body still to read; or the
/// refusal, after the body was read and discarded so that it reaches a
/// client still sending instead of a cut connection.
async fn publisher(
    app: &AppState,
    signed: Result<SignedIn, WebError>,
    body: Body,
) -> Result<(SignedIn, Body), WebError> {
    match signed.and_then(|s| {
        s.require(&app.org, "may-forms", Permission::PublishForms)?;
        Ok(s)
    }) {
        Ok(s) => Ok((s, body)),
        Err(refusal) => {
            let mut stream = body.into_data_stream();
            app.body
                .drain(&mut stream, tokio::time::Instant::now(), 0)
                .await;
            Err(refusal)
        }
    }
}

/// `POST /forms`: publishes the pasted definition. Its body is larger than
/// any other form's, so it is read by the server's body policy (a pace, the
/// shared memory budget) and only once the session and role allow it;
/// otherwise, and when over the limit, it is read and discarded first, so
/// that the refusal reaches a client still sending instead of a cut
/// connection.
pub async fn publish_form(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: Result<SignedIn, WebError>,
    body: Body,
) -> Result<Response, WebError> {
    let (signed, body) = publisher(&app, signed, body).await?;
    let held = app.body.read(body, MAX_BODY_BYTES).await?;
    let form_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let form: PublishForm = serde_urlencoded::from_bytes(&held.bytes)
        .ok()
        .filter(|_| form_type)
        .ok_or(WebError::BadQuery("refused-form"))?;
    drop(held);
    signed.check_form(&headers, &form.csrf)?;
    let app2 = app.clone();
    let actor = signed.actor();
    let text = form.definition.clone();
    let outcome = blocking(move || {
        let now = now_ms();
        let (def, how) = match publish(app2.storage.as_ref(), &text, now) {
            Ok(done) => done,
            Err(PublishError::Storage(e)) => return Err(e.into()),
            Err(refused) => return Ok(Err(refused)),
        };
        if how == Published::New {
            app2.published.forget();
            let draft = Draft {
                actor,
                action: "form.published",
                subject: format!("{} v{}", def.id, def.version),
                detail: serde_json::json!({ "id": def.id, "version": def.version }),
            };
            audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        }
        Ok(Ok(()))
    })
    .await?;
    match outcome {
        Ok(()) => Ok(Redirect::to("/forms").into_response()),
        Err(refused) => {
            let t = Texts::current();
            let why = match &refused {
                PublishError::Taken { id, version, .. } => {
                    t.arg2("form-taken", "id", id, "version", version)
                }
                other => t.arg("form-invalid", "reason", other.to_string()),
            };
            forms_page_with(
                &app,
                &signed,
                StatusCode::BAD_REQUEST,
                Some(why),
                form.definition,
                Vec::new(),
            )
            .await
        }
    }
}

/// Longest body `POST /forms/xlsx` reads: a workbook at its limit and the
/// multipart framing around it and the token.
pub const MAX_WORKBOOK_BODY_BYTES: usize = observer_xlsform::MAX_WORKBOOK_BYTES + 16 * 1024;

/// The CSRF token and the workbook of a multipart upload.
async fn workbook_upload(
    headers: &HeaderMap,
    bytes: bytes::Bytes,
) -> Result<(String, bytes::Bytes), WebError> {
    let refused = || WebError::BadQuery("refused-form");
    let boundary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| multer::parse_boundary(t).ok())
        .ok_or_else(refused)?;
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut parts = multer::Multipart::new(body, boundary);
    let (mut csrf, mut workbook) = (None, None);
    while let Some(part) = parts.next_field().await.map_err(|_| refused())? {
        match part.name() {
            Some("csrf") => csrf = Some(part.text().await.map_err(|_| refused())?),
            Some("workbook") => workbook = Some(part.bytes().await.map_err(|_| refused())?),
            _ => {}
        }
    }
    Ok((csrf.ok_or_else(refused)?, workbook.ok_or_else(refused)?))
}

/// `POST /forms/xlsx`: converts an uploaded XLSForm workbook and shows the
/// definition it gives, with every warning, ready to publish. Nothing is
/// published here: the admin reads it first. The body is read as
/// `POST /forms` reads its own (the body policy, after the role check).
pub async fn convert_workbook(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: Result<SignedIn, WebError>,
    body: Body,
) -> Result<Response, WebError> {
    let (signed, body) = publisher(&app, signed, body).await?;
    let held = app.body.read(body, MAX_WORKBOOK_BODY_BYTES).await?;
    let (csrf, workbook) = workbook_upload(&headers, held.bytes.clone()).await?;
    signed.check_form(&headers, &csrf)?;
    // The workbook shares the body's buffer: its share of the memory
    // budget is given back only once the conversion is done with it.
    let converted = blocking(move || {
        let converted = observer_xlsform::import(&workbook, "form");
        drop(held);
        Ok(converted)
    })
    .await?;
    let t = Texts::current();
    match converted {
        Ok(imported) => {
            let notes = imported.warnings.iter().map(ToString::to_string).collect();
            let what = t.arg2(
                "forms-converted",
                "id",
                &imported.form.id,
                "version",
                imported.form.version,
            );
            forms_page_with(
                &app,
                &signed,
                StatusCode::OK,
                Some(what),
                definition_text(&imported.form),
                notes,
            )
            .await
        }
        Err(refused) => {
            let why = t.arg("forms-workbook-refused", "reason", refused.to_string());
            forms_page_with(
                &app,
                &signed,
                StatusCode::BAD_REQUEST,
                Some(why),
                String::new(),
                Vec::new(),
            )
            .await
        }
    }
}
