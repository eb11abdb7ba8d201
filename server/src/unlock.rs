//! The key that unlocks the coordinator's own keys (the receipt-signing
//! key, the organisation's sealing key, the TLS key), which is never kept
//! beside the database. A seized laptop's disk, or a copied data
//! directory, holds those keys only wrapped; whoever has it still needs:
//!
//! - a **key file** on other storage (a USB stick, a secrets mount), given
//!   with `--key-file` or `OBSERVER_SERVER_KEY_FILE`; or
//! - a **passphrase**, stretched with Argon2id (its salt and costs kept in
//!   the database with the wrapped keys), given in
//!   `OBSERVER_SERVER_PASSPHRASE` or a file named by `--passphrase-file`
//!   (a systemd credential, say).
//!
//! How the keys are wrapped is stored in the same database transaction as
//! the wrapped keys, so `rekey` changes both at once or neither.
//!
//! Directories made before this existed wrap their keys with
//! `DIR/coordinator.kek`, beside the database: they still open, with a
//! warning, until `observer-server rekey` moves them to one of the above.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use observer_core::identity::{FileKeyStore, KeyStore, SecretKeyStore};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The key file of directories made before keys were protected.
pub const LEGACY_KEY_FILE: &str = "coordinator.kek";

/// Argon2id costs for a passphrase: 64 MiB, 3 passes, one lane (about half
/// a second on a laptop core: paid once per command, and per guess).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;
const ARGON2_P: u32 = 1;

/// What the operator gives to unlock the keys.
pub enum Unlock {
    /// A key file (created by `init` if missing) away from the data.
    KeyFile(PathBuf),
    /// A passphrase.
    Passphrase(Zeroizing<String>),
}

/// Why the keys could not be unlocked.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// Nothing was given to unlock with.
    #[error("the coordinator's keys are locked: give {0}")]
    Locked(&'static str),
    /// What was given does not open them.
    #[error(
        "{0} does not open this server's keys (a wrong passphrase or key file, or damaged keys)"
    )]
    WrongKey(&'static str),
    /// The key file would sit with the data it protects.
    #[error(
        "the key file {0} is inside the data directory; keep it on other storage (that is what protects the keys)"
    )]
    KeyFileInsideData(PathBuf),
    /// The stored description of the lock is damaged.
    #[error("the stored description of how the keys are wrapped is damaged: {0}")]
    Damaged(String),
    /// The key file cannot be used.
    #[error(transparent)]
    KeyStore(#[from] observer_core::identity::KeyStoreError),
    /// More than one way to unlock was given.
    #[error("give one of --key-file, --passphrase-file or {0}, not several")]
    Ambiguous(&'static str),
    /// The passphrase file cannot be used.
    #[error("--passphrase-file {path}: {problem}")]
    PassphraseFile { path: PathBuf, problem: String },
}

impl Unlock {
    /// What the operator gave: a key file, a file holding the passphrase,
    /// or the passphrase itself in the environment variable `env`; at most
    /// one of them.
    pub fn choose(
        key_file: Option<&Path>,
        passphrase_file: Option<&Path>,
        env: &'static str,
    ) -> Result<Option<Unlock>, UnlockError> {
        let phrase = std::env::var(env).ok().filter(|p| !p.is_empty());
        match (key_file, passphrase_file, phrase) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                Err(UnlockError::Ambiguous(env))
            }
            (Some(k), None, None) => Ok(Some(Unlock::KeyFile(k.to_path_buf()))),
            (None, Some(f), None) => {
                let problem = |problem: String| UnlockError::PassphraseFile {
                    path: f.to_path_buf(),
                    problem,
                };
                let text = std::fs::read_to_string(f).map_err(|e| problem(e.to_string()))?;
                let phrase = text.trim_end_matches(['\n', '\r']).to_string();
                if phrase.is_empty() {
                    return Err(problem("it is empty".into()));
                }
                Ok(Some(Unlock::Passphrase(Zeroizing::new(phrase))))
            }
            (None, None, Some(p)) => Ok(Some(Unlock::Passphrase(Zeroizing::new(p)))),
            (None, None, None) => Ok(None),
        }
    }
}

/// How a directory's keys are wrapped (stored as JSON with them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum Lock {
    KeyFile,
    Passphrase {
        salt: String,
        m_kib: u32,
        t: u32,
        p: u32,
    },
}

const GIVE: &str = "--key-file PATH (or OBSERVER_SERVER_KEY_FILE), or a passphrase in OBSERVER_SERVER_PASSPHRASE or --passphrase-file PATH";

