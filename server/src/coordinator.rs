//! The coordinator's data directory: its signing key, TLS certificate,
//! configuration and database, created by `init` and opened by every other
//! command.
//!
//! ```text
//! DIR/config.json        server URL, organisation id, coordinator key, and
//!                        the PostgreSQL database when there is one
//! DIR/server.db          SQLite (the embedded default): devices, tokens,
//!                        records, log; the signing, sealing and TLS keys
//!                        wrapped by the unlock key
//! DIR/tls/cert.der       self-signed TLS certificate (its SHA-256 is pinned by phones)
//! ```
//!
//! On PostgreSQL the database holds what `server.db` would, and `DIR`
//! holds no data and no key: each server node runs from a copy of it, so
//! every node signs with the one coordinator key and presents the one
//! certificate that phones pin.
//!
//! The unlock key is never in `DIR` (see [`crate::unlock`]). Directories
//! made before that keep `DIR/coordinator.kek` and `DIR/tls/key.der`; they
//! open with a warning until `rekey` moves them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use observer_core::identity::{KeyStore, SigningKey};
use observer_core::protocol::EnrollmentCode;
use observer_core::record::Sha256Digest;
use observer_core::seal::OrgSecretKey;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::storage::postgres::{DatabaseUrl, PostgresStorage};
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Storage, StorageError};
use crate::unlock::{self, Unlock};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Files cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `init` was not run, or run elsewhere.
    #[error(
        "{0} is not an initialised server directory; run `observer-server --data {0} init --url https://HOST:PORT` first"
    )]
    NotInitialised(String),
    /// `init` was already run here.
    #[error("{0} is already initialised; use another directory for another server")]
    AlreadyInitialised(String),
    /// A bad argument (URL, organisation id).
    #[error("{0}")]
    Invalid(String),
    /// Stations a code or an assignment may not name, or a code's validity.
    #[error(transparent)]
    Code(#[from] crate::enrollment::CodeProblem),
    /// Key handling failed.
    #[error("the coordinator key: {0}")]
    Key(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The keys stay locked.
    #[error(transparent)]
    Unlock(#[from] crate::unlock::UnlockError),
    /// The database does not hold what the phones signed.
    #[error(
        "the server database was altered: {0}; run `observer-server verify` for every finding, and restore it from a backup"
    )]
    Altered(String),
    /// The database belongs to another coordinator than this directory's:
    /// serving would sign receipts with a second key.
    #[error(
        "the database {database} belongs to coordinator {found}, but this directory was initialised for coordinator {expected}; point it at its own database (refusing to sign with a second key)"
    )]
    KeyMismatch {
        database: String,
        expected: String,
        found: String,
    },
    /// The directory's certificate is not the one the database was
    /// initialised with: phones pinned the other one.
    #[error(
        "{0}/tls/cert.der is not the certificate this coordinator's phones pin; copy the directory from the first node again"
    )]
    CertificateMismatch(String),
}

#[derive(Serialize, Deserialize)]
struct Config {
    url: String,
    org: String,
    /// Where evidence media are kept; `DIR/media` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_dir: Option<PathBuf>,
    /// Object storage for evidence media (`s3://BUCKET/PREFIX`) instead of
    /// a directory; credentials come from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_store: Option<String>,
    /// The PostgreSQL database, without its password (which comes from
    /// `--database` / `OBSERVER_DATABASE_URL` when it has one); SQLite in
    /// `DIR/server.db` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    /// The coordinator's public key, written by `init`: a node is refused
    /// if its database holds another (directories from before it have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coordinator: Option<String>,
}

/// Where a new coordinator keeps its data (`init`'s choices).
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// Evidence media somewhere other than `DIR/media` (a larger disk, a
    /// directory every node shares).
    pub media_dir: Option<PathBuf>,
    /// Object storage (`s3://BUCKET/PREFIX`) instead of a directory.
    pub media_store: Option<String>,
    /// PostgreSQL instead of `DIR/server.db`.
    pub database: Option<DatabaseUrl>,
}

