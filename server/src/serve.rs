//! HTTPS with the coordinator's self-signed certificate (rustls, ring).

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::coordinator::{Coordinator, SetupError};
use crate::http::{router, AppState};

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
    Ok(config)
}

/// Serves the API on `listener` until `shutdown` completes, then drains
/// open requests for up to five seconds.
pub async fn serve(
    c: Coordinator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SetupError> {
    let tls = RustlsConfig::from_config(Arc::new(tls_config(&c)?));
    let state =
        Arc::new(AppState {
            dashboard_token: c.dashboard_token()?,
            storage: c.storage.clone(),
            org: c.org.clone(),
            key: c.key,
            seal: c.seal,
            media: Arc::new(crate::media::MediaFiles::new(c.media_dir.clone()).map_err(
                |source| SetupError::Io {
                    path: c.media_dir.clone(),
                    source,
                },
            )?),
            forms: Default::default(),
        });
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    listener
        .set_nonblocking(true)
        .map_err(|source| SetupError::Io {
            path: "listener".into(),
            source,
        })?;
    axum_server::from_tcp_rustls(listener, tls)
        .handle(handle)
        .serve(router(state).into_make_service())
        .await
        .map_err(|source| SetupError::Io {
            path: "server".into(),
            source,
        })
}
