//! The coordinator's audit entries as an outsider checks them: each
//! entry's hash covers the one before it, and the coordinator's key signs
//! the hash. The server appends entries with these functions
//! (`server/src/audit.rs`) and the verifier checks a device's entries in
//! a package with them, so both read one definition.

use crate::identity::PublicKey;
use crate::record::Sha256Digest;

/// What the hash covers first, so that no other signed message of the
/// coordinator can be taken for an audit entry.
pub const AUDIT_DOMAIN: &[u8] = b"observer/audit/v1\0";

/// The hash of an entry: SHA-256 of the domain, the previous hash, the
/// seq and time (8 bytes each, big-endian), then actor, action, subject
/// and detail, each as a 4-byte big-endian length and its bytes.
pub fn entry_hash(
    prev: &Sha256Digest,
    seq: u64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Sha256Digest {
    let mut m = Vec::with_capacity(AUDIT_DOMAIN.len() + 48 + actor.len() + detail.len() + 64);
    m.extend_from_slice(AUDIT_DOMAIN);
    m.extend_from_slice(prev.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&at_ms.to_be_bytes());
    for field in [actor, action, subject, detail] {
        m.extend_from_slice(&(field.len() as u32).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    Sha256Digest::of(&m)
}

/// What the coordinator's signature on an entry covers.
pub fn signed_message(hash: &Sha256Digest) -> Vec<u8> {
    [AUDIT_DOMAIN, hash.as_bytes()].concat()
}

/// The action of the entry that records a device's enrollment; its
/// detail's `key` is the enrolled public key.
pub const DEVICE_ENROLLED: &str = "device.enrolled";

/// The action of the entry that records a device's revocation.
pub const DEVICE_REVOKED: &str = "device.revoked";

/// The action of the entry that commits to a quick-count sample; its
/// subject and its detail's `digest` are the SHA-256 of the sample's
/// canonical text.
pub const PVT_SAMPLE_DRAWN: &str = "pvt.sample_drawn";

/// An entry as the server writes it into a package (JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev: Sha256Digest,
    pub hash: Sha256Digest,
    /// The signature, hex.
    pub sig: String,
}

impl Entry {
    /// The entry with its hash set from its fields and signed with
    /// `coordinator`: how a package's entries are made (the server appends
    /// its own with [`entry_hash`] and [`signed_message`] too).
    pub fn seal(mut self, coordinator: &crate::identity::SigningKey) -> Self {
        self.hash = self.computed_hash();
        self.sig = hex::encode(coordinator.sign(&signed_message(&self.hash)));
        self
    }

    fn computed_hash(&self) -> Sha256Digest {
        entry_hash(
            &self.prev,
            self.seq,
            self.at_ms,
            &self.actor,
            &self.action,
            &self.subject,
            &self.detail,
        )
    }

    /// A field of its detail (JSON text): a string as it is, any other
    /// value as JSON; `None` when absent or the detail is not JSON.
    pub fn detail_field(&self, name: &str) -> Option<String> {
        let detail: serde_json::Value = serde_json::from_str(&self.detail).ok()?;
        match &detail[name] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether its hash is the hash of its fields and `coordinator`
    /// signed it.
    pub fn holds(&self, coordinator: &PublicKey) -> bool {
        self.computed_hash() == self.hash
            && hex::decode(&self.sig)
                .is_ok_and(|sig| coordinator.verify(&signed_message(&self.hash), &sig))
    }
}
