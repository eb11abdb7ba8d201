//! `GET`/`PUT /v1/media/{sha256}`: resumable, content-addressed uploads of
//! evidence media, answered only to the device whose own held records name
//! the file (its signed heartbeat travels in [`observer_core::protocol::HEARTBEAT_HEADER`]). The
//! size a file must have comes from that device's records, and each device
//! appends to its own partial file, so no other device, enrolled or not,
//! can poison, block or probe another's evidence.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use observer_core::identity::DeviceId;
use observer_core::record::Sha256Digest;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::request::{blocking, heartbeat_header, now_ms};
use super::{ApiError, AppState};
use crate::auth::authenticate_active;
use crate::body::BodyError;
use crate::media::objects::{Appended, ObjectMedia};
use crate::media::{Finished, MAX_PUT_BYTES, Media, MediaState};

/// How long a second upload of the same file by the same device waits for
/// the first (whose connection the phone may already have given up on).
const WRITER_WAIT: Duration = Duration::from_secs(5);

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
    ApiError::internal("media storage", &e)
}

fn object_failure(e: crate::media::objects::ObjectError) -> ApiError {
    ApiError::internal("media object store", &e)
}

/// The device that signed the heartbeat header (enrolled, not revoked),
/// and the size its held records declare for `sha256`; 404 when none of
/// them names it (the same 404 whether another device's records name it or
/// none do). One trip to the blocking pool for both.
async fn authorised(
    app: &Arc<AppState>,
    headers: &HeaderMap,
    sha256: Sha256Digest,
) -> Result<(DeviceId, u64), ApiError> {
    let signed = heartbeat_header(headers, "media requests")?;
    let app = app.clone();
    blocking(move || {
        let device = authenticate_active(app.storage.as_ref(), &app.rates, &signed)?.0.id;
        let bytes = app
            .storage
            .expected_media(&device, &sha256)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_media",
                    format!("no record of this device held here references media {sha256}; deliver the record first"),
                )
            })?;
        Ok((device, bytes))
    })
    .await
    .inspect(|(device, _)| {
        tracing::Span::current().record("device", tracing::field::display(device));
    })
}

/// How much of a media file the server holds for this device.
pub async fn state(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(sha256): Path<String>,
) -> Result<Json<MediaState>, ApiError> {
    let sha256 = media_hash(&sha256)?;
    let (device, bytes) = authorised(&app, &headers, sha256).await?;
    Ok(Json(match app.media.as_ref() {
        Media::Files(files) => files.state(&device, &sha256, bytes),
        Media::Objects(objects) => objects
            .state(&device, &sha256, bytes)
            .await
            .map_err(object_failure)?,
    }))
}

#[derive(Deserialize)]
pub struct OffsetQuery {
    offset: u64,
}

/// Appends bytes at `offset` (which must be what the server holds for this
/// device) as they arrive; once all bytes are there, checks the SHA-256.
pub async fn put(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(sha256): Path<String>,
    query: Result<Query<OffsetQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Json<MediaState>, ApiError> {
    let sha256 = media_hash(&sha256)?;
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!(
                "give the byte to append at as ?offset=N ({})",
                e.body_text()
            ),
        )
    })?;
    let (device, bytes) = authorised(&app, &headers, sha256).await?;
    let files = match app.media.as_ref() {
        Media::Files(files) => files.clone(),
        Media::Objects(objects) => {
            return put_piece(&app, objects, device, sha256, bytes, q.offset, body).await;
        }
    };
    let writer = files.writer(&device, &sha256);
    let Ok(_one_writer) = tokio::time::timeout(WRITER_WAIT, writer.lock()).await else {
        let mut err = ApiError::new(
            StatusCode::CONFLICT,
            "upload_in_progress",
            "another upload of this file from this device is still arriving; retry shortly",
        );
        err.retry_after = Some(1);
        return Err(err);
    };
    let state = files.state(&device, &sha256, bytes);
    if state.complete {
        return Ok(Json(state));
    }
    let partial = files.partial(&device, &sha256);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&partial)
        .await
        .map_err(io_failure)?;
    // The lock above holds within this process; this one holds between
    // server nodes sharing the media directory (the phone retried on
    // another node while this one was still receiving). Released when the
    // file closes, or when a node dies.
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut err = ApiError::new(
            StatusCode::CONFLICT,
            "upload_in_progress",
            "another server node is still receiving this file from this device; retry shortly",
        );
        err.retry_after = Some(1);
        return Err(err);
    }
    // Measured under the lock: another node may have appended before it.
    let state = MediaState {
        received: file.metadata().await.map_err(io_failure)?.len(),
        ..state
    };
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
    let mut received = state.received;
    let mut this_request = 0u64;
    let started = tokio::time::Instant::now();
    let mut stream = body.into_data_stream();
    let streamed: Result<(), ApiError> = async {
        while let Some(piece) = app
            .body
            .next_piece(&mut stream, started, this_request)
            .await?
        {
            this_request += piece.len() as u64;
            if this_request > MAX_PUT_BYTES as u64 {
                app.body.drain(&mut stream, started, this_request).await;
                return Err(BodyError::TooLarge {
                    limit: MAX_PUT_BYTES,
                }
                .into());
            }
            if received + piece.len() as u64 > bytes {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "too_long",
                    format!("this device's record declares {bytes} bytes for this media"),
                ));
            }
            file.write_all(&piece).await.map_err(io_failure)?;
            received += piece.len() as u64;
            app.metrics.media_bytes(piece.len() as u64);
        }
        Ok(())
    }
    .await;
    // Whatever arrived is kept, even from a cut connection: the next
    // request resumes at the byte where this one stopped.
    file.sync_all().await.map_err(io_failure)?;
    // Still holding the file's lock: no other node appends while it is
    // hashed and moved.
    let locked = file.into_std().await;
    streamed?;
    if received == bytes {
        let app2 = app.clone();
        let device2 = device.clone();
        let files2 = files.clone();
        blocking(move || {
            let finished = match files2.finish(&device2, &sha256).map_err(io_failure)? {
                Finished::Stored => {
                    app2.storage.media_complete(&sha256, bytes, now_ms())?;
                    tracing::info!(device = %device2, bytes, "media file complete, its SHA-256 checked");
                    app2.metrics.media_file();
                    Ok(())
                }
                Finished::Mismatch(found) => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "hash_mismatch",
                    format!("the {bytes} bytes received hash to {found}, not {sha256}; they were discarded, send the file again"),
                )),
            };
            drop(locked);
            finished
        })
        .await?;
    }
    Ok(Json(files.state(&device, &sha256, bytes)))
}

