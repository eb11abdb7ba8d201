//! Test support: a real `observer-server` process on loopback, phones built
//! on the real core, and a fault-injecting TCP proxy.
#![allow(dead_code)] // each test binary uses a different part of it

pub mod witness;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use observer_core::identity::{FileKeyStore, PublicKey, SigningKey};
use observer_core::protocol::EnrollmentCode;
use observer_core::store::{OnTampering, Store};
use observer_core::sync::enroll;
#[allow(unused_imports)] // not every test binary cuts links
pub use observer_testkit::FaultProxy;

pub mod sms;
pub mod web;

pub const BIN: &str = env!("CARGO_BIN_EXE_observer-server");

/// The ring provider as the process default, for reqwest clients in tests.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Where a test server's unlock key lives: beside its data directory
/// (never inside it, which the server refuses).
pub fn key_file(data: &Path) -> PathBuf {
    data.with_extension("key")
}

/// `observer-server --data DATA` with the key that unlocks DATA's keys.
pub fn command(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data")
        .arg(data)
        .env("OBSERVER_SERVER_KEY_FILE", key_file(data));
    c
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real server process.
pub struct Server {
    pub data: PathBuf,
    pub port: u16,
    serve_args: Vec<String>,
    log: Option<PathBuf>,
    child: Option<Child>,
    /// An analyst's signed-in browser for [`Server::view`], kept: sign-ins
    /// from one address are rate-limited.
    viewer: std::sync::Mutex<Option<web::Browser>>,
}

impl Server {
    /// Initialises a data directory and starts serving it.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// [`Server::start`] with more `serve` flags (shorter limits, say).
    pub fn start_with(data: &Path, serve_args: &[&str]) -> Self {
        Self::start_logged(data, serve_args, None)
    }

    /// [`Server::start_with`], its logs (stderr) appended to `log`.
    pub fn start_logged(data: &Path, serve_args: &[&str], log: Option<&Path>) -> Self {
        let port = free_port();
        let out = command(data)
            .args([
                "init",
                "--url",
                &format!("https://127.0.0.1:{port}"),
                "--org",
                "test-org",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Self {
            data: data.to_owned(),
            port,
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
            log: log.map(Path::to_path_buf),
            child: None,
            viewer: Default::default(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = command(&self.data)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(&self.serve_args)
            .stdout(Stdio::piped())
            .stderr(match &self.log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .unwrap(),
                ),
                None => Stdio::inherit(),
            })
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "server said {line:?}");
        // Keep draining, so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// The serving process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("serving").id()
    }

    /// The serving process's resident memory now and at its peak, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("serving");
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&c),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        c.wait().unwrap()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Runs an `observer-server` command on this data directory.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = command(&self.data).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn code(&self, station: &str) -> EnrollmentCode {
        EnrollmentCode::parse(self.cli(&["enroll", "--station", station, "--text"]).trim()).unwrap()
    }

    /// The server's database, read directly.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data.join("server.db")).unwrap()
    }

    pub fn record_count(&self) -> (u64, u64) {
        self.db()
            .query_row(
                "SELECT count(*), count(DISTINCT id) FROM records",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .unwrap()
    }

    /// The workspace's overview, as an analyst sees it.
    pub fn view(&self) -> String {
        let mut viewer = self.viewer.lock().unwrap();
        let b = viewer.get_or_insert_with(|| self.signed_in("viewer", "analyst"));
        let page = b.get("/");
        assert_eq!(page.status, 200, "{}", page.text);
        page.text
    }

    pub fn devices(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli(&["devices", "--json"])).unwrap()
    }

    pub fn coordinator_key(&self) -> PublicKey {
        let code = self.code("KEY-PROBE");
        code.coordinator
    }

    pub fn cert_der(&self) -> Vec<u8> {
        std::fs::read(self.data.join("tls/cert.der")).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A phone: the real core on its own directory.
pub fn phone(dir: &Path) -> Store {
    std::fs::create_dir_all(dir).unwrap();
    let keys = FileKeyStore::open_or_create(dir.join("device.kek")).unwrap();
    Store::open_with(dir, &keys, OnTampering::Continue).unwrap()
}

pub fn enrolled_phone(dir: &Path, server: &Server, station: &str) -> Store {
    let store = phone(dir);
    enroll(&store, &server.code(station), None).unwrap();
    store
}

/// What police with the phone could do: delete rows straight from its
/// database (`condition` is an SQL condition on `records`).
pub fn delete_records(phone_dir: &Path, condition: &str) {
    rusqlite::Connection::open(phone_dir.join(observer_core::store::DB_FILE))
        .unwrap()
        .execute(&format!("DELETE FROM records WHERE {condition}"), [])
        .unwrap();
}

pub fn record(station: &str, i: u64) -> observer_core::record::NewRecord {
    observer_core::record::NewRecord::builder(station, "voting", 1, "checklist")
        .payload(serde_json::json!({"n": i, "queue": i % 17, "note": "ballot box sealed, observers admitted"}))
        .build()
        .unwrap()
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The phone's device key, read from its directory as someone holding the
/// phone could (for requests the core would not make).
pub fn phone_key(dir: &Path) -> SigningKey {
    let keys = FileKeyStore::open_or_create(dir.join("device.kek")).unwrap();
    let wrapped: Vec<u8> = rusqlite::Connection::open(dir.join("observer.db"))
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'device_key'", [], |r| {
            r.get(0)
        })
        .unwrap();
    SigningKey::unwrap(&wrapped, &keys).unwrap()
}

/// A heartbeat signed by `key` for `store`'s device, in header form.
pub fn heartbeat_header(key: &SigningKey, store: &Store) -> String {
    let hb = observer_core::protocol::Heartbeat {
        device: store.device_id().clone(),
        seq: 0,
        head: None,
        at_ms: 0,
    };
    observer_core::protocol::Signed::sign(observer_core::protocol::HEARTBEAT_DOMAIN, &hb, key)
        .to_header()
}

/// A client for hand-made requests (the certificate is the test server's).
pub fn raw_client() -> reqwest::blocking::Client {
    install_crypto();
    reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A TLS client that trusts any certificate: the attacker's (an
/// intercepting proxy's upstream side, a flood of connections).
#[derive(Debug)]
pub struct AnyCert;
impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verify_tls12_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that trusts any certificate.
pub fn any_cert_client() -> std::sync::Arc<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert))
            .with_no_client_auth(),
    )
}

