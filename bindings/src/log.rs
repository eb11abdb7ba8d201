//! The core's logs, handed to the app (Logcat on Android, OSLog on iOS).
//! The core logs what sync, retries, migrations and open-time checks did,
//! never stations, payloads or names; only the core's own crates are
//! forwarded (not the HTTP or TLS libraries').

use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for Level {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        }
    }
}

impl From<&Level> for LogLevel {
    fn from(l: &Level) -> Self {
        match *l {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Receives the core's log lines. Called on whichever thread logged; keep
/// it quick (hand the line to the platform's logger).
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One event: its level, where in the core (`observer_core::sync`), and
    /// the message with its fields (`sync finished sent=20 accepted=20`).
    fn log(&self, level: LogLevel, target: String, message: String);
}

static SINK: RwLock<Option<(Arc<dyn LogSink>, Level)>> = RwLock::new(None);
static INSTALL: Once = Once::new();

/// Sends the core's log events at `level` and above to `sink`, replacing
/// any sink set before. If the process already has a `tracing` subscriber
/// of its own, that one keeps the events.
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, level: LogLevel) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some((sink, level.into()));
    INSTALL.call_once(|| {
        let _ =
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward));
    });
    // Callsites cache whether they are enabled; a new level must be seen.
    tracing::callsite::rebuild_interest_cache();
}

/// Stops forwarding log events.
#[uniffi::export]
pub fn clear_log_sink() {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = None;
    tracing::callsite::rebuild_interest_cache();
}

struct Forward;

fn ours(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("observer_")
}

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        ours(metadata)
            && SINK
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|(_, max)| metadata.level() <= max)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let sink = SINK
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(s, _)| s.clone());
        let Some(sink) = sink else { return };
        let mut line = Line::default();
        event.record(&mut line);
        let meta = event.metadata();
        sink.log(meta.level().into(), meta.target().to_string(), line.text());
    }
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn text(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(LogLevel, String, String)>>);

    impl LogSink for Collect {
        fn log(&self, level: LogLevel, target: String, message: String) {
            self.0.lock().unwrap().push((level, target, message));
        }
    }

    #[test]
    fn the_cores_events_reach_the_sink_at_its_level() {
        let sink = Arc::new(Collect::default());
        set_log_sink(sink.clone(), LogLevel::Info);
        // A real event from the core: a store created and migrated.
        let dir = tempfile::tempdir().unwrap();
        let keys =
            observer_core::identity::FileKeyStore::open_or_create(dir.path().join("k")).unwrap();
        drop(observer_core::store::Store::open(&dir.path().join("data"), &keys).unwrap());
        tracing::info!(target: "reqwest::connect", "not ours");
        let lines = sink.0.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|(level, target, m)| *level == LogLevel::Info
                    && target == "observer_core::store::schema"
                    && m.starts_with("schema migrated")
                    && m.contains("to=1")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|(_, t, _)| t.starts_with("observer_")));
        // Debug events stay out at Info, and in once the level says so.
        assert!(lines.iter().all(|(l, _, _)| *l != LogLevel::Debug));
        set_log_sink(sink.clone(), LogLevel::Debug);
        drop(observer_core::store::Store::open(&dir.path().join("data"), &keys).unwrap());
        assert!(
            sink.0
                .lock()
                .unwrap()
                .iter()
                .any(|(l, _, m)| *l == LogLevel::Debug && m.starts_with("store opened"))
        );
        clear_log_sink();
    }
}
