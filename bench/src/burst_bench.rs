//! Issue 15's figures: election night, when every phone sends one or two
//! records at once. Bursts of many devices each making **one** sync (one
//! record, or twenty) against the release server on SQLite and on
//! PostgreSQL; the per-sync cryptographic floor measured in the same run;
//! and commits per second with group commit against one commit per batch.
//!
//! Each simulated device is its own phone: a fresh TLS connection (a full
//! handshake, or a resumption where the row says so), the pin checked, one
//! `POST /v2/sync` with its signed heartbeat and records, and the signed
//! receipt verified against the coordinator's key. A 503 is retried after
//! its `Retry-After` with jitter, as phones do; it is counted as shed,
//! not as an error. The clients run in this process, on the same cores as
//! the server (and PostgreSQL).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observer_core::identity::{PublicKey, SigningKey};
use observer_core::protocol::{
    EnrollRequest, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed, SyncAnswer,
    SyncRequest, WireRecord, updates_tag,
};
use observer_core::record::{Sha256Digest, verify_envelope_by};
use observer_server::coordinator::Coordinator;
use observer_server::storage::postgres::{DatabaseUrl, PostgresStorage};
use observer_server::storage::sqlite::SqliteStorage;
use observer_testkit::PgCluster;

use crate::report::{Samples, machine, ms, us};
use crate::scale_bench::{Deployment, cpu_seconds, free_port};
use crate::server_bench::chain;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct BurstParams {
    /// Devices in each burst.
    pub devices: usize,
    /// Syncs in flight at once.
    pub concurrency: usize,
    /// Names of the only bursts to run (all when empty).
    pub only: Vec<String>,
}

/// One burst's outcome.
struct Outcome {
    wall: Duration,
    latencies: Samples,
    errors: usize,
    shed: usize,
    commits: f64,
    batches_per_commit: f64,
    /// The share of the burst's wall time the committing thread spent
    /// committing: near 100%, it is what limits the burst.
    commit_busy: f64,
    server_cpu: f64,
    /// CPU seconds this process spent in the burst: the clients', and for
    /// the ceiling its server's too.
    bench_cpu: f64,
}

/// A device ready to sync: its request body, prepared before the clock
/// starts (the phone signed its records when the observer saved them).
#[derive(Clone)]
struct Device {
    body: Vec<u8>,
    compressed: bool,
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(n, _)| *n == name)
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

fn scrape(port: u16) -> Result<String> {
    Ok(reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))?.text()?)
}

/// Enrolls `n` devices and prepares each one's sync of `records` records.
fn prepare(coordinator: &Coordinator, url: &str, n: usize, records: usize) -> Result<Vec<Device>> {
    let now = chrono::Utc::now().timestamp_millis();
    let http = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(observer_core::sync::pinned_tls_config(Sha256Digest::of(
            &coordinator.cert_der,
        )))
        .build()?;
    let codes: Vec<String> = (0..n)
        .map(|i| {
            coordinator
                .issue_code(&[format!("E-{i:05}")], None, 1, now)
                .map(|c| c.token)
        })
        .collect::<std::result::Result<_, _>>()?;
    let next = AtomicUsize::new(0);
    let out = Mutex::new((0..n).map(|_| None).collect::<Vec<Option<Device>>>());
    let failed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let key = SigningKey::generate().expect("rng");
                    let req = EnrollRequest {
                        token: codes[i].clone(),
                        public_key: key.public_key(),
                        name: None,
                        proof: key.sign(&EnrollRequest::proof_message(&codes[i])).to_vec(),
                    };
                    let ok = http
                        .post(format!("{url}/v1/enroll"))
                        .header("content-type", "application/json")
                        .body(serde_json::to_vec(&req).expect("json"))
                        .send()
                        .is_ok_and(|r| r.status().is_success());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let device = request(&key, &format!("E-{i:05}"), records, now);
                    out.lock().expect("lock")[i] = Some(device);
                }
            });
        }
    });
    if failed.load(Ordering::Relaxed) > 0 {
        return Err(format!("{} enrollments failed", failed.load(Ordering::Relaxed)).into());
    }
    Ok(out
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|d| d.expect("prepared"))
        .collect())
}

