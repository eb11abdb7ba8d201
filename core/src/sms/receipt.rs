//! The coordinator's receipt by SMS: the short form a gateway texts back to
//! the phone that sent a report, so an observer without mobile data learns
//! that the coordinator holds it.
//!
//! Like a report, the SMS carries the receipt's *values* and the phone
//! rebuilds the exact signed bytes and checks them with the coordinator's
//! pinned key; the short form leaves out what the phone already knows
//! (its organisation, its device, the ids of its own records, found by
//! seq). Only receipts that settle records go by SMS (a refusal's reason
//! is free text, and the phone hears of it at its next sync). Layout:
//! `docs/protocol.md`, "Receipts by SMS".

use super::SmsError;
use super::pack::{MAX_U48, Reader, TYPE_RECEIPT, u48, unpackable};
use crate::identity::{DeviceId, SIGNATURE_LEN};
use crate::merkle::TreeHead;
use crate::protocol::{Ack, Receipt, Signed};
use crate::record::{RecordId, Sha256Digest};

/// Most records one short receipt names (a report by SMS is one record).
const MAX_ACKS: usize = 16;

/// What the phone supplies to rebuild a receipt: what it is, and the ids
/// of its own records.
pub trait ReceiptContext {
    /// The organisation the phone is enrolled with.
    fn org(&self) -> &str;
    /// The phone's device id.
    fn device(&self) -> &DeviceId;
    /// The id of this device's record `seq`, if it holds one.
    fn record_id(&self, seq: u64) -> Option<RecordId>;
}

fn u48_bytes(v: u64, what: &str) -> Result<[u8; 6], SmsError> {
    if v > MAX_U48 {
        return Err(unpackable(format!("{what} out of range")));
    }
    Ok(v.to_be_bytes()[2..].try_into().expect("6 bytes"))
}

/// Packs a signed receipt that settles records and refuses none, and checks
/// that it rebuilds byte for byte.
pub fn pack_receipt(signed: &Signed) -> Result<Vec<u8>, SmsError> {
    let receipt: Receipt = serde_json::from_slice(&signed.body)
        .map_err(|e| unpackable(format!("not a receipt: {e}")))?;
    if !receipt.rejected.is_empty() {
        return Err(unpackable("a receipt that refuses records"));
    }
    let acks = receipt.accepted.len() + receipt.already.len();
    if acks == 0 || acks > MAX_ACKS {
        return Err(unpackable(format!("a receipt naming {acks} records")));
    }
    let sig: [u8; SIGNATURE_LEN] = signed
        .sig
        .as_slice()
        .try_into()
        .map_err(|_| unpackable("not a signature"))?;
    let time = u64::try_from(receipt.server_time_ms)
        .map_err(|_| unpackable("receipt time out of range"))?;
    let mut out = vec![
        TYPE_RECEIPT,
        receipt.accepted.len() as u8,
        receipt.already.len() as u8,
    ];
    for a in receipt.accepted.iter().chain(&receipt.already) {
        let seq = u32::try_from(a.seq).map_err(|_| unpackable("seq over 2^32"))?;
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&u48_bytes(a.index, "log index")?);
    }
    out.extend_from_slice(&u48_bytes(time, "receipt time")?);
    out.extend_from_slice(&u48_bytes(receipt.tree.size, "log size")?);
    out.extend_from_slice(receipt.tree.root.as_bytes());
    out.extend_from_slice(&sig);
    let own = Own(&receipt);
    match unpack_receipt(&out, &own) {
        Ok(back) if back == *signed => Ok(out),
        _ => Err(unpackable("the receipt does not rebuild byte for byte")),
    }
}

/// Rebuilds the signed receipt from its short form. Nothing is verified
/// here: the caller opens it with the pinned coordinator key, as any
/// receipt.
pub fn unpack_receipt(bytes: &[u8], ctx: &dyn ReceiptContext) -> Result<Signed, SmsError> {
    let mut r = Reader { rest: bytes };
    if r.u8()? != TYPE_RECEIPT {
        return Err(SmsError::Malformed("not a receipt".into()));
    }
    let accepted = usize::from(r.u8()?);
    let already = usize::from(r.u8()?);
    if accepted + already == 0 || accepted + already > MAX_ACKS {
        return Err(SmsError::Malformed(format!(
            "a receipt naming {} records",
            accepted + already
        )));
    }
    let mut acks = Vec::with_capacity(accepted + already);
    for _ in 0..accepted + already {
        let seq = u64::from(u32::from_be_bytes(r.array()?));
        let index = u48(&mut r)?;
        let id = ctx.record_id(seq).ok_or_else(|| {
            SmsError::Malformed(format!(
                "the receipt names record {seq}, which this phone does not hold"
            ))
        })?;
        acks.push(Ack { id, seq, index });
    }
    let server_time_ms = i64::try_from(u48(&mut r)?).expect("48 bits");
    let size = u48(&mut r)?;
    let root = Sha256Digest::from_bytes(r.array()?);
    let sig: [u8; SIGNATURE_LEN] = r.array()?;
    r.end()?;
    let already_acks = acks.split_off(accepted);
    let receipt = Receipt {
        org: ctx.org().to_string(),
        device: ctx.device().clone(),
        server_time_ms,
        accepted: acks,
        already: already_acks,
        rejected: Vec::new(),
        tree: TreeHead { size, root },
    };
    Ok(Signed {
        body: serde_json::to_vec(&receipt).expect("receipts serialise"),
        sig: sig.to_vec(),
    })
}

/// The packer's check: the receipt supplies what the phone would.
struct Own<'a>(&'a Receipt);

impl ReceiptContext for Own<'_> {
    fn org(&self) -> &str {
        &self.0.org
    }
    fn device(&self) -> &DeviceId {
        &self.0.device
    }
    fn record_id(&self, seq: u64) -> Option<RecordId> {
        self.0
            .accepted
            .iter()
            .chain(&self.0.already)
            .find(|a| a.seq == seq)
            .map(|a| a.id)
    }
}
