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

use super::AppState;
use super::pages::{
    AuditLine, AuditPage, OverviewPage, RevokePage, UserLine, UsersPage, WebError, blocking, page,
};
use super::scope;
use super::session::{CsrfForm, SignedIn};
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
    // The overview is the whole country's (every device, the newest
    // records anywhere); an account of one region starts from its
    // region's coverage instead.
    if signed.region().is_some() {
        return Ok(Redirect::to("/coverage").into_response());
    }
    let o = overview(&app).await?;
    Ok(page(
        StatusCode::OK,
        &OverviewPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            o,
            may_revoke: signed.account.may(Permission::Revoke),
        },
    ))
}

/// `GET /api/v1/overview`: the overview as JSON.
pub async fn overview_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    if signed.region().is_some() {
        return Err(WebError::national(signed.nav(&app.org), "may-read"));
    }
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

/// The accounts `signed` may manage: all of them for a national admin,
/// its own region's for a coordinator.
async fn managed_accounts(
    app: &Arc<AppState>,
    signed: &SignedIn,
) -> Result<Vec<Account>, WebError> {
    let app = app.clone();
    let me = signed.account.clone();
    blocking(move || {
        let all = app.storage.account_store().accounts()?;
        Ok(all.into_iter().filter(|a| me.manages(a)).collect())
    })
    .await
}

/// `GET /api/v1/users`: the accounts as JSON (never their hashes or
/// second-factor keys; `totp` says whether one is set).
pub async fn users_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-users", Permission::ManageUsers)?;
    Ok(Json(managed_accounts(&app, &signed).await?).into_response())
}

async fn users_page_with(
    app: &Arc<AppState>,
    signed: &SignedIn,
    status: StatusCode,
    problem: Option<String>,
) -> Result<Response, WebError> {
    let users = managed_accounts(app, signed).await?;
    let app2 = app.clone();
    let regions = match signed.region() {
        Some(mine) => vec![mine.to_string()],
        None => {
            blocking(move || {
                Ok(crate::registry::current(app2.storage.as_ref())?
                    .map(|r| r.regions())
                    .unwrap_or_default())
            })
            .await?
        }
    };
    Ok(page(
        status,
        &UsersPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            users: users.iter().map(UserLine::from).collect(),
            regions,
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
    /// Empty: the whole country.
    #[serde(default)]
    region: String,
    password: String,
}

/// The role and region a new account gets from `form`, as `signed` may
/// give them: a coordinator adds accounts of its own region only, and
/// never an admin. `Err`: the catalogue id of the refusal.
fn new_scope(
    signed: &SignedIn,
    form: &NewUserForm,
) -> Result<(Role, Option<String>), &'static str> {
    let role: Role = form
        .role
        .parse()
        .map_err(|e: accounts::AccountError| e.text_id())?;
    let asked = Some(form.region.trim().to_string()).filter(|r| !r.is_empty());
    let region = match signed.region() {
        None => asked,
        Some(mine) => {
            if role == Role::Admin || asked.as_deref().is_some_and(|r| r != mine) {
                return Err("err-role-too-high");
            }
            Some(mine.to_string())
        }
    };
    accounts::check_scope(role, region.as_deref()).map_err(|e| e.text_id())?;
    Ok((role, region))
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
    let t = Texts::current();
    let problem = |m: String| users_page_with(&app, &signed, StatusCode::BAD_REQUEST, Some(m));
    let (role, region) = match new_scope(&signed, &form) {
        Ok(scope) => scope,
        Err(id) => return problem(t.get(id)).await,
    };
    if let Err(e) = accounts::check_name(&form.name) {
        return problem(t.get(e.text_id())).await;
    }
    let hash = match accounts::hash_password(&form.password) {
        Ok(h) => h,
        Err(e) => return problem(t.get(e.text_id())).await,
    };
    let app2 = app.clone();
    let actor = signed.actor();
    let name = form.name.clone();
    let added = blocking(move || {
        if let Some(r) = &region {
            let known = crate::registry::current(app2.storage.as_ref())?
                .is_some_and(|reg| reg.has_region(r));
            if !known {
                return Ok(Err(("err-region-not-in-registry", r.clone())));
            }
        }
        let now = now_ms();
        let account = Account::new(&name, role, region.clone(), hash, now)
            .map_err(|e| WebError::Internal(e.to_string()))?;
        if !app2.storage.account_store().add_account(&account)? {
            return Ok(Err(("account-exists", name)));
        }
        let draft = Draft {
            actor,
            action: "account.added",
            subject: name,
            detail: serde_json::json!({ "role": role.as_str(), "region": region }),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(Ok(()))
    })
    .await?;
    match added {
        Ok(()) => Ok(Redirect::to("/users").into_response()),
        Err(("account-exists", name)) => problem(t.arg("account-exists", "name", name)).await,
        Err((id, region)) => problem(t.arg(id, "region", region)).await,
    }
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
    let me = signed.account.clone();
    let changed = blocking(move || {
        let store = app2.storage.account_store();
        // An account outside a coordinator's region is, to it, no account.
        if !store.account(&name)?.is_some_and(|a| me.manages(&a)) {
            return Ok(false);
        }
        if !store.set_disabled(&name, disabled)? {
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
    scope::require_device(&app, &signed, "may-revoke", &id).await?;
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
    scope::require_device(&app, &signed, "may-revoke", &id).await?;
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