/// One device's sync request: its first `records` records at `station`
/// under its heartbeat, compressed as the sync client would.
fn request(key: &SigningKey, station: &str, records: usize, now: i64) -> Device {
    let envs = chain(key, station, records);
    let last = envs.last().expect("records");
    let hb = Heartbeat {
        device: key.public_key().device_id(),
        seq: records as u64,
        head: Some(last.id()),
        at_ms: now,
    };
    let request = SyncRequest {
        heartbeat: Signed::sign(HEARTBEAT_DOMAIN, &hb, key),
        records: envs.iter().map(WireRecord::from).collect(),
        sealed: Vec::new(),
        // What the phone holds after enrolling: its station and no
        // published form, as the server also has it.
        updates_have: updates_tag(&[station.to_string()], &[], &[], None, []),
        // A first sync: no head held yet, no delivered record to prove
        // (the log-proof cost of later syncs is measured by the proofs
        // benchmark).
        log_have: None,
        log_prove: Vec::new(),
        log_witnessed: None,
    };
    let json = serde_json::to_vec(&request).expect("json");
    // As the sync client does: compress only what gains from it.
    if json.len() >= 4096 {
        Device {
            body: zstd::encode_all(json.as_slice(), 3).expect("zstd"),
            compressed: true,
        }
    } else {
        Device {
            body: json,
            compressed: false,
        }
    }
}

/// Where a burst goes: the server's address, the certificate the clients
/// pin, the key its receipts are signed with, and where its metrics are
/// (none for the ceiling, which keeps none).
struct Target {
    url: String,
    pin: Sha256Digest,
    receipts_by: PublicKey,
    metrics_port: Option<u16>,
}

