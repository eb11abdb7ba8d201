//! Where the server's data is, what unlocks its keys, and the
//! configuration file that may say both.

use std::path::PathBuf;

use super::Result;
use crate::config::ConfigFile;
use crate::coordinator::Coordinator;
use crate::storage::postgres::DatabaseUrl;
use crate::telemetry::{self, LogFormat};
use crate::unlock::{LEGACY_KEY_FILE, Unlock};

/// The environment variable that may hold the passphrase itself (never a
/// flag: flags show in process listings).
pub const PASSPHRASE_ENV: &str = "OBSERVER_SERVER_PASSPHRASE";

/// The data directory when neither flag, variable nor file names one.
pub const DEFAULT_DATA: &str = "observer-server-data";

/// The options every command takes.
#[derive(clap::Args)]
pub struct Access {
    /// A configuration file (TOML; `observer-server config default` prints
    /// one). Flags and environment variables override it.
    #[arg(long, global = true, env = "OBSERVER_SERVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The server's data directory [default: observer-server-data].
    #[arg(long, global = true, env = "OBSERVER_SERVER_DATA")]
    pub data: Option<PathBuf>,
    /// A key file on other storage (a USB stick, a secrets mount) that
    /// unlocks the coordinator's keys; `init` creates it if missing.
    #[arg(long, global = true, env = "OBSERVER_SERVER_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// A file holding the passphrase that unlocks the coordinator's keys
    /// (or give the passphrase itself in OBSERVER_SERVER_PASSPHRASE).
    #[arg(long, global = true, env = "OBSERVER_SERVER_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://USER[:PASSWORD]@HOST:PORT/DB`):
    /// `init` keeps the data there instead of DATA/server.db; for other
    /// commands, the password the data directory does not keep.
    #[arg(
        long,
        global = true,
        env = "OBSERVER_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// How log lines (on stderr) are written [default: text].
    #[arg(long, global = true, value_enum, env = "OBSERVER_SERVER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// [`Access`] with its configuration file applied.
pub struct Resolved {
    /// The data directory.
    pub data: PathBuf,
    key_file: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    database: Option<String>,
    /// The file's settings (the `serve` section is used by `serve`).
    pub file: ConfigFile,
    /// The log format and filter in force.
    pub log: crate::config::LogSettings,
}

impl Access {
    /// Reads the configuration file, if any, applies it under the flags,
    /// and installs logging: `default_filter` unless the file or
    /// `OBSERVER_LOG` says otherwise (`serve` logs at `info`; one-shot
    /// commands only warnings, their output is what they print).
    pub fn resolve(self, default_filter: &str) -> Result<Resolved> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let format = self.log_format.or(file.log.format).unwrap_or_default();
        let filter = telemetry::init(format, file.log.filter.as_deref().unwrap_or(default_filter))?;
        // A flag naming one way to unlock replaces the file's choice
        // entirely, so that the two never combine into "give one, not both".
        let (key_file, passphrase_file) =
            if self.key_file.is_some() || self.passphrase_file.is_some() {
                (self.key_file, self.passphrase_file)
            } else {
                (file.key_file.clone(), file.passphrase_file.clone())
            };
        Ok(Resolved {
            data: self
                .data
                .or(file.data.clone())
                .unwrap_or_else(|| DEFAULT_DATA.into()),
            key_file,
            passphrase_file,
            database: self.database.or(file.database.clone()),
            file,
            log: crate::config::LogSettings {
                format: Some(format),
                filter: Some(filter),
            },
        })
    }
}

impl Resolved {
    /// The key file given, if any.
    pub fn key_file(&self) -> Option<&std::path::Path> {
        self.key_file.as_deref()
    }

    /// The passphrase file given, if any.
    pub fn passphrase_file(&self) -> Option<&std::path::Path> {
        self.passphrase_file.as_deref()
    }

    /// What the operator gave to unlock the keys, if anything.
    pub fn unlock(&self) -> Result<Option<Unlock>> {
        Ok(Unlock::choose(
            self.key_file.as_deref(),
            self.passphrase_file.as_deref(),
            PASSPHRASE_ENV,
        )?)
    }

    /// The PostgreSQL database given, if any.
    pub fn database(&self) -> Result<Option<DatabaseUrl>> {
        Ok(self
            .database
            .as_deref()
            .map(DatabaseUrl::parse)
            .transpose()?)
    }

    /// Opens the coordinator, warning when its keys still sit beside the
    /// database.
    pub fn open(&self) -> Result<Coordinator> {
        let c = Coordinator::open_with(
            &self.data,
            self.database()?.as_ref(),
            self.unlock()?.as_ref(),
        )?;
        if c.legacy_keys {
            tracing::warn!(
                key_file = %c.dir.join(LEGACY_KEY_FILE).display(),
                "this directory's keys are wrapped by a key file beside the database; move them with `observer-server rekey --key-file PATH` (or a passphrase)"
            );
        }
        Ok(c)
    }
}
