//! A witness's cosignature on the log's checkpoint: C2SP
//! `tlog-cosignature`, Ed25519 `cosignature/v1`. A witness (another
//! observer organisation, a newspaper) that verified the checkpoint
//! extends every one it cosigned before signs, with its own key and a
//! timestamp, the message
//!
//! ```text
//! cosignature/v1
//! time <POSIX seconds>
//! <the checkpoint's text>
//! ```
//!
//! and the signature travels as one more signed-note line, so a
//! checkpoint carries its cosignatures and any signed-note reader keeps
//! them. A verifier that trusts a witness then knows the coordinator showed
//! that witness this very head no later than the timestamp: it cannot show
//! another history to anyone who checks the same witness.
//!
//! The note and its lines are `signed_note`'s; the key id, the message and
//! the `timestamp || signature` layout are the C2SP text's, signed with
//! ring and checked by [`PublicKey::verify`], Observer's one Ed25519 rule.

use signed_note::{Note, NoteError, Signer, Verifier, VerifierList};

use crate::identity::{PublicKey, SigningKey};

/// The signed-note signature type of an Ed25519 `cosignature/v1`.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// Why a cosignature cannot be made or is not there.
#[derive(Debug, thiserror::Error)]
pub enum CosignatureError {
    /// The witness's name cannot name a key (empty, a space, a `+`).
    #[error("{0:?} cannot name a witness: it must be one word without '+'")]
    Name(String),
    /// The note is not a signed note.
    #[error("the checkpoint is malformed")]
    Malformed,
    /// A line with the witness's name and key id does not verify.
    #[error("the cosignature of {0} does not verify")]
    Invalid(String),
    /// The timestamp is zero or beyond 2^63 - 1.
    #[error("the cosignature of {0} carries no valid time")]
    Time(String),
    /// Not a `cosignature/v1` verifier key `NAME+KEYID+BASE64`.
    #[error("not a witness key (NAME+KEYID+BASE64 of an Ed25519 cosignature/v1 key): {0}")]
    VerifierKey(&'static str),
}

/// A witness's cosigning key and name.
pub struct Witness<'a> {
    /// Its name (C2SP: a schema-less URL), the signature line's key name.
    pub name: &'a str,
    /// Its key.
    pub key: &'a SigningKey,
}

/// A witness a verifier trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedWitness {
    /// Its name.
    pub name: String,
    /// Its public key.
    pub key: PublicKey,
}

impl Witness<'_> {
    /// The signature line (`— <name> base64(key id || time || sig)\n`)
    /// cosigning the checkpoint `note` at `timestamp` (POSIX seconds, not
    /// zero). The note's own signatures are neither checked nor kept here:
    /// the witness checks the log's before it cosigns.
    pub fn cosign(&self, note: &[u8], timestamp: u64) -> Result<Vec<u8>, CosignatureError> {
        if timestamp == 0 || timestamp > i64::MAX as u64 {
            return Err(CosignatureError::Time(self.name.to_owned()));
        }
        let checked = Note::from_bytes(note).map_err(|_| CosignatureError::Malformed)?;
        let mut bare = Note::new(checked.text(), &[]).map_err(|_| CosignatureError::Malformed)?;
        let signer = CosignerV1 {
            name: self.name,
            id: key_id(self.name, &self.key.public_key()),
            key: self.key,
            timestamp,
        };
        bare.add_sigs(&[&signer])
            .map_err(|_| CosignatureError::Name(self.name.to_owned()))?;
        let text_len = checked.text().len() + 1;
        Ok(bare.to_bytes()[text_len..].to_vec())
    }
}

impl TrustedWitness {
    /// Whether `name` can name a witness's key: not empty, no space, no
    /// `+` (C2SP suggests a URL without its scheme, `example.org/witness`).
    pub fn valid_name(name: &str) -> bool {
        signed_note::is_key_name_valid(name)
            && !name.chars().any(char::is_control)
            && name.len() <= 255
    }