/// Every device syncs once, `concurrency` at a time, each over its own
/// connection; measured from the first connection to the last receipt.
fn burst(
    to: &Target,
    devices: &[Device],
    records: usize,
    concurrency: usize,
    resume: bool,
) -> Result<Outcome> {
    let url = to.url.as_str();
    let mut tls = observer_core::sync::pinned_tls_config(to.pin);
    if !resume {
        // Each device is a phone that never connected before.
        tls.resumption = rustls::client::Resumption::disabled();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        // A new connection per device: phones do not share one.
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()?;
    let (pin, coordinator_key) = (to.pin, to.receipts_by);
    if resume {
        // The tickets a phone holds from its syncs earlier in the day.
        rt.block_on(async {
            for _ in 0..4 {
                let _ = client.get(format!("{url}/healthz")).send().await;
            }
        });
    }
    let before = to.metrics_port.map(scrape).transpose()?;
    let cpu_before = cpu_seconds("observer-server");
    let bench_before = cpu_seconds("observer-bench");
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let shed = Arc::new(AtomicUsize::new(0));
    let devices: Arc<Vec<(Vec<u8>, bool)>> = Arc::new(
        devices
            .iter()
            .map(|d| (d.body.clone(), d.compressed))
            .collect(),
    );
    // `OBSERVER_BENCH_PROFILE=FILE`: the whole machine sampled by `perf`
    // during the timed burst only (not while devices enroll).
    let profiler = std::env::var_os("OBSERVER_BENCH_PROFILE").map(|out| {
        let child = std::process::Command::new("perf")
            .args(["record", "-a", "-g", "-F", "499", "-o"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .spawn();
        std::thread::sleep(Duration::from_millis(500));
        child
    });
    let t0 = Instant::now();
    let latencies: Vec<Duration> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, errors, shed, devices, url) = (
                client.clone(),
                next.clone(),
                errors.clone(),
                shed.clone(),
                devices.clone(),
                url.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, compressed)) = devices.get(i) else {
                        break;
                    };
                    let start = Instant::now();
                    let mut ok = false;
                    for attempt in 0..20u32 {
                        let mut req = client
                            .post(format!("{url}/v2/sync"))
                            .header("content-type", "application/json")
                            .body(body.clone());
                        if *compressed {
                            req = req.header("content-encoding", "zstd");
                        }
                        let Ok(resp) = req.send().await else {
                            break;
                        };
                        let pinned = resp
                            .extensions()
                            .get::<reqwest::tls::TlsInfo>()
                            .and_then(|t| t.peer_certificate())
                            .is_some_and(|der| Sha256Digest::of(der) == pin);
                        if !pinned {
                            break;
                        }
                        if resp.status() == 503 {
                            shed.fetch_add(1, Ordering::Relaxed);
                            let after = resp
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            // The phone's wait: what was asked, plus as
                            // much again at most, spread.
                            let jitter = (i as u64 * 7919 + attempt as u64 * 104_729) % 1000;
                            tokio::time::sleep(Duration::from_millis(
                                after * 1000 + jitter * after,
                            ))
                            .await;
                            continue;
                        }
                        if resp.status() != 200 {
                            break;
                        }
                        let Ok(bytes) = resp.bytes().await else {
                            break;
                        };
                        ok = serde_json::from_slice::<SyncAnswer>(&bytes)
                            .ok()
                            .and_then(|a| {
                                a.receipt
                                    .open::<Receipt>("receipt", RECEIPT_DOMAIN, &coordinator_key)
                                    .ok()
                            })
                            .is_some_and(|r| r.accepted.len() == records);
                        break;
                    }
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(start.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all
    });
    let wall = t0.elapsed();
    if let Some(Ok(mut perf)) = profiler {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
    let server_cpu = cpu_seconds("observer-server") - cpu_before;
    let bench_cpu = cpu_seconds("observer-bench") - bench_before;
    let after = to.metrics_port.map(scrape).transpose()?;
    let delta = |name: &str| match (&before, &after) {
        (Some(before), Some(after)) => metric(after, name) - metric(before, name),
        _ => 0.0,
    };
    let commits = delta(r#"observer_group_commits_total{result="ok"}"#);
    let batches = delta("observer_group_commit_batches_sum");
    Ok(Outcome {
        wall,
        latencies: Samples::new(latencies),
        errors: errors.load(Ordering::Relaxed),
        shed: shed.load(Ordering::Relaxed),
        commits,
        batches_per_commit: batches / commits.max(1.0),
        commit_busy: delta("observer_group_commit_duration_seconds_sum") / wall.as_secs_f64(),
        server_cpu,
        bench_cpu,
    })
}

/// The store's own CPU seconds per sync for `devices` syncs of `records`
/// records on `backend`, replayed alone into a fresh database (see
/// [`crate::burst_store`]), `per_commit` batches to a commit.
fn store_cost(
    pg: &PgCluster,
    at: &std::path::Path,
    backend: &str,
    records: usize,
    devices: usize,
    per_commit: f64,
) -> Result<f64> {
    let batches = crate::burst_store::batches(devices, records);
    let per_commit = per_commit.round().max(1.0) as usize;
    if backend == "SQLite" {
        let storage = SqliteStorage::open(&at.join(format!("store-{records}.db")))?;
        return crate::burst_store::cost(&storage, &batches, per_commit);
    }
    let db = pg.database();
    let storage = PostgresStorage::open(&DatabaseUrl::parse(&db)?)?;
    let cost = crate::burst_store::cost(&storage, &batches, per_commit);
    drop(storage);
    let _ = pg.drop_database(&db);
    cost
}

/// The columns every row of the burst table starts with: what the syncs
/// carried, syncs/s, records/s, latency.
fn row_start(records: usize, resumed: bool, syncs: f64, o: &Outcome) -> String {
    format!(
        "{records} record{s} per sync, {how} | {syncs:.0} | {rps:.0} | {p50} / {p99}",
        s = if records == 1 { "" } else { "s" },
        how = if resumed {
            "resumed TLS sessions"
        } else {
            "full TLS handshakes"
        },
        rps = syncs * records as f64,
        p50 = ms(o.latencies.p50()),
        p99 = ms(o.latencies.p99()),
    )
}

/// Each target, reached or not, from the bursts' figures.
fn verdict(runs: &[(String, usize, f64, f64, usize)]) -> String {
    let mut met = Vec::new();
    let mut missed = Vec::new();
    let mut target = |ok: bool, what: String| {
        if ok {
            met.push(what)
        } else {
            missed.push(what)
        }
    };
    let list = |records: usize, scale: f64| -> (bool, String, f64) {
        let chosen: Vec<_> = runs.iter().filter(|r| r.1 == records).collect();
        let text = chosen
            .iter()
            .map(|r| format!("{} {:.0}", r.0, r.2 * scale))
            .collect::<Vec<_>>()
            .join(", ");
        let least = chosen
            .iter()
            .map(|r| r.2 * scale)
            .fold(f64::INFINITY, f64::min);
        (!chosen.is_empty(), text, least)
    };
    let (any, text, least) = list(1, 1.0);
    if any {
        target(
            least >= 2000.0,
            format!("2,000 syncs/s with one record ({text})"),
        );
    }
    let (any, text, least) = list(20, 20.0);
    if any {
        target(
            least >= 15_000.0,
            format!("15,000 records/s with twenty ({text})"),
        );
    }
    let shares = runs.iter().map(|r| 100.0 * r.3);
    let (lo, hi) = shares.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    target(
        lo >= 50.0,
        format!("50% of the floor ({lo:.0} to {hi:.0}%)"),
    );
    let errors: usize = runs.iter().map(|r| r.4).sum();
    target(errors == 0, format!("0 errors ({errors} in all)"));
    let mut out = String::new();
    if !met.is_empty() {
        out.push_str(&format!("**Reached**: {}.", met.join("; ")));
    }
    if !missed.is_empty() {
        out.push_str(&format!(" **Not reached**: {}.", missed.join("; ")));
    }
    out.trim().to_string()
}

/// Median time of `f` over `rounds` runs of `per` calls each, per call.
fn per_call(rounds: usize, per: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..per {
                f();
            }
            t0.elapsed() / per as u32
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Moves TLS records between a client and a server in memory until both
/// have finished the handshake and the server's tickets reached the client.
fn handshake(client: &mut rustls::ClientConnection, server: &mut rustls::ServerConnection) {
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            server.read_tls(&mut rd).expect("read");
        }
        server.process_new_packets().expect("server handshake");
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("write");
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("read");
        }
        client.process_new_packets().expect("client handshake");
        if !client.is_handshaking() && !server.is_handshaking() && !server.wants_write() {
            break;
        }
    }
}

