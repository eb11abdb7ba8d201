//! `/account`: a coordinator's own account, and the second factor they
//! set up or remove themselves. Setting one up shows a new key (as a QR
//! code and as text) and takes effect only once a code from the app
//! proves the app holds it; the key travels between the two requests
//! sealed to the organisation and bound to the account
//! ([`crate::second_factor`]), so nothing half-set is stored and another
//! account's setup cannot be confirmed here. Removing it needs a current
//! code, so that a session left open on a shared computer cannot.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::AppState;
use super::codes::qr_data_uri;
use super::pages::{AccountPage, TotpSetup, WebError, blocking, page};
use super::session::{CsrfForm, SignedIn};
use crate::audit::{self, Draft};
use crate::i18n::Texts;
use crate::second_factor::{self, Enrollment};

/// Longest sealed key a form may carry back (a sealed 20-byte key is 68
/// bytes; base64 of it, 92 characters).
const MAX_SEALED_CHARS: usize = 256;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn issuer(app: &AppState) -> String {
    format!("Observer {}", app.org)
}

fn setup(e: &Enrollment) -> Result<TotpSetup, WebError> {
    Ok(TotpSetup {
        qr: qr_data_uri(&e.uri)?,
        key: e.key_base32.as_str().to_string(),
        sealed: STANDARD.encode(&e.sealed),
    })
}

fn account_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    setup: Option<TotpSetup>,
    problem: Option<String>,
) -> Response {
    page(
        status,
        &AccountPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            totp: second_factor::required(&signed.account),
            setup,
            problem,
        },
    )
}

/// `GET /account`.
pub async fn account(State(app): State<Arc<AppState>>, signed: SignedIn) -> Response {
    account_page(&app, &signed, StatusCode::OK, None, None)
}

/// `POST /account/totp`: a new key to set up (nothing is stored yet).
pub async fn start_totp(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let e = second_factor::enroll(&app.seal.public_key(), &issuer(&app), &signed.account.name)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(account_page(
        &app,
        &signed,
        StatusCode::OK,
        Some(setup(&e)?),
        None,
    ))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    sealed: String,
    code: String,
}

/// `POST /account/totp/confirm`: stores the key once a code from it is right.
pub async fn confirm_totp(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let sealed = Some(form.sealed.trim())
        .filter(|s| s.len() <= MAX_SEALED_CHARS)
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or(WebError::Refused("refused-form"))?;
    let name = signed.account.name.clone();
    // A key sealed for another account, or altered, does not open.
    let e = second_factor::reopen(&app.seal, &issuer(&app), &name, &sealed)
        .map_err(|_| WebError::Refused("refused-form"))?;
    let now = now_ms();
    let step = second_factor::check(
        &app.seal,
        &name,
        &sealed,
        None,
        &form.code,
        (now / 1000) as u64,
    )
    .map_err(|e| WebError::Internal(e.to_string()))?;
    let Some(step) = step else {
        let problem = Texts::current().get("totp-wrong");
        return Ok(account_page(
            &app,
            &signed,
            StatusCode::BAD_REQUEST,
            Some(setup(&e)?),
            Some(problem),
        ));
    };
    let actor = signed.actor();
    let app2 = app.clone();
    blocking(move || {
        let store = app2.storage.account_store();
        store.set_totp(&name, Some(&sealed))?;
        // The confirming code is used: it cannot sign in as well.
        store.use_totp_step(&name, step)?;
        let draft = Draft {
            actor,
            action: "account.totp_set",
            subject: name,
            detail: serde_json::json!({}),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    code: String,
}

/// `POST /account/totp/remove`: password only again, given a current code.
pub async fn remove_totp(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let a = &signed.account;
    let Some(sealed) = a.totp_sealed.clone() else {
        return Ok(Redirect::to("/account").into_response());
    };
    let now = now_ms();
    let step = second_factor::check(
        &app.seal,
        &a.name,
        &sealed,
        a.totp_last_step,
        &form.code,
        (now / 1000) as u64,
    )
    .map_err(|e| WebError::Internal(e.to_string()))?;
    let name = a.name.clone();
    let actor = signed.actor();
    let app2 = app.clone();
    let removed = blocking(move || {
        let store = app2.storage.account_store();
        if !step.is_some_and(|s| store.use_totp_step(&name, s).unwrap_or(false)) {
            return Ok(false);
        }
        store.set_totp(&name, None)?;
        let draft = Draft {
            actor,
            action: "account.totp_removed",
            subject: name,
            detail: serde_json::json!({}),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(true)
    })
    .await?;
    if !removed {
        let problem = Texts::current().get("totp-wrong");
        return Ok(account_page(
            &app,
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            Some(problem),
        ));
    }
    Ok(Redirect::to("/account").into_response())
}
