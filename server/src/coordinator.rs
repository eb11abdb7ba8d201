//! The coordinator's data directory: its signing key, TLS certificate,
//! configuration and database, created by `init` and opened by every other
//! command.
//!
//! ```text
//! DIR/config.json        server URL and organisation id
//! DIR/coordinator.kek    key file wrapping the coordinator's signing key
//! DIR/server.db          SQLite: devices, tokens, records, log, wrapped key
//! DIR/tls/cert.der       self-signed TLS certificate (its SHA-256 is pinned by phones)
//! DIR/tls/key.der        its private key (mode 0600)
//! DIR/dashboard.token    the coordinator's token for the web view (mode 0600)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use observer_core::identity::KeyStore as _;
use observer_core::identity::{FileKeyStore, SigningKey};
use observer_core::protocol::EnrollmentCode;
use observer_core::record::Sha256Digest;
use observer_core::seal::OrgSecretKey;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::storage::sqlite::SqliteStorage;
use crate::storage::{NewToken, Storage, StorageError};

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
    #[error("{0} is not an initialised server directory; run `observer-server --data {0} init --url https://HOST:PORT` first")]
    NotInitialised(String),
    /// `init` was already run here.
    #[error("{0} is already initialised; use another directory for another server")]
    AlreadyInitialised(String),
    /// A bad argument (URL, organisation id, station).
    #[error("{0}")]
    Invalid(String),
    /// Key handling failed.
    #[error("the coordinator key: {0}")]
    Key(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database does not hold what the phones signed.
    #[error("the server database was altered: {0}; run `observer-server verify` for every finding, and restore it from a backup")]
    Altered(String),
}

#[derive(Serialize, Deserialize)]
struct Config {
    url: String,
    org: String,
    /// Where evidence media are kept; `DIR/media` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_dir: Option<PathBuf>,
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
    pub storage: Arc<SqliteStorage>,
    /// Where evidence media are kept (`config.json`'s `media_dir`, or
    /// `DIR/media`).
    pub media_dir: PathBuf,
}

const META_COORDINATOR_KEY: &str = "coordinator_key";
const META_SEAL_KEY: &str = "seal_key";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
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

/// The organisation's sealing key, wrapped by the coordinator's key file
/// like the signing key. Created on first use, so directories made before
/// sealing existed get one when they are next opened.
fn open_or_create_seal_key(
    storage: &SqliteStorage,
    keys: &FileKeyStore,
) -> Result<OrgSecretKey, SetupError> {
    let key_err = |e: &dyn std::fmt::Display| SetupError::Key(e.to_string());
    if let Some(wrapped) = storage.meta(META_SEAL_KEY)? {
        let raw = keys.unwrap(&wrapped).map_err(|e| key_err(&e))?;
        return OrgSecretKey::from_bytes(&raw).map_err(|e| key_err(&e));
    }
    let seal = OrgSecretKey::generate();
    let wrapped = keys.wrap(&seal.to_bytes()).map_err(|e| key_err(&e))?;
    storage.set_meta(META_SEAL_KEY, &wrapped)?;
    Ok(seal)
}

impl Coordinator {
    /// Creates the coordinator in `dir`: signing key, self-signed TLS
    /// certificate for the URL's host, configuration, database.
    pub fn init(dir: &Path, url: &str, org: &str) -> Result<Self, SetupError> {
        Self::init_with_media(dir, url, org, None)
    }

