//! The HTTP API (`docs/protocol.md`, `/openapi.json`). Every refusal is a
//! 4xx with a JSON [`ErrorBody`] naming the problem; every body is bounded
//! before it is read; nothing from the network is trusted before its
//! signature is checked.

mod media;
mod middleware;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use observer_core::forms::{default_forms, FormDefinition};
use observer_core::identity::SigningKey;
use observer_core::protocol::{
    limits, Ack, Batch, EnrollRequest, EnrollResponse, ErrorBody, Heartbeat, Receipt, RejectReason,
    Rejection, SealedBatch, Signed, Updates, HEARTBEAT_DOMAIN, RECEIPT_DOMAIN, UPDATES_DOMAIN,
};
use observer_core::record::{
    limits::MAX_BODY_BYTES, verify_envelope, RecordId, Sha256Digest, VerifiedRecord, VerifyError,
};
use observer_core::seal::{OrgSecretKey, SealedRecord};
use serde::Deserialize;
use serde_json::json;

use crate::body::{BodyError, BodyPolicy, Held};
use crate::dashboard;
use crate::media::MediaFiles;
use crate::rate::{Limited, RateLimits};
use crate::storage::{FormCheck, Outcome, Storage, StorageError, TokenProblem};

/// The OpenAPI description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Largest enrollment or updates request (a token or a heartbeat).
const MAX_SMALL_REQUEST_BYTES: usize = 16 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// The coordinator's receipt-signing key.
    pub key: SigningKey,
    /// The organisation's key for sealed records.
    pub seal: OrgSecretKey,
    /// Evidence media, received resumably.
    pub media: Arc<MediaFiles>,
    /// The organisation id.
    pub org: String,
    /// The coordinator's token for the web view.
    pub dashboard_token: String,
    /// Parsed form versions, filled on first use (published versions never
    /// change, so an entry is never stale).
    pub forms: std::sync::RwLock<HashMap<(String, u32), Arc<FormDefinition>>>,
    /// How request bodies are read: size, pace, memory budget.
    pub body: BodyPolicy,
    /// Request rates per address and per device.
    pub rates: RateLimits,
    /// Batches being verified and stored at once: each holds a decompressed
    /// batch in memory and a blocking thread, so they are bounded.
    pub ingest_slots: Arc<tokio::sync::Semaphore>,
    /// Directories whose free space the health check watches.
    pub disks: Vec<PathBuf>,
}

/// Free space below which `/healthz` reports the disk full: a batch must
/// not be acknowledged on a disk that may not hold it.
pub const MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

impl AppState {
    /// The form `id` at `version`: published by this coordinator (one
    /// primary-key lookup on a cache miss), or shipped.
    fn form(&self, id: &str, version: u32) -> Result<Option<Arc<FormDefinition>>, StorageError> {
        let key = (id.to_string(), version);
        if let Some(f) = self
            .forms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(f.clone()));
        }
        // A shipped version always counts as shipped, as on the phones.
        let shipped = default_forms()
            .iter()
            .find(|f| f.id == id && f.version == version)
            .cloned();
        let found = match shipped {
            Some(f) => Some(f),
            None => self
                .storage
                .form(id, version)?
                .and_then(|p| FormDefinition::parse(&p.definition).ok()),
        };
        Ok(found.map(|f| {
            let f = Arc::new(f);
            self.forms
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, f.clone());
            f
        }))
    }

    /// Re-validates a record's answers against its form, as the phone did,
    /// and flags it when it is misfiled (unknown form, a kind that is not
    /// the form's, a station the device is not assigned to): kept all the
    /// same, never clean.
    fn check(&self, r: &VerifiedRecord, assigned: &[String]) -> Result<FormCheck, StorageError> {
        let b = &r.body;
        let form = self.form(&b.form.id, b.form.version)?;
        let flags = observer_core::forms::filing_flags(
            &b.form.id,
            b.form.version,
            form.as_deref(),
            b.kind.as_str(),
            b.station.as_str(),
            assigned,
        );
        let (clean, mut json) = match &form {
            Some(form) => {
                let v = form.validate(&b.payload, "en");
                (v.is_clean(), serde_json::to_value(&v).expect("serialises"))
            }
            None => (false, json!({})),
        };
        json["flags"] = serde_json::to_value(&flags).expect("serialises");
        Ok(FormCheck {
            clean: clean && flags.is_empty(),
            json: json.to_string(),
        })
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/enroll", post(enroll))
        .route("/v1/records", post(records))
        .route("/v1/sealed", post(sealed_outbox))
        .route("/v1/updates", post(updates))
        .route("/v1/media/{sha256}", get(media::state).put(media::put))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see /openapi.json",
            )
        })
        // Bodies are bounded by each handler, with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::header_limits))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_by_address,
        ))
        .layer(axum::middleware::from_fn(middleware::answer_headers))
        .with_state(state)
}

