use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

/// Wraps and unwraps the secrets the core keeps at rest.
///
/// The platform implements it with a key that never leaves secure hardware
/// where it can (Android Keystore, iOS Keychain / Secure Enclave). The core
/// hands it a secret and stores only what `wrap` returns.
pub trait KeyStore: Send + Sync {
    /// Encrypts `secret`; the result is stored by the core.
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError>;
    /// Reverses [`KeyStore::wrap`]. Must fail (not return garbage) when
    /// `wrapped` was not produced by this key store.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError>;
    /// Destroys the wrapping key for good (panic wipe): afterwards nothing
    /// it wrapped can be unwrapped, wherever copies of the wrapped bytes
    /// survive. Destroying a key that is already gone succeeds.
    fn destroy(&self) -> Result<(), KeyStoreError>;
}

/// Errors from a [`KeyStore`].
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The wrapping key could not be read or created.
    #[error(
        "cannot use the key file {path}: {source}; check that the data directory is private and writable"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but is not a key this software wrote.
    #[error(
        "the key file {0} is damaged or not an Observer key file; restore it from backup, or re-enroll this device"
    )]
    BadKeyFile(PathBuf),
    /// The wrapped secret failed authentication: another key store's, or damaged.
    #[error("the wrapped key cannot be opened with this key store (wrong key or damaged data)")]
    Unwrap,
    /// The platform key store refused (locked device, key invalidated, ...).
    #[error("the platform key store refused: {0}")]
    Platform(String),
}

/// A [`KeyStore`] whose wrapping key is a file on disk.
///
/// **Weaker than a platform key store:** anyone who copies the data
/// directory with this file can unwrap the device key. It exists for the
/// desktop client, trainers and tests; phones use the platform key store.
pub struct FileKeyStore {
    key: SecretKeyStore,
    path: PathBuf,
}

/// A [`KeyStore`] whose wrapping key is 32 bytes the caller holds: derived
/// from a passphrase, or read from storage away from the data it protects.
/// Same wrapped format as [`FileKeyStore`]. It has nothing to destroy: the
/// caller forgets the key.
pub struct SecretKeyStore {
    key: LessSafeKey,
}

impl SecretKeyStore {
    /// A key store wrapping with `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, key).expect("32 bytes is a ChaCha20 key"),
            ),
        }
    }
}

const KEY_FILE_MAGIC: &[u8; 8] = b"OBSKEK1\n";
const WRAP_VERSION: u8 = 1;
const WRAP_AAD: &[u8] = b"observer/file-keystore/v1";

impl FileKeyStore {
    /// Opens the wrapping key at `path`, creating it (mode 0600, written
    /// atomically) if it does not exist.
    pub fn open_or_create(path: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let path = path.into();
        let io = |source| KeyStoreError::Io {
            path: path.clone(),
            source,
        };
        let bytes = match fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::create(&path).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        };
        let raw = bytes
            .strip_prefix(KEY_FILE_MAGIC.as_slice())
            .filter(|k| k.len() == 32)
            .ok_or_else(|| KeyStoreError::BadKeyFile(path.clone()))?;
        let raw: &[u8; 32] = raw
            .try_into()
            .map_err(|_| KeyStoreError::BadKeyFile(path.clone()))?;
        Ok(Self {
            key: SecretKeyStore::new(raw),
            path,
        })
    }

    /// Opens the wrapping key at `path`, which must exist (a key kept on
    /// other storage is never silently replaced by a new one).
    pub fn open_existing(path: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let path = path.into();
        if !path.exists() {
            return Err(KeyStoreError::Io {
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such key file"),
                path,
            });
        }
        Self::open_or_create(path)
    }

    fn create(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut raw = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(raw.as_mut())
            .map_err(|_| std::io::Error::other("system random generator failed"))?;
        let mut contents = Zeroizing::new(KEY_FILE_MAGIC.to_vec());
        contents.extend_from_slice(raw.as_ref());
        let tmp = path.with_extension("tmp");
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(contents)
    }
}

impl KeyStore for FileKeyStore {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.key.wrap(secret)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        self.key.unwrap(wrapped)
    }

    /// Overwrites the key file with zeros, syncs and removes it. (Flash
    /// storage may keep old blocks; platform key stores do better.)
    fn destroy(&self) -> Result<(), KeyStoreError> {
        let io = |source| KeyStoreError::Io {
            path: self.path.clone(),
            source,
        };
        match fs::OpenOptions::new().write(true).open(&self.path) {
            Ok(mut f) => {
                let len = f.metadata().map_err(io)?.len() as usize;
                f.write_all(&vec![0u8; len]).map_err(io)?;
                f.sync_all().map_err(io)?;
                fs::remove_file(&self.path).map_err(io)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

impl KeyStore for SecretKeyStore {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyStoreError::Platform("system random generator failed".into()))?;
        let mut buf = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(WRAP_AAD),
                &mut buf,
            )
            .map_err(|_| KeyStoreError::Platform("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        let (&version, rest) = wrapped.split_first().ok_or(KeyStoreError::Unwrap)?;
        if version != WRAP_VERSION || rest.len() < NONCE_LEN {
            return Err(KeyStoreError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyStoreError::Unwrap)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(WRAP_AAD), &mut buf)
            .map_err(|_| KeyStoreError::Unwrap)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Nothing to destroy: the key lives with its caller.
    fn destroy(&self) -> Result<(), KeyStoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_key_file_cannot_unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileKeyStore::open_or_create(dir.path().join("a")).unwrap();
        let b = FileKeyStore::open_or_create(dir.path().join("b")).unwrap();
        let w = a.wrap(b"secret").unwrap();
        assert_eq!(a.unwrap(&w).unwrap().as_slice(), b"secret");
        assert!(matches!(b.unwrap(&w), Err(KeyStoreError::Unwrap)));
        let mut flipped = w.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(a.unwrap(&flipped), Err(KeyStoreError::Unwrap)));
    }

    #[test]
    fn a_destroyed_key_file_unwraps_nothing_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let ks = FileKeyStore::open_or_create(&p).unwrap();
        let w = ks.wrap(b"secret").unwrap();
        ks.destroy().unwrap();
        assert!(!p.exists());
        ks.destroy().unwrap();
        let again = FileKeyStore::open_or_create(&p).unwrap();
        assert!(matches!(again.unwrap(&w), Err(KeyStoreError::Unwrap)));
    }

    #[test]
    fn reopening_reads_the_same_key_and_garbage_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let w = FileKeyStore::open_or_create(&p)
            .unwrap()
            .wrap(b"x")
            .unwrap();
        let again = FileKeyStore::open_or_create(&p).unwrap();
        assert_eq!(again.unwrap(&w).unwrap().as_slice(), b"x");
        fs::write(&p, b"not a key").unwrap();
        assert!(matches!(
            FileKeyStore::open_or_create(&p),
            Err(KeyStoreError::BadKeyFile(_))
        ));
    }
}
