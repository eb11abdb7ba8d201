//! The witness's HTTP API: `POST /add-checkpoint` (C2SP `tlog-witness`).
//!
//! Plain HTTP: nothing in the exchange is secret and both directions are
//! signed (the checkpoint by the log, the cosignature by the witness), so
//! a machine in the middle can only withhold. Operators who want TLS put
//! the witness behind a reverse proxy. Bodies are bounded in size and in
//! time, requests are decided one at a time, and a queue longer than a
//! few requests is answered 503 instead of growing.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use observer_core::identity::SigningKey;
use observer_core::merkle::Witness;

use super::state::{WitnessError, WitnessStore};
use super::{AddCheckpoint, Refused};

/// Largest request body: a checkpoint with a few signature lines and 63
/// proof lines fit many times over.
pub const MAX_BODY: usize = 16 * 1024;

/// Time to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Time to send a request's headers; idle connections close after it.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests waiting to be decided before new ones are turned away.
const MAX_WAITING: usize = 64;

/// The media type of a 409's body: the size the witness holds (C2SP).
pub const SIZE_MEDIA_TYPE: &str = "text/x.tlog.size";

/// What the handler shares.
pub struct Shared {
    /// The database.
    pub store: Arc<WitnessStore>,
    /// The cosigning key.
    pub key: Arc<SigningKey>,
    /// The witness's name.
    pub name: String,
    waiting: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// The state of a witness named `name` cosigning with `key`.
    pub fn new(store: WitnessStore, key: SigningKey, name: String) -> Self {
        Self {
            store: Arc::new(store),
            key: Arc::new(key),
            name,
            waiting: Arc::new(tokio::sync::Semaphore::new(MAX_WAITING)),
        }
    }
}

/// The witness's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(shared)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn add_checkpoint(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let Ok(_slot) = shared.waiting.clone().try_acquire_owned() else {
        let mut busy = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: try again shortly\n".into(),
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return busy;
    };
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_BODY} bytes\n"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the body was not sent in time\n".into(),
            );
        }
    };
    let request = match AddCheckpoint::parse(&bytes) {
        Ok(r) => r,
        Err(refused) => return refusal(&refused),
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let decided = tokio::task::spawn_blocking(move || {
        let witness = Witness {
            name: &shared.name,
            key: &shared.key,
        };
        shared.store.add_checkpoint(&request, &witness, now_ms)
    })
    .await;
    match decided {
        Ok(Ok(line)) => {
            tracing::info!("checkpoint cosigned");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                line,
            )
                .into_response()
        }
        Ok(Err(WitnessError::Refused(refused))) => refusal(&refused),
        Ok(Err(e)) => {
            tracing::error!(cause = %e, "the witness could not decide");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness's storage failed\n".into(),
            )
        }
        Err(e) => {
            tracing::error!(cause = %e, "the witness's decision stopped");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness failed\n".into(),
            )
        }
    }
}

fn refusal(refused: &Refused) -> Response {
    let status = StatusCode::from_u16(refused.status()).expect("a valid status");
    match refused {
        Refused::Conflict { latest } => (
            status,
            [(header::CONTENT_TYPE, SIZE_MEDIA_TYPE)],
            format!("{latest}\n"),
        )
            .into_response(),
        Refused::Inconsistent(why) => {
            tracing::warn!(%why, "refused a checkpoint that does not extend the one cosigned before");
            text(status, format!("{refused}\n"))
        }
        _ => text(status, format!("{refused}\n")),
    }
}

/// Serves the witness on `listener` until `shutdown` completes.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let mut server = axum_server::from_tcp(listener);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(crate::limits::PARSER_HEADER_BYTES)
        .max_headers(crate::limits::PARSER_HEADER_COUNT);
    server
        .handle(handle)
        .serve(router(shared).into_make_service())
        .await
}
