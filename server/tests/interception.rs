//! A state-installed root CA and an intercepting proxy: a client trusting the
//! machine's CA store plus that root is read in the clear; Observer refuses
//! and marks nothing delivered.

mod support;

use std::sync::Arc;

use observer_core::sync::{SyncError, SyncOptions, sync};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// A "state root" and a certificate for 127.0.0.1 issued by it.
fn state_ca() -> (
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "National Security Certificate");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (
        ca_cert.der().clone(),
        leaf.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
}

/// Terminates TLS with the state-issued certificate and re-encrypts to the
/// real server, reading everything in between. Returns its port.
fn start_interceptor(
    rt: &tokio::runtime::Runtime,
    target: u16,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (u16, Arc<std::sync::atomic::AtomicU64>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .unwrap();
    server_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let connector = tokio_rustls::TlsConnector::from(any_cert_client());
    let intercepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = intercepted.clone();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, connector, seen) = (acceptor.clone(), connector.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let upstream = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
                let name = ServerName::try_from("127.0.0.1").unwrap();
                let Ok(mut server) = connector.connect(name, upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (port, intercepted)
}

#[test]
fn sync_through_an_intercepting_proxy_fails_with_an_identity_error_and_delivers_nothing() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save_all(&(0..5).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ca, leaf, key) = state_ca();
    let (port, intercepted) = start_interceptor(&rt, server.port, leaf, key);

    // A client that trusts the machine's CA store plus the state root goes
    // through the interceptor without complaint: the proxy works.
    let naive = reqwest::blocking::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_der(&ca).unwrap()])
        .build()
        .unwrap();
    let health = naive
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(intercepted.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // Observer, pointed at the same interceptor, refuses.
    let mut e = p.enrollment().unwrap();
    e.url = format!("https://127.0.0.1:{port}");
    p.set_enrollment(&e).unwrap();
    let err = sync(&p, &SyncOptions::default()).unwrap_err();
    assert!(
        matches!(err, SyncError::IdentityNotConfirmed { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("identity could not be confirmed"));
    assert_eq!(err.retry_kind(), observer_core::sync::RetryKind::Never);
    let c = p.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.delivered), (5, 0, 0));
    assert_eq!(server.record_count().0, 0);

    // And the same phone delivers once it talks to the real coordinator.
    e.url = server.url();
    p.set_enrollment(&e).unwrap();
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 5);
}
