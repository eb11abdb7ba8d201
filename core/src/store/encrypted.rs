//! What the store encrypts under its data key, and the context each blob is
//! bound to (see `crate::at_rest`).
//!
//! Readable in the file: each record's seq, station, capture time and
//! delivery state, the number of records, receipts' arrival times, and the
//! forms (published by the coordinator, the same on every phone). Sealed:
//! the signed body (payload, kind, notes, org), its signature and id,
//! receipts, rejection reasons, the chain head, the enrollment (coordinator
//! address and organisation) and the server clock. `docs/threat-model.md`
//! says why station and time stay readable: the outbox is queried by them,
//! and a phone found at a polling station already tells that much.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::at_rest::{DataKey, Unreadable};
use crate::identity::DeviceId;
use crate::protocol::RejectReason;
use crate::record::{Envelope, RecordId};
use crate::seal::SealedRecord;

/// A record's encrypted part, decrypted.
pub(super) struct Content {
    pub(super) id: RecordId,
    pub(super) kind: String,
    pub(super) envelope: Envelope,
}

const CONTENT_VERSION: u8 = 1;

fn context(table: &str, seq: Option<u64>) -> Vec<u8> {
    let mut c = format!("observer/store/v3\0{table}\0").into_bytes();
    if let Some(seq) = seq {
        c.extend_from_slice(&seq.to_be_bytes());
    }
    c
}

fn meta_context(name: &str) -> Vec<u8> {
    let mut c = context("meta", None);
    c.extend_from_slice(name.as_bytes());
    c
}

/// `version || id || sig || kind length (u16) || kind || body`, sealed to
/// its seq so that rows cannot be swapped.
pub(super) fn encrypt_record(
    key: &DataKey,
    seq: u64,
    id: &RecordId,
    kind: &str,
    env: &Envelope,
) -> Result<Vec<u8>, StoreError> {
    let kind_len = u16::try_from(kind.len()).map_err(|_| StoreError::Corrupt {
        path: Default::default(),
        detail: "record kind too long to store".into(),
    })?;
    let mut plain = Vec::with_capacity(1 + 32 + 64 + 2 + kind.len() + env.body.len());
    plain.push(CONTENT_VERSION);
    plain.extend_from_slice(id.as_bytes());
    plain.extend_from_slice(&env.sig);
    plain.extend_from_slice(&kind_len.to_be_bytes());
    plain.extend_from_slice(kind.as_bytes());
    plain.extend_from_slice(&env.body);
    Ok(key.encrypt(&context("records", Some(seq)), &plain)?)
}

pub(super) fn decrypt_record(key: &DataKey, seq: u64, blob: &[u8]) -> Result<Content, Unreadable> {
    let plain = key.decrypt(&context("records", Some(seq)), blob)?;
    let (&version, rest) = plain.split_first().ok_or(Unreadable)?;
    if version != CONTENT_VERSION {
        return Err(Unreadable);
    }
    let (id, rest) = rest.split_first_chunk::<32>().ok_or(Unreadable)?;
    let (sig, rest) = rest.split_first_chunk::<64>().ok_or(Unreadable)?;
    let (kind_len, rest) = rest.split_first_chunk::<2>().ok_or(Unreadable)?;
    let kind_len = u16::from_be_bytes(*kind_len) as usize;
    if rest.len() < kind_len {
        return Err(Unreadable);
    }
    let (kind, body) = rest.split_at(kind_len);
    Ok(Content {
        id: RecordId::from_bytes(*id),
        kind: String::from_utf8(kind.to_vec()).map_err(|_| Unreadable)?,
        envelope: Envelope {
            body: body.to_vec(),
            sig: *sig,
        },
    })
}

/// A refusal as `code: detail` (what every version has stored).
pub(super) fn encrypt_rejection(
    key: &DataKey,
    seq: u64,
    reason: RejectReason,
    detail: &str,
) -> Result<Vec<u8>, StoreError> {
    let text = format!("{}: {detail}", reason.code());
    Ok(key.encrypt(&context("rejection", Some(seq)), text.as_bytes())?)
}

