//! The HTTP API (`docs/protocol.md`, `/openapi.json`). Every refusal is a
//! 4xx with a JSON [`ErrorBody`] naming the problem; every body is bounded
//! before it is read; nothing from the network is trusted before its
//! signature is checked.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
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

use crate::dashboard;
use crate::media::{Finished, MediaFiles, MediaState, MAX_PUT_BYTES};
use crate::storage::{FormCheck, Outcome, Storage, StorageError, TokenProblem};

/// The OpenAPI description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

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
}

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
        let found = match self.storage.form(id, version)? {
            Some(p) => FormDefinition::parse(&p.definition).ok(),
            None => default_forms()
                .iter()
                .find(|f| f.id == id && f.version == version)
                .cloned(),
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

    /// Re-validates a record's answers against its form, as the phone did.
    fn check(&self, r: &VerifiedRecord) -> Result<Option<FormCheck>, StorageError> {
        let Some(form) = self.form(&r.body.form.id, r.body.form.version)? else {
            return Ok(None);
        };
        let v = form.validate(&r.body.payload, "en");
        Ok(Some(FormCheck {
            clean: v.is_clean(),
            json: serde_json::to_string(&v).expect("serialises"),
        }))
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/enroll", post(enroll))
        .route("/v1/records", post(records))
        .route("/v1/sealed", post(sealed_outbox))
        .route("/v1/updates", post(updates))
        .route("/v1/media/{sha256}", get(media_state).put(media_put))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /openapi.json",
            )
        })
        // Bodies are bounded by each handler, with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A refusal: status, stable code, sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    extra: Option<serde_json::Value>,
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
        }
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
        (self.status, Json(v)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            format!("the server could not store this; retry later ({e})"),
        )
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal failure: {e}"),
        ))
    })
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

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is over the limit of {limit} bytes; send smaller batches"),
        )
    })
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
    let bytes = read_body(body, MAX_SMALL_REQUEST_BYTES).await?;
    let req: EnrollRequest =
        serde_json::from_slice(&bytes).map_err(|e| malformed("enrollment request", e))?;
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
    })?;
    Ok(Json(EnrollResponse {
        device: info.id,
        org: app.org.clone(),
        stations: info.stations,
        server_time_ms: now_ms(),
        seal_key: Some(app.seal.public_key()),
    }))
}

fn decompress(headers: &HeaderMap, raw: Bytes) -> Result<Vec<u8>, ApiError> {
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
    require_json(&headers)?;
    let raw = read_body(body, limits::MAX_REQUEST_BYTES).await?;
    let app2 = app.clone();
    blocking(move || ingest(&app2, &headers, raw)).await
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
    Ok((device, heartbeat))
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
    let bytes = read_body(body, MAX_SMALL_REQUEST_BYTES).await?;
    let app2 = app.clone();
    blocking(move || {
        let req: UpdatesRequest =
            serde_json::from_slice(&bytes).map_err(|e| malformed("updates request", e))?;
        let (device, _) = authenticate(&app2, &req.heartbeat)?;
        if device.revoked_at_ms.is_some() {
            return Err(revoked());
        }
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

fn ingest(app: &AppState, headers: &HeaderMap, raw: Bytes) -> Result<Response, ApiError> {
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
    require_json(&headers)?;
    let raw = read_body(body, limits::MAX_REQUEST_BYTES).await?;
    let app2 = app.clone();
    blocking(move || {
        let json = decompress(&headers, raw)?;
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
        // record must be labelled with the same enrolled device.
        let claimed = &batch.sealed[0].device;
        let device = app2.storage.device(claimed)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_device",
                format!("device {claimed} is not enrolled with this coordinator"),
            )
        })?;
        settle(&app2, device, None, &[], &batch.sealed)
    })
    .await
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
    for (i, w) in records.iter().enumerate() {
        match check_record(i, w, &device.key, &app.org) {
            Ok(r) => {
                verified.push(r);
                positions.push(i);
            }
            Err(r) => rejected.push(r),
        }
    }
    for (j, s) in sealed.iter().enumerate() {
        let i = records.len() + j;
        match open_sealed(i, s, &app.seal, &device.id)
            .and_then(|w| check_sealed(i, s, check_record(i, &w, &device.key, &app.org)?))
        {
            Ok(r) => {
                verified.push(r);
                positions.push(i);
            }
            Err(r) => rejected.push(r),
        }
    }
    let checks = verified
        .iter()
        .map(|r| app.check(r))
        .collect::<Result<Vec<_>, _>>()?;
    let result = app
        .storage
        .ingest(&device.id, heartbeat, &verified, &checks, now_ms())?;
    let mut accepted = Vec::new();
    let mut already = Vec::new();
    for ((rec, outcome), position) in verified.iter().zip(&result.outcomes).zip(positions) {
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

fn media_hash(text: &str) -> Result<Sha256Digest, ApiError> {
    text.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            format!("{text:?} is not a SHA-256 (64 lowercase hex digits): {e}"),
        )
    })
}

