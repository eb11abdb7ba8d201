//! Delivery state: pending -> in flight -> delivered (with its receipt), or
//! rejected (with the receipt that said why).
//!
//! "In flight" lives only as long as the process that took the batch: if it
//! dies, opening the store returns those records to pending, because their
//! delivery was never proved. Only a receipt (verified by the caller against
//! the pinned coordinator key) moves a record to delivered, and the receipt
//! is stored beside it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::query::{RECORD_COLUMNS, RECORD_FROM, stored_record};
use super::{Store, StoreError, StoredRecord, encrypted};
use crate::protocol::RejectReason;
use crate::record::RecordId;

/// Where a record is in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for a link.
    Pending,
    /// Sent, not yet acknowledged.
    InFlight,
    /// Acknowledged by the coordinator's receipt.
    Delivered {
        /// The stored receipt's local number.
        receipt: i64,
        /// When the receipt arrived.
        received_at: DateTime<Utc>,
    },
    /// Refused by the coordinator; kept on the phone, never resent.
    Rejected {
        /// The stored receipt's local number.
        receipt: i64,
        /// The coordinator's reason.
        reason: RejectReason,
        /// Its sentence about this record.
        detail: String,
    },
}

/// A record the coordinator's receipt refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The record.
    pub id: RecordId,
    /// The coordinator's reason.
    pub reason: RejectReason,
    /// Its sentence about this record.
    pub detail: String,
}

/// Number of records per delivery state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Waiting for a link.
    pub pending: u64,
    /// Sent, not yet acknowledged.
    pub in_flight: u64,
    /// Acknowledged.
    pub delivered: u64,
    /// Refused by the coordinator.
    pub rejected: u64,
}

impl Counts {
    /// All records.
    pub fn total(&self) -> u64 {
        self.pending + self.in_flight + self.delivered + self.rejected
    }
}

/// A receipt as the phone keeps it: the coordinator's signed bytes, the
/// proof of what was delivered or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    /// The local number that [`DeliveryState`] refers to.
    pub number: i64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The signed receipt as the coordinator sent it.
    pub bytes: Vec<u8>,
}

/// The kind of record a priority station's observer sends first: the
/// results protocol that the quick count estimates from.
pub const PRIORITY_KIND: &str = "results";

/// A `receipts` row read as `id, received_at, content`.
pub(super) fn receipt_row(
    vault: &crate::at_rest::DataKey,
    r: &rusqlite::Row<'_>,
) -> Result<StoredReceipt, StoreError> {
    let number: i64 = r.get(0)?;
    let bytes = encrypted::decrypt_receipt(vault, &r.get::<_, Vec<u8>>(2)?).map_err(|_| {
        StoreError::Unreadable {
            what: format!("receipt {number}"),
        }
    })?;
    Ok(StoredReceipt {
        number,
        received_at: DateTime::from_timestamp_millis(r.get(1)?).unwrap_or_default(),
        bytes,
    })
}

