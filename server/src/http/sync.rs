//! What a phone sends at every contact: `POST /v2/sync` (protocol version
//! 2: a batch under a signed heartbeat, answered with the receipt and,
//! when they changed, the updates, in one exchange); for phones of
//! version 1, `POST /v1/records` (the batch alone) and `POST /v1/updates`
//! (its assignments and the published forms); and `POST /v1/sealed` (a
//! wiped phone's sealed outbox). The decisions are [`crate::ingest`]'s;
//! here are parsing, limits and answers.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use observer_core::protocol::{
    Batch, SealedBatch, Signed, SyncAnswer, SyncRequest, UPDATES_DOMAIN, limits,
};
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
            Ok(app.ingest().prepare_batch(&batch).map(|p| (p, None)))
        },
    )
    .await
}

/// Protocol version 2: the batch, and the updates when the tag the phone
/// holds is not the current one.
pub async fn sync(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(app, headers, body, Endpoint::Sync, |app, headers, raw| {
        let request: SyncRequest = parse("sync request", headers, raw)?;
        let (batch, have) = request.into_batch();
        let prepared = match app.ingest().prepare_batch(&batch) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let device = prepared.device();
        if device.revoked_at_ms.is_some() {
            return Ok(Ok((prepared, None)));
        }
        let updates = app
            .sampled
            .get(app.storage.as_ref())
            .and_then(|sampled| {
                crate::updates::current(app.storage.as_ref(), &app.org, device, &sampled, now_ms())
            })
            .map_err(|e| ApiError::from(IngestError::from(e)))?;
        let changed =
            (updates.tag != Some(have)).then(|| Signed::sign(UPDATES_DOMAIN, &updates, &app.key));
        Ok(Ok((prepared, changed)))
    })
    .await
}

pub async fn sealed_outbox(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(app, headers, body, Endpoint::Sealed, |app, headers, raw| {
        let batch: SealedBatch = parse("sealed batch", headers, raw)?;
        Ok(app.ingest().prepare_sealed(&batch).map(|p| (p, None)))
    })
    .await
}

/// What a batch endpoint decides on the blocking pool: the verified batch,
/// and the signed updates to answer with (protocol version 2 only).
type Decide = fn(
    &AppState,
    &HeaderMap,
    &Bytes,
) -> Result<Result<(Prepared, Option<Signed>), IngestError>, ApiError>;

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
    let (settled, updates) = match prepared {
        Ok((p, updates)) => (
            app.commits
                .commit(p)
                .await
                .map(|c| app.ingest().settle(c.prepared, c.result, c.now_ms))
                .map_err(IngestError::from),
            updates,
        ),
        Err(e) => (Err(e), None),
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
        Verdict::Stored => Ok(Json(SyncAnswer {
            receipt: settled.signed,
            updates,
        })
        .into_response()),
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
        let sampled = app2.sampled.get(app2.storage.as_ref())?;
        let updates = crate::updates::current(
            app2.storage.as_ref(),
            &app2.org,
            &device,
            &sampled,
            now_ms(),
        )?;
        Ok((device.id, Signed::sign(UPDATES_DOMAIN, &updates, &app2.key)))
    })
    .await?;
    tracing::Span::current().record("device", tracing::field::display(&device));
    Ok(Json(json!({ "updates": signed })))
}