fn stretch(passphrase: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Zeroizing<[u8; 32]> {
    let params = argon2::Params::new(m_kib, t, p, Some(32)).expect("valid Argon2 costs");
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .expect("a 16-byte salt and a 32-byte output are valid");
    out
}

/// Refuses a key file inside `dir` (after resolving `..` and links: the
/// directory exists, and so must the key file's).
fn outside(dir: &Path, key_file: &Path) -> Result<(), UnlockError> {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let parent = key_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = resolve(parent).join(key_file.file_name().unwrap_or_default());
    if file.starts_with(resolve(dir)) {
        return Err(UnlockError::KeyFileInsideData(file));
    }
    Ok(())
}

/// A new lock: the key store that wraps, and the description to store
/// with what it wrapped.
pub struct NewLock {
    /// Wraps the keys.
    pub keys: Box<dyn KeyStore>,
    /// How they were wrapped, for [`open`].
    pub description: Vec<u8>,
}

impl Unlock {
    /// A lock for the directory `dir` (`init`, `rekey`): a key file is
    /// created if missing, a passphrase gets a fresh salt.
    pub fn create(&self, dir: &Path) -> Result<NewLock, UnlockError> {
        let (keys, lock): (Box<dyn KeyStore>, Lock) = match self {
            Unlock::KeyFile(path) => {
                outside(dir, path)?;
                (Box::new(FileKeyStore::open_or_create(path)?), Lock::KeyFile)
            }
            Unlock::Passphrase(phrase) => {
                let mut salt = [0u8; 16];
                SystemRandom::new()
                    .fill(&mut salt)
                    .expect("the system random generator works");
                let key = stretch(phrase, &salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P);
                (
                    Box::new(SecretKeyStore::new(&key)),
                    Lock::Passphrase {
                        salt: STANDARD.encode(salt),
                        m_kib: ARGON2_M_KIB,
                        t: ARGON2_T,
                        p: ARGON2_P,
                    },
                )
            }
        };
        Ok(NewLock {
            keys,
            description: serde_json::to_vec(&lock).expect("serialises"),
        })
    }

    /// A short name for messages.
    fn what(&self) -> &'static str {
        match self {
            Unlock::KeyFile(_) => "the key file",
            Unlock::Passphrase(_) => "the passphrase",
        }
    }
}

/// How the keys of an existing directory open.
pub enum Opened {
    /// With what the operator gave.
    Unlocked(Box<dyn KeyStore>),
    /// With `coordinator.kek` beside the database (a directory made before
    /// keys were protected): `rekey` should move them.
    Legacy(Box<FileKeyStore>),
}

impl Opened {
    /// The key store, whichever it is.
    pub fn keys(&self) -> &dyn KeyStore {
        match self {
            Opened::Unlocked(k) => k.as_ref(),
            Opened::Legacy(k) => k.as_ref(),
        }
    }
}

/// The key store of the directory `dir` whose stored lock description is
/// `stored` (none: a directory from before keys were protected), from
/// `given`. Whether it opens the keys shows when they are unwrapped
/// ([`wrong`] for the caller's error).
pub fn open(
    dir: &Path,
    stored: Option<&[u8]>,
    given: Option<&Unlock>,
) -> Result<Opened, UnlockError> {
    let lock: Option<Lock> = stored
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| UnlockError::Damaged(e.to_string()))?;
    match (lock, given) {
        (None, _) => Ok(Opened::Legacy(Box::new(FileKeyStore::open_existing(
            dir.join(LEGACY_KEY_FILE),
        )?))),
        (Some(_), None) => Err(UnlockError::Locked(GIVE)),
        (Some(Lock::KeyFile), Some(Unlock::KeyFile(path))) => Ok(Opened::Unlocked(Box::new(
            FileKeyStore::open_existing(path)?,
        ))),
        (Some(Lock::Passphrase { salt, m_kib, t, p }), Some(Unlock::Passphrase(phrase))) => {
            let salt = STANDARD
                .decode(salt)
                .map_err(|e| UnlockError::Damaged(e.to_string()))?;
            if argon2::Params::new(m_kib, t, p, Some(32)).is_err() || salt.len() < 8 {
                return Err(UnlockError::Damaged(
                    "the Argon2 salt or costs are not valid".into(),
                ));
            }
            Ok(Opened::Unlocked(Box::new(SecretKeyStore::new(&stretch(
                phrase, &salt, m_kib, t, p,
            )))))
        }
        (Some(Lock::KeyFile), Some(_)) => Err(UnlockError::WrongKey(
            "a passphrase (this directory's keys open with a key file)",
        )),
        (Some(Lock::Passphrase { .. }), Some(_)) => Err(UnlockError::WrongKey(
            "a key file (this directory's keys open with a passphrase)",
        )),
    }
}

/// The error for keys that `given` did not open.
pub fn wrong(given: Option<&Unlock>) -> UnlockError {
    UnlockError::WrongKey(given.map_or("the legacy key file", Unlock::what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_opens_what_it_wrapped_and_another_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let right = Unlock::Passphrase(Zeroizing::new("correct horse".into()));
        let lock = right.create(dir.path()).unwrap();
        let wrapped = lock.keys.wrap(b"secret").unwrap();
        let stored = Some(lock.description.as_slice());
        let opened = open(dir.path(), stored, Some(&right)).unwrap();
        assert_eq!(
            opened.keys().unwrap(&wrapped).unwrap().as_slice(),
            b"secret"
        );
        let other = Unlock::Passphrase(Zeroizing::new("battery staple".into()));
        assert!(
            open(dir.path(), stored, Some(&other))
                .unwrap()
                .keys()
                .unwrap(&wrapped)
                .is_err()
        );
        assert!(matches!(
            open(dir.path(), stored, None),
            Err(UnlockError::Locked(_))
        ));
        let file = Unlock::KeyFile(dir.path().join("..").join("elsewhere.key"));
        assert!(matches!(
            open(dir.path(), stored, Some(&file)),
            Err(UnlockError::WrongKey(_))
        ));
    }

    #[test]
    fn a_key_file_must_live_outside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Unlock::KeyFile(dir.path().join("k.key"));
        assert!(matches!(
            inside.create(dir.path()),
            Err(UnlockError::KeyFileInsideData(_))
        ));
    }
}