impl Store {
    /// Every stored receipt, oldest first (to show or export as proof of
    /// delivery).
    pub fn receipts(&self) -> Result<Vec<StoredReceipt>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT id, received_at, content FROM receipts ORDER BY id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(receipt_row(&self.vault, r)?);
        }
        Ok(out)
    }

    /// Records per delivery state.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM records GROUP BY state")?;
        let mut c = Counts::default();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let n = r.get::<_, i64>(1)? as u64;
            match r.get::<_, i64>(0)? {
                0 => c.pending = n,
                1 => c.in_flight = n,
                2 => c.delivered = n,
                _ => c.rejected = n,
            }
        }
        Ok(c)
    }

    /// Takes up to `max_records` pending records (at most `max_bytes` of
    /// bodies, but always at least one) and marks them in flight. Results
    /// protocols of the enrollment's priority stations (the quick count's
    /// sample) come first, then the rest oldest first: when the link
    /// returns on election night, the report the coordinator needs most is
    /// not queued behind the day's checklists. The server takes a chain's
    /// records in any order; the gap this leaves fills with the next batch.
    pub fn take_for_delivery(
        &self,
        max_records: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let priority = self
            .enrollment()
            .map(|e| e.priority_stations)
            .unwrap_or_default();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut batch: Vec<StoredRecord> = Vec::new();
        {
            let mut bytes = 0usize;
            let mut take = |rec: StoredRecord, batch: &mut Vec<StoredRecord>| {
                bytes += rec.envelope.body.len();
                let room =
                    batch.len() < max_records as usize && (batch.is_empty() || bytes <= max_bytes);
                if room {
                    batch.push(rec);
                }
                room
            };
            // The kind is sealed: a priority station's pending records are
            // opened to find its protocols (a station has a few dozen).
            let mut at_station = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} \
                 WHERE r.state = 0 AND r.station = ?1 ORDER BY r.seq"
            ))?;
            'priority: for station in &priority {
                let mut rows = at_station.query([station])?;
                while let Some(r) = rows.next()? {
                    let rec = stored_record(&self.vault, &self.device, r)?;
                    if rec.kind == PRIORITY_KIND && !take(rec, &mut batch) {
                        break 'priority;
                    }
                }
            }
            let first: std::collections::HashSet<u64> = batch.iter().map(|r| r.seq).collect();
            let mut oldest = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE r.state = 0 ORDER BY r.seq LIMIT ?1"
            ))?;
            let mut rows = oldest.query([max_records as usize + first.len()])?;
            while let Some(r) = rows.next()? {
                if first.contains(&(r.get::<_, i64>(0)? as u64)) {
                    continue;
                }
                let rec = stored_record(&self.vault, &self.device, r)?;
                if !take(rec, &mut batch) {
                    break;
                }
            }
            let mut mark = tx.prepare_cached("UPDATE records SET state = 1 WHERE seq = ?1")?;
            for rec in &mut batch {
                mark.execute([rec.seq as i64])?;
                rec.state = DeliveryState::InFlight;
            }
        }
        tx.commit()?;
        Ok(batch)
    }

    /// Applies a receipt (the coordinator's signed receipt, already
    /// verified by the caller): `delivered` ids become delivered, `rejected`
    /// ones rejected with their reason, in one transaction that also stores
    /// the receipt bytes as the proof. Records already delivered or rejected
    /// are left as they are; ids not in this store are ignored. Returns how
    /// many records changed state.
    pub fn apply_receipt(
        &self,
        receipt: &[u8],
        delivered: &[RecordId],
        rejected: &[Refusal],
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let now = Utc::now().timestamp_millis();
        tx.execute(
            "INSERT INTO receipts (received_at, content) VALUES (?1, ?2)",
            params![now, encrypted::encrypt_receipt(&self.vault, receipt)?],
        )?;
        let rid = tx.last_insert_rowid();
        let mut changed = 0;
        {
            let mut deliver = tx.prepare_cached(
                "UPDATE records SET state = 2, receipt = ?1 WHERE tag = ?2 AND state IN (0, 1)",
            )?;
            for id in delivered {
                changed += deliver.execute(params![rid, self.vault.tag(id.as_bytes())])?;
            }
            let mut seq_of =
                tx.prepare_cached("SELECT seq FROM records WHERE tag = ?1 AND state IN (0, 1)")?;
            let mut reject = tx.prepare_cached(
                "UPDATE records SET state = 3, receipt = ?1, rejection = ?2 WHERE seq = ?3",
            )?;
            for refusal in rejected {
                let seq: Option<i64> = seq_of
                    .query_row([self.vault.tag(refusal.id.as_bytes())], |r| r.get(0))
                    .optional()?;
                if let Some(seq) = seq {
                    let reason = encrypted::encrypt_rejection(
                        &self.vault,
                        seq as u64,
                        refusal.reason,
                        &refusal.detail,
                    )?;
                    changed += reject.execute(params![rid, reason, seq])?;
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Returns in-flight records to pending (their delivery failed).
    pub fn return_to_pending(&self, ids: &[RecordId]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut changed = 0;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE records SET state = 0 WHERE tag = ?1 AND state = 1")?;
            for id in ids {
                changed += stmt.execute([self.vault.tag(id.as_bytes())])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// At open: whatever was in flight when the last process died was never
    /// proved delivered, so it is pending again.
    pub(super) fn requeue_in_flight(&self) -> Result<(), StoreError> {
        self.conn()?
            .execute("UPDATE records SET state = 0 WHERE state = 1", [])?;
        Ok(())
    }
}
