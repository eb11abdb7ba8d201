//! HAProxy from Debian's package in front of server nodes on loopback: TCP
//! mode, so TLS passes through untouched (the phones' pins hold) and the
//! nodes are health-checked over HTTPS at `/healthz`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The loopback address HAProxy connects to nodes from when it sends PROXY
/// headers (Linux answers on all of 127.0.0.0/8).
pub const BALANCER_ADDRESS: &str = "127.0.0.2";

/// A running HAProxy, killed when dropped.
pub struct Haproxy {
    child: Child,
}

impl Haproxy {
    /// Listens on 127.0.0.1:`port`, round-robin over `nodes` (loopback
    /// ports); its configuration is written to `dir/haproxy.cfg`.
    pub fn start(dir: &Path, port: u16, nodes: &[u16]) -> Self {
        Self::start_with(dir, port, nodes, false)
    }

    /// [`Haproxy::start`], each connection to a node (health checks too)
    /// opened with a PROXY protocol v2 header naming the client when
    /// `send_proxy`, and then from [`BALANCER_ADDRESS`], so that the nodes
    /// can trust that address alone.
    pub fn start_with(dir: &Path, port: u16, nodes: &[u16], send_proxy: bool) -> Self {
        let haproxy = Path::new("/usr/sbin/haproxy");
        assert!(
            haproxy.exists(),
            "HAProxy is not installed: apt-get install haproxy (tests/run does it)"
        );
        let mut cfg = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n  retries 3\n  option redispatch\n\
             frontend phones\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\
             backend nodes\n  balance roundrobin\n  option httpchk GET /healthz\n  http-check expect status 200\n"
        );
        let proxy = if send_proxy {
            cfg.push_str(&format!("  source {BALANCER_ADDRESS}\n"));
            " send-proxy-v2 check-send-proxy"
        } else {
            ""
        };
        for (i, p) in nodes.iter().enumerate() {
            cfg.push_str(&format!(
                "  server node{i} 127.0.0.1:{p} check check-ssl verify none inter 300ms fall 2 rise 2{proxy}\n"
            ));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("haproxy.cfg");
        let child = Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "HAProxy never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
