//! Sealing records to the organisation (HPKE, RFC 9180).
//!
//! For the forms the organisation marks `sealed`, the phone keeps beside
//! each record a copy that only the organisation's X25519 private key can
//! open: `DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305` in
//! base mode, single shot. The plaintext is the record as signed (`sig ||
//! body`): sign first, then seal, so the signature proves who wrote it once
//! opened, and hides from a relay, an interceptor or whoever holds the
//! phone even *whether* a guessed body is the one signed. The device and
//! seq are bound in the associated data, so a sealed record cannot be
//! passed off as another position or device.
//!
//! This sealed copy survives a panic wipe (`Store::wipe` with
//! `keep_sealed`): the phone can no longer read it, and can still deliver
//! it. The `hpke` crate is used on both sides because ring has no static
//! X25519 private key for the server to open with.
//!
//! ```
//! use observer_core::identity::SigningKey;
//! use observer_core::record::{sign_record, ChainPosition, NewRecord};
//! use observer_core::seal::{OrgSecretKey, SealedRecord};
//!
//! let org = OrgSecretKey::generate();
//! let device = SigningKey::generate()?;
//! let pos = ChainPosition::first(&device);
//! let new = NewRecord::builder("S1", "incident", 1, "incident").build()?;
//! let env = sign_record(&new, &pos, &device)?;
//! let sealed = SealedRecord::seal(&org.public_key(), &pos.device, pos.seq, &env)?;
//! assert_eq!(sealed.open(&org)?, env);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{DeviceId, SIGNATURE_LEN};
use crate::record::Envelope;
use crate::record::limits::MAX_BODY_BYTES;

type Kem = X25519HkdfSha256;

/// The HPKE `info` string: which protocol and version the key is used for.
pub const SEAL_INFO: &[u8] = b"observer/seal/v1";

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a 32-byte X25519 key.
    #[error("not an X25519 key: {0}")]
    BadKey(String),
    /// The ciphertext, its encapsulated key or its associated data was
    /// altered, or it was sealed to another organisation.
    #[error(
        "the sealed record does not open: altered in transit or storage, sealed for another organisation, or relabelled with another device or seq"
    )]
    Tampered,
    /// It opened, but is not a record of the size and shape this protocol
    /// allows.
    #[error("the sealed record opened but is malformed: {0}")]
    Malformed(String),
    /// The HPKE implementation refused to seal.
    #[error("sealing failed: {0}")]
    Seal(String),
}

/// The organisation's public key for sealing, as enrollment sends it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgPublicKey([u8; 32]);

impl std::fmt::Debug for OrgPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OrgPublicKey({})", hex::encode(self.0))
    }
}

impl OrgPublicKey {
    /// From its 32 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SealError> {
        let b: [u8; 32] = b
            .try_into()
            .map_err(|_| SealError::BadKey(format!("{} bytes, expected 32", b.len())))?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&b)
            .map_err(|e| SealError::BadKey(e.to_string()))?;
        Ok(Self(b))
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Serialize for OrgPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for OrgPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// The organisation's private key (on the coordinating server only).
pub struct OrgSecretKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    pk: OrgPublicKey,
}

impl OrgSecretKey {
    /// A new random key pair.
    pub fn generate() -> Self {
        let (sk, pk) = Kem::gen_keypair();
        Self {
            sk,
            pk: OrgPublicKey(pk.to_bytes().into()),
        }
    }

    /// From the 32 bytes [`OrgSecretKey::to_bytes`] gave.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SealError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(b)
            .map_err(|e| SealError::BadKey(e.to_string()))?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self {
            sk,
            pk: OrgPublicKey(pk.to_bytes().into()),
        })
    }

    /// The private key's bytes, to be wrapped before they are stored.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.sk.to_bytes().to_vec())
    }

    /// The public half, for enrollment.
    pub fn public_key(&self) -> OrgPublicKey {
        self.pk
    }
}

/// A record sealed to the organisation: HPKE's encapsulated key and
/// ciphertext, labelled with the device and seq bound into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedRecord {
    /// The device that signed it.
    pub device: DeviceId,
    /// Its position in that device's chain.
    pub seq: u64,
    /// HPKE's encapsulated key.
    #[serde(with = "crate::protocol::b64")]
    pub enc: Vec<u8>,
    /// `sig || body`, sealed.
    #[serde(with = "crate::protocol::b64")]
    pub ct: Vec<u8>,
}

/// The associated data: the protocol, device and seq.
fn aad(device: &DeviceId, seq: u64) -> Vec<u8> {
    let mut a = SEAL_INFO.to_vec();
    a.push(0);
    a.extend_from_slice(device.as_str().as_bytes());
    a.push(0);
    a.extend_from_slice(&seq.to_be_bytes());
    a
}

