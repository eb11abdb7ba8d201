//! A coordinator served in the benchmark's own process on a loopback port,
//! as the server and media benchmarks need it.

use std::net::TcpListener;
use std::path::Path;

use observer_server::coordinator::{Coordinator, SetupError};
use observer_server::unlock::Unlock;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub struct LocalCoordinator {
    /// The coordinator's directory, opened (to issue codes, read keys).
    pub coordinator: Coordinator,
    /// Its loopback port and `https://127.0.0.1:PORT`.
    pub port: u16,
    pub url: String,
    rt: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::result::Result<(), SetupError>>,
}

impl LocalCoordinator {
    /// Initialises a coordinator in `dir/server` and serves it.
    pub fn start(dir: &Path) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let url = format!("https://127.0.0.1:{port}");
        let unlock = Unlock::KeyFile(dir.join("server.key"));
        let coordinator = Coordinator::init(&dir.join("server"), &url, "bench", &unlock)?;
        Self::serve(coordinator, listener, &unlock)
    }

    /// Serves `coordinator` (already initialised, perhaps filled) on
    /// `listener`, the port its URL names.
    pub fn serve(coordinator: Coordinator, listener: TcpListener, unlock: &Unlock) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = listener.local_addr()?.port();
        let url = format!("https://127.0.0.1:{port}");
        let serving = Coordinator::open(&coordinator.dir, Some(unlock))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Every simulated phone comes from 127.0.0.1, where a real
        // deployment's come from many addresses: the per-address rate is
        // lifted so that the figures are the server's, not the limiter's.
        // Every other limit is the default a coordinator runs with.
        let limits = observer_server::limits::ServeLimits {
            rate_per_address: 1_000_000,
            ..Default::default()
        };
        let server = rt.spawn(observer_server::serve::serve_with(
            serving,
            listener,
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            coordinator,
            port,
            url,
            rt,
            stop,
            server,
        })
    }

    /// Stops serving and waits for open requests to drain.
    pub fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.rt.block_on(self.server)??;
        Ok(())
    }
}
