//! The workspace's views and actions, each behind a session and a role:
//! the overview (and its JSON), the audit log, accounts, and revoking a
//! device. A state-changing request also needs its session's CSRF token.
//! Every action is appended to the audit log as the signed-in account.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use observer_core::identity::DeviceId;
use serde::Deserialize;

use super::pages::{
    blocking, page, AuditLine, AuditPage, OverviewPage, RevokePage, UserLine, UsersPage, WebError,
};
use super::session::{CsrfForm, SignedIn};
use super::AppState;
use crate::accounts::{self, Account, Permission, Role};
use crate::audit::{self, Draft};
use crate::dashboard::{self, Overview};
use crate::i18n::Texts;
use crate::reader::Reader;

/// Audit entries per page.
const AUDIT_PAGE: u32 = 200;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn overview(app: &Arc<AppState>) -> Result<Overview, WebError> {
    let app = app.clone();
    blocking(move || {
        Ok(dashboard::overview(&Reader::new(
            app.storage.as_ref(),
            &app.seal,
        ))?)
    })
    .await
}

/// `GET /`: the overview.
pub async fn overview_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let o = overview(&app).await?;
    Ok(page(
        StatusCode::OK,
        &OverviewPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            o,
            may_revoke: signed.account.role.may(Permission::Revoke),
        },
    ))
}

/// `GET /api/v1/overview`: the overview as JSON.
pub async fn overview_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    Ok(Json(overview(&app).await?).into_response())
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<u64>,
}

/// One page of the audit log, newest first, for an account that may read it.
async fn audit_entries(
    app: &Arc<AppState>,
    signed: &SignedIn,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Vec<crate::audit::AuditEntry>, WebError> {
    signed.require(&app.org, "may-audit", Permission::ReadAudit)?;
    let Ok(Query(q)) = query else {
        return Err(WebError::BadQuery("refused-query"));
    };
    let before = q.before.unwrap_or(u64::MAX);
    let app = app.clone();
    blocking(move || Ok(app.storage.audit_before(before, AUDIT_PAGE)?)).await
}

/// `GET /audit`: the audit log, newest first, a page at a time.
pub async fn audit_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let entries = audit_entries(&app, &signed, query).await?;
    let older = entries
        .last()
        .filter(|e| e.seq > 1 && entries.len() == AUDIT_PAGE as usize)
        .map(|e| e.seq);
    Ok(page(
        StatusCode::OK,
        &AuditPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            first: entries.last().map_or(0, |e| e.seq),
            last: entries.first().map_or(0, |e| e.seq),
            entries: entries.iter().map(AuditLine::from).collect(),
            older,
        },
    ))
}

/// `GET /api/v1/audit?before=N`: the audit page's entries as JSON, with
/// their hashes and signatures (what `audit verify` checks).
pub async fn audit_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    Ok(Json(audit_entries(&app, &signed, query).await?).into_response())
}

/// `GET /api/v1/users`: the accounts as JSON (never their hashes).
pub async fn users_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-users", Permission::ManageUsers)?;
    let users = blocking(move || Ok(app.storage.account_store().accounts()?)).await?;
    Ok(Json(users).into_response())
}

async fn users_page_with(
    app: &Arc<AppState>,
    signed: &SignedIn,
    status: StatusCode,
    problem: Option<String>,
) -> Result<Response, WebError> {
    let app2 = app.clone();
    let users = blocking(move || Ok(app2.storage.account_store().accounts()?)).await?;
    Ok(page(
        status,
        &UsersPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            users: users.iter().map(UserLine::from).collect(),
            problem,
        },
    ))
}

/// `GET /users`: the accounts, and a form to add one.
pub async fn users_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-users", Permission::ManageUsers)?;
    users_page_with(&app, &signed, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    role: String,
    password: String,
}

