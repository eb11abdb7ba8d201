//! The sync protocol's wire types, shared by the phone and the coordinating
//! server so both sides parse and check them with the same code.
//!
//! Everything the server says that the phone acts on is a [`Signed`]
//! statement under the coordinator's key, which the phone pinned at
//! enrollment; everything the phone says is signed by its device key. Each
//! kind of statement has its own signing domain, so no signature can be
//! replayed as another kind. `docs/protocol.md` describes the exchange.

pub(crate) mod enrollment;
mod ingest;
mod log;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::identity::{PublicKey, SigningKey};

pub use enrollment::{ENROLLMENT_CODE_PREFIX, EnrollRequest, EnrollResponse, EnrollmentCode};
pub use ingest::{
    Ack, Batch, Heartbeat, LogProofs, Receipt, RejectReason, Rejection, SealedBatch, SyncAnswer,
    SyncAsks, SyncRequest, WireRecord, WitnessedProof,
};
pub use log::{ConsistencyProof, InclusionProof};

/// Signing domain of a heartbeat (device key).
pub const HEARTBEAT_DOMAIN: &[u8] = b"observer/heartbeat/v1\0";
/// Signing domain of a receipt (coordinator key).
pub const RECEIPT_DOMAIN: &[u8] = b"observer/receipt/v1\0";
/// Signing domain of the proof of key possession at enrollment (device key).
pub const ENROLL_DOMAIN: &[u8] = b"observer/enroll/v1\0";
/// Signing domain of the updates a device pulls (coordinator key).
pub const UPDATES_DOMAIN: &[u8] = b"observer/updates/v1\0";

/// The header in which a request without a JSON body (a media upload or
/// query) carries the device's signed heartbeat, in [`Signed::to_header`]
/// form: the server answers media requests only to the device whose
/// records name the file.
pub const HEARTBEAT_HEADER: &str = "observer-heartbeat";

/// What the coordinator has for one device at each sync: its station
/// assignments and every published form version (JSON definitions). Signed
/// with the coordinator key: a phone takes only what the pinned key signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updates {
    /// The organisation.
    pub org: String,
    /// The device these are for.
    pub device: crate::identity::DeviceId,
    /// Server time, ms since the Unix epoch.
    pub server_time_ms: i64,
    /// Stations the observer is assigned to now.
    pub stations: Vec<String>,
    /// Form definitions (JSON text, format 1).
    pub forms: Vec<String>,
    /// Those of `stations` in the quick count's sample: their results
    /// protocol is the report the coordinator needs first, so the app
    /// shows the results form as priority and a sync sends it before
    /// anything older. Absent when there are none (and from servers
    /// before it), so updates without it keep their tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_stations: Vec<String>,
    /// The verifier keys (C2SP signed-note text) of the witnesses the
    /// coordinator asks to cosign its checkpoints: a checkpoint cosigned
    /// by all of them is one the phone holds as witnessed. Absent when
    /// there are none (and from servers before witnesses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// The number of the coordinator's SMS gateway: where the phone texts
    /// its reports when mobile data is blocked (`crate::sms`). Absent when
    /// none is set (and from servers before SMS reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_number: Option<String>,
    /// [`updates_tag`] of these stations and forms, which the phone sends
    /// back at its next sync (protocol version 2; absent from a server of
    /// version 1, and ignored by a phone of version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<crate::record::Sha256Digest>,
}

/// One digest of what a phone holds of the coordinator's updates: its
/// stations (in the coordinator's order), those of them that are priority,
/// and the form versions it keeps. The server computes it and the phone
/// sends it back; when they differ, the answer to a sync carries the
/// updates. Published form versions never change, so an id and version
/// name a definition. No priority stations (witnesses, SMS number) digest
/// as before there were any, so a phone is not sent updates it already holds.
pub fn updates_tag<'a>(
    stations: &[String],
    priority: &[String],
    witnesses: &[String],
    sms_number: Option<&str>,
    forms: impl IntoIterator<Item = (&'a str, u32)>,
) -> crate::record::Sha256Digest {
    let mut forms: Vec<(&str, u32)> = forms.into_iter().collect();
    forms.sort_unstable();
    forms.dedup();
    let mut held = serde_json::json!({ "stations": stations, "forms": forms });
    if !priority.is_empty() {
        held["priority"] = serde_json::json!(priority);
    }
    if !witnesses.is_empty() {
        held["witnesses"] = serde_json::json!(witnesses);
    }
    if let Some(n) = sms_number {
        held["sms"] = serde_json::json!(n);
    }
    crate::record::Sha256Digest::of(&serde_json::to_vec(&held).expect("serialises"))
}

