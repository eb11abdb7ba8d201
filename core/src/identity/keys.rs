use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
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

    /// Checks `sig` over `message` with this key: see [`Verifier`]. To
    /// check many signatures of one key, make its [`Verifier`] once.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        Verifier::new(*self).verify(message, sig)
    }

    /// The device id this key names: see [`DeviceId`].
    pub fn device_id(&self) -> DeviceId {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        DeviceId(hex::encode(&digest.as_ref()[..DeviceId::BYTES]))
    }
}

/// A public key decoded once for checking many signatures (a batch's
/// records): decoding the point costs a fifth of a check, and the device
/// id it names is derived at most once too.
///
/// The rule is RFC 8032's cofactorless check, `S` canonical and `R`
/// compared as encoded, for every Ed25519 signature in Observer (records,
/// heartbeats, receipts, checkpoints, cosignatures), on the phone, the
/// server and in the independent verifier alike. Signing is ring's;
/// checking is `ed25519-dalek`'s non-strict `verify`, which applies the
/// same rule as ring's verifier (the `verification_rule_is_rings` test
/// holds them to it on the edge cases) for a quarter to a third less, as
/// it uses the CPU's vector instructions: on election night the server
/// checks one signature per record. Its `verify_strict` would refuse small-order
/// keys that ring accepts, and its batch verifier is cofactored: either
/// would change which evidence verifies.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: PublicKey,
    /// Derived at the first [`Verifier::device`]: a single check of a
    /// receipt or checkpoint never needs it.
    device: std::sync::OnceLock<DeviceId>,
    /// `None` when the bytes are not a point: every check fails.
    point: Option<ed25519_dalek::VerifyingKey>,
}

impl Verifier {
    /// Decodes `key`.
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            device: std::sync::OnceLock::new(),
            point: ed25519_dalek::VerifyingKey::from_bytes(&key.0).ok(),
        }
    }

    /// The device the key names.
    pub fn device(&self) -> &DeviceId {
        self.device.get_or_init(|| self.key.device_id())
    }

    /// Checks `sig` over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let (Some(point), Ok(sig)) = (&self.point, ed25519_dalek::Signature::from_slice(sig))
        else {
            return false;
        };
        ed25519_dalek::Verifier::verify(point, message, &sig).is_ok()
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

    /// The verifier must accept exactly what ring's accepted, or evidence
    /// checked before and after the change would disagree. Differential,
    /// on what honest keys never produce: small-order and non-canonical
    /// points as key and as `R`, with `S` zero, one and not reduced.
    #[test]
    fn verification_rule_is_rings() {
        let ring_verify = |key: &[u8; 32], msg: &[u8], sig: &[u8]| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                .verify(msg, sig)
                .is_ok()
        };
        let hex32 = |h: &str| -> [u8; 32] { hex::decode(h).unwrap().try_into().unwrap() };
        let points: Vec<[u8; 32]> = [
            // Small order: the identity, order 2, 4, 8.
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
            // Not canonical: y = 1 or -1 with the sign bit, y = p + 1, y = p.
            "0100000000000000000000000000000000000000000000000000000000000080",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            // Not on the curve.
            "0200000000000000000000000000000000000000000000000000000000000000",
        ]
        .iter()
        .map(|h| hex32(h))
        .collect();
        // S: zero, one, the group order L (not reduced), L + 1.
        let scalars = [
            [0u8; 32],
            hex32("0100000000000000000000000000000000000000000000000000000000000000"),
            hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"),
            hex32("eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"),
        ];
        let mut cases = 0;
        let mut accepted = 0;
        for key in &points {
            for r in &points {
                for s in &scalars {
                    for msg in [&b""[..], b"a", b"b", b"observer"] {
                        let mut sig = [0u8; 64];
                        sig[..32].copy_from_slice(r);
                        sig[32..].copy_from_slice(s);
                        let ours = PublicKey::from_bytes(*key).verify(msg, &sig);
                        assert_eq!(
                            ours,
                            ring_verify(key, msg, &sig),
                            "key {} sig {} msg {msg:?}",
                            hex::encode(key),
                            hex::encode(sig)
                        );
                        cases += 1;
                        accepted += usize::from(ours);
                    }
                }
            }
        }
        // The identity key with R the identity and S = 0 verifies under
        // the cofactorless rule: the cases reach both answers.
        assert!(accepted > 0 && accepted < cases, "{accepted} of {cases}");
        // Honest signatures, and each of their bytes changed.
        for _ in 0..32 {
            let key = SigningKey::generate().unwrap();
            let msg = b"a record";
            let sig = key.sign(msg);
            let pk = key.public_key();
            assert!(pk.verify(msg, &sig) && ring_verify(pk.as_bytes(), msg, &sig));
            for i in 0..64 {
                let mut bad = sig;
                bad[i] ^= 1 << (i % 8);
                assert_eq!(pk.verify(msg, &bad), ring_verify(pk.as_bytes(), msg, &bad));
                assert!(!pk.verify(msg, &bad));
            }
            assert!(!pk.verify(msg, &sig[..63]));
        }
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
