//! Scale-out, tried as a national deployment would run it: PostgreSQL (a
//! private cluster on loopback), several `observer-server serve` processes
//! on it made from copies of one data directory, HAProxy in TCP mode in
//! front (TLS passes through, so the phones' pins hold), and the faults a
//! long night brings: a node SIGKILLed mid-ingest, PostgreSQL restarted,
//! a media upload cut on one node and finished on another.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use observer_core::merkle::{Frontier, TreeHead, leaf_hash};
use observer_core::protocol::{RECEIPT_DOMAIN, Receipt, Signed};
use observer_core::record::{RecordId, Sha256Digest};
use observer_core::store::{Query, Store};
use observer_core::sync::{RetryKind, SyncOptions, sync};
use observer_testkit::{Haproxy, PgCluster};
use support::*;

/// Copies a directory tree (a node's data directory is a copy of the
/// first one: it holds no data and no key).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// One `observer-server serve` process.
struct Node {
    data: PathBuf,
    port: u16,
    database: String,
    /// More environment (the object store's endpoint and credentials).
    env: Vec<(String, String)>,
    /// More `serve` flags.
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let mut child = command(&self.data)
            .env("OBSERVER_DATABASE_URL", &self.database)
            .envs(self.env.iter().cloned())
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            // Behind a TCP load balancer every phone arrives from its
            // address: the per-address caps are the balancer's to keep.
            .args(["--max-connections-per-address", "4096"])
            .args(["--rate-per-address", "100000"])
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.contains("listening"),
            "node said {line:?}; its log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Adds a workspace account with `role` through this node's command line.
    fn add_user(&self, name: &str, role: &str) {
        let file = self.data.with_extension("password");
        std::fs::write(&file, web::PASSWORD).unwrap();
        let out = command(&self.data)
            .env("OBSERVER_DATABASE_URL", &self.database)
            .args(["users", "add", name, "--role", role, "--password-file"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The log's size and root as this node reports them (the workspace's
    /// overview, as JSON), asked with `session`'s cookie.
    fn tree(&self, session: &mut web::Browser) -> (u64, String) {
        session.base = self.url();
        let answer = session.get("/api/v1/overview");
        assert_eq!(answer.status, 200, "{}", answer.text);
        let v: serde_json::Value = serde_json::from_str(&answer.text).unwrap();
        (
            v["tree_size"].as_u64().unwrap(),
            v["tree_root"].as_str().unwrap().to_string(),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator initialised on PostgreSQL, and `n` nodes serving it.
struct Deployment {
    dir: tempfile::TempDir,
    pg: PgCluster,
    database: String,
    db_name: String,
    first: PathBuf,
    nodes: Vec<Node>,
    /// The address in the enrollment codes (the balancer's).
    front_port: u16,
}

/// Where a deployment keeps evidence media.
enum MediaAt {
    /// A directory every node mounts (`DIR/shared-media`).
    Shared,
    /// An S3 bucket: its URL and the environment that reaches it.
    Objects(String, Vec<(String, String)>),
}

impl Deployment {
    fn new(n: usize) -> Self {
        Self::with_media(n, MediaAt::Shared)
    }

    fn with_media(n: usize, media: MediaAt) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = PgCluster::start();
        let db_name = pg.create_database();
        let database = pg.url(&db_name);
        let front_port = free_port();
        let first = dir.path().join("coordinator");
        let mut init = command(&first);
        init.env("OBSERVER_DATABASE_URL", &database)
            .args(["init", "--url", &format!("https://127.0.0.1:{front_port}")])
            .args(["--org", "test-org"]);
        let env = match &media {
            MediaAt::Shared => {
                init.arg("--media-dir").arg(dir.path().join("shared-media"));
                Vec::new()
            }
            MediaAt::Objects(url, env) => {
                init.args(["--media-store", url]).envs(env.iter().cloned());
                env.clone()
            }
        };
        let out = init.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = std::fs::read_to_string(first.join("config.json")).unwrap();
        assert!(
            !config.contains(observer_testkit::postgres::PASSWORD),
            "the directory keeps the database without its password: {config}"
        );
        assert!(
            !first.join("server.db").exists(),
            "no SQLite beside PostgreSQL"
        );
        let nodes = (0..n)
            .map(|i| {
                let data = dir.path().join(format!("node-{i}"));
                copy_dir(&first, &data);
                std::fs::copy(key_file(&first), key_file(&data)).unwrap();
                let mut node = Node {
                    log: dir.path().join(format!("node-{i}.log")),
                    data,
                    port: free_port(),
                    database: database.clone(),
                    env: env.clone(),
                    args: Vec::new(),
                    child: None,
                };
                node.spawn();
                node
            })
            .collect();
        Self {
            dir,
            pg,
            database,
            db_name,
            first,
            nodes,
            front_port,
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = command(&self.first)
            .env("OBSERVER_DATABASE_URL", &self.database)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn sql(&self, sql: &str) -> String {
        self.pg.psql(&self.db_name, sql)
    }

    /// A phone enrolled with a code whose address is the balancer's.
    fn phone(&self, name: &str, station: &str) -> Store {
        let p = phone(&self.dir.path().join(name));
        let code = observer_core::protocol::EnrollmentCode::parse(
            self.cli(&["enroll", "--station", station, "--text"]).trim(),
        )
        .unwrap();
        assert_eq!(code.url, format!("https://127.0.0.1:{}", self.front_port));
        observer_core::sync::enroll(&p, &code, None).unwrap();
        p
    }
}

/// Syncs until nothing is pending, riding out refusals and cut links
/// (what the apps' workers do), within `deadline`.
fn sync_until_done(p: &Store, deadline: Instant) -> u32 {
    // Small batches, so that each phone makes many requests and the
    // faults land in the middle of the work.
    let opts = SyncOptions {
        timeout: Duration::from_secs(20),
        batch_records: 10,
        ..SyncOptions::default()
    };
    let mut failures = 0;
    loop {
        assert!(Instant::now() < deadline, "the phone never finished");
        match sync(p, &opts) {
            Ok(s) if s.remaining == 0 => return failures,
            Ok(_) => {}
            Err(e) => {
                assert_ne!(e.retry_kind(), RetryKind::Never, "{e}");
                failures += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn records_held(d: &Deployment) -> Option<u64> {
    d.pg.try_psql(&d.db_name, "SELECT count(*) FROM records")
        .ok()
        .and_then(|n| n.parse().ok())
}

/// The issue's acceptance run: three nodes on one PostgreSQL behind the
/// balancer; 50 phones with 200 records each sync at once; one node is
/// SIGKILLed mid-ingest and PostgreSQL restarted during the run.
#[test]
fn three_nodes_fifty_phones_a_killed_node_and_a_database_restart_lose_and_duplicate_nothing() {
    let mut d = Deployment::new(3);
    // The balancer names each client in a PROXY header, which the nodes
    // take from its address alone.
    for n in &mut d.nodes {
        n.kill();
        n.args = vec![
            "--proxy-protocol-from".into(),
            observer_testkit::haproxy::BALANCER_ADDRESS.into(),
        ];
        n.spawn();
    }
    let ports: Vec<u16> = d.nodes.iter().map(|n| n.port).collect();
    let _front = Haproxy::start_with(d.dir.path(), d.front_port, &ports, true);
    let phones: Vec<Store> = (0..50)
        .map(|i| {
            let station = format!("KZ-{i:04}");
            let p = d.phone(&format!("phone-{i}"), &station);
            let batch: Vec<_> = (0..200).map(|n| record(&station, n)).collect();
            p.save_all(&batch).unwrap();
            p
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = AtomicBool::new(false);
    let (killed_at, restarted_at) = std::thread::scope(|s| {
        let workers: Vec<_> = phones
            .iter()
            .map(|p| s.spawn(move || sync_until_done(p, deadline)))
            .collect();
        // The night's faults, while the phones sync.
        let chaos = s.spawn(|| {
            wait_until("records to arrive", Duration::from_secs(120), || {
                records_held(&d).is_some_and(|n| n >= 1500)
            });
            let killed_at = records_held(&d).unwrap();
            d.nodes[1].kill();
            wait_until("more records to arrive", Duration::from_secs(120), || {
                records_held(&d).is_some_and(|n| n >= killed_at + 2500)
                    || done.load(Ordering::Relaxed)
            });
            let restarted_at = records_held(&d).unwrap();
            d.pg.restart();
            (killed_at, restarted_at)
        });
        let failures: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, Ordering::Relaxed);
        let (k, r) = chaos.join().unwrap();
        eprintln!(
            "node killed at {k} records, PostgreSQL restarted at {r}; {failures} failed syncs retried"
        );
        (k, r)
    });
    assert!(
        killed_at < 10_000 && restarted_at < 10_000,
        "the faults landed mid-run"
    );

    // Exactly 10,000 records, each once.
    assert_eq!(
        d.sql("SELECT count(*), count(DISTINCT id) FROM records"),
        "10000|10000"
    );
    assert_eq!(
        d.sql("SELECT count(*) FROM records r WHERE log_index >= 10000 OR log_index < 0"),
        "0"
    );
    // The log recomputed from the records in index order.
    let mut f = Frontier::new();
    for hex in d
        .sql("SELECT encode(id, 'hex') FROM records ORDER BY log_index")
        .lines()
    {
        f.push(leaf_hash(&hex::decode(hex).unwrap()));
    }
    let root = f.root();

    // Every phone: nothing pending, every receipt verifies and together
    // they cover exactly its records; the newest tree head is the log's.
    let coordinator = phones[0].enrollment().unwrap().coordinator;
    let mut newest: Option<TreeHead> = None;
    for p in &phones {
        let counts = p.counts().unwrap();
        assert_eq!((counts.pending, counts.delivered), (0, 200));
        let mut covered = HashSet::new();
        for stored in p.receipts().unwrap() {
            let signed: Signed = serde_json::from_slice(&stored.bytes).unwrap();
            let receipt: Receipt = signed
                .open("receipt", RECEIPT_DOMAIN, &coordinator)
                .unwrap();
            covered.extend(
                receipt
                    .accepted
                    .iter()
                    .chain(&receipt.already)
                    .map(|a| a.id),
            );
            if newest.is_none_or(|t| receipt.tree.size > t.size) {
                newest = Some(receipt.tree);
            }
        }
        let mine: HashSet<RecordId> = p
            .list(&Query::new())
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(covered, mine);
    }
    let newest = newest.unwrap();
    assert_eq!((newest.size, newest.root), (10_000, root));

    // The killed node comes back; every node tells the same log.
    d.nodes[1].spawn();
    // One sign-in, on one node, holds on every node: sessions live in
    // the database.
    d.nodes[0].add_user("analyst", "analyst");
    let mut session = web::Browser::new(&d.nodes[0].url());
    assert_eq!(session.login("analyst", web::PASSWORD).status, 303);
    for n in &d.nodes {
        assert_eq!(
            n.tree(&mut session),
            (10_000, root.to_string()),
            "node on port {}",
            n.port
        );
    }
}

/// A 12 MiB clip's upload cut mid-file on node 0 (behind a proxy that cuts
/// after 3 to 5 MiB), then finished through node 1. `held` says how many
/// bytes the deployment kept of it after the cut (None: not observable
/// from outside); returns the clip, its hash and the bytes the phone sent
/// to the second node.
fn cut_on_one_node_finished_on_another(
    d: &Deployment,
    held: impl Fn() -> Option<u64>,
) -> (Vec<u8>, Sha256Digest, u64) {
    let ports: Vec<u16> = d.nodes.iter().map(|n| n.port).collect();
    let _front = Haproxy::start(d.dir.path(), d.front_port, &ports);
    let p = d.phone("phone", "KZ-0001");
    let data: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = d.dir.path().join("clip.mp4");
    std::fs::write(&path, &data).unwrap();
    let m = p
        .import_media(
            &path,
            "video/mp4",
            observer_core::media::PhotoTags::Remove,
            None,
        )
        .unwrap();
    p.save(
        observer_core::record::NewRecord::builder("KZ-0001", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing"}))
            .attachment(m.sha256.to_string(), m.bytes, "video/mp4")
            .build()
            .unwrap(),
    )
    .unwrap();
    // Node 0 behind a link that is cut after 3 to 5 MiB.
    let proxy = FaultProxy::upstream(d.nodes[0].port, 3 << 20, 5 << 20, 0x5ca1e);
    let mut e = p.enrollment().unwrap();
    e.url = format!("https://127.0.0.1:{}", proxy.port);
    p.set_enrollment(&e).unwrap();
    let opts = SyncOptions {
        timeout: Duration::from_secs(20),
        ..SyncOptions::default()
    };
    let first = sync(&p, &opts);
    assert!(
        first.as_ref().map_or(true, |s| s.media_delivered == 0),
        "the first node must not receive it all: {first:?}"
    );
    assert!(proxy.cuts.load(Ordering::Relaxed) >= 1, "the link was cut");
    // The node still stores what reached it before the cut: wait until
    // what it holds stops growing.
    let mut before = held();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = held();
        if now == before {
            break;
        }
        before = now;
    }
    assert!(before != Some(0), "the first node kept what reached it");

    // The phone's next sync reaches the other node, which resumes.
    e.url = d.nodes[1].url();
    p.set_enrollment(&e).unwrap();
    let mut sent = 0;
    for _ in 0..20 {
        match sync(&p, &opts) {
            Ok(s) => {
                sent += s.media_bytes_sent;
                if s.media_delivered == 1 {
                    break;
                }
            }
            Err(e) => assert_ne!(e.retry_kind(), RetryKind::Never, "{e}"),
        }
    }
    assert!(
        p.media().unwrap()[0].delivered,
        "delivered through the second node"
    );
    assert!(
        0 < sent && sent < m.bytes,
        "resumed, not sent again: {sent}"
    );
    if let Some(before) = before {
        assert_eq!(
            sent,
            m.bytes - before,
            "resumed where the first node stopped"
        );
    }
    assert_eq!(
        d.sql(&format!(
            "SELECT bytes FROM media WHERE sha256 = '{}'",
            m.sha256
        )),
        data.len().to_string()
    );
    (data, m.sha256, sent)
}

/// ... in the directory every node mounts: the file hashes right.
#[test]
fn a_media_upload_cut_on_one_node_completes_through_another() {
    let d = Deployment::new(2);
    let shared = d.dir.path().join("shared-media");
    let held = || {
        Some(
            std::fs::read_dir(shared.join("partial"))
                .map(|d| {
                    d.filter_map(|e| e.ok()?.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0),
        )
    };
    let (data, sha, _) = cut_on_one_node_finished_on_another(&d, held);
    let hex = sha.to_string();
    let stored = std::fs::read(shared.join(&hex[..2]).join(&hex)).unwrap();
    assert_eq!(Sha256Digest::of(&stored), sha);
    assert!(stored == data);
}

/// An S3-compatible server on loopback (moto's, from PyPI), with one
/// bucket; killed when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; tests/run does it)");
        wait_until("the S3 server to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let s = Self { child, port };
        let made = raw_client()
            .put(s.url(&format!("/{bucket}")))
            .send()
            .unwrap();
        assert!(made.status().is_success(), "{}", made.text().unwrap());
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the nodes need in their environment to reach it.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.url("")),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "observer-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "observer-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ... in object storage (a real S3-compatible server): the object at the
/// content address hashes right, and `media verify` reads it back.
#[test]
fn a_media_upload_cut_on_one_node_completes_through_another_in_object_storage() {
    let s3 = S3Server::start("evidence");
    let d = Deployment::with_media(
        2,
        MediaAt::Objects("s3://evidence/kz-2026".into(), s3.env()),
    );
    let (data, sha, _) = cut_on_one_node_finished_on_another(&d, || None);
    let hex = sha.to_string();
    let stored = raw_client()
        .get(s3.url(&format!("/evidence/kz-2026/{}/{hex}", &hex[..2])))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(Sha256Digest::of(&stored), sha);
    assert!(stored.as_ref() == data.as_slice());
    let listing = raw_client()
        .get(s3.url("/evidence?list-type=2&prefix=kz-2026/partial/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!listing.contains("<Key>"), "no pieces left: {listing}");
    let out = command(&d.first)
        .env("OBSERVER_DATABASE_URL", &d.database)
        .envs(s3.env())
        .args(["media", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 media files intact"));
}

/// Bad configuration is named, and nothing serves on it.
#[test]
fn bad_database_configuration_gets_a_clear_error() {
    let d = Deployment::new(0);
    let dir = d.dir.path();
    let try_init = |name: &str, database: &str| {
        let data = dir.join(name);
        let out = command(&data)
            .env("OBSERVER_DATABASE_URL", database)
            .args(["init", "--url", "https://127.0.0.1:1", "--org", "o"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} must fail");
        assert!(
            !data.join("config.json").exists(),
            "{name}: no half-made directory"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let port = d.pg.port();
    // Nothing listens there.
    let unreachable = try_init(
        "unreachable",
        &format!("postgres://observer@127.0.0.1:{}/x", free_port()),
    );
    assert!(
        unreachable.contains("cannot reach the database"),
        "{unreachable}"
    );
    // A wrong password, and the password never printed.
    let wrong = try_init(
        "wrong",
        &format!(
            "postgres://observer:not-the-password@127.0.0.1:{port}/{}",
            d.db_name
        ),
    );
    assert!(wrong.contains("refused the login"), "{wrong}");
    assert!(!wrong.contains("not-the-password"), "{wrong}");
    // A database that is not there.
    let missing = try_init("missing", &d.pg.url("no_such_database"));
    assert!(missing.contains("does not exist"), "{missing}");
    // The database is taken by the first coordinator already.
    let taken = try_init("taken", &d.database);
    assert!(taken.contains("already"), "{taken}");

    // A database from a newer Observer is refused, untouched.
    let newer = d.pg.create_database();
    d.pg.psql(&newer, "CREATE TABLE observer_schema (version INTEGER NOT NULL); INSERT INTO observer_schema VALUES (99)");
    let too_new = try_init("newer", &d.pg.url(&newer));
    assert!(too_new.contains("newer"), "{too_new}");
    assert_eq!(
        d.pg.psql(&newer, "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'"),
        "observer_schema",
        "left untouched"
    );
    assert_eq!(
        d.pg.psql(&newer, "SELECT version FROM observer_schema"),
        "99"
    );

    // A node pointed at another coordinator's database: same unlock key,
    // another coordinator key. It refuses to serve rather than sign with it.
    let other_db = d.pg.create_database();
    let other = dir.join("other");
    std::fs::copy(key_file(&d.first), key_file(&other)).unwrap();
    let out = command(&other)
        .env("OBSERVER_DATABASE_URL", d.pg.url(&other_db))
        .args(["init", "--url", "https://127.0.0.1:1", "--org", "o"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = command(&d.first)
        .env("OBSERVER_DATABASE_URL", d.pg.url(&other_db))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to sign with a second key"),
        "{stderr}"
    );

    // A SQLite directory does not silently switch to a database.
    let sqlite = dir.join("sqlite");
    let out = command(&sqlite)
        .args(["init", "--url", "https://127.0.0.1:1", "--org", "o"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = command(&sqlite)
        .env("OBSERVER_DATABASE_URL", &d.database)
        .args(["devices"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.db"));
}

/// A CA and a certificate for 127.0.0.1 signed by it (PEM), as an
/// operator's database would have.
fn database_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// With `sslmode=require` the connection is TLS, verified against the CA
/// the URL names and no other.
#[test]
fn the_database_link_is_tls_verified_against_the_named_ca() {
    let pg = PgCluster::start();
    let (ca, cert, key) = database_certificates();
    pg.enable_tls(&cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = database_certificates();
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_file, &other_ca).unwrap();
    let db = pg.create_database();
    let with = |ca: &Path| {
        format!(
            "{}?sslmode=require&sslrootcert={}",
            pg.url(&db),
            ca.display()
        )
    };
    let init = |name: &str, url: &str| {
        command(&dir.path().join(name))
            .env("OBSERVER_DATABASE_URL", url)
            .args(["init", "--url", "https://127.0.0.1:1", "--org", "o"])
            .output()
            .unwrap()
    };
    // Another CA: refused, nothing written.
    let out = init("wrong-ca", &with(&other_file));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the database"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // The server takes TCP logins over TLS only, so one that works was TLS.
    let plain = init("plain", &pg.url(&db));
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("no encryption"));
    let out = init("right-ca", &with(&ca_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devices = command(&dir.path().join("right-ca"))
        .env("OBSERVER_DATABASE_URL", with(&ca_file))
        .args(["devices"])
        .output()
        .unwrap();
    assert!(
        devices.status.success(),
        "{}",
        String::from_utf8_lossy(&devices.stderr)
    );
    // Asking for TLS without naming the CA is refused before connecting.
    let out = init("no-ca", &format!("{}?sslmode=require", pg.url(&db)));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sslrootcert"));
}

/// The balancer configuration `docs/operations.md` gives is one HAProxy
/// accepts.
#[test]
fn the_documented_haproxy_configuration_is_valid() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .unwrap();
    let after = doc
        .split("check this file with\n`haproxy -c`):")
        .nth(1)
        .expect("the section");
    let block = after
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the configuration block");
    assert!(
        block.contains("mode tcp") && block.contains("/healthz"),
        "{block}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, block).unwrap();
    let out = Command::new("/usr/sbin/haproxy")
        .args(["-c", "-f"])
        .arg(&file)
        .output()
        .expect("HAProxy is installed (tests/run does it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` over TLS on a fresh connection from 127.0.0.1, after
/// `preamble` (a PROXY header); the answer's status, or why none came.
fn status_via(port: u16, preamble: Option<&[u8]>, path: &str) -> Result<u16, String> {
    use std::io::{Read as _, Write as _};
    install_crypto();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if let Some(p) = preamble {
        tcp.write_all(p).map_err(|e| e.to_string())?;
    }
    let conn = rustls::ClientConnection::new(any_cert_client(), "127.0.0.1".try_into().unwrap())
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: observer\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))
}

/// Behind a balancer that speaks the PROXY protocol, the caps and rates
/// count the client it names, and only the listed balancer may name one.
#[test]
fn a_trusted_balancers_proxy_header_names_the_client_the_limits_count() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("server"),
        &[
            "--proxy-protocol-from",
            "127.0.0.1",
            "--rate-per-address",
            "1",
        ],
    );
    let me: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let header =
        |client: &str| observer_server::proxy_header::header_for(client.parse().unwrap(), me);
    // From the balancer's address, a connection without a header is closed.
    assert!(status_via(server.port, None, "/healthz").is_err());
    // One client named again and again runs out of its own burst ...
    let first = header("203.0.113.7:40001");
    let statuses: Vec<u16> = (0..15)
        .map(|_| status_via(server.port, Some(&first), "/healthz").unwrap())
        .collect();
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");
    // ... while another client behind the same balancer is served.
    let other = header("203.0.113.8:40002");
    assert_eq!(
        status_via(server.port, Some(&other), "/healthz").unwrap(),
        200
    );

    // A server that trusts no balancer reads a header as a broken handshake:
    // nobody can claim an address.
    let plain = Server::start(&dir.path().join("plain"));
    assert!(status_via(plain.port, Some(&first), "/healthz").is_err());
    assert_eq!(status_via(plain.port, None, "/healthz").unwrap(), 200);
}