/// `POST /users`: adds an account.
pub async fn add_user(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<NewUserForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-users", Permission::ManageUsers)?;
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let problem = |m: String| users_page_with(&app, &signed, StatusCode::BAD_REQUEST, Some(m));
    let role: Role = match form.role.parse() {
        Ok(r) => r,
        Err(e) => return problem(format!("{e}")).await,
    };
    if let Err(e) = accounts::check_name(&form.name) {
        return problem(e.to_string()).await;
    }
    let hash = match accounts::hash_password(&form.password) {
        Ok(h) => h,
        Err(e) => return problem(e.to_string()).await,
    };
    let app2 = app.clone();
    let actor = signed.actor();
    let name = form.name.clone();
    let added = blocking(move || {
        let now = now_ms();
        let account = Account::new(&name, role, hash, now);
        if !app2.storage.account_store().add_account(&account)? {
            return Ok(false);
        }
        let draft = Draft {
            actor,
            action: "account.added",
            subject: name,
            detail: serde_json::json!({ "role": role.as_str() }),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(true)
    })
    .await?;
    if !added {
        return problem(Texts::current().arg("account-exists", "name", &form.name)).await;
    }
    Ok(Redirect::to("/users").into_response())
}

/// `POST /users/{name}/disable` and `/enable`.
pub async fn set_user_disabled(
    State(app): State<Arc<AppState>>,
    Path((name, change)): Path<(String, String)>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-users", Permission::ManageUsers)?;
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let disabled = match change.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(WebError::NotFound("not-found-page")),
    };
    if disabled && name == signed.account.name {
        return users_page_with(
            &app,
            &signed,
            StatusCode::BAD_REQUEST,
            Some(Texts::current().get("own-account")),
        )
        .await;
    }
    let app2 = app.clone();
    let actor = signed.actor();
    let changed = blocking(move || {
        if !app2.storage.account_store().set_disabled(&name, disabled)? {
            return Ok(false);
        }
        let draft = Draft {
            actor,
            action: if disabled {
                "account.disabled"
            } else {
                "account.enabled"
            },
            subject: name,
            detail: serde_json::json!({}),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now_ms())?;
        Ok(true)
    })
    .await?;
    if !changed {
        return Err(WebError::NotFound("not-found-account"));
    }
    Ok(Redirect::to("/users").into_response())
}

fn device_id(text: &str) -> Result<DeviceId, WebError> {
    DeviceId::try_from(text.to_string()).map_err(|_| WebError::NotFound("not-found-device"))
}

/// `GET /devices/{id}/revoke`: the confirmation, naming the observer.
pub async fn revoke_page(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-revoke", Permission::Revoke)?;
    let id = device_id(&id)?;
    let app2 = app.clone();
    let device = blocking(move || Ok(app2.storage.device(&id)?))
        .await?
        .ok_or_else(|| WebError::NotFound("not-found-device"))?;
    Ok(page(
        StatusCode::OK,
        &RevokePage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            device: device.id.as_str().to_string(),
            observer: device
                .name
                .clone()
                .unwrap_or_else(|| Texts::current().get("unnamed-observer")),
            stations: device.stations.join(", "),
        },
    ))
}

/// `POST /devices/{id}/revoke`.
pub async fn revoke(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-revoke", Permission::Revoke)?;
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let id = device_id(&id)?;
    let app2 = app.clone();
    let actor = signed.actor();
    let revoked = blocking(move || {
        let now = now_ms();
        let Some(device) = app2.storage.device(&id)? else {
            return Ok(false);
        };
        if !app2.storage.revoke(&id, now)? {
            return Ok(false);
        }
        let draft = Draft {
            actor,
            action: "device.revoked",
            subject: id.as_str().to_string(),
            detail: serde_json::json!({ "observer": device.name, "stations": device.stations }),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(true)
    })
    .await?;
    if !revoked {
        return Err(WebError::NotFound("not-found-device"));
    }
    tracing::info!("a coordinator revoked a device from the workspace");
    Ok(Redirect::to("/").into_response())
}