/// The per-sync cryptography, each on one core: a TLS 1.3 handshake (both
/// sides: the clients share these cores) full and resumed, a heartbeat and
/// a record verified, a receipt signed.
struct Floor {
    full: Duration,
    resumed: Duration,
    heartbeat: Duration,
    record: Duration,
    receipt: Duration,
    /// One Ed25519 check alone, Observer's (`ed25519-dalek`) and ring's
    /// on the same signature: why the first is used.
    check: Duration,
    check_ring: Duration,
}

impl Floor {
    fn per_sync(&self, records: usize, resumed: bool) -> Duration {
        (if resumed { self.resumed } else { self.full })
            + self.heartbeat
            + self.record * records as u32
            + self.receipt
    }
}

fn floor(coordinator: &Coordinator) -> Result<Floor> {
    let server_config = Arc::new(observer_server::tls::tls_config(coordinator)?);
    let pin = Sha256Digest::of(&coordinator.cert_der);
    let mut fresh = observer_core::sync::pinned_tls_config(pin);
    fresh.resumption = rustls::client::Resumption::disabled();
    let fresh = Arc::new(fresh);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
    let full = per_call(5, 200, || {
        let mut c = rustls::ClientConnection::new(fresh.clone(), name.clone()).expect("client");
        let mut s = rustls::ServerConnection::new(server_config.clone()).expect("server");
        handshake(&mut c, &mut s);
    });
    let resuming = Arc::new(observer_core::sync::pinned_tls_config(pin));
    let mut kinds = Vec::new();
    let resumed = per_call(5, 200, || {
        let mut c = rustls::ClientConnection::new(resuming.clone(), name.clone()).expect("client");
        let mut s = rustls::ServerConnection::new(server_config.clone()).expect("server");
        handshake(&mut c, &mut s);
        kinds.push(c.handshake_kind());
    });
    let resumed_share = kinds
        .iter()
        .filter(|k| **k == Some(rustls::HandshakeKind::Resumed))
        .count() as f64
        / kinds.len() as f64;
    if resumed_share < 0.9 {
        return Err(format!(
            "only {:.0}% of the handshakes resumed",
            100.0 * resumed_share
        )
        .into());
    }
    let key = SigningKey::generate()?;
    let envs = chain(&key, "KZ-0001", 1);
    let pk = key.public_key();
    let hb = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: pk.device_id(),
            seq: 1,
            head: Some(envs[0].id()),
            at_ms: 0,
        },
        &key,
    );
    let heartbeat = per_call(5, 2000, || {
        hb.open::<Heartbeat>("heartbeat", HEARTBEAT_DOMAIN, &pk)
            .expect("valid");
    });
    // The key is decoded once per sync (the heartbeat's check above pays
    // for it); each record is then one check against the decoded key.
    let verifier = observer_core::identity::Verifier::new(pk);
    let record = per_call(5, 2000, || {
        verify_envelope_by(&envs[0], &verifier).expect("valid");
    });
    let message = vec![7u8; 600];
    let sig = key.sign(&message);
    let check = per_call(5, 2000, || {
        assert!(verifier.verify(&message, &sig));
    });
    let check_ring = per_call(5, 2000, || {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk.as_bytes())
            .verify(&message, &sig)
            .expect("valid");
    });
    let receipt_body = Receipt {
        org: "bench".into(),
        device: pk.device_id(),
        server_time_ms: 0,
        accepted: Vec::new(),
        already: Vec::new(),
        rejected: Vec::new(),
        tree: observer_core::merkle::TreeHead {
            size: 1,
            root: Sha256Digest::of(b"root"),
        },
    };
    let receipt = per_call(5, 2000, || {
        std::hint::black_box(Signed::sign(
            RECEIPT_DOMAIN,
            &receipt_body,
            &coordinator.key,
        ));
    });
    Ok(Floor {
        full,
        resumed,
        heartbeat,
        record,
        receipt,
        check,
        check_ring,
    })
}

