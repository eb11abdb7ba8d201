//! The log's checkpoint: a tree head in the C2SP `tlog-checkpoint` text
//! format, signed as a C2SP `signed-note` with the coordinator's Ed25519
//! key, so that a phone, a witness or a court reads the same few lines the
//! Go checksum database and Certificate Transparency's newer logs publish,
//! and can check them with any signed-note implementation.
//!
//! The text formats are the `tlog_tiles` and `signed_note` crates'
//! (cloudflare/azul); the Ed25519 signing is ring's and the check is
//! [`PublicKey::verify`], the same as for every other signature of
//! Observer, through those crates' `Signer` and `Verifier` traits: a
//! checkpoint is held to the verification rule its records and receipts
//! are checked by.

use signed_note::{Note, NoteError, Signer, Verifier, VerifierList};

use super::TreeHead;
use crate::identity::{PublicKey, SigningKey};
use crate::record::Sha256Digest;

/// The signed-note signature type of Ed25519 (C2SP signed-note).
const ALG_ED25519: u8 = 0x01;

/// Why a checkpoint cannot be made or is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The origin is empty, or holds a space, a `+` or a line break (it is
    /// also the signing key's name).
    #[error("{0:?} cannot name a log: it must be one word without '+'")]
    Origin(String),
    /// The text is not a signed note holding a checkpoint.
    #[error("the checkpoint is malformed")]
    Malformed,
    /// The checkpoint is another log's.
    #[error("the checkpoint is of log {found:?}, not {expected:?}")]
    OtherLog { expected: String, found: String },
    /// No signature of the coordinator's key is on it, or one that does
    /// not verify.
    #[error("the checkpoint is not signed by the coordinator's key")]
    NotSigned,
}

/// A checkpoint: which log, and its head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (C2SP: a schema-less URL); also the key's name.
    pub origin: String,
    pub head: TreeHead,
}

/// Names of Observer logs: [`origin_of`] the coordinator's key.
const ORIGIN_PREFIX: &str = "observer-log/";

/// The name of the log a coordinator's `key` signs: its checkpoints'
/// origin and the key's signed-note name. Derived from the key the phones
/// pinned at enrollment, so a phone, a witness and a verifier all know it
/// without being told, and one key never names two logs.
pub fn origin_of(key: &PublicKey) -> String {
    format!("{ORIGIN_PREFIX}{}", key.device_id())
}

impl Checkpoint {
    /// The checkpoint's text: origin, size and root, a line each.
    pub fn text(&self) -> Result<Vec<u8>, CheckpointError> {
        check_origin(&self.origin)?;
        let c = tlog_tiles::Checkpoint::new(
            &self.origin,
            self.head.size,
            tlog_tiles::Hash(*self.head.root.as_bytes()),
            "",
        )
        .map_err(|_| CheckpointError::Origin(self.origin.clone()))?;
        Ok(c.to_bytes())
    }

    /// The checkpoint as a signed note, signed by `key` under the name
    /// of its origin.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, CheckpointError> {
        let mut note = Note::new(&self.text()?, &[]).map_err(|_| CheckpointError::Malformed)?;
        let signer = RingSigner {
            name: &self.origin,
            key,
            id: key_id(&self.origin, &key.public_key()),
        };
        note.add_sigs(&[&signer])
            .map_err(|_| CheckpointError::Origin(self.origin.clone()))?;
        Ok(note.to_bytes())
    }

    /// The origin a signed checkpoint names, before anything is verified:
    /// what a witness following several logs looks its key up by.
    pub fn claimed_origin(note: &[u8]) -> Result<String, CheckpointError> {
        let note = Note::from_bytes(note).map_err(|_| CheckpointError::Malformed)?;
        let c = tlog_tiles::Checkpoint::from_bytes(note.text())
            .map_err(|_| CheckpointError::Malformed)?;
        Ok(c.origin().to_owned())
    }

    /// Reads a signed checkpoint of log `origin`, accepting it only with a
    /// valid signature of `key` under that name. Other signatures (a
    /// witness's cosignature) are left for their own checks.
    pub fn open(note: &[u8], origin: &str, key: &PublicKey) -> Result<Self, CheckpointError> {
        check_origin(origin)?;
        let note = Note::from_bytes(note).map_err(|_| CheckpointError::Malformed)?;
        let verifier = KeyVerifier {
            name: origin.to_owned(),
            id: key_id(origin, key),
            key: *key,
        };
        let known = VerifierList::new(vec![Box::new(verifier)]);
        match note.verify(&known) {
            Ok((verified, _)) if !verified.is_empty() => {}
            Ok(_)
            | Err(
                NoteError::UnverifiedNote
                | NoteError::InvalidSignature { .. }
                | NoteError::VerificationError(_),
            ) => return Err(CheckpointError::NotSigned),
            Err(_) => return Err(CheckpointError::Malformed),
        }
        let c = tlog_tiles::Checkpoint::from_bytes(note.text())
            .map_err(|_| CheckpointError::Malformed)?;
        if c.origin() != origin {
            return Err(CheckpointError::OtherLog {
                expected: origin.to_owned(),
                found: c.origin().to_owned(),
            });
        }
        if !c.extension().is_empty() {
            return Err(CheckpointError::Malformed);
        }
        Ok(Self {
            origin: origin.to_owned(),
            head: TreeHead {
                size: c.size(),
                root: Sha256Digest::from_bytes(c.hash().0),
            },
        })
    }
}

