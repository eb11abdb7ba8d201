//! The server's configuration: a TOML file (`--config FILE`), overridden by
//! environment variables and flags (each `serve` flag has its
//! `OBSERVER_SERVER_*` variable), over the built-in defaults. A key the
//! server does not know is refused with its name: a misspelt limit must not
//! silently leave the default in force on election day.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::ServeLimits;
use crate::telemetry::LogFormat;

/// Where `serve` listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";

/// The default log filter of `serve` (other commands log only warnings).
pub const DEFAULT_LOG_FILTER: &str = "info";

/// A configuration file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The data directory.
    pub data: Option<PathBuf>,
    /// The key file that unlocks the coordinator's keys.
    pub key_file: Option<PathBuf>,
    /// A file holding the passphrase that unlocks them.
    pub passphrase_file: Option<PathBuf>,
    /// The PostgreSQL database (`init` keeps data there instead of
    /// `DATA/server.db`; other commands take its password from here).
    pub database: Option<String>,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// `serve`.
    #[serde(default)]
    pub serve: ServeSettings,
}

/// Why a configuration file was not used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML, or holds a key or value this server does not
    /// take (the message names it and its line).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }
}

/// How logs are written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: Option<LogFormat>,
    /// A `tracing-subscriber` filter such as `info` (`OBSERVER_LOG` wins).
    pub filter: Option<String>,
}

/// What `serve` runs with; every field is also a flag and a variable.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Address to listen on (default 0.0.0.0:8443).
    #[arg(long, env = "OBSERVER_SERVER_LISTEN")]
    pub listen: Option<String>,
    /// Address to serve Prometheus /metrics on, plain HTTP (keep it on a
    /// private network); none by default.
    #[arg(long, env = "OBSERVER_SERVER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    #[serde(default)]
    pub limits: LimitSettings,
}

impl ServeSettings {
    /// These settings where given, `file`'s where not.
    pub fn over(self, file: ServeSettings) -> ServeSettings {
        ServeSettings {
            listen: self.listen.or(file.listen),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            limits: self.limits.over(file.limits),
        }
    }

    /// The API's listen address.
    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or(DEFAULT_LISTEN)
    }
}

/// `serve`'s limits (`docs/operations.md`); unset ones are
/// [`ServeLimits::default`]'s.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Open connections in all [default: 4096].
    #[arg(long, env = "OBSERVER_SERVER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one address (an IPv6 /64 counts as one)
    /// [default: 256].
    #[arg(long, env = "OBSERVER_SERVER_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds to finish the TLS handshake [default: 10].
    #[arg(long, env = "OBSERVER_SERVER_TLS_HANDSHAKE_TIMEOUT_SECS")]
    pub tls_handshake_timeout_secs: Option<u64>,
    /// Seconds to send a request's headers; idle connections close after
    /// it [default: 20].
    #[arg(long, env = "OBSERVER_SERVER_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds before a body must keep up --body-min-rate [default: 10].
    #[arg(long, env = "OBSERVER_SERVER_BODY_GRACE_SECS")]
    pub body_grace_secs: Option<u64>,
    /// Slowest average a body may arrive at after its grace, bytes/s
    /// [default: 1024].
    #[arg(long, env = "OBSERVER_SERVER_BODY_MIN_RATE")]
    pub body_min_rate: Option<u64>,
    /// Longest wait for the next piece of a body, in seconds [default: 30].
    #[arg(long, env = "OBSERVER_SERVER_BODY_IDLE_SECS")]
    pub body_idle_secs: Option<u64>,
    /// Request bytes all requests together may hold in memory, in MiB
    /// [default: 256].
    #[arg(long, env = "OBSERVER_SERVER_BODIES_IN_FLIGHT_MIB")]
    pub bodies_in_flight_mib: Option<usize>,
    /// Requests per second from one address (bursts of ten times it)
    /// [default: 200].
    #[arg(long, env = "OBSERVER_SERVER_RATE_PER_ADDRESS")]
    pub rate_per_address: Option<u32>,
    /// Requests per second from one device (bursts of ten times it)
    /// [default: 50].
    #[arg(long, env = "OBSERVER_SERVER_RATE_PER_DEVICE")]
    pub rate_per_device: Option<u32>,
    /// Seconds that SIGTERM waits for requests in flight [default: 30].
    #[arg(long, env = "OBSERVER_SERVER_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Load balancers (IP addresses, repeatable or comma-separated) whose
    /// connections start with a PROXY protocol v2 header naming the client
    /// [default: []].
    #[arg(
        long,
        env = "OBSERVER_SERVER_PROXY_PROTOCOL_FROM",
        value_delimiter = ','
    )]
    pub proxy_protocol_from: Option<Vec<std::net::IpAddr>>,
    /// Batches admitted and not yet answered; beyond it a batch is answered
    /// 503 with Retry-After before it is read [default: 1024].
    #[arg(long, env = "OBSERVER_SERVER_MAX_QUEUED_BATCHES")]
    pub max_queued_batches: Option<usize>,
    /// Most batches sharing one durable commit; 1 commits each batch alone
    /// [default: 256].
    #[arg(long, env = "OBSERVER_SERVER_GROUP_COMMIT_BATCHES")]
    pub group_commit_batches: Option<usize>,
    /// Seconds between pushes of the checkpoint to the witnesses
    /// (`observer-server witnesses`) [default: 30].
    #[arg(long, env = "OBSERVER_SERVER_WITNESS_INTERVAL_SECS")]
    pub witness_interval_secs: Option<u64>,
}

