//! A fault-injecting TCP proxy on loopback, for the tests and benchmarks
//! that show sync and uploads surviving a link that drops (this kernel has no
//! `netem`). Never part of a server build.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A TCP proxy on loopback that forwards to `target` and, while `cut` is
/// set, closes every connection after a random number of bytes (between
/// `min_cut` and `max_cut`) in a random direction, like a link that drops.
pub struct FaultProxy {
    pub port: u16,
    pub cut: Arc<AtomicBool>,
    pub connections: Arc<AtomicU64>,
    pub cuts: Arc<AtomicU64>,
    pub bytes_up: Arc<AtomicU64>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl FaultProxy {
    pub fn start(target: u16, min_cut: u64, max_cut: u64, seed: u64) -> Self {
        Self::start_with(target, min_cut, max_cut, seed, false)
    }

    /// Like [`FaultProxy::start`], but every connection is cut on its way
    /// up (phone to server): for uploads, whose answers are tiny.
    pub fn upstream(target: u16, min_cut: u64, max_cut: u64, seed: u64) -> Self {
        Self::start_with(target, min_cut, max_cut, seed, true)
    }

    fn start_with(target: u16, min_cut: u64, max_cut: u64, seed: u64, always_up: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let bytes_up = Arc::new(AtomicU64::new(0));
        let (c2, conns, cuts2, up) = (
            cut.clone(),
            connections.clone(),
            cuts.clone(),
            bytes_up.clone(),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                conns.fetch_add(1, Ordering::Relaxed);
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let cutting = c2.load(Ordering::Relaxed);
                let budget = if cutting {
                    min_cut + rng.next() % (max_cut - min_cut).max(1)
                } else {
                    u64::MAX
                };
                let up_first = always_up || rng.next().is_multiple_of(2);
                let (a, b) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (cuts3, cuts4, up2) = (cuts2.clone(), cuts2.clone(), up.clone());
                std::thread::spawn(move || {
                    pipe(
                        client,
                        upstream,
                        if up_first { budget } else { u64::MAX },
                        cuts3,
                        Some(up2),
                    )
                });
                std::thread::spawn(move || {
                    pipe(b, a, if up_first { u64::MAX } else { budget }, cuts4, None)
                });
            }
        });
        Self {
            port,
            cut,
            connections,
            cuts,
            bytes_up,
        }
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: u64,
    cuts: Arc<AtomicU64>,
    count: Option<Arc<AtomicU64>>,
) {
    let mut left = budget;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n_send = (n as u64).min(left) as usize;
        if to.write_all(&buf[..n_send]).is_err() {
            break;
        }
        if let Some(c) = &count {
            c.fetch_add(n_send as u64, Ordering::Relaxed);
        }
        left -= n_send as u64;
        if left == 0 {
            cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
