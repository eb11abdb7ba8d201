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
    Batch, LogProofs, SealedBatch, Signed, SyncAnswer, SyncRequest, UPDATES_DOMAIN, limits,
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
            Ok(app
                .ingest()
                .prepare_batch(&batch)
                .map(|p| (p, Answering::default())))
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
        let (batch, asks) = request.into_batch();
        if asks.log_prove.len() > limits::MAX_LOG_PROVE {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "too_many_proofs",
                format!(
                    "a sync asks for at most {} inclusion proofs",
                    limits::MAX_LOG_PROVE
                ),
            ));
        }
        let prepared = match app.ingest().prepare_batch(&batch) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let device = prepared.device();
        let witnesses = app
            .witnesses
            .get(app.storage.as_ref(), &app.key)
            .map_err(witnesses_failed)?;
        // A witnessed checkpoint newer than the one the phone holds.
        let witnessed = asks.log_witnessed.and_then(|held| {
            witnesses
                .witnessed
                .clone()
                .filter(|(head, _)| head.size > held)
        });
        let log = (asks.log_have.is_some() || !asks.log_prove.is_empty() || witnessed.is_some())
            .then_some(LogAsked {
                have: asks.log_have,
                prove: asks.log_prove,
                witnessed,
            });
        if device.revoked_at_ms.is_some() {
            return Ok(Ok((prepared, Answering { updates: None, log })));
        }
        let storage = app.storage.as_ref();
        let failed = |e: crate::storage::StorageError| ApiError::from(IngestError::from(e));
        let sampled = app.sampled.get(storage).map_err(failed)?;
        let forms = app.published.get(storage).map_err(failed)?;
        let sms_number = app.sms_number.get(storage).map_err(failed)?;
        let changed = crate::updates::Shared {
            org: &app.org,
            sampled: &sampled,
            forms: &forms,
            witnesses: &witnesses.keys,
            sms_number: sms_number.as_deref(),
        }
        .unless_held(device, &asks.updates_have, now_ms())
        .map(|updates| Signed::sign(UPDATES_DOMAIN, &updates, &app.key));
        Ok(Ok((
            prepared,
            Answering {
                updates: changed,
                log,
            },
        )))
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
        Ok(app
            .ingest()
            .prepare_sealed(&batch)
            .map(|p| (p, Answering::default())))
    })
    .await
}

/// What a batch's answer carries besides its receipt (protocol version 2
/// only): the signed updates, and the log proofs asked for (`log_have`,
/// `log_prove`), made once the receipt's tree head is known.
#[derive(Default)]
struct Answering {
    updates: Option<Signed>,
    log: Option<LogAsked>,
}

/// The log proofs a sync asked for.
struct LogAsked {
    have: Option<u64>,
    prove: Vec<u64>,
    /// The witnessed checkpoint to send, newer than the phone's.
    witnessed: Option<(observer_core::merkle::TreeHead, String)>,
}

fn witnesses_failed(e: crate::witnesses::WitnessesError) -> ApiError {
    match e {
        crate::witnesses::WitnessesError::Storage(e) => ApiError::from(IngestError::from(e)),
        e => ApiError::internal("the witnesses", &e),
    }
}

/// What a batch endpoint decides on the blocking pool: the verified batch,
/// and what its answer will carry.
type Decide = fn(
    &AppState,
    &HeaderMap,
    &Bytes,
) -> Result<Result<(Prepared, Answering), IngestError>, ApiError>;

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
    let (settled, answering) = match prepared {
        Ok((p, answering)) => (
            app.commits
                .commit(p)
                .await
                .map(|c| app.ingest().settle(c.prepared, c.result, c.now_ms))
                .map_err(IngestError::from),
            answering,
        ),
        Err(e) => (Err(e), Answering::default()),
    };
    app.metrics
        .batch(endpoint, started.elapsed(), settled.as_ref());
    let settled = settled?;
    let r = &settled.receipt;
    app.receipts.keep(crate::receipts::StoredReceipt {
        device: r.device.clone(),
        server_time_ms: r.server_time_ms,
        signed: settled.signed.clone(),
    });
    let span = tracing::Span::current();
    span.record("device", tracing::field::display(&r.device));
    span.record("accepted", r.accepted.len());
    span.record("already", r.already.len());
    span.record("rejected", r.rejected.len());
    match settled.verdict {
        Verdict::Stored => Ok(Json(SyncAnswer {
            log: log_proofs(&app, answering.log, r.tree.size).await?,
            receipt: settled.signed,
            updates: answering.updates,
        })
        .into_response()),
        Verdict::DeviceRevoked => Err(ApiError::revoked()
            .with_receipt(&settled.signed)
            .with_log(log_proofs(&app, answering.log, r.tree.size).await?)),
        Verdict::AllRefused(sentence) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "records_rejected",
            sentence,
        )
        .with_receipt(&settled.signed)),
    }
}

/// The proofs a sync asked for, at the receipt's tree size. The records
/// are committed already: a failure here is a 503 the phone retries, and
/// its retry finds them `already` held.
async fn log_proofs(
    app: &Arc<AppState>,
    asked: Option<LogAsked>,
    size: u64,
) -> Result<Option<LogProofs>, ApiError> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let app = app.clone();
    blocking(move || {
        crate::proofs::for_sync(
            app.storage.as_ref(),
            asked.have,
            &asked.prove,
            asked.witnessed,
            size,
        )
        .map(Some)
        .map_err(|e| ApiError::internal("the log proofs of a sync", &e))
    })
    .await
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
        let witnesses = app2
            .witnesses
            .get(app2.storage.as_ref(), &app2.key)
            .map_err(witnesses_failed)?;
        let sms_number = app2.sms_number.get(app2.storage.as_ref())?;
        let forms = app2.published.get(app2.storage.as_ref())?;
        let updates = crate::updates::Shared {
            org: &app2.org,
            sampled: &sampled,
            forms: &forms,
            witnesses: &witnesses.keys,
            sms_number: sms_number.as_deref(),
        }
        .for_device(&device, now_ms());
        Ok((device.id, Signed::sign(UPDATES_DOMAIN, &updates, &app2.key)))
    })
    .await?;
    tracing::Span::current().record("device", tracing::field::display(&device));
    Ok(Json(json!({ "updates": signed })))
}
