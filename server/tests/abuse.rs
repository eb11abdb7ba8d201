//! Abusive clients on loopback, as an outside tester tried them: thousands
//! of idle TLS connections, a slowloris, unfinished 4 MiB bodies, oversized
//! bodies. Each runs against a real server process while a real phone
//! syncs; the phone's sync must complete and the server must close what the
//! attacker holds. The attackers come from other loopback addresses
//! (127.0.0.2 and up) so that the per-address cap applies to them and not
//! to the phone, as it would on a real network.
//!
//! Memory figures are printed here and measured in `bench` (docs/benchmarks.md);
//! the bound asserted is generous, so a slow machine does not fail it.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use observer_core::sync::{Backoff, SyncOptions, sync_with_retry};
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Limits short enough that the test does not wait long for them.
const SHORT: &[&str] = &[
    "--tls-handshake-timeout-secs",
    "3",
    "--header-timeout-secs",
    "3",
    "--body-grace-secs",
    "2",
    "--body-idle-secs",
    "3",
    "--bodies-in-flight-mib",
    "64",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
}

async fn connect_from(source: u8, port: u16) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
        0,
    ))?;
    sock.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_from(source: u8, port: u16) -> std::io::Result<Tls> {
    let tcp = connect_from(source, port).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(any_cert_client())
        .connect(name, tcp)
        .await
}

/// Waits until the server has closed `conn` (a read sees EOF or an error).
async fn closed_by_server(mut conn: Tls, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn phone_with_records(
    dir: &std::path::Path,
    server: &Server,
    n: u64,
) -> observer_core::store::Store {
    let p = enrolled_phone(dir, server, "S-1");
    p.save_all(&(0..n).map(|i| record("S-1", i)).collect::<Vec<_>>())
        .unwrap();
    p
}

fn sync_completes(p: &observer_core::store::Store, records: u64) {
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let s = sync_with_retry(p, &SyncOptions::default(), &backoff, 30).unwrap();
    assert_eq!(s.remaining, 0);
    assert_eq!(p.counts().unwrap().delivered, records);
}

#[test]
fn two_thousand_idle_tls_connections_do_not_lock_phones_out() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), SHORT);
    let phone = phone_with_records(&dir.path().join("phone"), &server, 100);
    let rt = runtime();
    let port = server.port;
    let held: Vec<Tls> = rt.block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..2000 {
            tasks.push(tokio::spawn(tls_from(2, port)));
        }
        let mut held = Vec::new();
        for t in tasks {
            if let Ok(Ok(c)) = t.await {
                held.push(c);
            }
        }
        held
    });
    eprintln!("{} of 2000 idle connections got through TLS", held.len());
    assert!(
        held.len() <= 256,
        "the per-address cap holds: {}",
        held.len()
    );
    assert!(held.len() >= 100, "the cap is not zero: {}", held.len());
    sync_completes(&phone, 100);
    // Idle after the handshake: closed once the header timeout passes.
    let closed = rt.block_on(async move {
        let mut tasks = Vec::new();
        for c in held {
            tasks.push(tokio::spawn(closed_by_server(c, Duration::from_secs(20))));
        }
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert_eq!(
        closed, 256,
        "every idle connection was closed by the server"
    );
    // Idle between requests (keep-alive): closed by the same timeout.
    let closed = rt.block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            tasks.push(tokio::spawn(async move {
                let mut c = tls_from(8, port).await.unwrap();
                c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 1024];
                let n = c.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
                closed_by_server(c, Duration::from_secs(20)).await
            }));
        }
        join_all(tasks).await
    });
    assert!(
        closed.iter().all(|c| *c),
        "idle keep-alive connections are closed"
    );
    let (rss, peak) = server.memory_kib();
    eprintln!("server memory: {rss} KiB now, {peak} KiB peak");
}

#[test]
fn a_slowloris_of_a_thousand_connections_is_cut_while_a_phone_syncs() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), SHORT);
    let phone = phone_with_records(&dir.path().join("phone"), &server, 100);
    let rt = runtime();
    let port = server.port;
    let open = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let (open, cut) = (open.clone(), cut.clone());
        // 250 from each of four addresses: under the per-address cap.
        let source = 3 + (i % 4) as u8;
        tasks.push(rt.spawn(async move {
            let Ok(mut c) = tls_from(source, port).await else {
                return None;
            };
            open.fetch_add(1, Ordering::Relaxed);
            let head = b"POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            for byte in head.iter().cycle() {
                if c.write_all(&[*byte]).await.is_err() || c.flush().await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                if started.elapsed() > Duration::from_secs(60) {
                    return Some(false);
                }
            }
            cut.fetch_add(1, Ordering::Relaxed);
            Some(true)
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    sync_completes(&phone, 100);
    let results: Vec<Option<bool>> = rt.block_on(join_all(tasks));
    let opened = open.load(Ordering::Relaxed);
    eprintln!(
        "{opened} slow connections opened, {} cut by the server in {:?}",
        cut.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(opened >= 900, "the slowloris really ran: {opened}");
    assert!(
        results.iter().flatten().all(|cut| *cut),
        "every slow connection was cut by the server"
    );
}

#[test]
fn two_hundred_unfinished_bodies_are_cut_and_memory_stays_bounded() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), SHORT);
    let phone = phone_with_records(&dir.path().join("phone"), &server, 50);
    let (before, _) = server.memory_kib();
    let rt = runtime();
    let port = server.port;
    let body = Arc::new(vec![b'{'; 4 * 1024 * 1024 - 1]);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let body = body.clone();
            rt.spawn(async move {
                let mut c = tls_from(7, port).await.ok()?;
                let head = format!(
                    "POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    4 * 1024 * 1024
                );
                c.write_all(head.as_bytes()).await.ok()?;
                // All but the last byte, then silence.
                let _ = c.write_all(&body).await;
                Some(closed_by_server(c, Duration::from_secs(30)).await)
            })
        })
        .collect();
    let mut peak_seen = 0;
    let sampler_stop = Instant::now() + Duration::from_secs(4);
    while Instant::now() < sampler_stop {
        peak_seen = peak_seen.max(server.memory_kib().0);
        std::thread::sleep(Duration::from_millis(100));
    }
    sync_completes(&phone, 50);
    let results: Vec<Option<bool>> = rt.block_on(join_all(tasks));
    let (after, peak) = server.memory_kib();
    eprintln!(
        "server memory: {before} KiB before, {peak_seen} KiB sampled peak, {peak} KiB high-water mark, {after} KiB after"
    );
    assert!(
        results.iter().flatten().all(|closed| *closed),
        "every unfinished body was cut: {results:?}"
    );
    // 64 MiB of bodies may be held; TLS and parser buffers for 200
    // connections come on top. Without the budget this was 834 MB.
    assert!(
        peak < before + 256 * 1024,
        "the server grew by {} KiB",
        peak - before
    );
}

async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[test]
fn a_five_mib_body_is_always_answered_413_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), SHORT);
    let client = raw_client();
    let body = vec![b' '; 5 * 1024 * 1024];
    for path in ["/v1/records", "/v1/sealed", "/v1/updates", "/v1/enroll"] {
        for _ in 0..5 {
            let r = client
                .post(format!("{}{path}", server.url()))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .unwrap_or_else(|e| {
                    panic!("{path}: the connection failed instead of a 413: {e:?}")
                });
            assert_eq!(r.status().as_u16(), 413, "{path}");
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
            assert_eq!(v["error"], "request_too_large", "{path}: {v}");
        }
    }
    assert_eq!(
        client
            .get(format!("{}/healthz", server.url()))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}
