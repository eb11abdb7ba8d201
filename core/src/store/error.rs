use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use super::TamperReport;
use crate::identity::IdentityError;
use crate::record::{RecordError, RecordId};

/// Why a store operation failed. On any error nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store directory cannot be created or written.
    #[error(
        "cannot write to the data directory {path}: {source}; choose a directory this app may write to"
    )]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database file is not a database or is damaged.
    #[error(
        "the database {path} is damaged ({detail}); keep the file for investigation and restore from the coordinator"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The database was written by a newer Observer.
    #[error(
        "the database uses schema version {found}, newer than this Observer understands ({supported}); update Observer"
    )]
    TooNew { found: u32, supported: u32 },
    /// The device key could not be unwrapped (or created).
    #[error(
        "the device key cannot be unlocked: {0}; records are intact, but nothing new can be signed until the key store is available"
    )]
    KeyUnavailable(#[source] IdentityError),
    /// Records exist but a wrapped key (device or data key) is gone.
    #[error(
        "the database holds records but its keys are gone; it was altered or partly restored. Keep it for investigation and re-enroll this device"
    )]
    KeyMissing,
    /// Stored data does not decrypt under this store's data key: it was
    /// altered, or copied from another store.
    #[error(
        "{what} cannot be decrypted: the database was altered or mixed with another one's; keep it for investigation"
    )]
    Unreadable { what: String },
    /// The store was wiped on purpose (panic wipe): nothing readable is
    /// left. Start again with [`crate::store::Store::start_over`].
    #[error("this phone's Observer data was wiped at {} (UTC); {sealed_waiting} sealed records still wait for delivery: deliver them first, then start over and enroll anew", chrono::DateTime::from_timestamp_millis(*wiped_at_ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S"))]
    Wiped {
        wiped_at_ms: i64,
        sealed_waiting: u64,
    },
    /// Sealing a record to the organisation failed; nothing was written.
    #[error("the record could not be sealed to the organisation: {0}; nothing was saved")]
    Seal(#[source] crate::seal::SealError),
    /// A relay bundle was refused, or cannot be written; this phone's own
    /// records and relay outbox are unchanged.
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    /// A record or heartbeat could not be written as SMS.
    #[error(transparent)]
    Sms(#[from] crate::sms::SmsError),
    /// The system's random generator failed; nothing was written.
    #[error("the system random generator failed; nothing was written. Restart the app")]
    NoRandomness,
    /// The chain on disk shows records deleted, altered or reordered.
    #[error("the stored records were tampered with: {0}")]
    Tampered(TamperReport),
    /// The new record is invalid.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A correction names a record this device does not hold.
    #[error(
        "the record to correct ({0}) is not in this store; pick the record to correct from the list"
    )]
    UnknownSupersedes(RecordId),
    /// A form definition is invalid.
    #[error(transparent)]
    Form(#[from] crate::forms::FormError),
    /// The coordinator revoked this device: it signs nothing more.
    #[error(
        "the coordinator revoked this device, so it can no longer sign records; your earlier records are kept. Contact your coordinator"
    )]
    Revoked,
    /// The disk is full.
    #[error("the disk is full; free space on the device, then save again (nothing was lost)")]
    DiskFull,
    /// Another process holds the database lock for too long.
    #[error("the database is busy in another process; close other Observer windows and try again")]
    Busy,
    /// The file system cannot hold a write-ahead log (some network mounts).
    #[error(
        "the data directory's file system does not support SQLite's write-ahead log (journal mode stayed {0}); use local storage"
    )]
    NoWal(String),
    /// Any other SQLite failure.
    #[error("storage failure: {0}; try again, and report it if it persists")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                path: PathBuf::new(),
                detail: e.to_string(),
            },
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Classifies an error from opening and configuring the file.
    pub(crate) fn from_open(e: rusqlite::Error, path: &Path) -> Self {
        Self::from(e).with_path(path)
    }

    /// Fills in the file's path where the error names one.
    pub(crate) fn with_path(self, path: &Path) -> Self {
        match self {
            StoreError::Corrupt { detail, .. } => StoreError::Corrupt {
                path: path.to_owned(),
                detail,
            },
            other => other,
        }
    }
}