fn io_failure(e: std::io::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        format!("the server could not store this media; retry later ({e})"),
    )
}

/// The size a held record declares for `sha256`, or 404.
fn expected_media(app: &AppState, sha256: &Sha256Digest) -> Result<u64, ApiError> {
    app.storage.expected_media(sha256)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_media",
            format!("no record held here references media {sha256}; deliver the record first"),
        )
    })
}

/// How much of a media file the server holds.
async fn media_state(
    State(app): State<Arc<AppState>>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
) -> Result<Json<MediaState>, ApiError> {
    let sha256 = media_hash(&sha256)?;
    blocking(move || {
        let bytes = expected_media(&app, &sha256)?;
        Ok(Json(app.media.state(&sha256, bytes)))
    })
    .await
}

#[derive(Deserialize)]
struct OffsetQuery {
    offset: u64,
}

/// Appends bytes at `offset` (which must be what the server holds) as they
/// arrive; once all bytes are there, checks the SHA-256.
async fn media_put(
    State(app): State<Arc<AppState>>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
    Query(q): Query<OffsetQuery>,
    body: Body,
) -> Result<Json<MediaState>, ApiError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;

    let sha256 = media_hash(&sha256)?;
    let lock = app.media.lock(&sha256);
    let _one_writer = lock.lock().await;
    let app2 = app.clone();
    let bytes = blocking(move || expected_media(&app2, &sha256)).await?;
    let state = app.media.state(&sha256, bytes);
    if state.complete {
        return Ok(Json(state));
    }
    if q.offset != state.received {
        let mut err = ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!(
                "the server holds {} bytes of this media; send from there, not from {}",
                state.received, q.offset
            ),
        );
        err.extra = Some(json!({ "received": state.received }));
        return Err(err);
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(app.media.partial(&sha256))
        .await
        .map_err(io_failure)?;
    let mut received = state.received;
    let mut this_request = 0usize;
    let mut stream = body.into_data_stream();
    let streamed: Result<(), ApiError> = async {
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_interrupted",
                    format!("the upload stopped after {received} bytes ({e}); resume from there"),
                )
            })?;
            this_request += piece.len();
            if this_request > MAX_PUT_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    format!("send at most {MAX_PUT_BYTES} bytes of media per request"),
                ));
            }
            if received + piece.len() as u64 > bytes {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "too_long",
                    format!("the record declares {bytes} bytes for this media"),
                ));
            }
            file.write_all(&piece).await.map_err(io_failure)?;
            received += piece.len() as u64;
        }
        Ok(())
    }
    .await;
    // Whatever arrived is kept, even from a cut connection: the next
    // request resumes at the byte where this one stopped.
    file.sync_all().await.map_err(io_failure)?;
    drop(file);
    streamed?;
    if received == bytes {
        let app2 = app.clone();
        blocking(move || match app2.media.finish(&sha256).map_err(io_failure)? {
            Finished::Stored => Ok(app2.storage.media_complete(&sha256, bytes, now_ms())?),
            Finished::Mismatch(found) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                format!("the {bytes} bytes received hash to {found}, not {sha256}; they were discarded, send the file again"),
            )),
        })
        .await?;
    }
    Ok(Json(app.media.state(&sha256, bytes)))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn dashboard_page(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
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
    match tokio::task::spawn_blocking(move || dashboard::render(app2.storage.as_ref(), &app2.org))
        .await
    {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}
