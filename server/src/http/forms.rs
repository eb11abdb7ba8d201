//! The forms in the workspace: every version phones may fill in (those
//! that ship with Observer and those the organisation published), and for
//! an admin a form to publish a new version by pasting its definition
//! (`docs/forms.md`), checked exactly as `forms publish` checks a file.
//! A published version is never changed; each publication is audited.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use observer_core::forms::{default_forms, FormDefinition};
use serde::{Deserialize, Serialize};

use super::pages::{blocking, page, FormsPage, WebError};
use super::session::SignedIn;
use super::AppState;
use crate::accounts::Permission;
use crate::audit::{self, Draft};
use crate::i18n::Texts;
use crate::publish::{publish, PublishError, Published};

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
        },
    ))
}

/// `GET /forms`.
pub async fn forms_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    forms_page_with(&app, &signed, StatusCode::OK, None, String::new()).await
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

/// `POST /forms`: publishes the pasted definition.
pub async fn publish_form(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<PublishForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-forms", Permission::PublishForms)?;
    let Form(form) = form?;
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
            )
            .await
        }
    }
}
