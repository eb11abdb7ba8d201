//! `GET /healthz`: whether this node can take phones' batches now.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Free space below which `/healthz` reports the disk full: a batch must
/// not be acknowledged on a disk that may not hold it.
pub const MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// `ok` when the database answers and every data disk has room; 503 with
/// what is wrong otherwise (a load balancer then sends phones elsewhere).
pub async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let app2 = app.clone();
    let problem = tokio::task::spawn_blocking(move || {
        if let Err(e) = app2.storage.ping() {
            tracing::error!(cause = %e, "health check: the database does not answer");
            return Some("database_unavailable");
        }
        for dir in &app2.disks {
            match rustix::fs::statvfs(dir) {
                Ok(s) if s.f_bavail.saturating_mul(s.f_frsize) >= MIN_FREE_BYTES => {}
                Ok(_) => {
                    tracing::error!(dir = %dir.display(), "health check: disk full");
                    return Some("disk_full");
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), cause = %e, "health check: disk unavailable");
                    return Some("disk_unavailable");
                }
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
