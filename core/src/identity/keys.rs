use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{IdentityError, KeyStore};

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signing key: a device's, or the coordinator's. Never
/// serialised unwrapped: [`SigningKey::wrap`] is the only way its secret
/// leaves memory.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    /// PKCS#8 document kept (zeroed on drop) so the key can be wrapped again.
    pkcs8: Zeroizing<Vec<u8>>,
}

impl SigningKey {
    /// Creates a fresh key from the operating system's random generator.
    pub fn generate() -> Result<Self, IdentityError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| IdentityError::Random)?;
        Self::from_pkcs8(Zeroizing::new(doc.as_ref().to_vec()))
    }

    fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>) -> Result<Self, IdentityError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| IdentityError::InvalidKey)?;
        Ok(Self { pair, pkcs8 })
    }

    /// Wraps the secret with the platform key store, for storage at rest.
    pub fn wrap(&self, keystore: &dyn KeyStore) -> Result<Vec<u8>, IdentityError> {
        Ok(keystore.wrap(&self.pkcs8)?)
    }

    /// Restores a key that [`SigningKey::wrap`] produced.
    pub fn unwrap(wrapped: &[u8], keystore: &dyn KeyStore) -> Result<Self, IdentityError> {
        Self::from_pkcs8(keystore.unwrap(wrapped)?)
    }

    /// Signs `message` (callers add their own domain separation).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    /// The public half, which the coordinator enrolls.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key. Text form: unpadded base64url (43 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks `sig` over `message` with this key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, sig)
            .is_ok()
    }

    /// The device id this key names: see [`DeviceId`].
    pub fn device_id(&self) -> DeviceId {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        DeviceId(hex::encode(&digest.as_ref()[..DeviceId::BYTES]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::str::FromStr for PublicKey {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| IdentityError::BadPublicKey(e.to_string()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadPublicKey("expected 32 bytes".into()))?;
        Ok(Self(bytes))
    }
}

/// A device's name: the first 16 bytes of SHA-256 of its public key, in hex.
///
/// Derived rather than assigned so that a record names its signer in a way
/// nobody can reassign: the server maps it to the enrolled key, and a record
/// claiming a device id that does not match the verifying key is rejected.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    const BYTES: usize = 16;

    /// The id as text (32 lowercase hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok = s.len() == Self::BYTES * 2
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "device id must be {} lowercase hex digits",
                Self::BYTES * 2
            ))
        }
    }
}

impl From<DeviceId> for String {
    fn from(d: DeviceId) -> Self {
        d.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FileKeyStore;

    #[test]
    fn wrapped_key_round_trips_and_signs_identically() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open_or_create(dir.path().join("k")).unwrap();
        let key = SigningKey::generate().unwrap();
        let wrapped = key.wrap(&ks).unwrap();
        assert!(
            !wrapped
                .windows(16)
                .any(|w| key.pkcs8.windows(16).any(|p| p == w)),
            "wrapped form must not contain the secret"
        );
        let back = SigningKey::unwrap(&wrapped, &ks).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let sig = back.sign(b"m");
        assert!(key.public_key().verify(b"m", &sig));
        assert!(!key.public_key().verify(b"n", &sig));
    }

    #[test]
    fn public_key_text_round_trips_and_rejects_garbage() {
        let pk = SigningKey::generate().unwrap().public_key();
        assert_eq!(pk.to_string().parse::<PublicKey>().unwrap(), pk);
        assert!(matches!(
            "abc".parse::<PublicKey>(),
            Err(IdentityError::BadPublicKey(_))
        ));
        assert_eq!(pk.device_id().as_str().len(), 32);
    }
}