    /// [`Coordinator::init`], keeping evidence media in `media_dir` (a
    /// larger disk, say) instead of `DIR/media`.
    pub fn init_with_media(
        dir: &Path,
        url: &str,
        org: &str,
        media_dir: Option<&Path>,
    ) -> Result<Self, SetupError> {
        let host = host_of(url)?;
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
        let cert = rcgen::generate_simple_self_signed(vec![host])
            .map_err(|e| SetupError::Key(format!("TLS certificate: {e}")))?;
        write_private(&dir.join("tls/key.der"), &cert.signing_key.serialize_der())?;
        std::fs::write(dir.join("tls/cert.der"), cert.cert.der().as_ref())
            .map_err(io(&dir.join("tls/cert.der")))?;
        write_private(&dir.join("dashboard.token"), random_token().as_bytes())?;

        let keys = FileKeyStore::open_or_create(dir.join("coordinator.kek"))
            .map_err(|e| SetupError::Key(e.to_string()))?;
        let storage = SqliteStorage::open(&dir.join("server.db"))?;
        let key = SigningKey::generate().map_err(|e| SetupError::Key(e.to_string()))?;
        let wrapped = key
            .wrap(&keys)
            .map_err(|e| SetupError::Key(e.to_string()))?;
        storage.set_meta(META_COORDINATOR_KEY, &wrapped)?;
        // Written last: its presence means the directory is complete.
        let config = serde_json::to_vec_pretty(&Config {
            url: url.trim_end_matches('/').to_string(),
            org: org.to_string(),
            media_dir: media_dir.map(Path::to_path_buf),
        })
        .expect("serialises");
        std::fs::write(&config_path, config).map_err(io(&config_path))?;
        drop(storage);
        Self::open(dir)
    }

    /// Opens an initialised directory.
    pub fn open(dir: &Path) -> Result<Self, SetupError> {
        let config_path = dir.join("config.json");
        let config: Config = match std::fs::read(&config_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| SetupError::Invalid(format!("{}: {e}", config_path.display())))?,
            Err(_) => return Err(SetupError::NotInitialised(dir.display().to_string())),
        };
        let storage = SqliteStorage::open(&dir.join("server.db"))?;
        let keys = FileKeyStore::open_or_create(dir.join("coordinator.kek"))
            .map_err(|e| SetupError::Key(e.to_string()))?;
        let wrapped = storage
            .meta(META_COORDINATOR_KEY)?
            .ok_or_else(|| SetupError::Key("missing from the database".into()))?;
        let key =
            SigningKey::unwrap(&wrapped, &keys).map_err(|e| SetupError::Key(e.to_string()))?;
        let seal = open_or_create_seal_key(&storage, &keys)?;
        let read = |p: &str| {
            let path = dir.join(p);
            std::fs::read(&path).map_err(io(&path))
        };
        Ok(Self {
            dir: dir.to_owned(),
            url: config.url,
            org: config.org,
            key,
            seal,
            cert_der: read("tls/cert.der")?,
            tls_key_der: read("tls/key.der")?,
            storage: Arc::new(storage),
            media_dir: config.media_dir.unwrap_or_else(|| dir.join("media")),
        })
    }

    /// SHA-256 of the TLS certificate: what phones pin.
    pub fn tls_sha256(&self) -> Sha256Digest {
        Sha256Digest::of(&self.cert_der)
    }

    /// The coordinator's token for the web view.
    pub fn dashboard_token(&self) -> Result<String, SetupError> {
        let path = self.dir.join("dashboard.token");
        Ok(std::fs::read_to_string(&path)
            .map_err(io(&path))?
            .trim()
            .to_string())
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
        if stations.is_empty() {
            return Err(SetupError::Invalid("name at least one --station".into()));
        }
        for s in stations {
            observer_core::record::StationId::new(s.clone())
                .map_err(|e| SetupError::Invalid(format!("--station {s:?}: {e}")))?;
        }
        let token = random_token();
        self.storage.add_token(
            &NewToken {
                hash: Sha256Digest::of(token.as_bytes()),
                stations: stations.to_vec(),
                name: name.map(str::to_string),
                expires_at_ms: now_ms + i64::from(valid_hours) * 3_600_000,
            },
            now_ms,
        )?;
        Ok(EnrollmentCode {
            url: self.url.clone(),
            tls_sha256: self.tls_sha256(),
            coordinator: self.key.public_key(),
            org: self.org.clone(),
            token,
        })
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