    /// Reads a witness's verifier key as C2SP `signed-note` writes it,
    /// `<name>+<key id, 8 hex digits>+<base64 of 0x04 || Ed25519 key>`,
    /// which is what a witness's operator publishes and a coordinator,
    /// phone or verifier is configured with.
    pub fn from_vkey(vkey: &str) -> Result<Self, CosignatureError> {
        let bad = CosignatureError::VerifierKey;
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("it does not have three '+'-separated parts"));
        };
        if !Self::valid_name(name) {
            return Err(bad(
                "the name is empty or holds a space, a control character or '+'",
            ));
        }
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key id is not 8 hex digits"));
        }
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key)
            .map_err(|_| bad("the key is not base64"))?;
        let Some((&ALG_COSIGNATURE_V1, key)) = raw.split_first() else {
            return Err(bad("the key is not of type 0x04 (cosignature/v1)"));
        };
        let key: [u8; 32] = key.try_into().map_err(|_| bad("the key is not 32 bytes"))?;
        let witness = Self {
            name: name.to_owned(),
            key: PublicKey::from_bytes(key),
        };
        if u32::from_str_radix(id, 16).ok() != Some(key_id(name, &witness.key)) {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(witness)
    }

    /// This witness's verifier key, as [`TrustedWitness::from_vkey`] reads it.
    pub fn vkey(&self) -> String {
        let mut encoded = vec![ALG_COSIGNATURE_V1];
        encoded.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            key_id(&self.name, &self.key),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, encoded)
        )
    }

    /// The time at which this witness cosigned the checkpoint `note`, or
    /// `None` when no line of its name and key id is there. A line of its
    /// name and key id that does not verify is an error: the note was
    /// tampered with.
    pub fn cosigned_at(&self, note: &[u8]) -> Result<Option<u64>, CosignatureError> {
        let note = Note::from_bytes(note).map_err(|_| CosignatureError::Malformed)?;
        let verifier = CosignatureV1Verifier {
            name: self.name.clone(),
            id: key_id(&self.name, &self.key),
            key: self.key,
        };
        let known = VerifierList::new(vec![Box::new(verifier)]);
        match note.verify(&known) {
            Ok((verified, _)) => {
                let sig = verified
                    .first()
                    .expect("a verified note has a signature")
                    .signature();
                let time = u64::from_be_bytes(sig[..8].try_into().expect("8 bytes"));
                Ok(Some(time))
            }
            Err(NoteError::UnverifiedNote) => Ok(None),
            Err(NoteError::InvalidSignature { .. }) => {
                Err(CosignatureError::Invalid(self.name.clone()))
            }
            Err(_) => Err(CosignatureError::Malformed),
        }
    }
}

/// The signed-note key id of a `cosignature/v1` key named `name`.
fn key_id(name: &str, key: &PublicKey) -> u32 {
    let mut encoded = Vec::with_capacity(33);
    encoded.push(ALG_COSIGNATURE_V1);
    encoded.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &encoded)
}

/// The message a `cosignature/v1` at `timestamp` signs over `text`.
fn message(timestamp: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

struct CosignerV1<'a> {
    name: &'a str,
    id: u32,
    key: &'a SigningKey,
    timestamp: u64,
}

impl Signer for CosignerV1<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let sig = self.key.sign(&message(self.timestamp, text));
        Ok([self.timestamp.to_be_bytes().as_slice(), sig.as_slice()].concat())
    }
}

struct CosignatureV1Verifier {
    name: String,
    id: u32,
    key: PublicKey,
}

