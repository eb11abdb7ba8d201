use serde::{Deserialize, Serialize};

use super::Signed;
use crate::identity::{DeviceId, SIGNATURE_LEN};
use crate::merkle::TreeHead;
use crate::record::{Envelope, RecordId, Sha256Digest};

/// The device's statement of its newest record, sent first at every contact
/// so the coordinator learns how many records exist before they arrive. If
/// the phone is seized afterwards, the records it held are named missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The device.
    pub device: DeviceId,
    /// Its newest seq (0 before its first record).
    pub seq: u64,
    /// The id of that record.
    pub head: Option<RecordId>,
    /// Device clock, ms since the Unix epoch.
    pub at_ms: i64,
}

/// A record on the wire: body bytes and signature, base64 in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRecord {
    /// The body, exactly as signed.
    #[serde(with = "super::b64")]
    pub body: Vec<u8>,
    /// The device's signature.
    #[serde(with = "super::b64")]
    pub sig: Vec<u8>,
}

impl From<&Envelope> for WireRecord {
    fn from(e: &Envelope) -> Self {
        Self {
            body: e.body.clone(),
            sig: e.sig.to_vec(),
        }
    }
}

impl WireRecord {
    /// The envelope, if the signature has the right length.
    pub fn envelope(&self) -> Option<Envelope> {
        let sig: [u8; SIGNATURE_LEN] = self.sig.as_slice().try_into().ok()?;
        Some(Envelope {
            body: self.body.clone(),
            sig,
        })
    }
}

/// One upload: the heartbeat, then records (possibly none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// A signed [`Heartbeat`].
    pub heartbeat: Signed,
    /// Records, oldest first.
    pub records: Vec<WireRecord>,
    /// Records sealed to the organisation (forms it seals), oldest first;
    /// the server opens them and treats them as `records`. Positions in
    /// rejections count `records` first, then these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<crate::seal::SealedRecord>,
}

/// A whole contact in one exchange (`POST /v2/sync`): a [`Batch`], and
/// what the phone holds of the coordinator's updates, so the answer brings
/// them only when they changed. Protocol version 2; a phone of version 1
/// sends a [`Batch`] to `/v1/records` and asks `/v1/updates` separately.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// A signed [`Heartbeat`].
    pub heartbeat: Signed,
    /// Records, oldest first.
    pub records: Vec<WireRecord>,
    /// Records sealed to the organisation, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<crate::seal::SealedRecord>,
    /// [`super::updates_tag`] of the stations and form versions the phone
    /// holds.
    pub updates_have: Sha256Digest,
    /// The size of the newest log head the phone holds under a receipt it
    /// verified: the answer proves that the new head extends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_have: Option<u64>,
    /// Leaf indexes of records this phone delivered earlier (a sample each
    /// sync): the answer proves each is still in the log. At most
    /// [`super::limits::MAX_LOG_PROVE`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_prove: Vec<u64>,
    /// The size of the newest witnessed checkpoint the phone holds (0:
    /// none yet), sent by a phone told of witnesses: the answer carries a
    /// newer one, if there is, with the proof that the receipt's head
    /// extends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_witnessed: Option<u64>,
}

/// What a [`SyncRequest`] asks besides delivering its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAsks {
    /// Its `updates_have`.
    pub updates_have: Sha256Digest,
    /// Its `log_have`.
    pub log_have: Option<u64>,
    /// Its `log_prove`.
    pub log_prove: Vec<u64>,
    /// Its `log_witnessed`.
    pub log_witnessed: Option<u64>,
}

impl SyncRequest {
    /// The batch it carries, and what else it asks.
    pub fn into_batch(self) -> (Batch, SyncAsks) {
        (
            Batch {
                heartbeat: self.heartbeat,
                records: self.records,
                sealed: self.sealed,
            },
            SyncAsks {
                updates_have: self.updates_have,
                log_have: self.log_have,
                log_prove: self.log_prove,
                log_witnessed: self.log_witnessed,
            },
        )
    }
}