/// Protocol limits, enforced by the server before anything is parsed.
pub mod limits {
    /// Most records in one batch.
    pub const MAX_BATCH_RECORDS: usize = 500;
    /// Largest request body, compressed or not, in bytes.
    pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
    /// Largest request body after decompression, in bytes.
    pub const MAX_DECOMPRESSED_BYTES: usize = 8 * 1024 * 1024;
    /// Largest signed statement (heartbeat, receipt) body, in bytes.
    pub const MAX_STATEMENT_BYTES: usize = 1024 * 1024;
    /// Longest enrollment code, in characters.
    pub const MAX_ENROLLMENT_CODE: usize = 2048;
    /// Most inclusion proofs one sync asks for.
    pub const MAX_LOG_PROVE: usize = 64;
}

/// Why a protocol message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not the expected encoding or structure.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// Over a documented size limit.
    #[error("{what} is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    /// The signature is not the expected key's.
    #[error("the {what} is not signed by the expected key")]
    BadSignature { what: &'static str },
}

/// A JSON statement and the Ed25519 signature over `domain || body`.
/// The body travels as bytes (base64 in JSON) and is verified before it is
/// parsed, like a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The statement, JSON bytes.
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    /// Ed25519 signature over domain || body.
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

impl Signed {
    /// Serialises `value` once and signs it under `domain`.
    pub fn sign<T: Serialize>(domain: &[u8], value: &T, key: &SigningKey) -> Self {
        let body = serde_json::to_vec(value).expect("protocol types always serialise");
        let sig = key.sign(&[domain, &body].concat()).to_vec();
        Self { body, sig }
    }

    /// The statement as one header value: `base64url(body).base64url(sig)`,
    /// unpadded (no characters that a header would need escaped).
    pub fn to_header(&self) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.body),
            URL_SAFE_NO_PAD.encode(&self.sig)
        )
    }

    /// Reads [`Signed::to_header`]'s form (nothing is verified yet).
    pub fn from_header(text: &str) -> Result<Self, ProtocolError> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let malformed = |detail: &str| ProtocolError::Malformed {
            what: "signed header",
            detail: detail.into(),
        };
        let (body, sig) = text
            .trim()
            .split_once('.')
            .ok_or_else(|| malformed("expected BODY.SIGNATURE"))?;
        Ok(Self {
            body: URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| malformed("the body is not unpadded base64url"))?,
            sig: URL_SAFE_NO_PAD
                .decode(sig)
                .map_err(|_| malformed("the signature is not unpadded base64url"))?,
        })
    }

    /// Checks size and signature, then parses.
    pub fn open<T: DeserializeOwned>(
        &self,
        what: &'static str,
        domain: &[u8],
        key: &PublicKey,
    ) -> Result<T, ProtocolError> {
        if self.body.len() > limits::MAX_STATEMENT_BYTES {
            return Err(ProtocolError::TooLarge {
                what,
                bytes: self.body.len(),
                limit: limits::MAX_STATEMENT_BYTES,
            });
        }
        if !key.verify(&[domain, &self.body].concat(), &self.sig) {
            return Err(ProtocolError::BadSignature { what });
        }
        serde_json::from_slice(&self.body).map_err(|e| ProtocolError::Malformed {
            what,
            detail: e.to_string(),
        })
    }
}

/// A JSON error body, as every 4xx/5xx answer carries: a stable machine
/// code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code, e.g. `token_used`, `batch_too_large`.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// Serde helper: bytes as standard base64 text.
pub(crate) mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
