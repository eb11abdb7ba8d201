//! Where the server's logs go: `tracing` events to stderr, as human text
//! or one JSON object per line, filtered by `OBSERVER_LOG` (the
//! `tracing-subscriber` filter syntax, e.g. `info` or
//! `observer_server=debug,tower_http=warn`). Logs never carry what an
//! observer wrote, a station or a name (`docs/operations.md`).

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The environment variable holding the log filter.
pub const FILTER_ENV: &str = "OBSERVER_LOG";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for a person at a terminal.
    #[default]
    Text,
    /// One JSON object per event, for a log collector.
    Json,
}

/// Installs the process's log subscriber; `filter` is used when
/// [`FILTER_ENV`] is not set. Returns the filter in force. Installing twice
/// keeps the first.
pub fn init(format: LogFormat, filter: &str) -> Result<String, String> {
    init_with_writer(format, filter, std::io::stderr)
}

/// [`init`], writing to `writer` (a benchmark's log file) instead of stderr.
pub fn init_with_writer<W>(format: LogFormat, filter: &str, writer: W) -> Result<String, String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (text, env_filter) = match std::env::var(FILTER_ENV) {
        Ok(f) if !f.is_empty() => {
            let parsed = EnvFilter::try_new(&f).map_err(|e| format!("{FILTER_ENV}={f:?}: {e}"))?;
            (f, parsed)
        }
        _ => (
            filter.to_string(),
            EnvFilter::try_new(filter).map_err(|e| format!("log filter {filter:?}: {e}"))?,
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // Already installed (a test running several servers in one process).
    let _ = installed;
    Ok(text)
}
