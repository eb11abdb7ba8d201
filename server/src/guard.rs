//! Admission of connections: a cap on all open connections and on those
//! from one address, applied the moment a connection is accepted (before
//! TLS), so that a client holding thousands of idle sockets runs into its
//! own cap while phones from other addresses still get in.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Who a connection counts against: an IPv4 address, or the /64 an IPv6
/// address is in (one subscriber holds a whole /64, so counting single
/// IPv6 addresses would be no limit at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4(u32),
    V6(u64),
}

impl AddressKey {
    /// The key of `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(u32::from(v4)),
                None => AddressKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Counts {
    max_total: usize,
    max_per_address: usize,
    open: AtomicUsize,
    refused: AtomicUsize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
}

/// The connection caps, shared by the accept loop and every connection.
#[derive(Clone)]
pub struct ConnectionGuard {
    counts: Arc<Counts>,
}

/// An admitted connection's place, given back when it closes.
pub struct Admission {
    counts: Arc<Counts>,
    key: AddressKey,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
        self.counts.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("open", &self.open())
            .field("refused", &self.refused())
            .finish()
    }
}

impl ConnectionGuard {
    /// Caps of `max_total` connections, `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            counts: Arc::new(Counts {
                max_total,
                max_per_address,
                open: AtomicUsize::new(0),
                refused: AtomicUsize::new(0),
                per_address: Mutex::default(),
            }),
        }
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub fn admit(&self, ip: IpAddr) -> Option<Admission> {
        let key = AddressKey::of(ip);
        let mut map = self
            .counts
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let here = map.get(&key).copied().unwrap_or(0);
        if here >= self.counts.max_per_address
            || self.counts.open.load(Ordering::Relaxed) >= self.counts.max_total
        {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        map.insert(key, here + 1);
        self.counts.open.fetch_add(1, Ordering::Relaxed);
        Some(Admission {
            counts: self.counts.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once because a cap was reached, since start.
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::Relaxed)
    }
}

/// The acceptor `serve` uses: admits a connection against the caps (a
/// refused one is closed at once, before TLS), hands it to `inner` (TLS),
/// and gives it `first_byte` to send the first byte of its first request.
/// The HTTP layer times the headers of every request once their first byte
/// arrived, and the idle time between requests, but not the wait before the
/// first one (it spends it reading which HTTP version is spoken): without
/// this, a client that finishes the handshake and says nothing would hold
/// its socket forever.
///
/// A connection from one of `proxies` (the operator's load balancers) must
/// begin with a PROXY protocol header, and is admitted, rate-limited and
/// answered as the client that header names ([`ClientAddr`]).
#[derive(Clone)]
pub struct Admit<A> {
    guard: ConnectionGuard,
    inner: A,
    first_byte: std::time::Duration,
    proxies: Arc<[IpAddr]>,
}

impl<A> Admit<A> {
    /// Admits through `guard`, then `inner`, with `first_byte` to speak.
    pub fn new(guard: ConnectionGuard, inner: A, first_byte: std::time::Duration) -> Self {
        Self {
            guard,
            inner,
            first_byte,
            proxies: Arc::from(Vec::new()),
        }
    }

    /// Reads a PROXY protocol header from connections from `proxies`.
    pub fn with_proxies(mut self, proxies: &[IpAddr]) -> Self {
        self.proxies = Arc::from(proxies);
        self
    }
}

/// The client a connection speaks for: its peer, or the client a trusted
/// balancer's PROXY header named. Every request carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// A connection's service, putting its [`ClientAddr`] on every request.
#[derive(Clone)]
pub struct WithClient<S> {
    inner: S,
    client: ClientAddr,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for WithClient<S>
where
    S: tower_service::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.client);
        self.inner.call(request)
    }
}

impl<A, S> Accept<TcpStream, S> for Admit<A>
where
    A: Accept<TcpStream, WithClient<S>> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    S: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Pin<
        Box<dyn std::future::Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>,
    >;

    fn accept(&self, mut stream: TcpStream, service: S) -> Self::Future {
        let peer = match stream.peer_addr() {
            Ok(p) => p,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let (guard, inner, within) = (self.guard.clone(), self.inner.clone(), self.first_byte);
        let from_proxy = self.proxies.contains(&peer.ip());
        let admit = move |client: std::net::SocketAddr| {
            guard.admit(client.ip()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::ConnectionRefused, "connection cap reached")
            })
        };
        // Refused before any work when no header is to be read: the
        // stream is dropped here, closing the socket at once.
        let early = if from_proxy {
            None
        } else {
            match admit(peer) {
                Ok(a) => Some(a),
                Err(e) => return Box::pin(std::future::ready(Err(e))),
            }
        };
        Box::pin(async move {
            let (client, admission) = match early {
                Some(a) => (peer, a),
                None => {
                    let named = crate::proxy_header::read(&mut stream, within)
                        .await
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let client = named.unwrap_or(peer);
                    (client, admit(client)?)
                }
            };
            // Small requests and answers: do not wait to fill a segment.
            let _ = stream.set_nodelay(true);
            let service = WithClient {
                inner: service,
                client: ClientAddr(client),
            };
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                Guarded {
                    stream,
                    _admission: admission,
                    deadline: Some(Box::pin(tokio::time::sleep(within))),
                },
                service,
            ))
        })
    }
}

/// An admitted connection: it holds its [`Admission`] while open, and its
/// reads fail with `TimedOut` if no byte arrived before its deadline (once
/// one has, it is a plain stream).
pub struct Guarded<S> {
    stream: S,
    _admission: Admission,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if self.deadline.is_some() {
            if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                self.deadline = None;
            } else if polled.is_pending()
                && self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready())
            {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request arrived in time",
                )));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_close() {
        let g = ConnectionGuard::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = g.admit(a).unwrap();
        let _a2 = g.admit(a).unwrap();
        assert!(g.admit(a).is_none(), "third from one address");
        let _b1 = g.admit(b).unwrap();
        assert!(g.admit(b).is_none(), "fourth in all");
        assert_eq!(g.open(), 3);
        drop(a1);
        assert!(g.admit(b).is_some());
        assert_eq!(g.refused(), 2);
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(one), AddressKey::of(other_host));
        assert_ne!(AddressKey::of(one), AddressKey::of(other_net));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(AddressKey::of(mapped), AddressKey::of(v4));
    }
}