/// A refusal: status, stable code, sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    extra: Option<serde_json::Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.into(),
                message: message.into(),
            },
            extra: None,
            retry_after: None,
        }
    }

    /// A failure inside the server: the client learns that it may retry,
    /// never what failed (that goes to the operator's log).
    fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        eprintln!("observer-server: {what} failed: {cause}");
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the server could not complete this; retry later",
        );
        e.retry_after = Some(5);
        e
    }

    fn rate_limited(limited: Limited) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {} s", limited.retry_after_secs),
        );
        e.retry_after = Some(limited.retry_after_secs);
        e
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let (status, code) = match &e {
            BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            BodyError::TooSlow { .. } => (StatusCode::REQUEST_TIMEOUT, "request_too_slow"),
            BodyError::Interrupted { .. } => (StatusCode::BAD_REQUEST, "body_interrupted"),
            BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        if matches!(e, BodyError::Busy) {
            err.retry_after = Some(1);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut v = serde_json::to_value(&self.body).expect("serialises");
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(m)) =
            (self.extra, &mut v)
        {
            m.extend(extra);
        }
        let mut response = (self.status, Json(v)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::internal("storage", &e)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal("a request", &e)))
}

/// `ok` when the database answers and every data disk has room; 503 with
/// what is wrong otherwise (a load balancer then sends phones elsewhere).
async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let app2 = app.clone();
    let problem = tokio::task::spawn_blocking(move || {
        if let Err(e) = app2.storage.ping() {
            eprintln!("observer-server: health check: {e}");
            return Some("database_unavailable");
        }
        for dir in &app2.disks {
            match rustix::fs::statvfs(dir) {
                Ok(s) if s.f_bavail.saturating_mul(s.f_frsize) >= MIN_FREE_BYTES => {}
                Ok(_) => return Some("disk_full"),
                Err(_) => return Some("disk_unavailable"),
            }
        }
        None
    })
    .await
    .unwrap_or(Some("internal"));
    match problem {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": p}))).into_response(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, not {ct:?}"),
        ))
    }
}

async fn read_body(app: &AppState, body: Body, limit: usize) -> Result<Held, ApiError> {
    Ok(app.body.read(body, limit).await?)
}

fn malformed(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the {what} is not valid: {e}"),
    )
}

async fn enroll(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiError> {
    require_json(&headers)?;
    let held = read_body(&app, body, MAX_SMALL_REQUEST_BYTES).await?;
    let req: EnrollRequest = serde_json::from_slice(&decompress(&headers, &held.bytes)?)
        .map_err(|e| malformed("enrollment request", e))?;
    if req.name.as_ref().is_some_and(|n| n.len() > 128) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "the name is over 128 bytes",
        ));
    }
    if !req
        .public_key
        .verify(&EnrollRequest::proof_message(&req.token), &req.proof)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_proof",
            "the proof of key possession does not verify",
        ));
    }
    let app2 = app.clone();
    let info = blocking(move || {
        let hash = Sha256Digest::of(req.token.as_bytes());
        Ok(app2
            .storage
            .enroll(&hash, &req.public_key, req.name.as_deref(), now_ms())?)
    })
    .await?
    .map_err(|p| match p {
        TokenProblem::Unknown => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_unknown",
            "this enrollment code is not known to the coordinator; ask for a new one",
        ),
        TokenProblem::Used => ApiError::new(
            StatusCode::CONFLICT,
            "token_used",
            "this enrollment code was used already; each code enrolls one phone",
        ),
        TokenProblem::Expired => ApiError::new(
            StatusCode::GONE,
            "token_expired",
            "this enrollment code has expired; ask for a new one",
        ),
        TokenProblem::DeviceRevoked => revoked(),
    })?;
    Ok(Json(EnrollResponse {
        device: info.id,
        org: app.org.clone(),
        stations: info.stations,
        server_time_ms: now_ms(),
        seal_key: Some(app.seal.public_key()),
    }))
}