/// Whether `origin` can name a log. No control character either: the
/// coordinator's key also signs receipts and updates, whose messages all
/// start with a domain ending in NUL, so no checkpoint text (whose first
/// line is its origin) is ever one of those messages.
fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if signed_note::is_key_name_valid(origin) && !origin.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(CheckpointError::Origin(origin.to_owned()))
    }
}

/// The signed-note key id of an Ed25519 key named `name`.
fn key_id(name: &str, key: &PublicKey) -> u32 {
    let mut encoded = Vec::with_capacity(33);
    encoded.push(ALG_ED25519);
    encoded.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &encoded)
}

struct RingSigner<'a> {
    name: &'a str,
    key: &'a SigningKey,
    id: u32,
}

impl Signer for RingSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.key.sign(msg).to_vec())
    }
}

struct KeyVerifier {
    name: String,
    id: u32,
    key: PublicKey,
}

impl Verifier for KeyVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.key.verify(msg, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "observer.example/kz-2026".into(),
            head: TreeHead {
                size,
                root: Sha256Digest::of(&size.to_be_bytes()),
            },
        }
    }

    #[test]
    fn a_signed_checkpoint_reads_back_under_its_key() {
        let key = SigningKey::generate().unwrap();
        let c = checkpoint(1234);
        let note = c.sign(&key).unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        let root = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            c.head.root.as_bytes(),
        );
        assert!(
            text.starts_with(&format!(
                "observer.example/kz-2026\n1234\n{root}\n\n\u{2014} observer.example/kz-2026 "
            )),
            "{text}"
        );
        assert_eq!(
            Checkpoint::open(&note, &c.origin, &key.public_key()).unwrap(),
            c
        );
    }

    #[test]
    fn another_key_another_log_or_an_altered_head_is_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let c = checkpoint(10);
        let note = c.sign(&key).unwrap();
        assert!(matches!(
            Checkpoint::open(&note, &c.origin, &other.public_key()),
            Err(CheckpointError::NotSigned)
        ));
        // The same key under another log's name does not sign this log.
        assert!(matches!(
            Checkpoint::open(&note, "observer.example/other", &key.public_key()),
            Err(CheckpointError::NotSigned)
        ));
        let altered = String::from_utf8(note)
            .unwrap()
            .replacen("\n10\n", "\n11\n", 1);
        assert!(matches!(
            Checkpoint::open(altered.as_bytes(), &c.origin, &key.public_key()),
            Err(CheckpointError::NotSigned)
        ));
        assert!(matches!(
            Checkpoint::open(b"not a note", &c.origin, &key.public_key()),
            Err(CheckpointError::Malformed)
        ));
    }

    #[test]
    fn a_key_names_its_log() {
        let key = SigningKey::generate().unwrap();
        let origin = origin_of(&key.public_key());
        assert_eq!(
            origin,
            format!("observer-log/{}", key.public_key().device_id())
        );
        assert_ne!(
            origin,
            origin_of(&SigningKey::generate().unwrap().public_key())
        );
        let c = Checkpoint {
            origin: origin.clone(),
            head: checkpoint(3).head,
        };
        assert_eq!(
            Checkpoint::open(&c.sign(&key).unwrap(), &origin, &key.public_key()).unwrap(),
            c
        );
    }

    #[test]
    fn an_origin_that_cannot_name_a_key_is_refused() {
        let key = SigningKey::generate().unwrap();
        for bad in [
            "",
            "two words",
            "a+b",
            "line\nbreak",
            "observer/receipt/v1\0",
        ] {
            let mut c = checkpoint(1);
            c.origin = bad.into();
            assert!(
                matches!(c.sign(&key), Err(CheckpointError::Origin(_))),
                "{bad:?}"
            );
        }
    }
}