/// One sample of a Prometheus text exposition, by its full name and labels.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().unwrap())
    })
}

/// The server's `/metrics`, served on loopback at `port`.
pub fn scrape(port: u16) -> String {
    let r = raw_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    r.text().unwrap()
}

/// The log's leaves, read from the server's database.
pub fn leaves(server: &Server) -> Vec<observer_core::record::Sha256Digest> {
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT id FROM records ORDER BY log_index")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|id| observer_core::merkle::leaf_hash(&id.unwrap()))
        .collect()
}

/// History rewritten behind the server's back, the way someone with the
/// disk would do it so that the server still starts: a record the phone
/// delivered is deleted, the later ones moved down, the log's frontier
/// recomputed and its stored nodes dropped (the server rebuilds them).
pub fn rewrite_history(server: &Server, drop_index: i64) {
    let db = server.db();
    db.execute("DELETE FROM records WHERE log_index = ?1", [drop_index])
        .unwrap();
    let later: Vec<i64> = {
        let mut stmt = db
            .prepare("SELECT log_index FROM records WHERE log_index > ?1 ORDER BY log_index")
            .unwrap();
        stmt.query_map([drop_index], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for i in later {
        db.execute(
            "UPDATE records SET log_index = ?1 WHERE log_index = ?2",
            [i - 1, i],
        )
        .unwrap();
    }
    let mut frontier = observer_core::merkle::Frontier::new();
    for leaf in leaves(server) {
        frontier.push(leaf);
    }
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'frontier'",
        [serde_json::to_vec(&frontier).unwrap()],
    )
    .unwrap();
    db.execute("DELETE FROM log_nodes", []).unwrap();
}