/// An initialised coordinator: everything the server and the commands need.
pub struct Coordinator {
    /// The data directory.
    pub dir: PathBuf,
    /// `https://host:port` as phones reach it.
    pub url: String,
    /// The organisation id.
    pub org: String,
    /// The key that signs receipts.
    pub key: SigningKey,
    /// The organisation's HPKE key that opens sealed records.
    pub seal: OrgSecretKey,
    /// The TLS certificate (DER).
    pub cert_der: Vec<u8>,
    /// The TLS private key (PKCS#8 DER).
    pub tls_key_der: Vec<u8>,
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// Where evidence media are kept (`config.json`'s `media_dir`, or
    /// `DIR/media`).
    pub media_dir: PathBuf,
    /// Object storage for media, when `init` was given one (then
    /// `media_dir` is unused).
    pub media_store: Option<String>,
    /// Whether the keys are still wrapped by `DIR/coordinator.kek`, beside
    /// the database (a directory from before keys were protected).
    pub legacy_keys: bool,
}

const META_COORDINATOR_KEY: &str = "coordinator_key";
const META_SEAL_KEY: &str = "seal_key";
const META_TLS_KEY: &str = "tls_key";
/// The TLS certificate every node must present (DER).
const META_TLS_CERT: &str = "tls_cert";
/// How the three keys above are wrapped ([`crate::unlock`]).
const META_UNLOCK: &str = "unlock";
/// The TLS key of directories from before keys were protected.
const LEGACY_TLS_KEY: &str = "tls/key.der";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Overwrites a file with zeros, syncs and removes it (if it exists).
fn shred(path: &Path) -> Result<(), SetupError> {
    use std::io::Write as _;
    let mut f = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let len = f.metadata().map_err(io(path))?.len() as usize;
    f.write_all(&vec![0u8; len]).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    std::fs::remove_file(path).map_err(io(path))
}

/// A random token: 24 bytes, base64url (32 characters).
pub fn random_token() -> String {
    let mut b = [0u8; 24];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator works");
    URL_SAFE_NO_PAD.encode(b)
}

fn host_of(url: &str) -> Result<String, SetupError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| SetupError::Invalid(format!("--url {url:?} must start with https://")))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_string()
    } else {
        hostport
            .rsplit_once(':')
            .map_or(hostport, |(h, _)| h)
            .to_string()
    };
    if host.is_empty() {
        return Err(SetupError::Invalid(format!("--url {url:?} names no host")));
    }
    Ok(host)
}

/// The database of the coordinator in `dir`: the one place that chooses
/// the backend. PostgreSQL when the directory names a database (`given`
/// may add the password it leaves out), the embedded SQLite file otherwise.
fn open_storage(
    dir: &Path,
    named: Option<&str>,
    given: Option<&DatabaseUrl>,
) -> Result<Arc<dyn Storage>, SetupError> {
    match (named, given) {
        (None, None) => Ok(Arc::new(SqliteStorage::open(&dir.join("server.db"))?)),
        (None, Some(url)) => Err(SetupError::Invalid(format!(
            "{} keeps its data in server.db, not in the database {url} (unset OBSERVER_DATABASE_URL or drop --database)",
            dir.display()
        ))),
        (Some(_), Some(url)) => Ok(Arc::new(PostgresStorage::open(url)?)),
        (Some(named), None) => {
            let url = DatabaseUrl::parse(named).map_err(|e| SetupError::Invalid(e.to_string()))?;
            Ok(Arc::new(PostgresStorage::open(&url)?))
        }
    }
}

/// The organisation's sealing key, wrapped like the signing key. Created
/// on first use, so directories made before sealing existed get one when
/// they are next opened.
fn open_or_create_seal_key(
    storage: &dyn Storage,
    keys: &dyn KeyStore,
    given: Option<&Unlock>,
) -> Result<OrgSecretKey, SetupError> {
    let key_err = |e: &dyn std::fmt::Display| SetupError::Key(e.to_string());
    if let Some(wrapped) = storage.meta(META_SEAL_KEY)? {
        let raw = keys.unwrap(&wrapped).map_err(|_| unlock::wrong(given))?;
        return OrgSecretKey::from_bytes(&raw).map_err(|e| key_err(&e));
    }
    let seal = OrgSecretKey::generate();
    let wrapped = keys.wrap(&seal.to_bytes()).map_err(|e| key_err(&e))?;
    storage.set_metas(&[(META_SEAL_KEY, wrapped)])?;
    Ok(seal)
}

impl Coordinator {
    /// Creates the coordinator in `dir`: signing key, self-signed TLS
    /// certificate for the URL's host, configuration, database.
    pub fn init(dir: &Path, url: &str, org: &str, unlock: &Unlock) -> Result<Self, SetupError> {
        Self::init_with(dir, url, org, &Placement::default(), unlock)
    }

