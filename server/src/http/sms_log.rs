//! The SMS reports in the workspace (`GET /sms`, `GET /api/v1/sms`): how
//! the gateways are set up (never their secrets), the messages still
//! waiting for parts, and the newest texts with what each came to and the
//! number it came from. National supervisors and admins only: a sender's
//! number is an observer's phone number and belongs to no one region. The
//! webhooks that receive the texts are `http::sms`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::pages::{SmsPage, WebError, blocking, page};
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::i18n::Texts;
use crate::sms::{GatewayError, Status};

/// Texts the page lists (the newest).
const LISTED: u32 = 200;

async fn status(app: &Arc<AppState>, signed: &SignedIn) -> Result<Status, WebError> {
    signed.require(&app.org, "may-sms", Permission::ReadSms)?;
    let app = app.clone();
    blocking(move || {
        Status::read(app.storage.as_ref(), LISTED).map_err(|e| match e {
            GatewayError::Storage(e) => WebError::Storage(e),
            GatewayError::Unreadable(e) => WebError::Internal(e),
        })
    })
    .await
}

/// `GET /sms`: the page.
pub async fn sms_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    let status = status(&app, &signed).await?;
    Ok(page(
        StatusCode::OK,
        &SmsPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            status,
        },
    ))
}

/// `GET /api/v1/sms`: the same as JSON (what `sms status --json` prints).
pub async fn sms_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    Ok(Json(status(&app, &signed).await?).into_response())
}
