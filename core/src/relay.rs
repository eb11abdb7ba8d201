//! Relay bundles: a phone's undelivered records in one file that another
//! phone of the organisation (or a laptop) carries to the coordinator when
//! the sender has no link of its own.
//!
//! Every record in a bundle is sealed to the organisation's key exactly as
//! the sealed outbox seals it ([`SealedRecord`]: HPKE, bound to its device
//! and seq), so whoever carries the file learns nothing of what was
//! observed, and the server authenticates each record by the device's own
//! signature inside, so a relay can forge nothing. The bundle as a whole is
//! signed by the sending device: the relay checks that signature at import,
//! so a file damaged, truncated or spliced on the way is refused before it
//! takes room in the relay's outbox. The signature proves only that the
//! bundle is whole; whether its device is enrolled is the server's call.
//!
//! What a relay (or whoever seizes it) can read: the sending device's
//! public key and id, the organisation's sealing key, how many records and
//! their seqs and sizes. `docs/protocol.md` ("Relay bundles") gives the
//! byte layout.
//!
//! ```
//! use observer_core::identity::SigningKey;
//! use observer_core::record::{sign_record, ChainPosition, NewRecord};
//! use observer_core::relay::RelayBundle;
//! use observer_core::seal::{OrgSecretKey, SealedRecord};
//!
//! let org = OrgSecretKey::generate();
//! let device = SigningKey::generate()?;
//! let pos = ChainPosition::first(&device);
//! let new = NewRecord::builder("S1", "incident", 1, "incident").build()?;
//! let env = sign_record(&new, &pos, &device)?;
//! let sealed = SealedRecord::seal(&org.public_key(), &pos.device, 1, &env)?;
//! let bytes = RelayBundle::write(&device, &org.public_key(), &[sealed])?;
//! let bundle = RelayBundle::read(&bytes)?;
//! assert_eq!(bundle.device(), &pos.device);
//! assert_eq!(bundle.records()[0].open(&org)?, env);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::identity::{DeviceId, PublicKey, SIGNATURE_LEN, SigningKey};
use crate::record::limits::MAX_BODY_BYTES;
use crate::seal::{OrgPublicKey, SealedRecord};

/// The first bytes of every bundle: what it is and its format version.
pub const RELAY_MAGIC: &[u8] = b"observer-relay/v1\n";

/// Signing domain of a bundle (device key).
pub const RELAY_DOMAIN: &[u8] = b"observer/relay/v1\0";

/// Largest bundle, in bytes: small enough for a messenger attachment, an
/// MMS-less share sheet or a phone's memory, large enough for a day of
/// text records (media never travel in bundles).
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// Most records in one bundle.
pub const MAX_BUNDLE_RECORDS: usize = 20_000;

/// Most records one phone carries for others at once (its relay outbox):
/// a bound on the room that bundles handed to it can take.
pub const MAX_RELAY_HELD: u64 = 100_000;

/// Length of HPKE's encapsulated key (X25519).
const ENC_LEN: usize = 32;

/// Longest sealed record: the largest signed record plus the AEAD tag.
const MAX_CT_LEN: usize = MAX_BODY_BYTES + SIGNATURE_LEN + 16;

/// The fixed part before the records: magic, device key, organisation key,
/// record count.
pub(crate) const HEADER_LEN: usize = RELAY_MAGIC.len() + 32 + 32 + 4;

/// Each record's fixed part: seq, encapsulated key, ciphertext length.
pub(crate) const ENTRY_FIXED: usize = 8 + ENC_LEN + 4;

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Not a bundle at all (another file was chosen).
    #[error("this file is not an Observer relay bundle")]
    NotABundle,
    /// Over [`MAX_BUNDLE_BYTES`] or [`MAX_BUNDLE_RECORDS`].
    #[error("the bundle is too large: {0}")]
    TooLarge(String),
    /// It ends before its signature: cut short while copied or sent.
    #[error("the bundle is incomplete (cut short while it was copied or sent); ask for it again")]
    Truncated,
    /// Its layout is wrong somewhere after the header.
    #[error("the bundle is malformed: {0}")]
    Malformed(String),
    /// The signature over the whole bundle does not verify: a byte was
    /// changed after the sending phone wrote it.
    #[error(
        "the bundle was altered after the sending phone wrote it (its signature does not verify); it was not imported"
    )]
    Altered,
    /// Sealed to another organisation's key than this phone's.
    #[error("the bundle is for another organisation; it was not imported")]
    OtherOrganisation,
    /// The bundle is this phone's own: its records are in its outbox.
    #[error("this is this phone's own bundle; its records are already in its outbox")]
    OwnBundle,
    /// This phone holds no organisation sealing key (not enrolled, or
    /// enrolled by a coordinator without one), so it can neither seal a
    /// bundle nor tell whether one is for its organisation.
    #[error(
        "this phone has no sealing key from its coordinator (enroll first, or enroll again with a current coordinator); relay bundles need it"
    )]
    NoSealKey,
    /// The relay outbox already holds as many records as it may.
    #[error(
        "this phone already carries {held} records for others, and may carry at most {MAX_RELAY_HELD}; sync them first"
    )]
    RelayFull { held: u64 },
    /// Sealing failed while writing.
    #[error("sealing a record failed: {0}")]
    Seal(#[from] crate::seal::SealError),
}