    /// [`Coordinator::init`], keeping media and data where `placement`
    /// says.
    pub fn init_with(
        dir: &Path,
        url: &str,
        org: &str,
        placement: &Placement,
        unlock: &Unlock,
    ) -> Result<Self, SetupError> {
        let host = host_of(url)?;
        if let Some(store) = &placement.media_store {
            if placement.media_dir.is_some() {
                return Err(SetupError::Invalid(
                    "give --media-dir or --media-store, not both".into(),
                ));
            }
            crate::media::objects::ObjectMedia::open(store)
                .map_err(|e| SetupError::Invalid(e.to_string()))?;
        }
        if org.is_empty()
            || org.len() > 64
            || !org
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(SetupError::Invalid(format!(
                "--org {org:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        std::fs::create_dir_all(dir.join("tls")).map_err(io(dir))?;
        let config_path = dir.join("config.json");
        if config_path.exists() {
            return Err(SetupError::AlreadyInitialised(dir.display().to_string()));
        }
        let named = placement
            .database
            .as_ref()
            .map(|u| u.redacted().to_string());
        let storage = open_storage(dir, named.as_deref(), placement.database.as_ref())?;
        if placement.database.is_some() && storage.meta(META_COORDINATOR_KEY)?.is_some() {
            return Err(SetupError::AlreadyInitialised(format!(
                "the database {}: another node's directory, copied, serves it",
                named.unwrap_or_default()
            )));
        }
        let cert = rcgen::generate_simple_self_signed(vec![host])
            .map_err(|e| SetupError::Key(format!("TLS certificate: {e}")))?;
        std::fs::write(dir.join("tls/cert.der"), cert.cert.der().as_ref())
            .map_err(io(&dir.join("tls/cert.der")))?;

        let lock = unlock.create(dir)?;
        let key_err = |e: &dyn std::fmt::Display| SetupError::Key(e.to_string());
        let key = SigningKey::generate().map_err(|e| key_err(&e))?;
        let seal = OrgSecretKey::generate();
        let tls_key = zeroize::Zeroizing::new(cert.signing_key.serialize_der());
        storage.set_metas(&[
            (META_UNLOCK, lock.description.clone()),
            (
                META_COORDINATOR_KEY,
                key.wrap(lock.keys.as_ref()).map_err(|e| key_err(&e))?,
            ),
            (
                META_SEAL_KEY,
                lock.keys.wrap(&seal.to_bytes()).map_err(|e| key_err(&e))?,
            ),
            (
                META_TLS_KEY,
                lock.keys.wrap(&tls_key).map_err(|e| key_err(&e))?,
            ),
            (META_TLS_CERT, cert.cert.der().to_vec()),
        ])?;
        // Written last: its presence means the directory is complete.
        let config = serde_json::to_vec_pretty(&Config {
            url: url.trim_end_matches('/').to_string(),
            org: org.to_string(),
            media_dir: placement.media_dir.clone(),
            media_store: placement.media_store.clone(),
            database: named,
            coordinator: Some(key.public_key().to_string()),
        })
        .expect("serialises");
        std::fs::write(&config_path, config).map_err(io(&config_path))?;
        drop(storage);
        Self::open_with(dir, placement.database.as_ref(), Some(unlock))
    }

    /// Opens an initialised directory, unlocking its keys with `unlock`
    /// (none: only a directory from before keys were protected opens).
    pub fn open(dir: &Path, unlock: Option<&Unlock>) -> Result<Self, SetupError> {
        Self::open_with(dir, None, unlock)
    }

    /// [`Coordinator::open`] with the database's full URL (its password)
    /// when the directory names a PostgreSQL database.
    pub fn open_with(
        dir: &Path,
        database: Option<&DatabaseUrl>,
        unlock: Option<&Unlock>,
    ) -> Result<Self, SetupError> {
        let config_path = dir.join("config.json");
        let config: Config = match std::fs::read(&config_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| SetupError::Invalid(format!("{}: {e}", config_path.display())))?,
            Err(_) => return Err(SetupError::NotInitialised(dir.display().to_string())),
        };
        let storage = open_storage(dir, config.database.as_deref(), database)?;
        let opened = unlock::open(dir, storage.meta(META_UNLOCK)?.as_deref(), unlock)?;
        let keys = opened.keys();
        let wrapped = storage
            .meta(META_COORDINATOR_KEY)?
            .ok_or_else(|| SetupError::Key("missing from the database".into()))?;
        let key = SigningKey::unwrap(&wrapped, keys).map_err(|_| unlock::wrong(unlock))?;
        if let Some(expected) = &config.coordinator {
            let found = key.public_key().to_string();
            if *expected != found {
                return Err(SetupError::KeyMismatch {
                    database: config
                        .database
                        .clone()
                        .unwrap_or_else(|| "server.db".into()),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        let seal = open_or_create_seal_key(storage.as_ref(), keys, unlock)?;
        let read = |p: &str| {
            let path = dir.join(p);
            std::fs::read(&path).map_err(io(&path))
        };
        let tls_key_der = match storage.meta(META_TLS_KEY)? {
            Some(w) => keys.unwrap(&w).map_err(|_| unlock::wrong(unlock))?.to_vec(),
            None => read(LEGACY_TLS_KEY)?,
        };
        let cert_der = read("tls/cert.der")?;
        if storage
            .meta(META_TLS_CERT)?
            .is_some_and(|pinned| pinned != cert_der)
        {
            return Err(SetupError::CertificateMismatch(dir.display().to_string()));
        }
        Ok(Self {
            dir: dir.to_owned(),
            url: config.url,
            org: config.org,
            key,
            seal,
            cert_der,
            tls_key_der,
            storage,
            media_dir: config.media_dir.unwrap_or_else(|| dir.join("media")),
            media_store: config.media_store,
            legacy_keys: matches!(opened, unlock::Opened::Legacy(_)),
        })
    }

    /// Wraps this coordinator's keys anew with `unlock`, in one database
    /// transaction with the description of the new lock, then removes what
    /// a directory from before keys were protected kept in the clear or
    /// beside the database (`coordinator.kek`, `tls/key.der`).
    pub fn rekey(&self, unlock: &Unlock) -> Result<(), SetupError> {
        let key_err = |e: &dyn std::fmt::Display| SetupError::Key(e.to_string());
        let lock = unlock.create(&self.dir)?;
        self.storage.set_metas(&[
            (META_UNLOCK, lock.description.clone()),
            (
                META_COORDINATOR_KEY,
                self.key.wrap(lock.keys.as_ref()).map_err(|e| key_err(&e))?,
            ),
            (
                META_SEAL_KEY,
                lock.keys
                    .wrap(&self.seal.to_bytes())
                    .map_err(|e| key_err(&e))?,
            ),
            (
                META_TLS_KEY,
                lock.keys.wrap(&self.tls_key_der).map_err(|e| key_err(&e))?,
            ),
        ])?;
        for legacy in [unlock::LEGACY_KEY_FILE, LEGACY_TLS_KEY] {
            shred(&self.dir.join(legacy))?;
        }
        Ok(())
    }

    /// A reader of the stored records that opens sealed ones in memory.
    pub fn reader(&self) -> crate::reader::Reader<'_> {
        crate::reader::Reader::new(self.storage.as_ref(), &self.seal)
    }

    /// SHA-256 of the TLS certificate: what phones pin.
    pub fn tls_sha256(&self) -> Sha256Digest {
        Sha256Digest::of(&self.cert_der)
    }

    /// What enrollment codes of this coordinator name.
    pub fn issuer(&self) -> crate::enrollment::CodeIssuer {
        crate::enrollment::CodeIssuer {
            url: self.url.clone(),
            tls_sha256: self.tls_sha256(),
            coordinator: self.key.public_key(),
            org: self.org.clone(),
        }
    }

    /// Station ids a coordinator names: see [`crate::enrollment::check_stations`].
    pub fn check_stations(&self, stations: &[String]) -> Result<(), SetupError> {
        crate::enrollment::check_stations(self.storage.as_ref(), stations)
    }

    /// Issues a one-time enrollment code for an observer at `stations`,
    /// valid for `valid_hours`.
    pub fn issue_code(
        &self,
        stations: &[String],
        name: Option<&str>,
        valid_hours: u32,
        now_ms: i64,
    ) -> Result<EnrollmentCode, SetupError> {
        self.issuer()
            .issue(self.storage.as_ref(), stations, name, valid_hours, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(host_of("https://127.0.0.1:8443").unwrap(), "127.0.0.1");
        assert_eq!(
            host_of("https://obs.example.org").unwrap(),
            "obs.example.org"
        );
        assert_eq!(host_of("https://[::1]:8443/").unwrap(), "::1");
        assert!(host_of("http://x").is_err());
    }
}
