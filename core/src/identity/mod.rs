//! Who wrote a record: the device's Ed25519 key and how it is kept.
//!
//! The private key exists unwrapped only in memory, inside [`SigningKey`].
//! At rest it is always wrapped by a [`KeyStore`] that the platform supplies
//! (Android Keystore, iOS Keychain); [`FileKeyStore`] is the weaker desktop
//! and test implementation.

mod keys;
mod keystore;

pub use keys::{DeviceId, PublicKey, SIGNATURE_LEN, SigningKey, Verifier};
pub use keystore::{FileKeyStore, KeyStore, KeyStoreError, SecretKeyStore};

/// Errors about the device identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The platform key store refused or failed to wrap or unwrap the key.
    #[error("the device key store failed: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The unwrapped bytes are not an Ed25519 key (wrong key store, or damage).
    #[error(
        "the stored device key is not a valid Ed25519 key; the key store may belong to another installation"
    )]
    InvalidKey,
    /// The unwrapped data key has the wrong length (wrong key store, or damage).
    #[error("the stored data key is malformed; the key store may belong to another installation")]
    InvalidDataKey,
    /// The operating system's random generator failed.
    #[error("the system random number generator failed; try again")]
    Random,
    /// A public key of the wrong length or encoding.
    #[error("not an Ed25519 public key: {0}")]
    BadPublicKey(String),
}
