//! The coordinator workspace at a national election's size (issue 16):
//! 10,000 stations in the registry, 1,000 devices, 1,000,000 records. The
//! coverage view and the review queue over HTTPS, p50 and p99, beside the
//! floor measured in the same run (a `/healthz` round trip on the same
//! connection, and the database reads the view needs, done raw); and what
//! one live refresh costs the server for each coordinator watching.

use std::path::Path;
use std::time::{Duration, Instant};

use observer_core::identity::SigningKey;
use observer_core::protocol::Heartbeat;
use observer_core::record::{
    ChainPosition, NewRecord, Sha256Digest, VerifiedRecord, sign_record, verify_envelope,
};
use observer_server::accounts::{Account, Role, hash_password};
use observer_server::coordinator::Coordinator;
use observer_server::registry::{RegistryVersion, Station, digest};
use observer_server::storage::{FormCheck, Incoming, NewToken, Storage};
use observer_server::unlock::Unlock;
use serde_json::json;

use crate::local::LocalCoordinator;
use crate::report::{Samples, machine, ms};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct Params {
    pub stations: usize,
    pub devices: usize,
    pub records: usize,
    /// Requests timed per view.
    pub requests: usize,
}

const REGIONS: usize = 20;
const DISTRICTS: usize = 25;
const PASSWORD: &str = "benchmark-password-long-enough";

fn station_id(i: usize) -> String {
    format!("KZ-{i:05}")
}

fn registry(n: usize) -> Vec<Station> {
    (0..n)
        .map(|i| Station {
            id: station_id(i),
            name: format!("School {i}"),
            region: format!("Region {:02}", i % REGIONS),
            district: format!(
                "District {:02}-{:02}",
                i % REGIONS,
                (i / REGIONS) % DISTRICTS
            ),
            address: format!("Street {i}"),
            registered_voters: 1500,
            location: None,
        })
        .collect()
}

/// The `n`-th record of a device at `station`: the day's forms in turn,
/// one in ten an incident (a third of those critical), one in twenty
/// flagged by its form check.
fn record(station: &str, n: usize) -> (NewRecord, bool) {
    let (form, kind, payload) = match n % 10 {
        0 => (
            "opening",
            "checklist",
            json!({"opened_on_time": !n.is_multiple_of(3)}),
        ),
        1..=5 => ("voting", "checklist", json!({"voters_in_queue": n % 40})),
        6 => ("closing", "checklist", json!({"seals_intact": true})),
        7 => (
            "counting",
            "results",
            json!({"ballots_cast": 900, "party_1": n % 500, "count_announced": true}),
        ),
        8 => ("access", "access", json!({"event": "admitted"})),
        _ => {
            let kinds = [
                "ballot_stuffing",
                "improper_sealing",
                "recording_prohibited",
            ];
            ("incident", "incident", json!({ "type": kinds[n / 10 % 3] }))
        }
    };
    let new = NewRecord::builder(station, form, 1, kind)
        .payload(payload)
        .build()
        .expect("valid record");
    (new, n % 20 != 19)
}