/// What one sync costs the phone, by how the app holds its store: the
/// desktop client opens the store (key unwrap, quick integrity check) and
/// a new connection at every invocation; an app keeps both open. Medians
/// of `rounds` syncs of one record each, and of the open alone.
struct PhoneSide {
    open: Duration,
    per_invocation: Duration,
    kept_open: Duration,
}

fn phone_side(coordinator: &Coordinator, url: &str, dir: &std::path::Path) -> Result<PhoneSide> {
    use observer_core::identity::FileKeyStore;
    use observer_core::store::Store;
    use observer_core::sync::{SyncOptions, enroll, sync};
    let rounds = 40;
    let now = chrono::Utc::now().timestamp_millis();
    let phone_dir = dir.join("phone-side");
    std::fs::create_dir_all(&phone_dir)?;
    let open = || -> Result<Store> {
        let keys = FileKeyStore::open_or_create(phone_dir.join("device.kek"))?;
        Ok(Store::open(&phone_dir, &keys)?)
    };
    {
        let store = open()?;
        let mut code = coordinator.issue_code(&["KZ-0001".to_string()], None, 1, now)?;
        code.url = url.to_string();
        enroll(&store, &code, None)?;
        // A day's worth of records already held, as on election night.
        let day: Vec<_> = (0..500)
            .map(|i| crate::sample::observation("KZ-0001", i))
            .collect();
        store.save_all(&day)?;
        sync(&store, &SyncOptions::default())?;
    }
    let mut opens = Vec::new();
    let mut invocations = Vec::new();
    for i in 0..rounds {
        {
            let store = open()?;
            store.save(crate::sample::observation("KZ-0001", 1000 + i))?;
        }
        let t0 = Instant::now();
        let store = open()?;
        opens.push(t0.elapsed());
        let s = sync(&store, &SyncOptions::default())?;
        invocations.push(t0.elapsed());
        if s.accepted != 1 {
            return Err("a desktop sync did not deliver its record".into());
        }
    }
    let store = open()?;
    let opts = SyncOptions::default();
    let mut kept = Vec::new();
    for i in 0..rounds {
        store.save(crate::sample::observation("KZ-0001", 2000 + i))?;
        let t0 = Instant::now();
        let s = sync(&store, &opts)?;
        kept.push(t0.elapsed());
        if s.accepted != 1 {
            return Err("an app sync did not deliver its record".into());
        }
    }
    Ok(PhoneSide {
        open: Samples::new(opens).p50(),
        per_invocation: Samples::new(invocations).p50(),
        kept_open: Samples::new(kept).p50(),
    })
}