impl LimitSettings {
    /// These limits where given, `file`'s where not.
    pub fn over(self, file: LimitSettings) -> LimitSettings {
        LimitSettings {
            max_connections: self.max_connections.or(file.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .or(file.max_connections_per_address),
            tls_handshake_timeout_secs: self
                .tls_handshake_timeout_secs
                .or(file.tls_handshake_timeout_secs),
            header_timeout_secs: self.header_timeout_secs.or(file.header_timeout_secs),
            body_grace_secs: self.body_grace_secs.or(file.body_grace_secs),
            body_min_rate: self.body_min_rate.or(file.body_min_rate),
            body_idle_secs: self.body_idle_secs.or(file.body_idle_secs),
            bodies_in_flight_mib: self.bodies_in_flight_mib.or(file.bodies_in_flight_mib),
            rate_per_address: self.rate_per_address.or(file.rate_per_address),
            rate_per_device: self.rate_per_device.or(file.rate_per_device),
            shutdown_grace_secs: self.shutdown_grace_secs.or(file.shutdown_grace_secs),
            proxy_protocol_from: self.proxy_protocol_from.or(file.proxy_protocol_from),
            max_queued_batches: self.max_queued_batches.or(file.max_queued_batches),
            group_commit_batches: self.group_commit_batches.or(file.group_commit_batches),
            witness_interval_secs: self.witness_interval_secs.or(file.witness_interval_secs),
        }
    }

    /// The limits in force: each given one, else the default. Timeouts are
    /// at least a second (a zero would refuse every client).
    pub fn limits(&self) -> ServeLimits {
        let d = ServeLimits::default();
        let secs = |v: Option<u64>, default: Duration, min: u64| {
            v.map_or(default, |s| Duration::from_secs(s.max(min)))
        };
        ServeLimits {
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .unwrap_or(d.max_connections_per_address),
            tls_handshake_timeout: secs(
                self.tls_handshake_timeout_secs,
                d.tls_handshake_timeout,
                1,
            ),
            header_timeout: secs(self.header_timeout_secs, d.header_timeout, 1),
            body_grace: secs(self.body_grace_secs, d.body_grace, 0),
            body_min_rate: self.body_min_rate.unwrap_or(d.body_min_rate),
            body_idle_timeout: secs(self.body_idle_secs, d.body_idle_timeout, 1),
            bodies_in_flight_bytes: self
                .bodies_in_flight_mib
                .map_or(d.bodies_in_flight_bytes, |m| m.saturating_mul(1024 * 1024)),
            rate_per_address: self.rate_per_address.unwrap_or(d.rate_per_address),
            rate_per_device: self.rate_per_device.unwrap_or(d.rate_per_device),
            shutdown_grace: secs(self.shutdown_grace_secs, d.shutdown_grace, 0),
            proxy_protocol_from: self
                .proxy_protocol_from
                .clone()
                .unwrap_or(d.proxy_protocol_from),
            max_queued_batches: self
                .max_queued_batches
                .unwrap_or(d.max_queued_batches)
                .max(1),
            group_commit_batches: self
                .group_commit_batches
                .unwrap_or(d.group_commit_batches)
                .max(1),
            witness_interval: secs(self.witness_interval_secs, d.witness_interval, 1),
        }
    }
}

impl From<&ServeLimits> for LimitSettings {
    /// Every limit set, to the value in force.
    fn from(l: &ServeLimits) -> Self {
        LimitSettings {
            max_connections: Some(l.max_connections),
            max_connections_per_address: Some(l.max_connections_per_address),
            tls_handshake_timeout_secs: Some(l.tls_handshake_timeout.as_secs()),
            header_timeout_secs: Some(l.header_timeout.as_secs()),
            body_grace_secs: Some(l.body_grace.as_secs()),
            body_min_rate: Some(l.body_min_rate),
            body_idle_secs: Some(l.body_idle_timeout.as_secs()),
            bodies_in_flight_mib: Some(l.bodies_in_flight_bytes / (1024 * 1024)),
            rate_per_address: Some(l.rate_per_address),
            rate_per_device: Some(l.rate_per_device),
            shutdown_grace_secs: Some(l.shutdown_grace.as_secs()),
            proxy_protocol_from: Some(l.proxy_protocol_from.clone()),
            max_queued_batches: Some(l.max_queued_batches),
            group_commit_batches: Some(l.group_commit_batches),
            witness_interval_secs: Some(l.witness_interval.as_secs()),
        }
    }
}

impl ConfigFile {
    /// The configuration as TOML (`config show`).
    pub fn to_text(&self) -> String {
        toml::to_string(self).expect("a configuration always serialises")
    }
}

/// A commented configuration holding every key at its default, for
/// `observer-server config default`.
pub fn default_text() -> String {
    let d = ServeLimits::default();
    format!(
        r#"# observer-server configuration (TOML). Use it with
#   observer-server --config observer-server.toml serve
# Environment variables and flags override it: OBSERVER_SERVER_DATA,
# OBSERVER_SERVER_LISTEN, OBSERVER_SERVER_MAX_CONNECTIONS (--max-connections)
# and so on, one per key. An unknown key is refused with its name.

# The server's data directory (database, certificate, wrapped keys).
data = "observer-server-data"

# What unlocks the coordinator's keys: a key file on other storage, or a
# file holding the passphrase (or OBSERVER_SERVER_PASSPHRASE). Never keep it
# in the data directory.
# key_file = "/media/usb/observer.key"
# passphrase_file = "/run/secrets/observer-passphrase"

# PostgreSQL instead of the embedded SQLite file (a national deployment,
# several server nodes): give it to `init`; the data directory then keeps
# it without its password, so every command needs the password here or in
# OBSERVER_DATABASE_URL (or a login that needs none). TLS: add
# ?sslmode=require&sslrootcert=/etc/observer/db-ca.pem
# database = "postgres://observer:PASSWORD@db.internal:5432/observer"

[log]
# "text" for a terminal, "json" for a log collector.
format = "text"
# A tracing-subscriber filter; OBSERVER_LOG overrides it.
filter = "{filter}"

[serve]
# The API, HTTPS with the coordinator's certificate.
listen = "{listen}"
# Prometheus /metrics, plain HTTP: keep it on loopback or a private network.
# metrics_listen = "127.0.0.1:9464"

[serve.limits]
# Open connections in all, and from one address (an IPv6 /64 is one).
max_connections = {max_connections}
max_connections_per_address = {per_address}
# Seconds to finish the TLS handshake, and to send a request's headers
# (idle keep-alive connections close after the latter).
tls_handshake_timeout_secs = {tls}
header_timeout_secs = {header}
# A body must average body_min_rate bytes/s once body_grace_secs are over,
# and never pause longer than body_idle_secs.
body_grace_secs = {grace}
body_min_rate = {min_rate}
body_idle_secs = {idle}
# Request bytes all requests together may hold in memory, in MiB.
bodies_in_flight_mib = {in_flight}
# Requests per second from one address and from one device (bursts of ten
# times that).
rate_per_address = {per_addr_rate}
rate_per_device = {per_device_rate}
# Seconds SIGTERM waits for requests in flight.
shutdown_grace_secs = {shutdown}
# Load balancers whose connections begin with a PROXY protocol v2 header
# naming the client (HAProxy's send-proxy-v2): only these, never "any".
proxy_protocol_from = []
# Batches admitted and not yet answered; beyond it a batch is answered 503
# with Retry-After before its body is read (phones retry after it).
max_queued_batches = {queued}
# Most batches sharing one durable commit (1: each batch commits alone).
group_commit_batches = {group}
# Seconds between pushes of the checkpoint to the witnesses.
witness_interval_secs = {witness}
"#,
        filter = DEFAULT_LOG_FILTER,
        listen = DEFAULT_LISTEN,
        max_connections = d.max_connections,
        per_address = d.max_connections_per_address,
        tls = d.tls_handshake_timeout.as_secs(),
        header = d.header_timeout.as_secs(),
        grace = d.body_grace.as_secs(),
        min_rate = d.body_min_rate,
        idle = d.body_idle_timeout.as_secs(),
        in_flight = d.bodies_in_flight_bytes / (1024 * 1024),
        per_addr_rate = d.rate_per_address,
        per_device_rate = d.rate_per_device,
        shutdown = d.shutdown_grace.as_secs(),
        witness = d.witness_interval.as_secs(),
        queued = d.max_queued_batches,
        group = d.group_commit_batches,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_sets_every_limit_to_its_default() {
        let file = ConfigFile::parse(&default_text()).expect("the default parses");
        let l = &file.serve.limits;
        // Every key is present, so a limit added without its line fails here.
        assert!(l.max_connections.is_some() && l.max_connections_per_address.is_some());
        assert!(l.tls_handshake_timeout_secs.is_some() && l.header_timeout_secs.is_some());
        assert!(l.body_grace_secs.is_some() && l.body_min_rate.is_some());
        assert!(l.body_idle_secs.is_some() && l.bodies_in_flight_mib.is_some());
        assert!(l.rate_per_address.is_some() && l.rate_per_device.is_some());
        assert!(l.shutdown_grace_secs.is_some() && l.proxy_protocol_from.is_some());
        assert_eq!(l.limits(), ServeLimits::default());
        assert_eq!(file.serve.listen(), DEFAULT_LISTEN);
        assert_eq!(file.log.format, Some(LogFormat::Text));
    }

    /// The `[default: N]` each limit flag's help shows is written by hand
    /// (an unset flag must stay `None` to let the file speak): it must be
    /// the default in force.
    #[test]
    fn every_limit_flags_help_names_the_real_default() {
        use clap::Args as _;
        let defaults = toml::Table::try_from(LimitSettings::from(&ServeLimits::default())).unwrap();
        let cmd = LimitSettings::augment_args(clap::Command::new("serve"));
        let mut seen = 0;
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let shown = help
                .rsplit_once("[default: ")
                .and_then(|(_, rest)| rest.rsplit_once(']'))
                .map(|(value, _)| value.to_string())
                .unwrap_or_else(|| panic!("--{} shows no default: {help}", arg.get_id()));
            assert_eq!(
                shown,
                defaults[arg.get_id().as_str()].to_string(),
                "--{}",
                arg.get_id()
            );
            seen += 1;
        }
        assert_eq!(seen, defaults.len());
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        for (text, name) in [
            ("[serve.limits]\nmax_conections = 5\n", "max_conections"),
            ("[serve]\nlisten_on = \"0.0.0.0:1\"\n", "listen_on"),
            ("datadir = \"x\"\n", "datadir"),
            ("[logs]\nformat = \"json\"\n", "logs"),
        ] {
            let e = ConfigFile::parse(text).expect_err(text);
            assert!(e.contains(&format!("`{name}`")), "{text}: {e}");
        }
        let e = ConfigFile::parse("[log]\nformat = \"xml\"\n").expect_err("bad format");
        assert!(e.contains("xml"), "{e}");
    }

    #[test]
    fn the_effective_configuration_reads_back_as_itself() {
        let file = ConfigFile {
            data: Some("/srv/observer".into()),
            log: LogSettings {
                format: Some(LogFormat::Json),
                filter: Some("info".into()),
            },
            serve: ServeSettings {
                listen: Some("0.0.0.0:8443".into()),
                metrics_listen: None,
                limits: LimitSettings::from(&ServeLimits::default()),
            },
            ..Default::default()
        };
        assert_eq!(ConfigFile::parse(&file.to_text()).unwrap(), file);
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = ConfigFile::parse(
            "[serve]\nlisten = \"127.0.0.1:1\"\n[serve.limits]\nmax_connections = 7\nrate_per_device = 3\n",
        )
        .unwrap();
        let flags = ServeSettings {
            limits: LimitSettings {
                max_connections: Some(9),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = flags.over(file.serve);
        assert_eq!(s.listen(), "127.0.0.1:1");
        let l = s.limits.limits();
        assert_eq!((l.max_connections, l.rate_per_device), (9, 3));
        assert_eq!(l.rate_per_address, ServeLimits::default().rate_per_address);
    }
}