impl Verifier for CosignatureV1Verifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        let Some((time, sig)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let timestamp = u64::from_be_bytes(*time);
        sig.len() == 64
            && timestamp != 0
            && timestamp <= i64::MAX as u64
            && self.key.verify(&message(timestamp, text), sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Checkpoint, TreeHead};
    use crate::record::Sha256Digest;

    fn signed_checkpoint(log: &SigningKey, size: u64) -> Vec<u8> {
        Checkpoint {
            origin: "example.com/behind-the-sofa".into(),
            head: TreeHead {
                size,
                root: Sha256Digest::of(&size.to_be_bytes()),
            },
        }
        .sign(log)
        .unwrap()
    }

    #[test]
    fn a_cosignature_is_the_c2sp_message_signed_and_reads_back_with_its_time() {
        let log = SigningKey::generate().unwrap();
        let key = SigningKey::generate().unwrap();
        let witness = Witness {
            name: "witness.example/w1",
            key: &key,
        };
        let note = signed_checkpoint(&log, 20852163);
        let line = witness.cosign(&note, 1679315147).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 ") && line.ends_with('\n'));
        assert_eq!(line.lines().count(), 1);
        // The line's bytes: key id, then the big-endian time, then an
        // Ed25519 signature over the C2SP message.
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(
            u32::from_be_bytes(raw[..4].try_into().unwrap()),
            key_id("witness.example/w1", &key.public_key())
        );
        assert_eq!(
            u64::from_be_bytes(raw[4..12].try_into().unwrap()),
            1679315147
        );
        let text = Note::from_bytes(&note).unwrap().text().to_vec();
        let mut expected = b"cosignature/v1\ntime 1679315147\n".to_vec();
        expected.extend_from_slice(&text);
        assert!(
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ED25519,
                key.public_key().as_bytes()
            )
            .verify(&expected, &raw[12..])
            .is_ok()
        );
        // Appended to the checkpoint, it is read back, and the log's own
        // signature still opens it.
        let cosigned = [note.as_slice(), line.as_bytes()].concat();
        let trusted = TrustedWitness {
            name: "witness.example/w1".into(),
            key: key.public_key(),
        };
        assert_eq!(trusted.cosigned_at(&cosigned).unwrap(), Some(1679315147));
        assert!(
            Checkpoint::open(&cosigned, "example.com/behind-the-sofa", &log.public_key()).is_ok()
        );
        // Without the line, or from another witness, there is none.
        assert_eq!(trusted.cosigned_at(&note).unwrap(), None);
        let other = TrustedWitness {
            name: "witness.example/w1".into(),
            key: SigningKey::generate().unwrap().public_key(),
        };
        assert_eq!(other.cosigned_at(&cosigned).unwrap(), None);
    }

    #[test]
    fn a_verifier_key_reads_back_and_a_damaged_one_is_refused() {
        let key = SigningKey::generate().unwrap();
        let trusted = TrustedWitness {
            name: "witness.example/w1".into(),
            key: key.public_key(),
        };
        let vkey = trusted.vkey();
        assert!(vkey.starts_with("witness.example/w1+"), "{vkey}");
        assert_eq!(TrustedWitness::from_vkey(&vkey).unwrap(), trusted);
        let (_, tail) = vkey.split_once('+').unwrap();
        let (id, key_b64) = tail.split_once('+').unwrap();
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key_b64).unwrap();
        let retyped = {
            raw[0] = 0x01;
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw)
        };
        for bad in [
            format!("witness.example/w2+{id}+{key_b64}"),
            format!("witness.example/w1+{id}+{retyped}"),
            format!("witness.example/w1+{id}"),
            format!("witness.example/w1+zz+{key_b64}"),
            format!("two words+{id}+{key_b64}"),
            format!("witness.example/w1+{id}+AAAA"),
        ] {
            assert!(
                matches!(
                    TrustedWitness::from_vkey(&bad),
                    Err(CosignatureError::VerifierKey(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cosignature_moved_to_another_head_or_retimed_is_refused() {
        let log = SigningKey::generate().unwrap();
        let key = SigningKey::generate().unwrap();
        let witness = Witness {
            name: "witness.example/w1",
            key: &key,
        };
        let trusted = TrustedWitness {
            name: "witness.example/w1".into(),
            key: key.public_key(),
        };
        let line = witness
            .cosign(&signed_checkpoint(&log, 10), 1700000000)
            .unwrap();
        let moved = [signed_checkpoint(&log, 11), line.clone()].concat();
        assert!(matches!(
            trusted.cosigned_at(&moved),
            Err(CosignatureError::Invalid(_))
        ));
        let text = String::from_utf8(line).unwrap();
        let b64 = text.trim_end().rsplit(' ').next().unwrap();
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        raw[11] ^= 1;
        let retimed = format!(
            "\u{2014} witness.example/w1 {}\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw)
        );
        let note = [signed_checkpoint(&log, 10), retimed.into_bytes()].concat();
        assert!(matches!(
            trusted.cosigned_at(&note),
            Err(CosignatureError::Invalid(_))
        ));
        assert!(matches!(
            witness.cosign(&signed_checkpoint(&log, 10), 0),
            Err(CosignatureError::Time(_))
        ));
        assert!(matches!(
            Witness {
                name: "two words",
                key: &key
            }
            .cosign(&signed_checkpoint(&log, 10), 1),
            Err(CosignatureError::Name(_))
        ));
    }
}
