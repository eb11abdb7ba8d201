use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

/// The current time at the precision records carry (milliseconds), so the
/// time a caller holds is exactly the time that gets signed.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(now)
}

use super::limits::MAX_BODY_BYTES;
use super::{BODY_VERSION, Body, Clock, NewRecord, RecordError, RecordId};
use crate::identity::{DeviceId, PublicKey, SIGNATURE_LEN, SigningKey, Verifier};

/// Prefix of every signed message, so a record signature can never be
/// mistaken for a signature over anything else the device key signs.
pub const SIGNING_DOMAIN: &[u8] = b"observer/record/v1\0";

/// A signed record as it is stored and sent: the body bytes verbatim and the
/// signature over them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Envelope {
    /// The body, JSON, exactly as signed.
    pub body: Vec<u8>,
    /// Ed25519 over [`SIGNING_DOMAIN`] `||` body.
    pub sig: [u8; SIGNATURE_LEN],
}

impl Envelope {
    /// SHA-256 of the body bytes.
    pub fn id(&self) -> RecordId {
        RecordId::of(&self.body)
    }

    fn signed_message(body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
        m.extend_from_slice(SIGNING_DOMAIN);
        m.extend_from_slice(body);
        m
    }
}

/// Where the next record goes in its device's chain, and the context it is
/// signed in. The store computes it inside the saving transaction.
#[derive(Clone, Debug)]
pub struct ChainPosition {
    /// The signing device.
    pub device: DeviceId,
    /// The organisation, once enrolled.
    pub org: Option<String>,
    /// The new record's seq.
    pub seq: u64,
    /// The id of record `seq - 1`.
    pub prev: Option<RecordId>,
    /// Capture time; serialised to millisecond precision.
    pub captured_at: DateTime<Utc>,
    /// Server-clock knowledge.
    pub clock: Clock,
}

impl ChainPosition {
    /// The position of a device's very first record, captured now.
    pub fn first(key: &SigningKey) -> Self {
        Self {
            device: key.public_key().device_id(),
            org: None,
            seq: 1,
            prev: None,
            captured_at: now_ms(),
            clock: Clock::default(),
        }
    }

    /// The position right after `prev` (same device, org and clock), now.
    pub fn after(&self, prev: RecordId) -> Self {
        Self {
            seq: self.seq + 1,
            prev: Some(prev),
            captured_at: now_ms(),
            ..self.clone()
        }
    }
}

/// Serialises the body of `new` at `pos` once, and signs those bytes.
pub fn sign_record(
    new: &NewRecord,
    pos: &ChainPosition,
    key: &SigningKey,
) -> Result<Envelope, RecordError> {
    let body = Body {
        v: BODY_VERSION,
        org: pos.org.clone(),
        device: pos.device.clone(),
        seq: pos.seq,
        prev: pos.prev,
        captured_at: pos.captured_at,
        clock: pos.clock.clone(),
        station: new.station.clone(),
        form: new.form.clone(),
        kind: new.kind.clone(),
        payload: new.payload.clone(),
        attachments: new.attachments.clone(),
        supersedes: new.supersedes,
    };
    let bytes = serde_json::to_vec(&body).expect("a Body always serialises");
    if bytes.len() > MAX_BODY_BYTES {
        return Err(RecordError::BodyTooLarge {
            bytes: bytes.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let sig = key.sign(&Envelope::signed_message(&bytes));
    Ok(Envelope { body: bytes, sig })
}

/// A record whose signature, id and body have been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedRecord {
    /// SHA-256 of the body bytes.
    pub id: RecordId,
    /// The parsed body.
    pub body: Body,
    /// The bytes that were verified.
    pub envelope: Envelope,
}

/// Why an envelope is not a genuine record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum VerifyError {
    /// Body over [`MAX_BODY_BYTES`]; refused before any parsing.
    #[error("record body is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// The signature does not match the body and key: the record was altered
    /// or was not signed by this device.
    #[error("signature does not verify: the record was altered or not signed by this device")]
    BadSignature,
    /// Signed correctly but not a valid body (a device bug, never an attacker
    /// without the key).
    #[error("record body is malformed: {detail}")]
    Malformed { detail: String },
    /// A body version this code does not read.
    #[error("record body version {version} is not supported; update Observer")]
    UnsupportedVersion { version: u32 },
    /// The body claims a device other than the one whose key signed it.
    #[error("record claims device {claimed} but was signed by device {signer}")]
    WrongDevice { claimed: DeviceId, signer: DeviceId },
    /// `seq`/`prev` inconsistent on their own (seq 0, seq 1 with a prev, or
    /// a later seq without one).
    #[error("record has an impossible chain position: {detail}")]
    BadPosition { detail: String },
}

/// Checks one envelope against the device's public key: size, signature
/// (over the bytes, before parsing), body format, and that the body names
/// this key's device. Does not check the chain: see [`super::verify_chain`].
pub fn verify_envelope(env: &Envelope, key: &PublicKey) -> Result<VerifiedRecord, VerifyError> {
    verify_envelope_by(env, &Verifier::new(*key))
}

/// [`verify_envelope`] with the key decoded once, for a batch of one
/// device's records.
pub fn verify_envelope_by(env: &Envelope, key: &Verifier) -> Result<VerifiedRecord, VerifyError> {
    if env.body.len() > MAX_BODY_BYTES {
        return Err(VerifyError::TooLarge {
            bytes: env.body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    if !key.verify(&Envelope::signed_message(&env.body), &env.sig) {
        return Err(VerifyError::BadSignature);
    }
    super::unique_keys::check_unique_keys(&env.body)
        .map_err(|detail| VerifyError::Malformed { detail })?;
    let version: Versioned =
        serde_json::from_slice(&env.body).map_err(|e| VerifyError::Malformed {
            detail: e.to_string(),
        })?;
    if version.v != BODY_VERSION {
        return Err(VerifyError::UnsupportedVersion { version: version.v });
    }
    let body: Body = serde_json::from_slice(&env.body).map_err(|e| VerifyError::Malformed {
        detail: e.to_string(),
    })?;
    if body.device != *key.device() {
        return Err(VerifyError::WrongDevice {
            claimed: body.device,
            signer: key.device().clone(),
        });
    }
    let detail = match (body.seq, body.prev) {
        (0, _) => "seq starts at 1".to_string(),
        (s, _) if s > super::limits::MAX_SEQ => {
            format!("seq {s} is over the limit of 2^53")
        }
        (1, Some(_)) => "the first record cannot have a prev".to_string(),
        (s, None) if s > 1 => format!("record {s} has no prev"),
        _ => {
            return Ok(VerifiedRecord {
                id: env.id(),
                body,
                envelope: env.clone(),
            });
        }
    };
    Err(VerifyError::BadPosition { detail })
}

/// Reads only the version, so a newer body is reported as such rather than
/// as malformed.
#[derive(serde::Deserialize)]
struct Versioned {
    v: u32,
}
