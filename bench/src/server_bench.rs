//! Issue 3's figures: ingest over loopback HTTPS against the machine's
//! signature-verification limit, a burst of many devices at once, and bytes
//! on the wire per record.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use observer_core::identity::{FileKeyStore, SigningKey};
use observer_core::protocol::{
    Batch, EnrollRequest, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed, WireRecord,
};
use observer_core::record::{ChainPosition, Envelope, sign_record, verify_envelope};
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, enroll, sync};
use observer_server::coordinator::Coordinator;

use crate::local::LocalCoordinator;
use crate::report::{Samples, machine, median, ms};
use crate::sample::observation;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct Params {
    pub phones: usize,
    pub records: usize,
    pub devices: usize,
    pub burst_records: usize,
    pub concurrency: usize,
    /// Whether the server logs as `serve` does (JSON at info, to a file).
    pub logging: bool,
}

/// Signs `n` chained records with a fresh key.
pub(crate) fn chain(key: &SigningKey, station: &str, n: usize) -> Vec<Envelope> {
    let mut pos = ChainPosition::first(key);
    (0..n)
        .map(|i| {
            let env = sign_record(&observation(station, i as u64), &pos, key).expect("valid");
            pos = pos.after(env.id());
            env
        })
        .collect()
}

/// Records per second that `check` gets through on one thread and on every
/// core: the median of five rounds each, because one round lasts under a
/// second and a shared machine's hiccups would otherwise move the limit
/// that everything is compared with.
pub(crate) fn rate(envs: &[Envelope], check: impl Fn(&Envelope) + Sync) -> (f64, f64) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t0 = Instant::now();
        envs.iter().for_each(&check);
        one.push(envs.len() as f64 / t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for chunk in envs.chunks(envs.len().div_ceil(threads)) {
                let check = &check;
                s.spawn(move || chunk.iter().for_each(check));
            }
        });
        all.push(envs.len() as f64 / t0.elapsed().as_secs_f64());
    }
    (median(one), median(all))
}

pub(crate) fn phone(dir: &Path) -> Result<Store> {
    std::fs::create_dir_all(dir)?;
    let keys = FileKeyStore::open_or_create(dir.join("device.kek"))?;
    Ok(Store::open(dir, &keys)?)
}

fn client() -> Result<reqwest::blocking::Client> {
    // The burst measures the server; its simulated devices skip the pin
    // check (loopback only). Real phones go through observer_core::sync.
    Ok(reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()?)
}

