//! `serve`: the API (and `/metrics`) until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::TcpListener;

use super::access::Resolved;
use super::{Result, interrupted, runtime};
use crate::config::ServeSettings;
use crate::serve::{Listeners, raise_open_files_limit, serve_with};

/// Serves with `flags` over the configuration file's `[serve]` section.
pub fn serve(at: &Resolved, flags: ServeSettings, out: &mut dyn Write) -> Result<()> {
    let settings = flags.over(at.file.serve.clone());
    let limits = settings.limits.limits();
    let c = at.open()?;
    let listen = settings.listen();
    let api = TcpListener::bind(listen).map_err(|e| format!("--listen {listen}: {e}"))?;
    let metrics = settings
        .metrics_listen
        .as_deref()
        .map(|m| TcpListener::bind(m).map_err(|e| format!("--metrics-listen {m}: {e}")))
        .transpose()?;
    let addr = api.local_addr()?;
    let files = raise_open_files_limit();
    writeln!(out, "observer-server listening on {addr} for {}", c.url)?;
    if let Some(m) = &metrics {
        writeln!(out, "metrics on http://{}/metrics", m.local_addr()?)?;
    }
    writeln!(
        out,
        "coordinator workspace: {}/ (accounts: observer-server users add NAME --role admin)",
        c.url
    )?;
    if files.is_some_and(|f| f < limits.max_connections as u64 + 64) {
        tracing::warn!(
            open_files = files.unwrap_or_default(),
            max_connections = limits.max_connections,
            "the open-file limit is below --max-connections; raise it (ulimit -n) or lower the cap"
        );
    }
    out.flush()?;
    tracing::info!(%addr, org = %c.org, "serving");
    runtime()?.block_on(serve_with(
        c,
        Listeners { api, metrics },
        limits,
        interrupted(),
    ))?;
    tracing::info!("stopped");
    Ok(())
}
