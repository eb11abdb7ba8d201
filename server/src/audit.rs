//! The audit log: every coordinator action (a code issued, a device
//! assigned or revoked, a form published, results or a registry imported,
//! an export) appended with who, when and what, hash-chained and signed.
//!
//! Each entry's hash covers the previous entry's hash, so an entry edited
//! or removed in the middle breaks every later link; each hash is signed
//! with the coordinator key, which rests wrapped and is unlocked only by
//! the server, so someone who can write the database but does not hold
//! the key cannot rewrite the chain and sign it again. What the chain
//! alone cannot show is its tail cut off; the count of entries and the
//! newest hash printed by `audit verify` are what to write down or publish
//! (issue 18's witnessed checkpoints will carry them).
//!
//! An entry is appended after its action succeeded, in its own
//! transaction: a crash in between leaves that one action unaudited (its
//! own rows keep their timestamps), never an entry for an action that did
//! not happen.

use observer_core::identity::{PublicKey, SigningKey};
use observer_core::record::Sha256Digest;
use serde::Serialize;

use crate::storage::{Storage, StorageError};

pub use observer_core::evidence::audit::entry_hash;
use observer_core::evidence::audit::signed_message;

/// Longest actor, action or subject, in bytes.
const MAX_FIELD: usize = 512;

/// Largest detail, in bytes of JSON.
const MAX_DETAIL: usize = 16 * 1024;

/// One entry as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// 1 for the first entry, then one more each.
    pub seq: u64,
    pub at_ms: i64,
    /// Who: a coordinator account, or `cli:` and the operating-system user
    /// for the command line.
    pub actor: String,
    /// What, as a stable name (`device.revoked`).
    pub action: String,
    /// What it was done to (a device id, a form, a file name), or empty.
    pub subject: String,
    /// The rest, as JSON text (hashed as these bytes).
    pub detail: String,
    /// The previous entry's hash (zeros for the first).
    pub prev: Sha256Digest,
    /// [`entry_hash`] of this entry.
    pub hash: Sha256Digest,
    /// The coordinator's signature over the hash.
    #[serde(serialize_with = "hex")]
    pub sig: Vec<u8>,
}

fn hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// What an action appends: the parts the caller knows.
#[derive(Clone, Debug)]
pub struct Draft {
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// The entry that follows `prev` (the newest entry, `None` for the first).
pub fn seal(draft: &Draft, prev: Option<&AuditEntry>, at_ms: i64, key: &SigningKey) -> AuditEntry {
    let seq = prev.map_or(1, |p| p.seq + 1);
    let prev_hash = prev.map_or(Sha256Digest::from_bytes([0; 32]), |p| p.hash);
    let clip = |s: &str| -> String {
        let mut end = s.len().min(MAX_FIELD);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let actor = clip(&draft.actor);
    let subject = clip(&draft.subject);
    let mut detail = draft.detail.to_string();
    if detail.len() > MAX_DETAIL {
        detail = serde_json::json!({ "truncated": true, "bytes": detail.len() }).to_string();
    }
    let hash = entry_hash(
        &prev_hash,
        seq,
        at_ms,
        &actor,
        draft.action,
        &subject,
        &detail,
    );
    AuditEntry {
        seq,
        at_ms,
        actor,
        action: draft.action.to_string(),
        subject,
        detail,
        prev: prev_hash,
        hash,
        sig: key.sign(&signed_message(&hash)).to_vec(),
    }
}

/// Appends `draft` as the next entry.
pub fn append(
    storage: &dyn Storage,
    key: &SigningKey,
    draft: Draft,
    now_ms: i64,
) -> Result<AuditEntry, StorageError> {
    storage.append_audit(&mut |prev| seal(&draft, prev, now_ms, key))
}

/// Why the chain does not check.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AuditFault {
    #[error("entry {seq}: expected seq {expected} (an entry is missing or repeated)")]
    Gap { seq: u64, expected: u64 },
    #[error(
        "entry {seq}: it does not name the previous entry's hash (an entry before it was removed or altered)"
    )]
    Broken { seq: u64 },
    #[error("entry {seq}: its hash does not match its contents (it was altered)")]
    Altered { seq: u64 },
    #[error(
        "entry {seq}: the coordinator's signature does not verify (written by someone without the key)"
    )]
    BadSignature { seq: u64 },
}