/// The answer to a [`SyncRequest`]: the signed receipt and, when the
/// phone's updates are out of date, the signed [`super::Updates`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAnswer {
    /// A signed [`Receipt`].
    pub receipt: Signed,
    /// Signed [`super::Updates`], present only when they differ from what
    /// the phone said it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<Signed>,
    /// The proofs the request asked for, all at the receipt's tree size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogProofs>,
}

/// The proofs that hold a coordinator to its log at each sync, checked by
/// the phone against the signed tree heads of its receipts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogProofs {
    /// From the size the phone holds (`log_have`) to the receipt's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<super::ConsistencyProof>,
    /// Of each index asked (`log_prove`), in the receipt's tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inclusion: Vec<super::InclusionProof>,
    /// A witnessed checkpoint newer than the one the phone holds
    /// (`log_witnessed`), no larger than the receipt's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<WitnessedProof>,
}

/// The newest witnessed checkpoint and the proof that the receipt's head
/// extends it: a phone that holds it knows its own receipts show the
/// history the witnesses saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedProof {
    /// The checkpoint (signed note) with its witnesses' cosignatures.
    pub checkpoint: String,
    /// From its size to the receipt's (absent when they are equal or it
    /// is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<super::ConsistencyProof>,
}

/// The sealed outbox a wiped phone still delivers: records sealed to the
/// organisation, all of one device, with no heartbeat (the device key that
/// would sign one was destroyed). Each record authenticates itself: the
/// server opens it and checks the device's signature inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedBatch {
    /// Sealed records, oldest first.
    pub sealed: Vec<crate::seal::SealedRecord>,
}

/// A record the server holds, and where it sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The record.
    pub id: RecordId,
    /// Its seq.
    pub seq: u64,
    /// Its leaf index in the coordinator's log.
    pub index: u64,
}

/// Why the server refused a record. Stable codes: the phone stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The signature does not verify with the device's enrolled key.
    BadSignature,
    /// Not a valid record body.
    Malformed,
    /// Over the size limit.
    TooLarge,
    /// Names another device than the one that sent it.
    WrongDevice,
    /// Signed for another organisation.
    WrongOrg,
    /// Another record with the same seq is already held: the device forked.
    Conflict,
    /// The device was revoked before this record arrived: quarantined.
    Quarantined,
    /// A sealed record that does not open with the organisation's key, or
    /// whose contents disagree with its label.
    Unopenable,
    /// A reason this version does not know (from a newer coordinator).
    #[serde(other)]
    Other,
}

impl RejectReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::BadSignature => "bad_signature",
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::WrongDevice => "wrong_device",
            RejectReason::WrongOrg => "wrong_org",
            RejectReason::Conflict => "conflict",
            RejectReason::Quarantined => "quarantined",
            RejectReason::Unopenable => "unopenable",
            RejectReason::Other => "other",
        }
    }

    /// The reason whose [`RejectReason::code`] is `code` ([`RejectReason::Other`]
    /// for a code this version does not know).
    pub fn from_code(code: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(code.into()))
            .unwrap_or(RejectReason::Other)
    }
}

/// A refused record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Its position in the batch.
    pub position: usize,
    /// Its id, when the bytes arrived intact enough to hash.
    pub id: RecordId,
    /// Why.
    pub reason: RejectReason,
    /// Details for people.
    pub detail: String,
}

/// The coordinator's signed answer to a batch. A record is delivered only
/// when a receipt, verified with the pinned coordinator key, lists it in
/// `accepted` or `already`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The organisation.
    pub org: String,
    /// The device the batch came from.
    pub device: DeviceId,
    /// Server clock when the batch was committed, ms since the Unix epoch.
    pub server_time_ms: i64,
    /// Stored by this batch.
    pub accepted: Vec<Ack>,
    /// Already stored before (a replay or a retry): delivered all the same.
    pub already: Vec<Ack>,
    /// Refused, with reasons.
    pub rejected: Vec<Rejection>,
    /// The log's tree head after this batch, which includes every index above.
    pub tree: TreeHead,
}
