//! Serving the API: the listeners, the limits, the state every handler
//! shares, and a graceful stop.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::body::BodyPolicy;
use crate::coordinator::{Coordinator, SetupError};
use crate::guard::{Admit, ConnectionGuard};
use crate::http::{AppState, router};
use crate::ingest::{GroupCommit, GroupLimits};
use crate::integrity;
use crate::limits::{PARSER_HEADER_BYTES, PARSER_HEADER_COUNT, ServeLimits};
use crate::metrics::Metrics;
use crate::rate::RateLimits;

/// Serves the API on `listener` with [`ServeLimits::default`] until
/// `shutdown` completes.
pub async fn serve(
    c: Coordinator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SetupError> {
    serve_with(c, listener, ServeLimits::default(), shutdown).await
}

/// Runs [`integrity::quick`]: a database whose records do not match its
/// log, or whose newest records do not verify, is not served.
pub fn refuse_if_altered(reader: &crate::reader::Reader<'_>) -> Result<(), SetupError> {
    let report = integrity::quick(reader)?;
    if report.is_intact() {
        return Ok(());
    }
    Err(SetupError::Altered(match report.findings.first() {
        Some(f) => format!("record {} at log index {}: {}", f.id, f.index, f.problem),
        None if !report.root_matches => format!(
            "the log root does not match the {} records it holds",
            report.leaves
        ),
        None => "the log's stored nodes are not the ones its records give".into(),
    }))
}

/// Raises this process's open-file limit to its hard limit, so the
/// connection cap, not the descriptor table, is what refuses a flood.
/// Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// Where `serve` listens: the API (HTTPS) and, if given, `/metrics`
/// (plain HTTP, for a scraper on a private network).
pub struct Listeners {
    /// The API.
    pub api: TcpListener,
    /// The metrics endpoint.
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(api: TcpListener) -> Self {
        Self { api, metrics: None }
    }
}

/// Serves the API on `listeners` under `limits` until `shutdown` completes,
/// then lets requests in flight finish (batches being stored are always
/// finished and answered) for up to `limits.shutdown_grace`.
pub async fn serve_with(
    c: Coordinator,
    listeners: impl Into<Listeners>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SetupError> {
    let Listeners {
        api: listener,
        metrics: metrics_listener,
    } = listeners.into();
    // Off the async threads: a database client may block (PostgreSQL's
    // does, and must not run on a runtime worker).
    let c = tokio::task::spawn_blocking(move || refuse_if_altered(&c.reader()).map(|()| c))
        .await
        .map_err(|e| SetupError::Altered(format!("the integrity check stopped: {e}")))??;
    let tls = RustlsConfig::from_config(Arc::new(crate::tls::tls_config(&c)?));
    let media = match &c.media_store {
        Some(url) => crate::media::Media::Objects(
            crate::media::objects::ObjectMedia::open(url)
                .map_err(|e| SetupError::Invalid(e.to_string()))?,
        ),
        None => crate::media::Media::Files(Arc::new(
            crate::media::MediaFiles::new(c.media_dir.clone()).map_err(|source| {
                SetupError::Io {
                    path: c.media_dir.clone(),
                    source,
                }
            })?,
        )),
    };
    let rates = RateLimits::new(limits.rate_per_address, limits.rate_per_device);
    rates.spawn_sweeper(Duration::from_secs(60));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let guard = ConnectionGuard::new(limits.max_connections, limits.max_connections_per_address);
    let metrics = Arc::new(Metrics::new(guard.clone()));
    let state = Arc::new(AppState {
        login_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
        issuer: c.issuer(),
        corroboration: crate::review::CorroborationRule::default(),
        sampled: Default::default(),
        witnesses: Default::default(),
        sms_number: Default::default(),
        published: Default::default(),
        zone: Default::default(),
        storage: c.storage.clone(),
        org: c.org.clone(),
        key: c.key,
        seal: c.seal,
        media: Arc::new(media),
        forms: Default::default(),
        metrics: metrics.clone(),
        body: BodyPolicy::new(&limits),
        rates,
        ingest_slots: Arc::new(tokio::sync::Semaphore::new(2 * cores + 2)),
        backlog: crate::backlog::Backlog::new(limits.max_queued_batches),
        commits: GroupCommit::start(
            c.storage.clone(),
            GroupLimits {
                max_batches: limits.group_commit_batches,
                ..GroupLimits::default()
            },
            Some(metrics.clone()),
        )
        .map_err(|source| SetupError::Io {
            path: "group-commit thread".into(),
            source,
        })?,
        receipts: crate::receipts::ReceiptArchive::start(c.storage.clone(), Some(metrics.clone()))
            .map_err(|source| SetupError::Io {
                path: "receipt-archive thread".into(),
                source,
            })?,
        disks: match &c.media_store {
            Some(_) => vec![c.dir.clone()],
            None => vec![c.dir.clone(), c.media_dir.clone()],
        },
    });
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let grace = limits.shutdown_grace;
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: finishing requests in flight"
        );
        h.graceful_shutdown(Some(grace));
        let _ = stopping.send(true);
    });
    crate::witnesses::spawn(state.clone(), limits.witness_interval, stop.clone())
        .map_err(SetupError::Invalid)?;
    if let Some(m) = metrics_listener {
        let addr = m.local_addr().ok();
        let storage = c.storage.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::metrics::serve(m, metrics, storage, stopped).await {
                tracing::error!(cause = %e, "the metrics listener failed");
            }
        });
        tracing::info!(metrics = ?addr, "metrics served at /metrics");
    }
    listener
        .set_nonblocking(true)
        .map_err(|source| SetupError::Io {
            path: "listener".into(),
            source,
        })?;
    let acceptor = Admit::new(
        guard,
        crate::tls::CountHandshakes::new(
            RustlsAcceptor::new(tls).handshake_timeout(limits.tls_handshake_timeout),
            metrics.clone(),
        ),
        limits.header_timeout,
    )
    .with_proxies(&limits.proxy_protocol_from);
    let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(PARSER_HEADER_BYTES)
        .max_headers(PARSER_HEADER_COUNT);
    let served = server
        .handle(handle)
        .serve(router(state.clone()).into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(|source| SetupError::Io {
            path: "server".into(),
            source,
        });
    // The receipts sent in the last moments, written before the process
    // ends.
    let receipts = state.receipts.clone();
    let _ = tokio::task::spawn_blocking(move || receipts.flush()).await;
    served
}
