//! What `/metrics` reports (Prometheus text format, `prometheus-client`),
//! on its own listen address so that it is never exposed with the API.
//! Counters move as requests are answered; what only the database knows
//! (devices seen lately, records known but missing) is read at each scrape.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::guard::ConnectionGuard;
use crate::ingest::{IngestError, Settled};
use crate::storage::{Storage, StorageError};

/// The windows `observer_devices_seen` is reported for, in minutes.
pub const SEEN_WITHIN_MINUTES: [u32; 3] = [15, 60, 24 * 60];

/// The batch endpoints, as a label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/records`.
    Records,
    /// `POST /v1/sealed`.
    Sealed,
    /// `POST /v2/sync`.
    Sync,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Records => "records",
            Endpoint::Sealed => "sealed",
            Endpoint::Sync => "sync",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

fn batch_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    records: Family<OutcomeLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    batches_refused: Family<EndpointLabels, Counter>,
    batch_seconds: HistogramFamily,
    responses: Family<StatusLabels, Counter>,
    media_bytes: Counter,
    media_files: Counter,
    enrollments: Counter,
    commits: Family<ResultLabels, Counter>,
    group_batches: Histogram,
    commit_seconds: Histogram,
    shed: Counter,
    receipts_unarchived: Counter,
    handshakes: Family<HandshakeLabels, Counter>,
    live: Arc<Live>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    kind: &'static str,
}

/// What is read at scrape time.
#[derive(Debug)]
struct Live {
    guard: ConnectionGuard,
    stored: Mutex<Option<Stored>>,
}

/// What the database says, as of the last scrape.
#[derive(Clone, Debug, Default)]
struct Stored {
    enrolled: u64,
    revoked: u64,
    seen: [u64; SEEN_WITHIN_MINUTES.len()],
    held: u64,
    missing: u64,
}

