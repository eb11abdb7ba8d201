//! The transport's ceiling for a burst: a server that does, per sync, only
//! what no sync can go without (the TLS handshake, one HTTP exchange with
//! the request read whole, the heartbeat's and each record's signature
//! checked, a receipt signed and sent) and nothing else: no parsing, no
//! database, no hand-over between threads.
//!
//! The cryptographic floor counts only the signatures and the handshake;
//! a phone's sync also pays for a new TCP connection, the kernel's
//! loopback, the TLS records and hyper. This server pays for those too, on
//! the same TLS configuration, behind the same client, so the share of it
//! that Observer's server reaches says how much the application itself
//! costs, and the ceiling says what no server could exceed on this machine.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use observer_core::identity::{PublicKey, SigningKey, Verifier};
use observer_core::protocol::{
    Ack, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed, SyncAnswer,
};
use observer_core::record::{Envelope, Sha256Digest, verify_envelope_by};
use observer_server::coordinator::Coordinator;

use crate::server_bench::chain;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What each sync is checked and answered with: one device's heartbeat
/// and records, signed beforehand, and the receipt naming them all.
struct Work {
    device: PublicKey,
    heartbeat: Signed,
    records: Vec<Envelope>,
    receipt: Receipt,
    key: SigningKey,
}

/// The ceiling server, serving until dropped.
pub struct Ceiling {
    /// Its address, `https://127.0.0.1:PORT`.
    pub url: String,
    /// The key its receipts are signed with.
    pub receipts_by: PublicKey,
    handle: axum_server::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the ceiling for syncs of `records` records each, with the
/// coordinator's certificate (so the clients' pin holds) and as many
/// worker threads as Observer's server has.
pub fn start(coordinator: &Coordinator, records: usize, workers: usize) -> Result<Ceiling> {
    let device = SigningKey::generate()?;
    let envs = chain(&device, "KZ-0001", records);
    let heartbeat = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: device.public_key().device_id(),
            seq: records as u64,
            head: envs.last().map(|e| e.id()),
            at_ms: 0,
        },
        &device,
    );
    let key = SigningKey::generate()?;
    let receipts_by = key.public_key();
    let receipt = Receipt {
        org: "ceiling".into(),
        device: device.public_key().device_id(),
        server_time_ms: 0,
        accepted: envs
            .iter()
            .enumerate()
            .map(|(i, e)| Ack {
                id: e.id(),
                seq: i as u64 + 1,
                index: i as u64,
            })
            .collect(),
        already: Vec::new(),
        rejected: Vec::new(),
        tree: observer_core::merkle::TreeHead {
            size: records as u64,
            root: Sha256Digest::of(b"ceiling"),
        },
    };
    let work = Arc::new(Work {
        device: device.public_key(),
        heartbeat,
        records: envs,
        receipt,
        key,
    });
    let tls = RustlsConfig::from_config(Arc::new(observer_server::tls::tls_config(coordinator)?));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr: SocketAddr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let serving = handle.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("ceiling".into())
        .spawn(move || {
            rt.block_on(async move {
                let app = Router::new().route("/v2/sync", post(sync)).with_state(work);
                let served = axum_server::from_tcp_rustls(listener, tls)
                    .handle(serving)
                    .serve(app.into_make_service())
                    .await;
                if let Err(e) = served {
                    eprintln!("the ceiling server stopped: {e}");
                }
            });
        })?;
    Ok(Ceiling {
        url: format!("https://{addr}"),
        receipts_by,
        handle,
        thread: Some(thread),
    })
}

/// One sync: the request read whole and not looked at; the heartbeat and
/// every record checked (the device's key decoded once, as the server
/// does); a receipt signed.
async fn sync(State(work): State<Arc<Work>>, body: Bytes) -> axum::Json<SyncAnswer> {
    std::hint::black_box(body);
    work.heartbeat
        .open::<Heartbeat>("heartbeat", HEARTBEAT_DOMAIN, &work.device)
        .expect("the ceiling's heartbeat verifies");
    let verifier = Verifier::new(work.device);
    for env in &work.records {
        verify_envelope_by(env, &verifier).expect("the ceiling's records verify");
    }
    axum::Json(SyncAnswer {
        receipt: Signed::sign(RECEIPT_DOMAIN, &work.receipt, &work.key),
        updates: None,
        log: None,
    })
}
