//! The coordinator's log as this phone has verified it: the receipt whose
//! signed tree head is the newest one proved to extend every earlier one
//! (the anchor the next sync's consistency proof starts from), and the
//! faults found, each kept whole as evidence: the two signed heads and the
//! proofs that failed between them; and the newest witnessed checkpoint.
//! Sealed at rest like every `meta` value.

use serde::{Deserialize, Serialize};

use super::outbox::receipt_row;
use super::session::{META_LOG_ANCHOR, META_LOG_FAULTS, META_LOG_WITNESSED, read_json, write_json};
use super::{Store, StoreError, StoredReceipt};
use crate::protocol::{LogProofs, Signed};

/// Faults kept: the first one found (the evidence that matters most) and
/// the newest after it; those in between give way (each repeats a fault
/// already kept, since the phone stops at the first).
const MAX_FAULTS: usize = 32;

/// A check that found the coordinator's log rewritten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFault {
    /// When the phone found it, ms since the epoch (phone clock).
    pub detected_at_ms: i64,
    /// The receipt whose head the phone held (signed by the coordinator).
    pub held: Option<Signed>,
    /// The receipt the coordinator answered with (signed by it too).
    pub answered: Signed,
    /// The proofs it sent for it, if any.
    pub proofs: Option<LogProofs>,
    /// What did not hold, in words.
    pub problem: String,
}

impl Store {
    /// The receipt whose tree head the next sync's consistency proof
    /// starts from, once a sync has verified one.
    pub fn log_anchor(&self) -> Result<Option<Signed>, StoreError> {
        read_json(&*self.conn()?, &self.vault, META_LOG_ANCHOR)
    }

    /// Keeps `receipt` as the anchor: its head was proved to extend the
    /// previous anchor's (or is the first this phone saw).
    pub fn set_log_anchor(&self, receipt: &Signed) -> Result<(), StoreError> {
        write_json(&*self.conn()?, &self.vault, META_LOG_ANCHOR, receipt)
    }

    /// The newest checkpoint this phone verified as witnessed (cosigned
    /// by every witness the coordinator names, and extended by a receipt
    /// it verified), as a signed note.
    pub fn log_witnessed(&self) -> Result<Option<String>, StoreError> {
        read_json(&*self.conn()?, &self.vault, META_LOG_WITNESSED)
    }

    /// Keeps `checkpoint` as the newest witnessed one.
    pub fn set_log_witnessed(&self, checkpoint: &str) -> Result<(), StoreError> {
        write_json(&*self.conn()?, &self.vault, META_LOG_WITNESSED, &checkpoint)
    }

    /// Every fault kept, oldest first.
    pub fn log_faults(&self) -> Result<Vec<LogFault>, StoreError> {
        Ok(read_json(&*self.conn()?, &self.vault, META_LOG_FAULTS)?.unwrap_or_default())
    }

    /// Keeps a fault as evidence.
    pub fn add_log_fault(&self, fault: LogFault) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let mut faults: Vec<LogFault> =
            read_json(&conn, &self.vault, META_LOG_FAULTS)?.unwrap_or_default();
        faults.push(fault);
        let excess = faults.len().saturating_sub(MAX_FAULTS);
        faults.drain(1..1 + excess);
        write_json(&conn, &self.vault, META_LOG_FAULTS, &faults)
    }

    /// Up to `n` stored receipts chosen at random: the delivered records
    /// they acknowledge are the ones a sync asks the coordinator to prove
    /// still in its log.
    pub fn receipt_sample(&self, n: usize) -> Result<Vec<StoredReceipt>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, received_at, content FROM receipts ORDER BY random() LIMIT ?1",
        )?;
        let mut rows = stmt.query([n as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(receipt_row(&self.vault, r)?);
        }
        Ok(out)
    }
}
