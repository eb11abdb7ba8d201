//! HTTPS with the coordinator's self-signed certificate (rustls, ring),
//! and session resumption so a phone that reconnects does not pay for a
//! full handshake.
//!
//! Resumption uses stateless tickets: the session is sealed under a key
//! that only this process holds (rustls rotates it every few hours), so a
//! ticket costs the server no memory and a stolen ticket is useless to
//! anyone without that key. The phone's pin still holds: a ticket resumes
//! only a session whose certificate the phone already checked, and a server
//! without the ticket key (an interceptor with another certificate) can
//! only offer a full handshake, whose certificate the pin refuses. Several
//! nodes each hold their own ticket key; a phone sent to another node
//! makes one full handshake there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

use crate::coordinator::{Coordinator, SetupError};
use crate::metrics::Metrics;

/// The TLS configuration serving the coordinator's certificate.
pub fn tls_config(c: &Coordinator) -> Result<rustls::ServerConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Key(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(c.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.tls_key_der.clone())),
        )
        .map_err(|e| SetupError::Key(format!("TLS certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| SetupError::Key(format!("TLS session tickets: {e}")))?;
    Ok(config)
}

/// The TLS acceptor, counting full and resumed handshakes for `/metrics`
/// (a burst of full handshakes after a blackout shows there).
#[derive(Clone)]
pub struct CountHandshakes<A> {
    inner: RustlsAcceptor<A>,
    metrics: Arc<Metrics>,
}

impl<A> CountHandshakes<A> {
    /// Counts what `inner` accepts.
    pub fn new(inner: RustlsAcceptor<A>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl<A, I, S> Accept<I, S> for CountHandshakes<A>
where
    RustlsAcceptor<A>: Accept<I, S, Stream = TlsStream<<A as Accept<I, S>>::Stream>>,
    A: Accept<I, S>,
    <RustlsAcceptor<A> as Accept<I, S>>::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<<A as Accept<I, S>>::Stream>;
    type Service = <RustlsAcceptor<A> as Accept<I, S>>::Service;
    type Future =
        Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            let resumed =
                stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            metrics.handshake(resumed);
            Ok((stream, service))
        })
    }
}
