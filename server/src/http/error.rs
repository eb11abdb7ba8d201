//! [`ApiError`]: every refusal the API gives, as a status, a stable code and
//! a sentence. Failures inside the server are logged with their cause and
//! answered with a stable code only: a client never learns storage
//! internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use observer_core::protocol::{ErrorBody, Signed};
use serde_json::json;

use crate::auth::AuthError;
use crate::body::BodyError;
use crate::ingest::IngestError;
use crate::rate::Limited;
use crate::storage::StorageError;

/// A refusal: status, stable code, sentence.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) body: ErrorBody,
    pub(super) extra: Option<serde_json::Value>,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
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

    /// What a path that serves nothing answers: the same for an unknown
    /// endpoint and for one not set up (an SMS gateway), so a prober
    /// cannot tell them apart.
    pub(super) fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; see /openapi.json",
        )
    }

    /// The stable code (`docs/protocol.md`).
    pub fn code(&self) -> &str {
        &self.body.error
    }

    /// A failure inside the server: the client learns that it may retry,
    /// never what failed; the operator's log gets the cause.
    pub(super) fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(what, cause = %cause, "internal failure; answered storage_unavailable");
        ApiError::unavailable(5)
    }

    /// The one answer to a failure inside the server: retry in `secs`.
    fn unavailable(secs: u64) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the server could not complete this; retry later",
        )
        .retry_in(secs)
    }

    /// The server is at capacity: retry after a short wait (the phone adds
    /// its own jitter, so the retries of a burst do not arrive together).
    pub(super) fn busy(message: &str) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_busy", message).retry_in(1)
    }

    pub(super) fn rate_limited(limited: Limited) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {} s", limited.retry_after_secs),
        )
        .retry_in(limited.retry_after_secs)
    }

    pub(super) fn malformed(what: &str, e: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the {what} is not valid: {e}"),
        )
    }

    pub(super) fn revoked() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "device_revoked",
            "the coordinator revoked this device; records signed after its revocation are quarantined",
        )
    }

    /// Adds `Retry-After: secs`.
    pub(super) fn retry_in(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds the signed receipt of what was settled before the refusal.
    pub(super) fn with_receipt(mut self, receipt: &Signed) -> Self {
        self.extra = Some(json!({ "receipt": receipt }));
        self
    }

    /// Adds the log proofs a sync asked for to a refusal that carries a
    /// receipt (a revoked device's records stored before its revocation
    /// are delivered by it, so they are held to the log too).
    pub(super) fn with_log(mut self, log: Option<observer_core::protocol::LogProofs>) -> Self {
        if let (Some(extra), Some(log)) = (self.extra.as_mut(), log) {
            extra["log"] = json!(log);
        }
        self
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
        let err = ApiError::new(status, code, e.to_string());
        if matches!(e, BodyError::Busy) {
            err.retry_in(1)
        } else {
            err
        }
    }
}

impl From<StorageError> for ApiError {
    /// Always the same stable code to the client; the wait it is asked for
    /// follows the kind (a busy database clears in a moment, a full disk
    /// needs the operator), and the log line names the kind and cause.
    fn from(e: StorageError) -> Self {
        let retry = match e {
            StorageError::Busy => 1,
            StorageError::DiskFull => 60,
            _ => 5,
        };
        tracing::error!(kind = e.kind(), cause = %e, "storage failure; answered storage_unavailable");
        ApiError::unavailable(retry)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Malformed(detail) => ApiError::malformed("heartbeat", detail),
            AuthError::UnknownDevice(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "unknown_device", e.to_string())
            }
            AuthError::BadHeartbeat(detail) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_heartbeat", detail)
            }
            AuthError::SeqTooLarge(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_heartbeat", e.to_string())
            }
            AuthError::Revoked => ApiError::revoked(),
            AuthError::RateLimited(limited) => ApiError::rate_limited(limited),
            AuthError::Storage(s) => s.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooManyRecords { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_records",
                e.to_string(),
            ),
            IngestError::BadSealedBatch { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_sealed_batch", e.to_string())
            }
            IngestError::NothingVerified => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nothing_verified",
                e.to_string(),
            ),
            IngestError::Auth(a) => a.into(),
            IngestError::Storage(s) => s.into(),
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
        let mut response = (self.status, Json(v)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
