//! `GET /`: the coordinator's web view, behind its token.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use observer_core::record::Sha256Digest;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::dashboard;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn dashboard_page(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "the only query parameter here is token",
        )
        .into_response();
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let given = q.token.or(bearer).unwrap_or_default();
    // Comparing digests keeps the comparison's timing independent of how
    // much of the token a guess got right.
    let ok = Sha256Digest::of(given.as_bytes()) == Sha256Digest::of(app.dashboard_token.as_bytes());
    if !ok {
        return (StatusCode::UNAUTHORIZED, Html(dashboard::login_page())).into_response();
    }
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || {
        dashboard::render(
            &crate::reader::Reader::new(app2.storage.as_ref(), &app2.seal),
            &app2.org,
        )
    })
    .await
    {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => ApiError::internal("the web view", &e).into_response(),
    }
}
