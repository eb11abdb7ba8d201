//! Reading a request: its type, its body within the limits, its
//! compression; and running blocking work off the async threads.

use std::io::Read as _;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use observer_core::protocol::{HEARTBEAT_HEADER, Signed, limits};

use super::{ApiError, AppState};
use crate::body::Held;

/// The device's signed heartbeat from the [`HEARTBEAT_HEADER`] of a
/// request that has no body to carry it (`what` names those requests in
/// the refusal); its signature is checked by the caller, with the storage.
pub fn heartbeat_header(headers: &HeaderMap, what: &str) -> Result<Signed, ApiError> {
    let header = headers
        .get(HEARTBEAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "heartbeat_required",
                format!(
                    "{what} carry the device's signed heartbeat in the {HEARTBEAT_HEADER} header"
                ),
            )
        })?;
    Signed::from_header(header)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_heartbeat", e.to_string()))
}

/// Runs `f` on the blocking pool (every storage call is blocking).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal("a request", &e)))
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Refuses a body that is not declared `application/json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

/// The body, at most `limit` bytes, read under the body policy.
pub async fn read_body(app: &AppState, body: Body, limit: usize) -> Result<Held, ApiError> {
    Ok(app.body.read(body, limit).await?)
}

/// The body as sent (`identity`) or unpacked (`zstd`), at most
/// [`limits::MAX_DECOMPRESSED_BYTES`].
pub fn decompress(headers: &HeaderMap, raw: &Bytes) -> Result<Vec<u8>, ApiError> {
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
                .map_err(|e| ApiError::malformed("zstd body", e))?;
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

/// A JSON request body of type `T`, decompressed.
pub fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    headers: &HeaderMap,
    raw: &Bytes,
) -> Result<T, ApiError> {
    serde_json::from_slice(&decompress(headers, raw)?).map_err(|e| ApiError::malformed(what, e))
}