/// Enrolls `p.devices` devices and stores `p.records` records among them,
/// straight through the storage (the same statements ingest uses; the
/// HTTP path is measured by the server benchmark).
fn fill(storage: &dyn Storage, p: &Params) -> Result<Duration> {
    let t0 = Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let stations = registry(p.stations);
    storage.import_registry(
        None,
        &RegistryVersion {
            version: 1,
            imported_at_ms: now,
            digest: digest(&stations),
            stations: stations.len() as u64,
            added: stations.len() as u64,
            changed: 0,
            removed: 0,
        },
        &stations,
    )?;
    let per_device = p.records / p.devices;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = std::sync::mpsc::sync_channel::<(SigningKey, Vec<Incoming>)>(workers * 2);
    std::thread::scope(|s| -> Result<()> {
        for w in 0..workers {
            let tx = tx.clone();
            s.spawn(move || {
                for d in (w..p.devices).step_by(workers) {
                    let key = SigningKey::generate().expect("key");
                    // Devices spread over the registry, and so over every
                    // region and district: 7919 is a prime that does not
                    // divide the station count, so no two of fewer devices
                    // than stations share one.
                    let station = station_id(d * 7919 % p.stations);
                    let mut pos = ChainPosition::first(&key);
                    let mut batch = Vec::with_capacity(per_device);
                    for n in 0..per_device {
                        let (new, clean) = record(&station, n);
                        let env = sign_record(&new, &pos, &key).expect("signs");
                        pos = pos.after(env.id());
                        let verified: VerifiedRecord =
                            verify_envelope(&env, &key.public_key()).expect("verifies");
                        batch.push(Incoming {
                            record: verified,
                            check: FormCheck {
                                clean,
                                json: "{}".into(),
                            },
                            sealed: None,
                        });
                    }
                    if tx.send((key, batch)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for (i, (key, batch)) in rx.into_iter().enumerate() {
            let hash = Sha256Digest::of(format!("bench token {i}").as_bytes());
            let station = batch[0].record.body.station.as_str().to_string();
            storage.add_token(
                &NewToken {
                    hash,
                    stations: vec![station],
                    name: Some(format!("Observer {i}")),
                    expires_at_ms: now + 3_600_000,
                },
                now,
            )?;
            storage
                .enroll(&hash, &key.public_key(), None, now)?
                .map_err(|e| format!("enroll: {e:?}"))?;
            let device = key.public_key().device_id();
            for chunk in batch.chunks(500) {
                let hb = Heartbeat {
                    device: device.clone(),
                    seq: chunk.last().map_or(0, |r| r.record.body.seq),
                    head: None,
                    at_ms: now,
                };
                storage.ingest(&device, Some(&hb), chunk, now)?;
            }
        }
        Ok(())
    })?;
    Ok(t0.elapsed())
}

/// A signed-in client: the session and login cookies as a header.
struct Session {
    client: reqwest::blocking::Client,
    url: String,
    cookie: String,
}

impl Session {
    fn sign_in(url: &str, name: &str) -> Result<Session> {
        let client = reqwest::blocking::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let login = client.get(format!("{url}/login")).send()?;
        let nonce_cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__Host-observer_login="))
            .and_then(|v| v.split(';').next())
            .ok_or("no login cookie")?
            .to_string();
        let nonce = nonce_cookie
            .split_once('=')
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let answer = client
            .post(format!("{url}/login"))
            .header("cookie", &nonce_cookie)
            .header("origin", url)
            .header("content-type", "application/x-www-form-urlencoded")
            // Every value is URL-safe as it is.
            .body(format!("name={name}&password={PASSWORD}&nonce={nonce}"))
            .send()?;
        let session = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__Host-observer_session="))
            .and_then(|v| v.split(';').next())
            .ok_or("no session cookie: sign-in failed")?
            .to_string();
        Ok(Session {
            client,
            url: url.to_string(),
            cookie: session,
        })
    }

    fn get(&self, path: &str) -> Result<(Duration, usize)> {
        let t = Instant::now();
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()?;
        let status = r.status();
        let body = r.bytes()?;
        let took = t.elapsed();
        if !status.is_success() {
            return Err(format!("{path}: {status}").into());
        }
        Ok((took, body.len()))
    }

    /// The body of `path`, as text.
    fn text(&self, path: &str) -> Result<String> {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()?;
        if !r.status().is_success() {
            return Err(format!("{path}: {}", r.status()).into());
        }
        Ok(r.text()?)
    }

    /// `n` timed requests of `path` (after two untimed ones).
    fn time(&self, path: &str, n: usize) -> Result<(Samples, usize)> {
        self.get(path)?;
        let (_, bytes) = self.get(path)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.get(path)?.0);
        }
        Ok((Samples::new(v), bytes))
    }
}

/// CPU time this process has used, all threads (the server runs in it;
/// the client's share is counted too, so the figure is an upper bound).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

pub fn run(scratch: &Path, p: &Params, command: &str) -> Result<String> {
    let dir = tempfile::tempdir_in(scratch)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
    let unlock = Unlock::KeyFile(dir.path().join("server.key"));
    let coordinator = Coordinator::init(&dir.path().join("server"), &url, "bench", &unlock)?;
    let fill_time = fill(coordinator.storage.as_ref(), p)?;
    let now = chrono::Utc::now().timestamp_millis();
    coordinator
        .storage
        .account_store()
        .add_account(&Account::new(
            "bench",
            Role::Admin,
            None,
            hash_password(PASSWORD)?,
            now,
        )?)?;
    // A coordinator of one region: every list filtered to it, every
    // record it opens looked up in the registry.
    coordinator
        .storage
        .account_store()
        .add_account(&Account::new(
            "bench-region",
            Role::Coordinator,
            Some("Region 07".into()),
            hash_password(PASSWORD)?,
            now,
        )?)?;
    // Opening was due an hour ago: nine stations in ten are late.
    let mut plan = observer_server::coverage::DayPlan::default();
    plan.deadlines
        .insert(observer_server::triage::Phase::Opening, now - 3_600_000);
    observer_server::coverage::set_plan(coordinator.storage.as_ref(), &plan)?;
    let held = coordinator.storage.totals()?.records;
    let db_bytes = std::fs::metadata(dir.path().join("server").join("server.db"))
        .map(|m| m.len())
        .unwrap_or(0);

    // The database floor: what coverage reads, read raw.
    let raw = rusqlite::Connection::open(dir.path().join("server").join("server.db"))?;
    let mut raw_samples = Vec::new();
    for _ in 0..p.requests {
        let t = Instant::now();
        let mut n = 0u64;
        for sql in [
            "SELECT station, phase, first_captured, first_received, records FROM station_phases",
            "SELECT id, name, region, district, address, registered_voters FROM registry_stations WHERE version = 1",
        ] {
            let mut stmt = raw.prepare_cached(sql)?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {
                n += 1;
            }
        }
        assert!(n > 0);
        raw_samples.push(t.elapsed());
    }
    let raw_floor = Samples::new(raw_samples);
    drop(raw);

    let local = LocalCoordinator::serve(coordinator, listener, &unlock)?;
    let s = Session::sign_in(&local.url, "bench")?;
    let (healthz, _) = s.time("/healthz", p.requests)?;
    let deep = format!("/api/v1/queue?after=2-{}", held * 9 / 10);
    let views: Vec<(&str, String)> = vec![
        ("coverage, JSON, whole country", "/api/v1/coverage".into()),
        (
            "coverage, JSON, one region",
            "/api/v1/coverage?region=Region%2007".into(),
        ),
        (
            "coverage page (HTML, what a live refresh fetches)",
            "/coverage".into(),
        ),
        (
            "review queue, first page (critical first)",
            "/api/v1/queue".into(),
        ),
        ("review queue, a page 90% of the way down", deep),
        (
            "review queue, one category",
            "/api/v1/queue?category=ballot_stuffing".into(),
        ),
        (
            "review queue, one region",
            "/api/v1/queue?region=Region%2007".into(),
        ),
        ("review queue page (HTML)", "/queue".into()),
        (
            "one record's view (corroboration, corrections)",
            "/api/v1/records/999".into(),
        ),
    ];
    let mut rows = String::new();
    let mut coverage_p50 = Duration::ZERO;
    let mut queue_p50 = Duration::ZERO;
    for (what, path) in &views {
        let (samples, bytes) = s.time(path, p.requests)?;
        if path == "/coverage" {
            coverage_p50 = samples.p50();
        }
        if path == "/api/v1/queue" {
            queue_p50 = samples.p50();
        }
        rows.push_str(&format!(
            "| {what} (`{path}`) | {} | {} | {:.0} KiB |\n",
            ms(samples.p50()),
            ms(samples.p99()),
            bytes as f64 / 1024.0
        ));
    }
    // The same views as a coordinator of one region sees them.
    let regional = Session::sign_in(&local.url, "bench-region")?;
    let first: serde_json::Value = serde_json::from_str(&regional.text("/api/v1/queue")?)?;
    let index = first["items"][0]["index"]
        .as_u64()
        .ok_or("the region's queue is empty")?;
    for (what, path) in [
        (
            "regional coordinator: its queue (the region forced)",
            "/api/v1/queue".to_string(),
        ),
        (
            "regional coordinator: its coverage",
            "/api/v1/coverage".to_string(),
        ),
        (
            "regional coordinator: one of its records (checked against the registry)",
            format!("/api/v1/records/{index}"),
        ),
    ] {
        let (samples, bytes) = regional.time(&path, p.requests)?;
        rows.push_str(&format!(
            "| {what} (`{path}`) | {} | {} | {:.0} KiB |\n",
            ms(samples.p50()),
            ms(samples.p99()),
            bytes as f64 / 1024.0
        ));
    }
    // A live refresh: the page fetched again, as live.js does every 5 s.
    let refreshes = p.requests;
    let cpu0 = cpu_time();
    for _ in 0..refreshes {
        s.get("/coverage")?;
    }
    let per_refresh = (cpu_time() - cpu0) / refreshes as u32;
    let every = Duration::from_secs(5);
    let per_core = every.as_secs_f64() / per_refresh.as_secs_f64();
    local.stop()?;

    Ok(format!(
        "## Workspace at a national election's size (issue 16)

Machine: {machine}.
Command: `{command}`.
{stations} stations in the registry ({REGIONS} regions of {DISTRICTS} districts), {devices} devices
(each at its own station, spread over every region), {held} records stored (filled through the storage's
ingest in {fill:.0} s: the day's forms in turn, one in ten an incident);
database {db:.0} MiB, SQLite (the embedded default). An admin signed in over
loopback HTTPS (TLS 1.3, one kept-alive connection); {n} requests per view
after two untimed ones, one at a time. Times are the client's, so they
include TLS and transfer.

| View | p50 | p99 | answer |
| --- | --- | --- | --- |
| floor: `/healthz` round trip on the same connection | {h50} | {h99} | |
| floor: the rows coverage reads (station phases, the registry), read raw with rusqlite | {r50} | {r99} | |
{rows}
Target: under 200 ms p50 for the coverage view and the review queue:
coverage page {cov} p50, queue {queue} p50.

**One live refresh** (the coverage page fetched again, as the page's
script does every 5 s) costs {refresh} of CPU (server and client in this one
process: an upper bound for the server). One core keeps about {per_core:.0}
coordinators watching live at that pace; each adds {share:.1}% of a core.
",
        machine = machine(dir.path()),
        stations = p.stations,
        devices = p.devices,
        fill = fill_time.as_secs_f64(),
        db = db_bytes as f64 / (1024.0 * 1024.0),
        n = p.requests,
        h50 = ms(healthz.p50()),
        h99 = ms(healthz.p99()),
        r50 = ms(raw_floor.p50()),
        r99 = ms(raw_floor.p99()),
        cov = ms(coverage_p50),
        queue = ms(queue_p50),
        refresh = ms(per_refresh),
        share = 100.0 / per_core,
    ))
}