impl SealedRecord {
    /// Seals the signed record `env` (device `device`, seq `seq`) to `org`.
    pub fn seal(
        org: &OrgPublicKey,
        device: &DeviceId,
        seq: u64,
        env: &Envelope,
    ) -> Result<Self, SealError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(SIGNATURE_LEN + env.body.len()));
        plain.extend_from_slice(&env.sig);
        plain.extend_from_slice(&env.body);
        let (enc, ct) = seal_raw(
            org.as_bytes(),
            SEAL_INFO,
            &aad(device, seq),
            &plain,
            &mut hpke::rand_core::UnwrapErr(SysRandom),
        )?;
        Ok(Self {
            device: device.clone(),
            seq,
            enc,
            ct,
        })
    }

    /// Opens it with the organisation's key. The result still has to be
    /// verified as any record is, and its body's device and seq compared
    /// with this label ([`crate::record::verify_envelope`] gives them).
    pub fn open(&self, org: &OrgSecretKey) -> Result<Envelope, SealError> {
        if self.ct.len() > MAX_BODY_BYTES + SIGNATURE_LEN + 16 {
            return Err(SealError::Malformed(format!(
                "{} bytes of ciphertext, over the record limit",
                self.ct.len()
            )));
        }
        let plain = open_raw(
            &org.sk,
            &self.enc,
            SEAL_INFO,
            &aad(&self.device, self.seq),
            &self.ct,
        )?;
        let (sig, body) = plain
            .split_first_chunk::<SIGNATURE_LEN>()
            .ok_or_else(|| SealError::Malformed("shorter than a signature".into()))?;
        Ok(Envelope {
            body: body.to_vec(),
            sig: *sig,
        })
    }
}

/// The HPKE `info` string for the organisation's own small secrets
/// (a coordinator's second-factor key): another purpose than records, so
/// one can never be opened as the other.
pub const SECRET_INFO: &[u8] = b"observer/secret/v1";

/// Longest secret [`seal_secret`] takes: these are keys, not documents.
pub const MAX_SECRET_BYTES: usize = 1024;

/// Seals a small secret the server keeps in its database to the
/// organisation's key, bound to `context` (what the secret belongs to, so
/// that a sealed value copied to another row does not open there). The
/// result is HPKE's 32-byte encapsulated key followed by the ciphertext.
///
/// ```
/// use observer_core::seal::{open_secret, seal_secret, OrgSecretKey};
///
/// let org = OrgSecretKey::generate();
/// let sealed = seal_secret(&org.public_key(), b"totp\0aigerim", b"key bytes")?;
/// assert_eq!(&open_secret(&org, b"totp\0aigerim", &sealed)?[..], b"key bytes");
/// assert!(open_secret(&org, b"totp\0daniyar", &sealed).is_err());
/// # Ok::<(), observer_core::seal::SealError>(())
/// ```
pub fn seal_secret(
    org: &OrgPublicKey,
    context: &[u8],
    secret: &[u8],
) -> Result<Vec<u8>, SealError> {
    if secret.len() > MAX_SECRET_BYTES {
        return Err(SealError::Malformed(format!(
            "a secret of {} bytes, over {MAX_SECRET_BYTES}",
            secret.len()
        )));
    }
    let (mut enc, ct) = seal_raw(
        org.as_bytes(),
        SECRET_INFO,
        context,
        secret,
        &mut hpke::rand_core::UnwrapErr(SysRandom),
    )?;
    enc.extend_from_slice(&ct);
    Ok(enc)
}

/// Opens what [`seal_secret`] sealed with the same `context`.
pub fn open_secret(
    org: &OrgSecretKey,
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() > 32 + MAX_SECRET_BYTES + 16 {
        return Err(SealError::Malformed(
            "a sealed secret over the limit".into(),
        ));
    }
    let (enc, ct) = sealed
        .split_first_chunk::<32>()
        .ok_or(SealError::Tampered)?;
    open_raw(&org.sk, enc, SECRET_INFO, context, ct)
}

/// HPKE base-mode single-shot seal in this module's suite; `rng` supplies
/// the ephemeral key's input keying material (the RFC's `ikmE`).
fn seal_raw(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl hpke::rand_core::CryptoRng,
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|e| SealError::BadKey(e.to_string()))?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|e| SealError::Seal(e.to_string()))?;
    Ok((enc.to_bytes().to_vec(), ct))
}

/// The inverse of [`seal_raw`].
fn open_raw(
    sk: &<Kem as hpke::Kem>::PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::Tampered)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        sk,
        &enc,
        info,
        ct,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| SealError::Tampered)
}

/// The operating system's generator, through ring (as every other key in
/// the core), for HPKE's ephemeral keys.
struct SysRandom;

impl hpke::rand_core::TryRng for SysRandom {
    type Error = SealRandomError;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(dst)
            .map_err(|_| SealRandomError)
    }
}

impl hpke::rand_core::TryCryptoRng for SysRandom {}

#[derive(Debug)]
struct SealRandomError;

impl std::fmt::Display for SealRandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the system random generator failed")
    }
}

impl std::error::Error for SealRandomError {}

#[cfg(test)]
mod tests;