pub fn run(scratch: &Path, p: &Params, command: &str) -> Result<String> {
    let dir = tempfile::tempdir_in(scratch)?;
    let local = LocalCoordinator::start(dir.path())?;
    let (coordinator, url) = (&local.coordinator, local.url.clone());

    // The limit: verifying the same kind of records.
    let key = SigningKey::generate()?;
    let envs = chain(&key, "KZ-0001", 20_000);
    let body_len = envs[0].body.len();
    let pk = key.public_key();
    // The physical limit: raw Ed25519 verification of the signed bytes.
    let (raw_one, raw_all) = rate(&envs, |e| {
        let msg = [observer_core::record::SIGNING_DOMAIN, &e.body].concat();
        assert!(pk.verify(&msg, &e.sig));
    });
    // What the server does per record before storing it.
    let (verify_one, verify_all) = rate(&envs, |e| {
        verify_envelope(e, &pk).expect("valid");
    });

    // Ingest: real phones (core store + sync client) over loopback HTTPS.
    let now = chrono::Utc::now().timestamp_millis();
    let phones: Vec<Store> = (0..p.phones)
        .map(|i| -> Result<Store> {
            let station = format!("KZ-{i:04}");
            let store = phone(&dir.path().join(format!("phone-{i}")))?;
            let code = coordinator.issue_code(std::slice::from_ref(&station), None, 1, now)?;
            enroll(&store, &code, None)?;
            let batch: Vec<_> = (0..p.records)
                .map(|n| observation(&station, n as u64))
                .collect();
            store.save_all(&batch)?;
            Ok(store)
        })
        .collect::<Result<_>>()?;
    let opts = SyncOptions {
        batch_records: 500,
        batch_bytes: 4 * 1024 * 1024,
        ..SyncOptions::default()
    };
    let t0 = Instant::now();
    let summaries: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = phones
            .iter()
            .map(|ph| s.spawn(|| sync(ph, &opts)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let ingest_time = t0.elapsed();
    let mut delivered = 0u64;
    let mut bytes = 0u64;
    for s in summaries {
        let s = s?;
        delivered += s.delivered();
        bytes += s.bytes_sent;
    }
    let total = (p.phones * p.records) as u64;
    assert_eq!(delivered, total, "every record delivered");
    let ingest_rate = total as f64 / ingest_time.as_secs_f64();

    // Single-record syncs: the worst case for bytes per record.
    let single = &phones[0];
    single.save(observation("KZ-0000", 0))?;
    let one = sync(single, &opts)?;

    // Burst: many devices, one sync each, all at once.
    let burst = burst(coordinator, &url, p)?;

    let logs = if p.logging {
        "JSON at info to a file, a line per request (as `serve --log-format json 2>FILE`)"
    } else {
        "none"
    };
    local.stop()?;
    Ok(format!(
        "## Server: ingest, burst, bytes on the wire (issue 3)

Machine: {machine}.
Command: `{command}`.
Server and clients share the machine (loopback HTTPS, TLS 1.3, rustls with
ring); the server's SQLite runs WAL with `synchronous = FULL`, one
transaction per batch. Record body: {body_len} bytes. Server logs: {logs};
metrics are always counted.

| Measurement | Figure |
| --- | --- |
| limit: raw Ed25519 verification (ring), one thread / all cores, median of 5 | {raw_one:.0} / {raw_all:.0} records/s |
| `verify_envelope` (signature, then parse and validate the body), one thread / all cores, median of 5 | {verify_one:.0} / {verify_all:.0} records/s |
| ingest: {phones} phones × {records} records, real sync client, batches of 500 | {ingest_rate:.0} records/s ({ingest_s:.1} s) |
| **ingest / raw verification limit (all cores)** | **{ratio:.0}%** (target: at least 40%) |
| bytes on the wire per record, batches of 500 (zstd JSON request body) | {per_record:.0} B |
| bytes on the wire for a single-record sync (request body) | {single_bytes} B |
{burst}",
        machine = machine(dir.path()),
        phones = p.phones,
        records = p.records,
        ingest_s = ingest_time.as_secs_f64(),
        ratio = 100.0 * ingest_rate / raw_all,
        per_record = bytes as f64 / total as f64,
        single_bytes = one.bytes_sent,
    ))
}

/// `devices` simulated devices, each enrolled, each sending one batch of
/// `burst_records` signed records at the same moment (bounded by
/// `concurrency` connections). Latency is per device sync.
pub(crate) fn burst(coordinator: &Coordinator, url: &str, p: &Params) -> Result<String> {
    let now = chrono::Utc::now().timestamp_millis();
    let http = client()?;
    let coordinator_key = coordinator.key.public_key();
    // Preparation, not timed: enroll every device, build its signed batch.
    let prepared: Vec<Vec<u8>> = {
        let next = AtomicUsize::new(0);
        let out = Mutex::new(vec![Vec::new(); p.devices]);
        let codes: Vec<String> = (0..p.devices)
            .map(|i| {
                coordinator
                    .issue_code(&[format!("B-{i:05}")], None, 1, now)
                    .map(|c| c.token)
            })
            .collect::<std::result::Result<_, _>>()?;
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= p.devices {
                            break;
                        }
                        let key = SigningKey::generate().expect("rng");
                        let req = EnrollRequest {
                            token: codes[i].clone(),
                            public_key: key.public_key(),
                            name: None,
                            proof: key.sign(&EnrollRequest::proof_message(&codes[i])).to_vec(),
                        };
                        let resp = http
                            .post(format!("{url}/v1/enroll"))
                            .header("content-type", "application/json")
                            .body(serde_json::to_vec(&req).expect("json"))
                            .send()
                            .expect("enroll");
                        assert!(resp.status().is_success(), "enroll failed");
                        let envs = chain(&key, &format!("B-{i:05}"), p.burst_records);
                        let last = envs.last().expect("records");
                        let hb = Heartbeat {
                            device: key.public_key().device_id(),
                            seq: p.burst_records as u64,
                            head: Some(last.id()),
                            at_ms: now,
                        };
                        let batch = Batch {
                            heartbeat: Signed::sign(HEARTBEAT_DOMAIN, &hb, &key),
                            records: envs.iter().map(WireRecord::from).collect(),
                            sealed: Vec::new(),
                        };
                        let body = zstd::encode_all(
                            serde_json::to_vec(&batch).expect("json").as_slice(),
                            3,
                        )
                        .expect("zstd");
                        out.lock().expect("lock")[i] = body;
                    }
                });
            }
        });
        out.into_inner().expect("lock")
    };
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(p.devices));
    let errors = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..p.concurrency {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= p.devices {
                        break;
                    }
                    let start = Instant::now();
                    let ok = http
                        .post(format!("{url}/v1/records"))
                        .header("content-type", "application/json")
                        .header("content-encoding", "zstd")
                        .body(prepared[i].clone())
                        .send()
                        .ok()
                        .filter(|r| r.status().as_u16() == 200)
                        .and_then(|r| r.bytes().ok())
                        .and_then(|b| {
                            let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                            let signed: Signed =
                                serde_json::from_value(v["receipt"].clone()).ok()?;
                            signed
                                .open::<Receipt>("receipt", RECEIPT_DOMAIN, &coordinator_key)
                                .ok()
                        })
                        .is_some_and(|r| r.accepted.len() == p.burst_records);
                    latencies.lock().expect("lock").push(start.elapsed());
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let wall = t0.elapsed();
    let lat = Samples::new(latencies.into_inner().expect("lock"));
    let errors = errors.into_inner();
    Ok(format!(
        "| burst: {devices} devices × {n} records, one sync each, {conc} connections at a time | {wall:.1} s, {rps:.0} records/s |
| burst: latency of one device's sync, p50 / p99 / max | {p50} / {p99} / {max} |
| **burst: errors** | **{errors}** (target: 0) |
",
        devices = p.devices,
        n = p.burst_records,
        conc = p.concurrency,
        wall = wall.as_secs_f64(),
        rps = (p.devices * p.burst_records) as f64 / wall.as_secs_f64(),
        p50 = ms(lat.p50()),
        p99 = ms(lat.p99()),
        max = ms(lat.quantile(1.0)),
    ))
}