impl Metrics {
    /// Metrics for a server whose connections `guard` admits.
    pub fn new(guard: ConnectionGuard) -> Self {
        let mut registry = Registry::with_prefix("observer");
        let records = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "records",
            "Records in verified batches, by outcome (accepted: stored now; already: held before)",
            records.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "records_rejected",
            "Records refused (or kept aside) by reason",
            rejected.clone(),
        );
        let batches_refused = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "batches_refused",
            "Batches refused whole (no receipt): unauthenticated, malformed, over a limit, or the database failing",
            batches_refused.clone(),
        );
        let batch_seconds: HistogramFamily = Family::new_with_constructor(batch_histogram);
        registry.register(
            "batch_duration_seconds",
            "Time to verify, store and sign a receipt for one batch (after its body arrived)",
            batch_seconds.clone(),
        );
        let responses = Family::<StatusLabels, Counter>::default();
        registry.register("http_responses", "API answers by status", responses.clone());
        let media_bytes = Counter::default();
        registry.register(
            "media_received_bytes",
            "Evidence media bytes received and written",
            media_bytes.clone(),
        );
        let media_files = Counter::default();
        registry.register(
            "media_files_completed",
            "Media files received whole, their SHA-256 checked",
            media_files.clone(),
        );
        let enrollments = Counter::default();
        registry.register("enrollments", "Phones enrolled", enrollments.clone());
        let commits = Family::<ResultLabels, Counter>::default();
        registry.register(
            "group_commits",
            "Durable commits of verified batches (each holds one or more batches), by result",
            commits.clone(),
        );
        let group_batches = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "group_commit_batches",
            "Batches sharing one durable commit",
            group_batches.clone(),
        );
        let commit_seconds = batch_histogram();
        registry.register(
            "group_commit_duration_seconds",
            "Time one group commit holds the database (decide, write, flush)",
            commit_seconds.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "batches_shed",
            "Batches answered 503 with Retry-After before their body was read, the queue being full",
            shed.clone(),
        );
        let receipts_unarchived = Counter::default();
        registry.register(
            "receipts_unarchived",
            "Signed receipts sent but not kept for evidence packages (the archive was full or the database failed); their phones keep them",
            receipts_unarchived.clone(),
        );
        let handshakes = Family::<HandshakeLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed, by kind (full, or resumed from a session ticket)",
            handshakes.clone(),
        );
        let live = Arc::new(Live {
            guard,
            stored: Mutex::default(),
        });
        registry.register_collector(Box::new(live.clone()));
        Self {
            registry,
            records,
            rejected,
            batches_refused,
            batch_seconds,
            responses,
            media_bytes,
            media_files,
            enrollments,
            commits,
            group_batches,
            commit_seconds,
            shed,
            receipts_unarchived,
            handshakes,
            live,
        }
    }

    /// Counts a group commit of `batches` batches that held the database
    /// for `took`.
    pub fn group_commit(&self, batches: usize, took: Duration, ok: bool) {
        self.commits
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" },
            })
            .inc();
        self.group_batches.observe(batches as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// Counts a batch refused early because the queue was full.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// Counts receipts the archive did not keep.
    pub fn receipts_unarchived(&self, n: usize) {
        self.receipts_unarchived.inc_by(n as u64);
    }

    /// Counts a completed TLS handshake.
    pub fn handshake(&self, resumed: bool) {
        self.handshakes
            .get_or_create(&HandshakeLabels {
                kind: if resumed { "resumed" } else { "full" },
            })
            .inc();
    }

    /// Counts a batch that took `took` and settled (or not).
    pub fn batch(
        &self,
        endpoint: Endpoint,
        took: Duration,
        settled: Result<&Settled, &IngestError>,
    ) {
        let labels = EndpointLabels {
            endpoint: endpoint.label(),
        };
        self.batch_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        match settled {
            Ok(s) => {
                let r = &s.receipt;
                self.records
                    .get_or_create(&OutcomeLabels {
                        outcome: "accepted",
                    })
                    .inc_by(r.accepted.len() as u64);
                self.records
                    .get_or_create(&OutcomeLabels { outcome: "already" })
                    .inc_by(r.already.len() as u64);
                for rejection in &r.rejected {
                    self.rejected
                        .get_or_create(&ReasonLabels {
                            reason: rejection.reason.code(),
                        })
                        .inc();
                }
            }
            Err(_) => {
                self.batches_refused.get_or_create(&labels).inc();
            }
        }
    }

    /// Counts an answer.
    pub fn answered(&self, status: u16) {
        self.responses.get_or_create(&StatusLabels { status }).inc();
    }

    /// Counts media bytes written.
    pub fn media_bytes(&self, n: u64) {
        self.media_bytes.inc_by(n);
    }

    /// Counts a media file completed.
    pub fn media_file(&self) {
        self.media_files.inc();
    }

    /// Counts an enrollment.
    pub fn enrolled(&self) {
        self.enrollments.inc();
    }

    /// Reads what the database knows (blocking) for the next encoding.
    pub fn refresh(&self, storage: &dyn Storage, now_ms: i64) -> Result<(), StorageError> {
        let mut s = Stored::default();
        for d in storage.devices()? {
            s.enrolled += 1;
            if d.info.revoked_at_ms.is_some() {
                s.revoked += 1;
            }
            if let Some(last) = d.info.last_contact_ms {
                for (i, minutes) in SEEN_WITHIN_MINUTES.iter().enumerate() {
                    if now_ms - last <= i64::from(*minutes) * 60_000 {
                        s.seen[i] += 1;
                    }
                }
            }
            s.held += d.records;
            s.missing += d.missing_count();
        }
        *self.live.stored.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
        Ok(())
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, v: i64| {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            &mut encoder,
            "open_connections",
            "Connections open now",
            self.guard.open() as i64,
        )?;
        let refused = ConstCounter::new(self.guard.refused() as u64);
        refused.encode(encoder.encode_descriptor(
            "connections_refused",
            "Connections closed at once because a connection cap was reached",
            None,
            refused.metric_type(),
        )?)?;
        let stored = self
            .stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(s) = stored {
            gauge(
                &mut encoder,
                "devices_enrolled",
                "Devices enrolled (revoked included)",
                s.enrolled as i64,
            )?;
            gauge(
                &mut encoder,
                "devices_revoked",
                "Devices revoked",
                s.revoked as i64,
            )?;
            let seen = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "devices_seen",
                "Devices whose last contact is within the window",
                None,
                seen.metric_type(),
            )?;
            for (i, minutes) in SEEN_WITHIN_MINUTES.iter().enumerate() {
                let labels = [("within_minutes", minutes.to_string())];
                ConstGauge::new(s.seen[i] as i64).encode(family.encode_family(&labels)?)?;
            }
            gauge(&mut encoder, "records_held", "Records held", s.held as i64)?;
            gauge(
                &mut encoder,
                "records_missing",
                "Records known to exist (from chains and heartbeats) but not held",
                s.missing as i64,
            )?;
        }
        Ok(())
    }
}

/// State of the metrics listener.
#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    storage: Arc<dyn Storage>,
}

/// The metrics listener's routes: `GET /metrics`.
pub fn router(metrics: Arc<Metrics>, storage: Arc<dyn Storage>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { metrics, storage })
}

async fn scrape(State(s): State<Scrape>) -> Response {
    let s2 = s.clone();
    let refreshed = tokio::task::spawn_blocking(move || {
        s2.metrics
            .refresh(s2.storage.as_ref(), chrono::Utc::now().timestamp_millis())
    })
    .await;
    // The counters are still worth having when the database does not
    // answer; its gauges keep their last values.
    match refreshed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(cause = %e, "metrics: the database did not answer"),
        Err(e) => tracing::error!(cause = %e, "metrics: the refresh failed"),
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// Serves [`router`] over plain HTTP on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    storage: Arc<dyn Storage>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router(metrics, storage))
        .with_graceful_shutdown(shutdown)
        .await
}