fn decompress(headers: &HeaderMap, raw: &Bytes) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw.to_vec()),
        "zstd" => {
            let dec = zstd::stream::read::Decoder::new(raw.as_ref())
                .map_err(|e| malformed("zstd body", e))?;
            let mut out = Vec::new();
            dec.take(limits::MAX_DECOMPRESSED_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_compression",
                        format!("the zstd body is damaged: {e}"),
                    )
                })?;
            if out.len() > limits::MAX_DECOMPRESSED_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    format!(
                        "the decompressed body is over the limit of {} bytes",
                        limits::MAX_DECOMPRESSED_BYTES
                    ),
                ));
            }
            Ok(out)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not supported; use zstd or none"),
        )),
    }
}

/// A checked record, or why it was refused.
fn check_record(
    position: usize,
    wire: &observer_core::protocol::WireRecord,
    key: &observer_core::identity::PublicKey,
    org: &str,
) -> Result<VerifiedRecord, Rejection> {
    let reject = |reason, detail: String| Rejection {
        position,
        id: RecordId::of(&wire.body),
        reason,
        detail,
    };
    if wire.body.len() > MAX_BODY_BYTES {
        return Err(reject(
            RejectReason::TooLarge,
            format!(
                "{} bytes, over the limit of {MAX_BODY_BYTES}",
                wire.body.len()
            ),
        ));
    }
    let env = wire.envelope().ok_or_else(|| {
        reject(
            RejectReason::Malformed,
            "the signature is not 64 bytes".into(),
        )
    })?;
    let rec = verify_envelope(&env, key).map_err(|e| {
        let reason = match e {
            VerifyError::BadSignature => RejectReason::BadSignature,
            VerifyError::TooLarge { .. } => RejectReason::TooLarge,
            VerifyError::WrongDevice { .. } => RejectReason::WrongDevice,
            _ => RejectReason::Malformed,
        };
        reject(reason, e.to_string())
    })?;
    match &rec.body.org {
        Some(o) if o != org => Err(reject(
            RejectReason::WrongOrg,
            format!("signed for organisation {o:?}, this server is {org:?}"),
        )),
        _ => Ok(rec),
    }
}

/// Opens a sealed record sent by `device` with the organisation's key.
fn open_sealed(
    position: usize,
    s: &SealedRecord,
    org: &OrgSecretKey,
    device: &observer_core::identity::DeviceId,
) -> Result<observer_core::protocol::WireRecord, Rejection> {
    let reject = |detail: String| Rejection {
        position,
        id: RecordId::of(&s.ct),
        reason: RejectReason::Unopenable,
        detail,
    };
    if s.device != *device {
        return Err(reject(format!(
            "labelled for device {}, sent by {device}",
            s.device
        )));
    }
    s.open(org)
        .map(|env| (&env).into())
        .map_err(|e| reject(e.to_string()))
}

/// A sealed record's contents must be the record its label names.
fn check_sealed(
    position: usize,
    s: &SealedRecord,
    rec: VerifiedRecord,
) -> Result<VerifiedRecord, Rejection> {
    if rec.body.seq != s.seq || rec.body.device != s.device {
        return Err(Rejection {
            position,
            id: rec.id,
            reason: RejectReason::Unopenable,
            detail: format!(
                "labelled as record {} of {}, but holds record {} of {}",
                s.seq, s.device, rec.body.seq, rec.body.device
            ),
        });
    }
    Ok(rec)
}

async fn records(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(app, headers, body, ingest).await
}

/// A batch-sized JSON request: its body read within the limits, then
/// `handle`d on the blocking pool within an ingest slot.
async fn batch_endpoint(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    handle: fn(&AppState, &HeaderMap, &Bytes) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let held = read_body(&app, body, limits::MAX_REQUEST_BYTES).await?;
    let _slot = ingest_slot(&app).await?;
    blocking(move || handle(&app, &headers, &held.bytes)).await
}

/// A place among the batches verified at once; waits while all are taken
/// (the wait is bounded by the client's own patience and the body budget).
async fn ingest_slot(app: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    app.ingest_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal("ingest slots", &e))
}

