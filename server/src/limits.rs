//! How much of the server one client may take: connections, time, memory
//! and requests. Every number here is a boundary an outside tester crossed
//! (`docs/threat-model.md`, "abusive clients"); each has a `serve` flag so
//! an operator can move it and a test can make it short.

use std::time::Duration;

/// The limits `serve` applies. [`ServeLimits::default`] is what a laptop
/// serving a few thousand phones should run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections in all. Beyond it a new connection is closed at
    /// once, before TLS, so one client cannot take every file descriptor.
    pub max_connections: usize,
    /// Open connections from one address (one IPv4 address, or one IPv6
    /// /64, which one subscriber usually holds whole). Generous, because
    /// mobile carriers put many phones behind one address.
    pub max_connections_per_address: usize,
    /// Time to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time to send a request's headers, counted from the end of the
    /// previous request: an idle keep-alive connection is closed after it.
    pub header_timeout: Duration,
    /// Time allowed before a body must show [`ServeLimits::body_min_rate`].
    pub body_grace: Duration,
    /// Slowest average a body may arrive at once the grace is over, in
    /// bytes per second: a 2G link sends far more, a slowloris far less.
    pub body_min_rate: u64,
    /// Longest wait for the next piece of a body.
    pub body_idle_timeout: Duration,
    /// Request bytes held in memory at once by all requests together; a
    /// request that would go over is answered 503 and asked to retry.
    pub bodies_in_flight_bytes: usize,
    /// Requests per second from one address, sustained; the burst is ten
    /// times this.
    pub rate_per_address: u32,
    /// Requests per second from one authenticated device, sustained; the
    /// burst is ten times this.
    pub rate_per_device: u32,
    /// How long SIGTERM waits for requests in flight before closing them.
    pub shutdown_grace: Duration,
    /// The load balancers whose connections begin with a PROXY protocol
    /// header naming the client: the caps and rates above then count that
    /// client, not the balancer. None by default (a header from anyone
    /// else would let any client claim any address).
    pub proxy_protocol_from: Vec<std::net::IpAddr>,
    /// Batches admitted and not yet answered (being read, waiting to be
    /// verified, or waiting for their group commit). Beyond it a batch is
    /// answered 503 `server_busy` with `Retry-After` before its body is
    /// read: a saturated server sheds load at the cost of a header, instead
    /// of queueing work it will finish after the phones have given up.
    pub max_queued_batches: usize,
    /// Most batches that share one durable commit (group commit). One
    /// makes every batch its own commit, as before group commit.
    pub group_commit_batches: usize,
    /// Time between pushes of the checkpoint to the witnesses.
    pub witness_interval: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 256,
            tls_handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(20),
            body_grace: Duration::from_secs(10),
            body_min_rate: 1024,
            body_idle_timeout: Duration::from_secs(30),
            bodies_in_flight_bytes: 256 * 1024 * 1024,
            rate_per_address: 200,
            rate_per_device: 50,
            shutdown_grace: Duration::from_secs(30),
            proxy_protocol_from: Vec::new(),
            max_queued_batches: 1024,
            group_commit_batches: 256,
            witness_interval: Duration::from_secs(30),
        }
    }
}

/// Largest header section a handler sees (all names and values): beyond
/// it the answer is a JSON 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header fields a handler sees.
pub const MAX_HEADER_COUNT: usize = 64;

/// What the HTTP parser itself buffers for a request head. Heads between
/// [`MAX_HEADER_BYTES`] and this get the JSON 431; larger ones are cut by
/// the parser with a bare 431, because it will not hold them to answer.
pub const PARSER_HEADER_BYTES: usize = 64 * 1024;

/// Header fields the parser accepts (beyond it: a bare 431).
pub const PARSER_HEADER_COUNT: usize = 256;

/// Bytes of an oversized body read and thrown away so the client, still
/// sending, receives the 413 instead of a connection reset.
pub const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