/// A bundle read and its signature verified: the sending device and its
/// sealed records, in ascending seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayBundle {
    key: PublicKey,
    device: DeviceId,
    org: OrgPublicKey,
    records: Vec<SealedRecord>,
}

impl RelayBundle {
    /// Writes `records` (each sealed by `device` to `org`, all labelled
    /// with this device, in strictly ascending seq) as a signed bundle.
    pub fn write(
        device: &SigningKey,
        org: &OrgPublicKey,
        records: &[SealedRecord],
    ) -> Result<Vec<u8>, RelayError> {
        let key = device.public_key();
        let id = key.device_id();
        if records.len() > MAX_BUNDLE_RECORDS {
            return Err(RelayError::TooLarge(format!(
                "{} records, over {MAX_BUNDLE_RECORDS}",
                records.len()
            )));
        }
        let mut out = Vec::with_capacity(
            HEADER_LEN
                + records
                    .iter()
                    .map(|r| ENTRY_FIXED + r.ct.len())
                    .sum::<usize>()
                + SIGNATURE_LEN,
        );
        out.extend_from_slice(RELAY_MAGIC);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(org.as_bytes());
        out.extend_from_slice(&(records.len() as u32).to_be_bytes());
        let mut last = 0u64;
        for r in records {
            if r.device != id || r.seq <= last || r.enc.len() != ENC_LEN || r.ct.len() > MAX_CT_LEN
            {
                return Err(RelayError::Malformed(format!(
                    "record {} is not this device's next sealed record",
                    r.seq
                )));
            }
            last = r.seq;
            out.extend_from_slice(&r.seq.to_be_bytes());
            out.extend_from_slice(&r.enc);
            out.extend_from_slice(&(r.ct.len() as u32).to_be_bytes());
            out.extend_from_slice(&r.ct);
        }
        let sig = device.sign(&[RELAY_DOMAIN, &out].concat());
        out.extend_from_slice(&sig);
        if out.len() > MAX_BUNDLE_BYTES {
            return Err(RelayError::TooLarge(format!(
                "{} bytes, over {MAX_BUNDLE_BYTES}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Reads a bundle: checks its size, layout and the sending device's
    /// signature over every byte, and nothing else (whether the device is
    /// enrolled, and every record, the server checks).
    pub fn read(bytes: &[u8]) -> Result<Self, RelayError> {
        if !bytes.starts_with(RELAY_MAGIC) {
            // A prefix of the magic is a bundle cut in its first bytes.
            return Err(if RELAY_MAGIC.starts_with(bytes) && !bytes.is_empty() {
                RelayError::Truncated
            } else {
                RelayError::NotABundle
            });
        }
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(RelayError::TooLarge(format!(
                "{} bytes, over {MAX_BUNDLE_BYTES}",
                bytes.len()
            )));
        }
        let mut r = Reader {
            rest: &bytes[RELAY_MAGIC.len()..],
        };
        let key = PublicKey::from_bytes(r.array()?);
        let org = OrgPublicKey::from_bytes(&r.array::<32>()?)
            .map_err(|e| RelayError::Malformed(format!("the organisation key: {e}")))?;
        let count = u32::from_be_bytes(r.array()?) as usize;
        if count > MAX_BUNDLE_RECORDS {
            return Err(RelayError::TooLarge(format!(
                "{count} records, over {MAX_BUNDLE_RECORDS}"
            )));
        }
        // Every record takes at least its fixed part: a count the bytes
        // cannot hold is a cut file, found before anything is allocated.
        if count.saturating_mul(ENTRY_FIXED) + SIGNATURE_LEN > r.rest.len() {
            return Err(RelayError::Truncated);
        }
        let device = key.device_id();
        let mut records = Vec::with_capacity(count);
        let mut last = 0u64;
        for _ in 0..count {
            let seq = u64::from_be_bytes(r.array()?);
            let enc = r.array::<ENC_LEN>()?.to_vec();
            let len = u32::from_be_bytes(r.array()?) as usize;
            if len > MAX_CT_LEN {
                return Err(RelayError::Malformed(format!(
                    "record {seq} is {len} bytes, over the record limit"
                )));
            }
            let ct = r.take(len)?.to_vec();
            if seq <= last {
                return Err(RelayError::Malformed(format!(
                    "record {seq} follows record {last}: seqs must ascend"
                )));
            }
            last = seq;
            records.push(SealedRecord {
                device: device.clone(),
                seq,
                enc,
                ct,
            });
        }
        let signed_len = bytes.len() - r.rest.len();
        let sig = r.array::<SIGNATURE_LEN>()?;
        if !r.rest.is_empty() {
            return Err(RelayError::Malformed(format!(
                "{} bytes after the signature",
                r.rest.len()
            )));
        }
        if !key.verify(&[RELAY_DOMAIN, &bytes[..signed_len]].concat(), &sig) {
            return Err(RelayError::Altered);
        }
        Ok(Self {
            key,
            device,
            org,
            records,
        })
    }

    /// The sending device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The sending device's public key, which signed the bundle.
    pub fn device_key(&self) -> &PublicKey {
        &self.key
    }

    /// The organisation key its records are sealed to.
    pub fn org(&self) -> &OrgPublicKey {
        &self.org
    }

    /// Its sealed records, in ascending seq.
    pub fn records(&self) -> &[SealedRecord] {
        &self.records
    }

    /// Its sealed records.
    pub fn into_records(self) -> Vec<SealedRecord> {
        self.records
    }
}

/// Reads fixed-size pieces; running out is a truncated bundle.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RelayError> {
        if self.rest.len() < n {
            return Err(RelayError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RelayError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChainPosition, Envelope, NewRecord, sign_record};
    use crate::seal::OrgSecretKey;

    fn signed(n: u64) -> (SigningKey, OrgSecretKey, Vec<Envelope>, Vec<u8>) {
        let org = OrgSecretKey::generate();
        let key = SigningKey::generate().unwrap();
        let mut pos = ChainPosition::first(&key);
        let mut envs = Vec::new();
        let mut sealed = Vec::new();
        for _ in 0..n {
            let new = NewRecord::builder("S1", "incident", 1, "incident")
                .payload_json(r#"{"note":"кіргізбеді"}"#)
                .build()
                .unwrap();
            let env = sign_record(&new, &pos, &key).unwrap();
            sealed.push(SealedRecord::seal(&org.public_key(), &pos.device, pos.seq, &env).unwrap());
            pos = pos.after(env.id());
            envs.push(env);
        }
        let bytes = RelayBundle::write(&key, &org.public_key(), &sealed).unwrap();
        (key, org, envs, bytes)
    }

    #[test]
    fn a_bundle_reads_back_and_opens_only_for_the_organisation() {
        let (key, org, envs, bytes) = signed(3);
        let b = RelayBundle::read(&bytes).unwrap();
        assert_eq!(b.device(), &key.public_key().device_id());
        assert_eq!(b.org(), &org.public_key());
        let opened: Vec<Envelope> = b.records().iter().map(|s| s.open(&org).unwrap()).collect();
        assert_eq!(opened, envs);
        let other = OrgSecretKey::generate();
        assert!(b.records()[0].open(&other).is_err());
        // Nothing of the record's text is in the file.
        let text = "кіргізбеді".as_bytes();
        assert!(!bytes.windows(text.len()).any(|w| w == text));
    }

    #[test]
    fn every_cut_is_refused_as_truncated_and_every_flip_as_altered_or_malformed() {
        let (_, _, _, bytes) = signed(2);
        for cut in 1..bytes.len() {
            assert_eq!(
                RelayBundle::read(&bytes[..cut]),
                Err(RelayError::Truncated),
                "cut at {cut}"
            );
        }
        for i in RELAY_MAGIC.len()..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let e = RelayBundle::read(&b).unwrap_err();
            assert!(
                matches!(
                    e,
                    RelayError::Altered
                        | RelayError::Malformed(_)
                        | RelayError::Truncated
                        | RelayError::TooLarge(_)
                ),
                "byte {i}: {e:?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            RelayBundle::read(&longer),
            Err(RelayError::Malformed(_))
        ));
        assert_eq!(
            RelayBundle::read(b"PK\x03\x04 a zip file"),
            Err(RelayError::NotABundle)
        );
    }

    #[test]
    fn a_record_spliced_in_from_another_bundle_breaks_the_signature() {
        let (_, _, _, a) = signed(1);
        let (key, org, _, _) = signed(1);
        // The second device's bundle re-signed around the first's record
        // would name the second device: the record's seal binds the first.
        let from_a = RelayBundle::read(&a).unwrap().into_records().remove(0);
        let relabelled = SealedRecord {
            device: key.public_key().device_id(),
            ..from_a
        };
        let forged = RelayBundle::write(&key, &org.public_key(), &[relabelled]).unwrap();
        let read = RelayBundle::read(&forged).unwrap();
        assert!(read.records()[0].open(&org).is_err());
    }

    #[test]
    fn an_empty_bundle_is_valid_and_a_huge_count_is_refused_before_allocating() {
        let org = OrgSecretKey::generate();
        let key = SigningKey::generate().unwrap();
        let bytes = RelayBundle::write(&key, &org.public_key(), &[]).unwrap();
        assert!(RelayBundle::read(&bytes).unwrap().records().is_empty());
        let mut huge = bytes[..HEADER_LEN].to_vec();
        huge[HEADER_LEN - 4..].copy_from_slice(&(MAX_BUNDLE_RECORDS as u32).to_be_bytes());
        assert_eq!(RelayBundle::read(&huge), Err(RelayError::Truncated));
        huge[HEADER_LEN - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            RelayBundle::read(&huge),
            Err(RelayError::TooLarge(_))
        ));
    }
}
