//! `GET /v1/log/checkpoint`, `/v1/log/inclusion`, `/v1/log/consistency`:
//! the log's signed checkpoint and its proofs, answered to enrolled
//! devices (their signed heartbeat in the header, as for media): a
//! stranger learns nothing, not even how many records the log holds.
//! Everything a proof is checked against is signed, so the proofs
//! themselves are plain JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use observer_core::protocol::{ConsistencyProof, InclusionProof};
use serde::Deserialize;

use super::request::{blocking, heartbeat_header};
use super::{ApiError, AppState};
use crate::auth::authenticate_active;
use crate::proofs::{self, ProofRefused};
use crate::storage::Storage;

/// Checks the heartbeat header, then runs `f` on the blocking pool.
async fn for_device<T: Send + 'static>(
    app: &Arc<AppState>,
    headers: &HeaderMap,
    f: impl FnOnce(&dyn Storage, &AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let signed = heartbeat_header(headers, "log requests")?;
    let app = app.clone();
    blocking(move || {
        let device = authenticate_active(app.storage.as_ref(), &app.rates, &signed)?
            .0
            .id;
        tracing::Span::current().record("device", tracing::field::display(&device));
        f(app.storage.as_ref(), &app)
    })
    .await
}

fn refused(e: ProofRefused) -> ApiError {
    match e {
        ProofRefused::BeyondLog { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "beyond_log", e.to_string())
        }
        ProofRefused::Impossible(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "no_such_proof", e.to_string())
        }
        ProofRefused::Damaged(_) => ApiError::internal("a log proof", &e),
        ProofRefused::Storage(e) => e.into(),
    }
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
}

/// The latest checkpoint, as a signed note (`text/plain`).
pub async fn checkpoint(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let note = for_device(&app, &headers, |storage, app| {
        Ok(proofs::checkpoint(storage, &app.key)?.1)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The newest checkpoint the configured witnesses cosigned, with their
/// cosignature lines (`text/plain`); 404 `not_witnessed` before any has.
pub async fn witnessed(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let note = for_device(&app, &headers, |storage, app| {
        crate::witnesses::witnessed(storage, &app.key)
            .map(|w| w.map(|(_, note)| note))
            .map_err(|e| match e {
                crate::witnesses::WitnessesError::Storage(e) => e.into(),
                e => ApiError::internal("the witnessed checkpoint", &e),
            })
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_witnessed",
            "no witness has cosigned a checkpoint of this log yet",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

/// Leaf `index` in the tree of `size` leaves.
pub async fn inclusion(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let proof = for_device(&app, &headers, move |storage, _| {
        proofs::inclusion(storage, q.index, q.size).map_err(refused)
    })
    .await?;
    Ok(Json(proof))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// The tree of `to` leaves extends its first `from`.
pub async fn consistency(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let proof = for_device(&app, &headers, move |storage, _| {
        proofs::consistency(storage, q.from, q.to).map_err(refused)
    })
    .await?;
    Ok(Json(proof))
}