/// Who is speaking: the heartbeat's device, enrolled and not revoked, and
/// the heartbeat signed by its enrolled key.
fn authenticate(
    app: &AppState,
    heartbeat: &Signed,
) -> Result<(crate::storage::DeviceInfo, Heartbeat), ApiError> {
    let claimed: Heartbeat =
        serde_json::from_slice(&heartbeat.body).map_err(|e| malformed("heartbeat", e))?;
    let device = app.storage.device(&claimed.device)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_device",
            format!(
                "device {} is not enrolled with this coordinator",
                claimed.device
            ),
        )
    })?;
    let heartbeat: Heartbeat = heartbeat
        .open("heartbeat", HEARTBEAT_DOMAIN, &device.key)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_heartbeat", e.to_string()))?;
    if heartbeat.device != device.id {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_heartbeat",
            "the heartbeat names another device than the one that signed it",
        ));
    }
    if heartbeat.seq > observer_core::record::limits::MAX_SEQ {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_heartbeat",
            format!("seq {} is over the limit of 2^53", heartbeat.seq),
        ));
    }
    // Only now is it known which device speaks: a claim alone must never
    // use up a victim's allowance.
    app.rates
        .device(&device.id)
        .map_err(ApiError::rate_limited)?;
    Ok((device, heartbeat))
}

/// [`authenticate`], refusing a revoked device.
fn authenticate_active(
    app: &AppState,
    heartbeat: &Signed,
) -> Result<(crate::storage::DeviceInfo, Heartbeat), ApiError> {
    let (device, hb) = authenticate(app, heartbeat)?;
    if device.revoked_at_ms.is_some() {
        return Err(revoked());
    }
    Ok((device, hb))
}

fn revoked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "device_revoked",
        "the coordinator revoked this device; records signed after its revocation are quarantined",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatesRequest {
    heartbeat: Signed,
}

/// An enrolled device's assignments and the published forms, signed.
async fn updates(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_json(&headers)?;
    let held = read_body(&app, body, MAX_SMALL_REQUEST_BYTES).await?;
    let app2 = app.clone();
    blocking(move || {
        let req: UpdatesRequest = serde_json::from_slice(&decompress(&headers, &held.bytes)?)
            .map_err(|e| malformed("updates request", e))?;
        let (device, _) = authenticate_active(&app2, &req.heartbeat)?;
        let updates = Updates {
            org: app2.org.clone(),
            device: device.id,
            server_time_ms: now_ms(),
            stations: device.stations,
            forms: app2
                .storage
                .forms()?
                .into_iter()
                .map(|f| f.definition)
                .collect(),
        };
        Ok(Json(
            json!({ "updates": Signed::sign(UPDATES_DOMAIN, &updates, &app2.key) }),
        ))
    })
    .await
}

fn ingest(app: &AppState, headers: &HeaderMap, raw: &Bytes) -> Result<Response, ApiError> {
    let json = decompress(headers, raw)?;
    let batch: Batch = serde_json::from_slice(&json).map_err(|e| malformed("batch", e))?;
    if batch.records.len() + batch.sealed.len() > limits::MAX_BATCH_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!(
                "{} records in one batch, over the limit of {}",
                batch.records.len() + batch.sealed.len(),
                limits::MAX_BATCH_RECORDS
            ),
        ));
    }
    let (device, heartbeat) = authenticate(app, &batch.heartbeat)?;
    settle(app, device, Some(&heartbeat), &batch.records, &batch.sealed)
}

async fn sealed_outbox(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch_endpoint(app, headers, body, ingest_sealed).await
}

fn ingest_sealed(app: &AppState, headers: &HeaderMap, raw: &Bytes) -> Result<Response, ApiError> {
    let json = decompress(headers, raw)?;
    let batch: SealedBatch =
        serde_json::from_slice(&json).map_err(|e| malformed("sealed batch", e))?;
    if batch.sealed.is_empty() || batch.sealed.len() > limits::MAX_BATCH_RECORDS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_sealed_batch",
            format!(
                "a sealed batch holds 1 to {} records, not {}",
                limits::MAX_BATCH_RECORDS,
                batch.sealed.len()
            ),
        ));
    }
    // No heartbeat: the wiped phone's key is gone. Each record proves
    // itself once opened (its signature by the enrolled key), and every
    // record must be labelled with the same enrolled device. Until one
    // does, the sender is anonymous: an unknown device and records that
    // do not open get the same answer, and nothing is stored or touched.
    let claimed = &batch.sealed[0].device;
    let device = app.storage.device(claimed)?.ok_or_else(nothing_verified)?;
    settle(app, device, None, &[], &batch.sealed)
}