/// Checks entries in order, as they are read (constant memory).
pub struct ChainCheck<'a> {
    key: &'a PublicKey,
    last: Option<(u64, Sha256Digest)>,
    pub faults: Vec<AuditFault>,
}

impl<'a> ChainCheck<'a> {
    pub fn new(key: &'a PublicKey) -> Self {
        Self {
            key,
            last: None,
            faults: Vec::new(),
        }
    }

    pub fn check(&mut self, e: &AuditEntry) {
        let (expected, prev) = match self.last {
            None => (1, Sha256Digest::from_bytes([0; 32])),
            Some((seq, hash)) => (seq + 1, hash),
        };
        if e.seq != expected {
            self.faults.push(AuditFault::Gap {
                seq: e.seq,
                expected,
            });
        } else if e.prev != prev {
            self.faults.push(AuditFault::Broken { seq: e.seq });
        }
        let hash = entry_hash(
            &e.prev, e.seq, e.at_ms, &e.actor, &e.action, &e.subject, &e.detail,
        );
        if hash != e.hash {
            self.faults.push(AuditFault::Altered { seq: e.seq });
        } else if !self.key.verify(&signed_message(&e.hash), &e.sig) {
            self.faults.push(AuditFault::BadSignature { seq: e.seq });
        }
        self.last = Some((e.seq, e.hash));
    }

    /// The newest entry checked: its seq and hash.
    pub fn head(&self) -> Option<(u64, Sha256Digest)> {
        self.last
    }
}

/// Who acts in the workspace: `account:` and the coordinator's account.
pub fn account_actor(name: &str) -> String {
    format!("account:{name}")
}

/// Who runs a command: `cli:` and the operating-system user.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: &'static str, subject: &str) -> Draft {
        Draft {
            actor: "cli:aigerim".into(),
            action,
            subject: subject.into(),
            detail: serde_json::json!({"stations": ["KZ-1"]}),
        }
    }

    fn chain(key: &SigningKey, n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let e = seal(
                &draft("code.issued", &format!("s{i}")),
                out.last(),
                1_000 + i as i64,
                key,
            );
            out.push(e);
        }
        out
    }

    fn faults(key: &SigningKey, entries: &[AuditEntry]) -> Vec<AuditFault> {
        let pk = key.public_key();
        let mut c = ChainCheck::new(&pk);
        for e in entries {
            c.check(e);
        }
        c.faults
    }

    #[test]
    fn a_chain_as_written_checks() {
        let key = SigningKey::generate().unwrap();
        let entries = chain(&key, 5);
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[4].prev, entries[3].hash);
        assert!(faults(&key, &entries).is_empty());
    }

    #[test]
    fn an_edit_a_removal_and_a_forgery_are_each_named() {
        let key = SigningKey::generate().unwrap();
        let mut edited = chain(&key, 4);
        edited[1].subject = "someone else".into();
        assert_eq!(faults(&key, &edited), vec![AuditFault::Altered { seq: 2 }]);

        let mut removed = chain(&key, 4);
        removed.remove(1);
        assert_eq!(
            faults(&key, &removed),
            vec![AuditFault::Gap {
                seq: 3,
                expected: 2
            }]
        );

        // Rewritten from entry 2 on with another key: hashes consistent,
        // signatures not the coordinator's.
        let mut forged = chain(&key, 2);
        let other = SigningKey::generate().unwrap();
        forged[1] = seal(&draft("device.revoked", "x"), Some(&forged[0]), 5, &other);
        assert_eq!(
            faults(&key, &forged),
            vec![AuditFault::BadSignature { seq: 2 }]
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let zero = Sha256Digest::from_bytes([0; 32]);
        assert_ne!(
            entry_hash(&zero, 1, 0, "ab", "c", "", "{}"),
            entry_hash(&zero, 1, 0, "a", "bc", "", "{}")
        );
    }

    #[test]
    fn oversized_fields_are_clipped_on_a_character_boundary() {
        let key = SigningKey::generate().unwrap();
        let mut d = draft("export", &"ж".repeat(400));
        d.detail = serde_json::json!({"x": "y".repeat(20_000)});
        let e = seal(&d, None, 0, &key);
        assert!(e.subject.len() <= MAX_FIELD);
        assert!(e.detail.contains("truncated"));
        assert!(faults(&key, &[e]).is_empty());
    }
}
