//! The package's files and their JSON (format `observer-evidence/1`):
//!
//! ```text
//! manifest.json              Manifest: what is inside, and each file's SHA-256
//! checkpoint.txt             the log's checkpoint (C2SP signed note) covering every record
//! witnessed.txt              the newest witnessed checkpoint, with cosignatures (if any)
//! devices/<device id>.json   DeviceFile: the device's key, enrollment and audit entries
//! records/<record id>.json   RecordFile: the record as received, its log index and inclusion proof
//! forms/<id>@<version>.json  the form definitions the records name
//! media/<sha256>             media files included (the others are named by hash only)
//! receipts/<sha256>.json    a receipt the coordinator signed (body and signature as sent)
//! pvt/commitments.json       the audit entries that committed to a quick-count sample (if any)
//! pvt/sample.txt             the sample in force, as its canonical text (if one was drawn)
//! ```

use serde::{Deserialize, Serialize};

use crate::protocol::{ConsistencyProof, InclusionProof, WireRecord};
use crate::record::{RecordId, Sha256Digest};

/// The format this code writes and reads.
pub const FORMAT: &str = "observer-evidence/1";

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint.txt";

/// The witnessed checkpoint's file name.
pub const WITNESSED_FILE: &str = "witnessed.txt";

/// The quick-count commitments' file name: a JSON array of the
/// coordinator's signed `pvt.sample_drawn` audit entries, oldest first.
pub const PVT_COMMITMENTS_FILE: &str = "pvt/commitments.json";

/// The quick-count sample's file name: its canonical text, whose SHA-256
/// the newest commitment names.
pub const PVT_SAMPLE_FILE: &str = "pvt/sample.txt";

/// What the package holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The organisation.
    pub org: String,
    /// The coordinator's public key as the coordinator states it (a
    /// verifier should compare it with the one the organisation
    /// publishes, or pin it).
    pub coordinator_key: String,
    /// When the package was made (coordinator's clock, ms since the epoch).
    pub created_at_ms: i64,
    /// What was asked for (`--all`, `--device D`, ...), in words.
    pub selection: String,
    /// The witnesses the coordinator names (C2SP verifier keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// The witnessed checkpoint and the proof that the checkpoint extends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
    /// The devices whose files are included.
    pub devices: Vec<String>,
    /// The records included, in log order.
    pub records: Vec<RecordId>,
    /// The media the records reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaEntry>,
    /// The forms included (`<id>@<version>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forms: Vec<String>,
    /// Every other file's SHA-256, by name: nothing may be added, removed
    /// or changed unnoticed.
    pub files: std::collections::BTreeMap<String, Sha256Digest>,
}

/// The witnessed part of a package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witnessed {
    /// The proof that the checkpoint's tree extends the witnessed one
    /// (absent when their sizes are equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// A media file a record references.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaEntry {
    /// Its SHA-256 (signed in the record).
    pub sha256: Sha256Digest,
    /// Whether the file is in the package (`media/<sha256>`); when not,
    /// only its hash stands for it.
    pub included: bool,
}

/// A device, as the coordinator enrolled it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    /// Its id (the first 16 bytes of SHA-256 of its key, hex).
    pub device: String,
    /// Its Ed25519 public key.
    pub key: String,
    /// When it was enrolled (ms since the epoch).
    pub enrolled_at_ms: i64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
    /// The coordinator's audit entries that name it (enrolled, assigned,
    /// revoked), each hash-chained and signed by the coordinator.
    #[serde(default)]
    pub audit: Vec<serde_json::Value>,
}

/// A record and where it sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFile {
    /// Its id: SHA-256 of the signed body.
    pub id: RecordId,
    /// Its device.
    pub device: String,
    /// Its leaf index in the log.
    pub index: u64,
    /// When the coordinator says it arrived (ms since the epoch): its own
    /// claim, bounded by the checkpoints that include the record.
    pub received_at_ms: i64,
    /// The body and signature exactly as received; absent for a record
    /// that arrived sealed to the organisation and was left sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<WireRecord>,
    /// The record's inclusion in the checkpoint's tree.
    pub inclusion: InclusionProof,
}

/// A device's file name.
pub fn device_path(device: &str) -> String {
    format!("devices/{device}.json")
}

/// A record's file name.
pub fn record_path(id: &RecordId) -> String {
    format!("records/{id}.json")
}

/// A form's file name.
pub fn form_path(id: &str, version: u32) -> String {
    format!("forms/{id}@{version}.json")
}

/// A receipt's file name: the SHA-256 of its body, which a record's
/// `clock.after` names.
pub fn receipt_path(hash: &Sha256Digest) -> String {
    format!("receipts/{hash}.json")
}

/// A media file's name.
pub fn media_path(sha256: &Sha256Digest) -> String {
    format!("media/{sha256}")
}