/// The answer to a sealed batch in which no record opened and verified.
fn nothing_verified() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing_verified",
        "no record in this batch opened and verified as a record of an enrolled device",
    )
}

/// Checks, stores and answers with a signed receipt: records in the clear
/// and sealed ones (opened here) from one enrolled `device`.
fn settle(
    app: &AppState,
    device: crate::storage::DeviceInfo,
    heartbeat: Option<&Heartbeat>,
    records: &[observer_core::protocol::WireRecord],
    sealed: &[SealedRecord],
) -> Result<Response, ApiError> {
    let device_revoked = device.revoked_at_ms.is_some();
    let mut verified = Vec::with_capacity(records.len() + sealed.len());
    let mut positions = Vec::with_capacity(records.len() + sealed.len());
    let mut rejected = Vec::new();
    let mut arrived = |i: usize, r: VerifiedRecord, s: Option<&SealedRecord>| {
        app.check(&r, &device.stations).map(|check| {
            verified.push(crate::storage::Incoming {
                record: r,
                check,
                sealed: s.cloned(),
            });
            positions.push(i);
        })
    };
    for (i, w) in records.iter().enumerate() {
        match check_record(i, w, &device.key, &app.org) {
            Ok(r) => arrived(i, r, None)?,
            Err(r) => rejected.push(r),
        }
    }
    for (j, s) in sealed.iter().enumerate() {
        let i = records.len() + j;
        match open_sealed(i, s, &app.seal, &device.id)
            .and_then(|w| check_sealed(i, s, check_record(i, &w, &device.key, &app.org)?))
        {
            Ok(r) => arrived(i, r, Some(s))?,
            Err(r) => rejected.push(r),
        }
    }
    if heartbeat.is_none() && verified.is_empty() {
        return Err(nothing_verified());
    }
    let result = app
        .storage
        .ingest(&device.id, heartbeat, &verified, now_ms())?;
    let mut accepted = Vec::new();
    let mut already = Vec::new();
    for ((incoming, outcome), position) in verified.iter().zip(&result.outcomes).zip(positions) {
        let rec = &incoming.record;
        let ack = |index| Ack {
            id: rec.id,
            seq: rec.body.seq,
            index,
        };
        match *outcome {
            Outcome::Accepted { index } => accepted.push(ack(index)),
            Outcome::Already { index } => already.push(ack(index)),
            Outcome::Quarantined => rejected.push(Rejection {
                position,
                id: rec.id,
                reason: RejectReason::Quarantined,
                detail: format!(
                    "the coordinator revoked this device; record {} arrived after its last record before revocation and is kept in quarantine",
                    rec.body.seq
                ),
            }),
            Outcome::Conflict { existing } => rejected.push(Rejection {
                position,
                id: rec.id,
                reason: RejectReason::Conflict,
                detail: format!(
                    "record {} of this device is already held with id {existing}; this one is kept aside for the coordinator",
                    rec.body.seq
                ),
            }),
        }
    }
    rejected.sort_by_key(|r| r.position);
    let receipt = Receipt {
        org: app.org.clone(),
        device: device.id,
        server_time_ms: now_ms(),
        accepted,
        already,
        rejected,
        tree: result.tree,
    };
    let signed = Signed::sign(RECEIPT_DOMAIN, &receipt, &app.key);
    if device_revoked {
        // The phone learns it was revoked, with the receipt saying what was
        // kept and what was quarantined.
        let mut err = revoked();
        err.extra = Some(json!({ "receipt": signed }));
        return Err(err);
    }
    if receipt.accepted.is_empty() && receipt.already.is_empty() && !receipt.rejected.is_empty() {
        let first = &receipt.rejected[0];
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "records_rejected",
            format!(
                "every record was refused; the first ({}) because {}: {}",
                first.id,
                first.reason.code(),
                first.detail
            ),
        );
        err.extra = Some(json!({ "receipt": signed }));
        return Err(err);
    }
    Ok(Json(json!({ "receipt": signed })).into_response())
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn dashboard_page(
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
