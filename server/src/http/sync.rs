//! What a phone sends at every contact: `POST /v1/records` (a batch under a
//! signed heartbeat), `POST /v1/sealed` (a wiped phone's sealed outbox) and
//! `POST /v1/updates` (its assignments and the published forms). The
//! decisions are [`crate::ingest`]'s; here are parsing, limits and answers.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use observer_core::protocol::{limits, Batch, SealedBatch, Signed, Updates, UPDATES_DOMAIN};
use serde::Deserialize;
use serde_json::json;

use super::request::{blocking, now_ms, parse, read_body, require_json};
use super::{ApiError, AppState, MAX_SMALL_REQUEST_BYTES};
use crate::auth::authenticate_active;
use crate::ingest::{IngestError, Prepared, Verdict};
use crate::metrics::Endpoint;

pub async fn records(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(
        app,
        headers,
        body,
        Endpoint::Records,
        |app, headers, raw| {
            let batch: Batch = parse("batch", headers, raw)?;
            Ok(app.ingest().prepare_batch(&batch))
        },
    )
    .await
}

pub async fn sealed_outbox(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(app, headers, body, Endpoint::Sealed, |app, headers, raw| {
        let batch: SealedBatch = parse("sealed batch", headers, raw)?;
        Ok(app.ingest().prepare_sealed(&batch))
    })
    .await
}

type Decide = fn(&AppState, &HeaderMap, &Bytes) -> Result<Result<Prepared, IngestError>, ApiError>;

/// A batch-sized JSON request: admitted if the backlog has room (503 with
/// `Retry-After` at once if not), its body read within the limits,
/// verified on the blocking pool within an ingest slot, committed with
/// whatever else is verified at the same moment, then counted and
/// answered with a receipt signed after its commit is durable.
async fn batch_endpoint(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    endpoint: Endpoint,
    decide: Decide,
) -> Result<Response, ApiError> {
    let Some(_admitted) = app.backlog.admit() else {
        app.metrics.shed();
        return Err(ApiError::busy(
            "the server is at capacity; retry after the wait it gives",
        ));
    };
    require_json(&headers)?;
    let held = read_body(&app, body, limits::MAX_REQUEST_BYTES).await?;
    // The wait is bounded by the client's own patience and the body budget.
    let slot = app
        .ingest_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal("ingest slots", &e))?;
    let started = Instant::now();
    let app2 = app.clone();
    let prepared = blocking(move || decide(&app2, &headers, &held.bytes)).await?;
    // Verified: the slot's core is free for the next batch while this one
    // waits for its group to be durable.
    drop(slot);
    let settled = match prepared {
        Ok(p) => app
            .commits
            .commit(p)
            .await
            .map(|c| app.ingest().settle(c.prepared, c.result, c.now_ms))
            .map_err(IngestError::from),
        Err(e) => Err(e),
    };
    app.metrics
        .batch(endpoint, started.elapsed(), settled.as_ref());
    let settled = settled?;
    let span = tracing::Span::current();
    let r = &settled.receipt;
    span.record("device", tracing::field::display(&r.device));
    span.record("accepted", r.accepted.len());
    span.record("already", r.already.len());
    span.record("rejected", r.rejected.len());
    match settled.verdict {
        Verdict::Stored => Ok(Json(json!({ "receipt": settled.signed })).into_response()),
        Verdict::DeviceRevoked => Err(ApiError::revoked().with_receipt(&settled.signed)),
        Verdict::AllRefused(sentence) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "records_rejected",
            sentence,
        )
        .with_receipt(&settled.signed)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatesRequest {
    heartbeat: Signed,
}

/// An enrolled device's assignments and the published forms, signed.
pub async fn updates(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_json(&headers)?;
    let held = read_body(&app, body, MAX_SMALL_REQUEST_BYTES).await?;
    let app2 = app.clone();
    let (device, signed) = blocking(move || {
        let req: UpdatesRequest = parse("updates request", &headers, &held.bytes)?;
        let (device, _) = authenticate_active(app2.storage.as_ref(), &app2.rates, &req.heartbeat)?;
        let updates = Updates {
            org: app2.org.clone(),
            device: device.id.clone(),
            server_time_ms: now_ms(),
            stations: device.stations,
            forms: app2
                .storage
                .forms()?
                .into_iter()
                .map(|f| f.definition)
                .collect(),
        };
        Ok((device.id, Signed::sign(UPDATES_DOMAIN, &updates, &app2.key)))
    })
    .await?;
    tracing::Span::current().record("device", tracing::field::display(&device));
    Ok(Json(json!({ "updates": signed })))
}
