//! Issue 14's figures: ingest on PostgreSQL with one node and with three,
//! beside the embedded SQLite default and the raw signature-verification
//! limit, all in one run; the cost of the serialised log append per batch;
//! and the election-night burst through HAProxy onto three PostgreSQL
//! nodes.
//!
//! Every server is the release `observer-server` binary in its own process
//! (nodes are processes in a deployment); PostgreSQL is a private cluster
//! on loopback with `fsync` and `synchronous_commit` on.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use observer_core::identity::SigningKey;
use observer_core::record::verify_envelope;
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, enroll, sync};
use observer_server::coordinator::Coordinator;
use observer_server::storage::postgres::{DatabaseUrl, PostgresStorage};
use observer_server::storage::sqlite::SqliteStorage;
use observer_server::storage::{FormCheck, Incoming, NewToken, Storage};
use observer_server::unlock::Unlock;
use observer_testkit::{Haproxy, PgCluster};

use crate::report::{Samples, machine, ms};
use crate::sample::observation;
use crate::server_bench::{Params, burst, chain, phone, rate};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct ScaleParams {
    /// Phones in each ingest run.
    pub phones: usize,
    /// Records per phone in each ingest run.
    pub records: usize,
    /// Burst sizes (devices), each × `burst_records`.
    pub bursts: Vec<usize>,
    pub burst_records: usize,
    pub concurrency: usize,
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One `observer-server serve` process.
pub(crate) struct Node {
    child: Child,
    pub(crate) port: u16,
}

impl Node {
    fn start(bin: &Path, data: &Path, database: Option<&str>, extra: &[String]) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.arg("--data")
            .arg(data)
            .env("OBSERVER_SERVER_KEY_FILE", data.with_extension("key"))
            .env("OBSERVER_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // Every simulated phone comes from 127.0.0.1 (or from the
            // balancer): per-address caps are lifted so that the figures
            // are the server's. Every other limit is the default.
            .args(["--rate-per-address", "10000000"])
            .args(["--max-connections-per-address", "100000"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(db) = database {
            cmd.env("OBSERVER_DATABASE_URL", db);
        }
        let mut child = cmd.spawn()?;
        let mut out = BufReader::new(child.stdout.take().ok_or("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if !line.contains("listening") {
            return Err(format!("the node said {line:?}").into());
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Ok(Self { child, port })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A coordinator directory (SQLite, or PostgreSQL at `database`) whose
/// codes name `front_port`, and `nodes` copies of it serving.
pub(crate) struct Deployment {
    pub(crate) coordinator: Coordinator,
    pub(crate) nodes: Vec<Node>,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

impl Deployment {
    pub(crate) fn start(
        bin: &Path,
        dir: &Path,
        database: Option<&str>,
        nodes: usize,
        front_port: u16,
        extra: &[String],
    ) -> Result<Self> {
        let first = dir.join("coordinator");
        let unlock = Unlock::KeyFile(first.with_extension("key"));
        let placement = observer_server::coordinator::Placement {
            media_dir: Some(dir.join("media")),
            media_store: None,
            database: database.map(DatabaseUrl::parse).transpose()?,
        };
        let coordinator = Coordinator::init_with(
            &first,
            &format!("https://127.0.0.1:{front_port}"),
            "bench",
            &placement,
            &unlock,
        )?;
        let nodes = (0..nodes)
            .map(|i| {
                let data = if database.is_some() {
                    let data = dir.join(format!("node-{i}"));
                    copy_dir(&first, &data)?;
                    std::fs::copy(first.with_extension("key"), data.with_extension("key"))?;
                    data
                } else {
                    first.clone()
                };
                Node::start(bin, &data, database, extra)
            })
            .collect::<Result<_>>()?;
        Ok(Self { coordinator, nodes })
    }
}

/// CPU seconds used so far by the processes named `comm` (user and
/// system, from /proc; exited processes no longer count, so a run is
/// measured while its processes live).
pub(crate) fn cpu_seconds(comm: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        // Processes only: `/proc/self` and `/proc/thread-self` would count
        // the reading process again (and its reading thread a third time).
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... utime stime at fields 14 and 15.
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
        else {
            continue;
        };
        if name != comm {
            continue;
        }
        let fields: Vec<&str> = rest.split(' ').collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += field(11) + field(12);
    }
    total as f64 / ticks
}

/// Where the cores went during a run: CPU seconds per 1,000 records.
struct CpuSplit {
    postgres: f64,
    nodes: f64,
    phones: f64,
}

/// Records/s for `phones` real phones (core store and sync client) of
/// `records` each, batches of 500, spread over the nodes.
fn ingest(d: &Deployment, dir: &Path, p: &ScaleParams) -> Result<(f64, CpuSplit)> {
    let now = chrono::Utc::now().timestamp_millis();
    let phones: Vec<Store> = (0..p.phones)
        .map(|i| -> Result<Store> {
            let station = format!("KZ-{i:04}");
            let store = phone(&dir.join(format!("phone-{i}")))?;
            let mut code =
                d.coordinator
                    .issue_code(std::slice::from_ref(&station), None, 1, now)?;
            code.url = format!("https://127.0.0.1:{}", d.nodes[i % d.nodes.len()].port);
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
    let own = || cpu_seconds("observer-bench");
    let before = (
        cpu_seconds("postgres"),
        cpu_seconds("observer-server"),
        own(),
    );
    let t0 = Instant::now();
    let delivered: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = phones
            .iter()
            .map(|ph| s.spawn(|| sync(ph, &opts)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("no panic").map(|s| s.delivered()))
            .sum::<std::result::Result<u64, _>>()
    })?;
    let elapsed = t0.elapsed();
    let total = (p.phones * p.records) as u64;
    let per = 1000.0 / total as f64;
    let split = CpuSplit {
        postgres: (cpu_seconds("postgres") - before.0) * per,
        nodes: (cpu_seconds("observer-server") - before.1) * per,
        phones: (own() - before.2) * per,
    };
    if delivered != total {
        return Err(format!("{delivered} of {total} records delivered").into());
    }
    Ok((total as f64 / elapsed.as_secs_f64(), split))
}

/// The serialised section of an append, measured alone: one writer
/// committing verified batches through the storage trait, so that the time
/// per batch is the time the log's head is held. Median of `rounds`.
fn append_cost(storage: &dyn Storage, batch: usize, rounds: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let key = SigningKey::generate()?;
        let token = format!("append-{batch}-{r}");
        let hash = observer_core::record::Sha256Digest::of(token.as_bytes());
        storage.add_token(
            &NewToken {
                hash,
                stations: vec!["KZ-0001".into()],
                name: None,
                expires_at_ms: i64::MAX,
            },
            0,
        )?;
        storage
            .enroll(&hash, &key.public_key(), None, 0)?
            .map_err(|e| format!("{e:?}"))?;
        let pk = key.public_key();
        let incoming: Vec<Incoming> = chain(&key, "KZ-0001", batch)
            .iter()
            .map(|e| Incoming {
                record: verify_envelope(e, &pk).expect("valid"),
                check: FormCheck {
                    clean: true,
                    json: "{}".into(),
                },
                sealed: None,
            })
            .collect();
        let t0 = Instant::now();
        storage.ingest(&pk.device_id(), None, &incoming, 0)?;
        times.push(t0.elapsed());
    }
    Ok(Samples::new(times).p50())
}

pub fn run(scratch: &Path, p: &ScaleParams, command: &str) -> Result<String> {
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

    // The limit.
    let key = SigningKey::generate()?;
    let envs = chain(&key, "KZ-0001", 20_000);
    let pk = key.public_key();
    let (_, raw_all) = rate(&envs, |e| {
        let msg = [observer_core::record::SIGNING_DOMAIN, &e.body].concat();
        assert!(pk.verify(&msg, &e.sig));
    });

    // Ingest, three ways, each on a fresh database.
    let mut ingest_rates = Vec::new();
    for (name, nodes, postgres) in [("sqlite", 1, false), ("pg-1", 1, true), ("pg-3", 3, true)] {
        let at = dir.path().join(name);
        let database = postgres.then(|| pg.database());
        let d = Deployment::start(&bin, &at, database.as_deref(), nodes, 0, &[])?;
        let (rate, cpu) = ingest(&d, &at, p)?;
        eprintln!("ingest {name}: {rate:.0} records/s");
        ingest_rates.push((rate, cpu));
    }
    let (sqlite, pg1, pg3) = (ingest_rates[0].0, ingest_rates[1].0, ingest_rates[2].0);
    let cpu_rows: String = ["SQLite, 1 node", "PostgreSQL, 1 node", "PostgreSQL, 3 nodes"]
        .iter()
        .zip(&ingest_rates)
        .map(|(name, (_, c))| {
            format!(
                "| CPU seconds per 1,000 records, {name}: PostgreSQL / server nodes / phones (this process) | {:.2} / {:.2} / {:.2} (sum {:.2}) |\n",
                c.postgres,
                c.nodes,
                c.phones,
                c.postgres + c.nodes + c.phones
            )
        })
        .collect();

    // The serialised section per batch, on each backend.
    let sqlite_store = SqliteStorage::open(&dir.path().join("append.db"))?;
    let pg_store = PostgresStorage::open(&DatabaseUrl::parse(&pg.database())?)?;
    let mut append = Vec::new();
    for batch in [1, 20, 500] {
        let rounds = if batch == 500 { 20 } else { 200 };
        append.push((
            batch,
            append_cost(&sqlite_store, batch, rounds)?,
            append_cost(&pg_store, batch, rounds)?,
        ));
    }
    let append_rows: String = append
        .iter()
        .map(|(batch, s, pgt)| {
            format!(
                "| log append, batch of {batch}: time the log's head is held (p50), SQLite / PostgreSQL | {} / {} (PostgreSQL: at most {:.0} such batches/s across all nodes) |\n",
                ms(*s),
                ms(*pgt),
                1.0 / pgt.as_secs_f64()
            )
        })
        .collect();

    // The burst through the balancer onto three PostgreSQL nodes.
    let mut burst_rows = String::new();
    for &devices in &p.bursts {
        let at = dir.path().join(format!("burst-{devices}"));
        let front = free_port()?;
        let database = pg.database();
        let d = Deployment::start(&bin, &at, Some(&database), 3, front, &[])?;
        let ports: Vec<u16> = d.nodes.iter().map(|n| n.port).collect();
        let _lb = Haproxy::start(&at, front, &ports);
        let params = Params {
            phones: 0,
            records: 0,
            devices,
            burst_records: p.burst_records,
            concurrency: p.concurrency,
            logging: false,
        };
        let t0 = Instant::now();
        let rows = burst(
            &d.coordinator,
            &format!("https://127.0.0.1:{front}"),
            &params,
        )?;
        eprintln!(
            "burst of {devices} devices: {:.0} s",
            t0.elapsed().as_secs_f64()
        );
        burst_rows.push_str(&rows);
        let name = database.rsplit('/').next().unwrap_or_default();
        let held = pg.psql(name, "SELECT count(*), count(DISTINCT id) FROM records");
        let per_record = pg.psql(
            name,
            "SELECT (pg_total_relation_size('records') + pg_total_relation_size('devices')) / greatest(count(*), 1) FROM records",
        );
        burst_rows.push_str(&format!(
            "| burst of {devices}: records held afterwards (rows, distinct ids); bytes per record on disk (records and devices, with indexes) | {}; {per_record} B |\n",
            held.replace('|', ", ")
        ));
        drop(d);
        // The database of a finished burst is not needed again.
        let _ = pg.drop_database(&database);
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(format!(
        "## Scale-out: PostgreSQL, several nodes, the burst behind a balancer (issue 14)

Machine: {machine}.
Command: `cargo build --release -p observer-server && {command}`.
Each server is the release `observer-server` in its own process, default
limits except the per-address caps (every simulated phone comes from
127.0.0.1). PostgreSQL {pg_version} is a private cluster on loopback, `fsync`
and `synchronous_commit` on; SQLite is WAL with `synchronous = FULL`. The
phones, the nodes, PostgreSQL and (for the burst) HAProxy share the
machine's {cores} cores, so more nodes cannot add cores: what three nodes
show here is the cost of coordinating them, not the gain of more machines.

| Measurement | Figure |
| --- | --- |
| limit: raw Ed25519 verification (ring), all cores, median of 5 | {raw_all:.0} records/s |
| ingest, SQLite, 1 node: {phones} phones × {records} records, batches of 500 | {sqlite:.0} records/s ({sqlite_pct:.0}% of the limit) |
| ingest, PostgreSQL, 1 node, same load | {pg1:.0} records/s (**{pg1_vs:.0}% of SQLite**, target at least 50%) |
| ingest, PostgreSQL, 3 nodes, same load spread over them | {pg3:.0} records/s (**{pg3_vs:.2}× one node**, target 1.5× as far as the cores allow) |
{cpu_rows}{append_rows}{burst_rows}",
        machine = machine(dir.path()),
        pg_version = pg.psql("postgres", "SHOW server_version"),
        phones = p.phones,
        records = p.records,
        sqlite_pct = 100.0 * sqlite / raw_all,
        pg1_vs = 100.0 * pg1 / sqlite,
        pg3_vs = pg3 / pg1,
    ))
}