pub fn run(scratch: &std::path::Path, p: &BurstParams, command: &str) -> Result<String> {
    let bin = std::env::current_exe()?.with_file_name("observer-server");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: build it first (cargo build --release -p observer-server)",
            bin.display()
        )
        .into());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir_in(scratch)?;
    let pg = PgCluster::start();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // (backend, records per sync, resumed sessions, batches per commit)
    let runs: [(&str, usize, bool, Option<usize>); 7] = [
        ("SQLite", 1, false, None),
        ("SQLite", 1, true, None),
        ("SQLite", 20, false, None),
        ("PostgreSQL", 1, false, None),
        ("PostgreSQL", 20, false, None),
        ("SQLite", 1, false, Some(1)),
        ("PostgreSQL", 1, false, Some(1)),
    ];
    let mut floor_of = None;
    let mut phone_of = None;
    let mut rows = String::new();
    let mut commit_rows = String::new();
    // The ceiling of each kind of burst, measured once (syncs/s, and this
    // process's CPU seconds per sync), and its rows.
    let mut ceilings: Vec<((usize, bool), f64, f64)> = Vec::new();
    let mut ceiling_rows = String::new();
    let mut ceiling_notes: Vec<String> = Vec::new();
    // The store's own CPU seconds per sync, by backend and records per
    // sync, and the ceiling with it.
    let mut stores: Vec<((&str, usize), f64)> = Vec::new();
    let mut bound_notes: Vec<String> = Vec::new();
    // (backend, records per sync, syncs/s, share of the floor, errors)
    let mut reached: Vec<(String, usize, f64, f64, usize)> = Vec::new();
    for (n, (backend, records, resume, group)) in runs.iter().enumerate() {
        let name = format!(
            "{}-{records}{}{}",
            if *backend == "SQLite" {
                "sqlite"
            } else {
                "postgres"
            },
            if *resume { "-resumed" } else { "" },
            if group.is_some() { "-single" } else { "" },
        );
        if !p.only.is_empty() && !p.only.contains(&name) {
            continue;
        }
        let at = dir.path().join(format!("run-{n}"));
        let database = (*backend == "PostgreSQL").then(|| pg.database());
        let metrics_port = free_port()?;
        let mut extra = vec![
            "--metrics-listen".to_string(),
            format!("127.0.0.1:{metrics_port}"),
        ];
        if let Some(g) = group {
            extra.push("--group-commit-batches".into());
            extra.push(g.to_string());
        }
        let d = Deployment::start(&bin, &at, database.as_deref(), 1, 0, &extra)?;
        let url = format!("https://127.0.0.1:{}", d.nodes[0].port);
        if floor_of.is_none() {
            floor_of = Some(floor(&d.coordinator)?);
            phone_of = Some(phone_side(&d.coordinator, &url, &at)?);
        }
        let pin = Sha256Digest::of(&d.coordinator.cert_der);
        if group.is_none() && !ceilings.iter().any(|c| c.0 == (*records, *resume)) {
            let ceiling = crate::burst_ceiling::start(&d.coordinator, *records, cores)?;
            // The ceiling does not read the requests: one body of the
            // right size serves every device.
            let now = chrono::Utc::now().timestamp_millis();
            let body = request(&SigningKey::generate()?, "KZ-0001", *records, now);
            let bodies = vec![body; p.devices];
            let to = Target {
                url: ceiling.url.clone(),
                pin,
                receipts_by: ceiling.receipts_by,
                metrics_port: None,
            };
            let o = burst(&to, &bodies, *records, p.concurrency, *resume)?;
            drop(ceiling);
            let syncs = p.devices as f64 / o.wall.as_secs_f64();
            eprintln!(
                "ceiling, {records} per sync, resumed {resume}: {syncs:.0} syncs/s, {} errors",
                o.errors
            );
            let f = floor_of.as_ref().expect("measured");
            let floor_rate = cores as f64 / f.per_sync(*records, *resume).as_secs_f64();
            ceiling_rows.push_str(&format!(
                "| ceiling: TLS, HTTP and the signatures alone, {} | **{}** | {floor_rate:.0} ({share:.0}%) | | | | |\n",
                row_start(*records, *resume, syncs, &o),
                o.errors,
                share = 100.0 * syncs / floor_rate,
            ));
            ceilings.push(((*records, *resume), syncs, o.bench_cpu / p.devices as f64));
            ceiling_notes.push(format!(
                "{} {what} ({share:.0}% of the floor; {cpu:.0} µs of CPU a sync, clients included)",
                if *resume {
                    "resumed, one record a sync,"
                } else if *records == 1 {
                    "one record a sync,"
                } else {
                    "twenty records a sync,"
                },
                what = if *records == 1 {
                    format!("{syncs:.0} syncs/s")
                } else {
                    format!("{:.0} records/s", syncs * *records as f64)
                },
                share = 100.0 * syncs / floor_rate,
                cpu = 1e6 * o.bench_cpu / p.devices as f64,
            ));
        }
        let devices = prepare(&d.coordinator, &url, p.devices, *records)?;
        let to = Target {
            url: url.clone(),
            pin,
            receipts_by: d.coordinator.key.public_key(),
            metrics_port: Some(metrics_port),
        };
        let o = burst(&to, &devices, *records, p.concurrency, *resume)?;
        let syncs = p.devices as f64 / o.wall.as_secs_f64();
        eprintln!(
            "{backend}, {records} per sync, resumed {resume}, group {group:?}: {syncs:.0} syncs/s, {} errors",
            o.errors
        );
        let f = floor_of.as_ref().expect("measured");
        let floor_rate = cores as f64 / f.per_sync(*records, *resume).as_secs_f64();
        let commits_per_s = o.commits / o.wall.as_secs_f64();
        drop(d);
        if group.is_none() {
            let ceiling = ceilings
                .iter()
                .find(|c| c.0 == (*records, *resume))
                .ok_or("no ceiling")?;
            let store = match stores.iter().find(|s| s.0 == (*backend, *records)) {
                Some(s) => s.1,
                None => {
                    let s =
                        store_cost(&pg, &at, backend, *records, p.devices, o.batches_per_commit)?;
                    stores.push(((*backend, *records), s));
                    s
                }
            };
            // The ceiling's work and the store's on these cores, and never
            // more than the ceiling itself.
            let bound = (cores as f64 / (ceiling.2 + store)).min(ceiling.1);
            eprintln!(
                "{backend}, {records} per sync: storing {:.0} µs per sync, ceiling {:.0} µs per sync, with it {bound:.0} syncs/s",
                store * 1e6,
                ceiling.2 * 1e6
            );
            if !resume {
                bound_notes.push(format!(
                    "{backend}, {what}",
                    what = if *records == 1 {
                        format!("one record a sync, {bound:.0} syncs/s")
                    } else {
                        format!(
                            "twenty records a sync, {:.0} records/s",
                            bound * *records as f64
                        )
                    }
                ));
            }
            let label = format!("{backend}{}", if *resume { " resumed" } else { "" });
            reached.push((label, *records, syncs, syncs / floor_rate, o.errors));
            rows.push_str(&format!(
                "| {backend}, {} | **{errors}** ({shed} shed and retried) | {floor_rate:.0} (**{share:.0}%**) | {of_ceiling:.0}% | {store:.0} µs | {bound:.0} ({of_bound:.0}%) | {cpu:.0} µs |\n",
                row_start(*records, *resume, syncs, &o),
                errors = o.errors,
                shed = o.shed,
                share = 100.0 * syncs / floor_rate,
                cpu = 1e6 * o.server_cpu / p.devices as f64,
                of_ceiling = 100.0 * syncs / ceiling.1,
                store = store * 1e6,
                of_bound = 100.0 * syncs / bound,
            ));
        }
        if !resume {
            commit_rows.push_str(&format!(
                "| {backend}, {records} record{s} per sync, {how} | {syncs:.0} | {commits_per_s:.0} | {bpc:.1} | {busy:.0}% |\n",
                s = if *records == 1 { "" } else { "s" },
                how = match group {
                    None => "group commit (default)",
                    Some(_) => "one commit per batch (`--group-commit-batches 1`)",
                },
                bpc = o.batches_per_commit,
                busy = 100.0 * o.commit_busy,
            ));
        }
        if o.errors > 0 {
            eprintln!("errors in a burst: the figures below say so");
        }
        if let Some(db) = database {
            let _ = pg.drop_database(&db);
        }
    }
    let f = floor_of.ok_or("no run")?;
    let ph = phone_of.ok_or("no run")?;
    let verdict = verdict(&reached);
    let ceiling_note = if ceiling_notes.is_empty() {
        String::new()
    } else {
        format!(
            " The ceiling in this run, which no server passes with these clients on these cores: {}.",
            ceiling_notes.join("; ")
        )
    };
    let bound_note = if bound_notes.is_empty() {
        String::new()
    } else {
        format!(
            " With the store's own work added, the most these cores allow: {}.",
            bound_notes.join("; ")
        )
    };
    Ok(format!(
        "## Election night: small syncs, group commit, the cryptographic floor (issue 15)

Machine: {machine}.
Command: `cargo build --release -p observer-server && {command}`.
One release `observer-server` node, default limits except the per-address
caps (every simulated phone comes from 127.0.0.1); SQLite is WAL with
`synchronous = FULL`, PostgreSQL {pg_version} a private cluster on loopback
with `fsync` and `synchronous_commit` on. {devices} devices per burst, each
one sync (`POST /v2/sync`: heartbeat, records, and updates only if they
changed) over its own new connection, {conc} in flight at once; each checks
the pin and verifies its signed receipt. The clients, the server and
PostgreSQL share the machine's {cores} cores.

The floor is the cryptography one sync cannot do without, each part timed
on one core in this run and multiplied by the {cores} cores: a TLS 1.3
handshake with the coordinator's certificate (client and server side, as
the clients share the cores) full {full} or resumed {resumed}; verifying
the heartbeat {hb} and each record {rec}; signing the receipt {sign}. (One
Ed25519 check alone, on a 600-byte message with the key decoded: {check}
with `ed25519-dalek`, which Observer checks with, against {check_ring} with
ring's verifier, under the same rule.) The phone's own signatures and its check of the receipt come on top, so the
share of the floor reached is a lower bound.

The ceiling is what no server could exceed here with these clients: a
server in this process that, per sync, completes the same TLS handshake,
reads the request whole, checks a heartbeat and as many record signatures
with the same code, and signs and sends a receipt, and does nothing else
(no parsing, no database, no hand-over between threads;
`bench/src/burst_ceiling.rs`), on as many threads as the server has. Its
own share of the floor is what a new connection, the kernel's loopback and
HTTP cost beyond the signatures; the servers' share of it is what the
application costs.

Storing is what keeping the records costs on its own: the same number of
devices' batches, verified, replayed on one thread through the storage
trait (`Storage::ingest_group`) into a fresh database of the same backend,
as many batches per commit as the burst's group commits held
(`bench/src/burst_store.rs`); the CPU of this process and of every
PostgreSQL process, per sync. A server that keeps the records does that
work on top of the ceiling's, so the ceiling with storing is the machine's
{cores} cores divided by the two together (this process's CPU per sync in
the ceiling's burst, clients included, plus storing), and never more than
the ceiling.

| Burst | syncs/s | records/s | sync latency p50 / p99 | errors | floor, syncs/s (share reached) | share of the ceiling | storing, CPU per sync | ceiling with storing, syncs/s (share reached) | server CPU per sync |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{ceiling_rows}{rows}
Targets: one record per sync, at least 2,000 syncs/s; twenty, at least
15,000 records/s; at least 50% of the floor; 0 errors. {verdict}{ceiling_note}{bound_note}

Commits per second in the same bursts, with group commit and with one
commit per batch, and the share of each burst's time the one committing
thread spent committing (near 100%, the commits are what limits it):

| Burst | syncs/s | durable commits/s | batches per commit | committing thread busy |
| --- | --- | --- | --- | --- |
{commit_rows}
The phone's side of one sync of one record (a store holding 500 delivered
records, against the SQLite server above, nothing else running; medians of
40):

| How the store is held | one sync |
| --- | --- |
| desktop client, each invocation: open the store (unwrap the key, quick integrity check), new connection, sync | {invocation} (of which the open: {open}) |
| app, store and connection kept open (`SyncOptions::link`) | {kept} |
",
        machine = machine(dir.path()),
        pg_version = pg.psql("postgres", "SHOW server_version"),
        devices = p.devices,
        conc = p.concurrency,
        full = us(f.full),
        resumed = us(f.resumed),
        hb = us(f.heartbeat),
        rec = us(f.record),
        check = us(f.check),
        check_ring = us(f.check_ring),
        sign = us(f.receipt),
        invocation = ms(ph.per_invocation),
        open = ms(ph.open),
        kept = ms(ph.kept_open),
    ))
}