/// The object-store path of [`put`]: the request's bytes are gathered (at
/// most [`MAX_PUT_BYTES`], as on a disk) and stored as one piece when the
/// body ends or the connection is cut, so that what arrived is kept; the
/// piece is written only if no other node wrote one at this offset first.
async fn put_piece(
    app: &Arc<AppState>,
    objects: &ObjectMedia,
    device: DeviceId,
    sha256: Sha256Digest,
    bytes: u64,
    offset: u64,
    body: Body,
) -> Result<Json<MediaState>, ApiError> {
    let state = objects
        .state(&device, &sha256, bytes)
        .await
        .map_err(object_failure)?;
    if state.complete {
        return Ok(Json(state));
    }
    if offset != state.received {
        let mut err = ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!(
                "the server holds {} bytes of this media; send from there, not from {offset}",
                state.received
            ),
        );
        err.extra = Some(json!({ "received": state.received }));
        return Err(err);
    }
    let mut piece = bytes::BytesMut::new();
    // What the piece holds in memory counts against the bodies' budget.
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let started = tokio::time::Instant::now();
    let mut stream = body.into_data_stream();
    let streamed: Result<(), ApiError> = async {
        while let Some(chunk) = app
            .body
            .next_piece(&mut stream, started, piece.len() as u64)
            .await?
        {
            if piece.len() + chunk.len() > MAX_PUT_BYTES {
                app.body
                    .drain(&mut stream, started, (piece.len() + chunk.len()) as u64)
                    .await;
                return Err(BodyError::TooLarge {
                    limit: MAX_PUT_BYTES,
                }
                .into());
            }
            if state.received + (piece.len() + chunk.len()) as u64 > bytes {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "too_long",
                    format!("this device's record declares {bytes} bytes for this media"),
                ));
            }
            let more = app.body.reserve(chunk.len())?;
            match &mut held {
                Some(h) => h.merge(more),
                None => held = Some(more),
            }
            app.metrics.media_bytes(chunk.len() as u64);
            piece.extend_from_slice(&chunk);
        }
        Ok(())
    }
    .await;
    // Whatever arrived is kept, even from a cut connection: each byte was
    // checked against the declared size before it was taken.
    let received = state.received + piece.len() as u64;
    if !piece.is_empty() {
        match objects
            .append(&device, &sha256, state.received, piece.freeze())
            .await
            .map_err(object_failure)?
        {
            Appended::Stored => {}
            Appended::Raced => {
                drop(held);
                let mut err = ApiError::new(
                    StatusCode::CONFLICT,
                    "upload_in_progress",
                    "another server node received these bytes of this file first; ask what is held and resume",
                );
                err.retry_after = Some(1);
                return Err(err);
            }
        }
    }
    drop(held);
    streamed?;
    if received == bytes {
        match objects
            .finish(&device, &sha256)
            .await
            .map_err(object_failure)?
        {
            Finished::Stored => {
                let app2 = app.clone();
                blocking(move || Ok(app2.storage.media_complete(&sha256, bytes, now_ms())?))
                    .await?;
                tracing::info!(device = %device, bytes, "media file complete, its SHA-256 checked");
                app.metrics.media_file();
            }
            Finished::Mismatch(found) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "hash_mismatch",
                    format!(
                        "the {bytes} bytes received hash to {found}, not {sha256}; they were discarded, send the file again"
                    ),
                ));
            }
        }
    }
    Ok(Json(
        objects
            .state(&device, &sha256, bytes)
            .await
            .map_err(object_failure)?,
    ))
}