/// Reads `code: detail` back.
pub(super) fn parse_rejection(text: &str) -> (RejectReason, String) {
    let (code, detail) = text.split_once(": ").unwrap_or((text, ""));
    (RejectReason::from_code(code), detail.to_string())
}

/// The reason and the sentence of a stored refusal.
pub(super) fn decrypt_rejection(
    key: &DataKey,
    seq: u64,
    blob: &[u8],
) -> Result<(RejectReason, String), Unreadable> {
    let plain = key.decrypt(&context("rejection", Some(seq)), blob)?;
    let text = String::from_utf8(plain).map_err(|_| Unreadable)?;
    Ok(parse_rejection(&text))
}

pub(super) fn encrypt_receipt(key: &DataKey, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(key.encrypt(&context("receipts", None), bytes)?)
}

pub(super) fn decrypt_receipt(key: &DataKey, blob: &[u8]) -> Result<Vec<u8>, Unreadable> {
    key.decrypt(&context("receipts", None), blob)
}

/// The organisation's sealed copy as the `for_org` column keeps it:
/// `enc (32 bytes) || ct`. It is not encrypted again under the data key, so it
/// outlives the data key in a wipe that keeps the sealed outbox.
pub(super) fn org_copy_bytes(s: &SealedRecord) -> Vec<u8> {
    let mut b = s.enc.clone();
    b.extend_from_slice(&s.ct);
    b
}

/// Reverses [`org_copy_bytes`] for `device`'s record `seq`.
pub(super) fn org_copy(device: &DeviceId, seq: u64, bytes: &[u8]) -> Option<SealedRecord> {
    (bytes.len() > 32).then(|| SealedRecord {
        device: device.clone(),
        seq,
        enc: bytes[..32].to_vec(),
        ct: bytes[32..].to_vec(),
    })
}

/// Reads an encrypted `meta` value.
pub(super) fn read_meta(
    conn: &Connection,
    key: &DataKey,
    name: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    blob.map(|b| {
        key.decrypt(&meta_context(name), &b)
            .map_err(|_| StoreError::Unreadable {
                what: format!("the stored {name}"),
            })
    })
    .transpose()
}

/// Writes an encrypted `meta` value.
pub(super) fn write_meta(
    conn: &Connection,
    key: &DataKey,
    name: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![name, key.encrypt(&meta_context(name), value)?])?;
    Ok(())
}

impl From<crate::at_rest::Unavailable> for StoreError {
    fn from(_: crate::at_rest::Unavailable) -> Self {
        StoreError::NoRandomness
    }
}

/// A relayed record's lookup tag: its device and seq under the data key,
/// so that importing a bundle twice stores it once.
pub(super) fn relay_tag(key: &DataKey, device: &DeviceId, seq: u64) -> [u8; 32] {
    let mut v = b"relay\0".to_vec();
    v.extend_from_slice(device.as_str().as_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    key.tag(&v)
}

/// A relayed record as the `relay` table keeps it: `device (32 hex
/// characters) || seq || enc || ct`, encrypted under the data key.
pub(super) fn encrypt_relayed(key: &DataKey, s: &SealedRecord) -> Result<Vec<u8>, StoreError> {
    let mut plain = s.device.as_str().as_bytes().to_vec();
    plain.extend_from_slice(&s.seq.to_be_bytes());
    plain.extend_from_slice(&org_copy_bytes(s));
    Ok(key.encrypt(&context("relay", None), &plain)?)
}

/// Reverses [`encrypt_relayed`].
pub(super) fn decrypt_relayed(key: &DataKey, blob: &[u8]) -> Result<SealedRecord, Unreadable> {
    let plain = key.decrypt(&context("relay", None), blob)?;
    let (device, rest) = plain.split_at_checked(32).ok_or(Unreadable)?;
    let (seq, sealed) = rest.split_first_chunk::<8>().ok_or(Unreadable)?;
    let device = DeviceId::try_from(String::from_utf8(device.to_vec()).map_err(|_| Unreadable)?)
        .map_err(|_| Unreadable)?;
    org_copy(&device, u64::from_be_bytes(*seq), sealed).ok_or(Unreadable)
}
