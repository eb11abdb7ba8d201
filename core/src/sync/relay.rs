//! Delivering the relay outbox: records this phone carries for other phones
//! of its organisation (see [`crate::relay`]), sent as the sealed batches a
//! wiped phone sends (`POST /v1/sealed`), one device at a time, since each
//! record proves itself by its own device's signature once the server
//! opens it. A relayed record is dropped only when a receipt, verified
//! with this phone's pinned coordinator key and naming the record's own
//! device, settles it, or when the coordinator refuses that device's
//! records for good.

use std::collections::HashMap;

use super::{
    Connection, SyncError, SyncOptions, SyncSummary, compressed_json, open_receipt, receipt_answer,
};
use crate::identity::DeviceId;
use crate::protocol::SealedBatch;
use crate::store::{Enrollment, Relayed, Store};

/// Sends every relayed record, device by device, in batches.
pub(super) fn deliver_relayed(
    store: &Store,
    conn: &Connection,
    enrollment: &Enrollment,
    opts: &SyncOptions,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    let mut groups: Vec<(DeviceId, Vec<Relayed>)> = Vec::new();
    let mut index: HashMap<DeviceId, usize> = HashMap::new();
    for r in store.relay_pending()? {
        let i = *index.entry(r.record.device.clone()).or_insert_with(|| {
            groups.push((r.record.device.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(r);
    }
    'device: for (device, records) in &groups {
        for chunk in records.chunks(opts.batch_records.max(1) as usize) {
            opts.cancel.check()?;
            let body = compressed_json(&SealedBatch {
                sealed: chunk.iter().map(|r| r.record.clone()).collect(),
            })?;
            summary.bytes_sent += body.len() as u64;
            summary.batches += 1;
            let answered = match conn.post("/v1/sealed", body, true).and_then(receipt_answer) {
                Ok(a) => a,
                Err(e) if refused_for_good(&e) => {
                    // The coordinator will never take these (a device it
                    // does not know, records that do not open): keeping
                    // them would resend them at every sync.
                    let rows: Vec<i64> = records.iter().map(|r| r.row).collect();
                    summary.relay_refused += store.settle_relayed(&rows)? as u64;
                    tracing::warn!(
                        records = rows.len(),
                        error = e.log_code(),
                        "relayed records refused by the coordinator; dropped"
                    );
                    continue 'device;
                }
                Err(e) => return Err(e),
            };
            // The receipt must name the records' own device: a receipt for
            // another device settles nothing here.
            let receipt = open_receipt(
                &answered.receipt,
                &enrollment.coordinator,
                device,
                &enrollment.org,
            )?;
            let row_of: HashMap<u64, i64> = chunk.iter().map(|r| (r.record.seq, r.row)).collect();
            let mut settled: Vec<i64> = receipt
                .accepted
                .iter()
                .chain(&receipt.already)
                .filter_map(|a| row_of.get(&a.seq).copied())
                .collect();
            let delivered = settled.len() as u64;
            let refused: Vec<i64> = receipt
                .rejected
                .iter()
                .filter_map(|r| chunk.get(r.position).map(|c| c.row))
                .collect();
            settled.extend(&refused);
            store.settle_relayed(&settled)?;
            summary.relayed += delivered;
            summary.relay_refused += refused.len() as u64;
        }
    }
    summary.relay_remaining = store.relay_count()?;
    if !groups.is_empty() {
        tracing::info!(
            relayed = summary.relayed,
            refused = summary.relay_refused,
            remaining = summary.relay_remaining,
            "relay outbox delivered"
        );
    }
    Ok(())
}

/// A refusal that says these records will never be taken, as opposed to
/// one that says "later" (busy, rate limited) or "not this link" (an
/// interception, a bad answer), after which they are kept.
fn refused_for_good(e: &SyncError) -> bool {
    match e {
        // The relayed device's revocation, not this phone's.
        SyncError::Revoked => true,
        SyncError::Refused { status, .. } => {
            (400..500).contains(status) && !matches!(status, 408 | 429)
        }
        _ => false,
    }
}
