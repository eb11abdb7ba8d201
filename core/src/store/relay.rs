//! The store's side of relay bundles (see [`crate::relay`]): exporting this
//! device's undelivered records for another phone to carry, and keeping
//! other phones' records in a relay outbox until the coordinator's receipt
//! settles them.
//!
//! The relay outbox is a table of its own: relayed records never enter this
//! device's chain, its counts or its integrity check, and this phone can
//! never read them (they are sealed to the organisation by the phone that
//! signed them).

use chrono::Utc;
use rusqlite::params;
use serde::Serialize;

use super::query::{RECORD_COLUMNS, RECORD_FROM, stored_record};
use super::{Store, StoreError, encrypted};
use crate::identity::DeviceId;
use crate::relay::{
    ENTRY_FIXED, HEADER_LEN, MAX_BUNDLE_BYTES, MAX_RELAY_HELD, RelayBundle, RelayError,
};
use crate::seal::{OrgPublicKey, SealedRecord};

/// Overhead of sealing a signed record: its signature and the AEAD tag.
const SEAL_OVERHEAD: usize = crate::identity::SIGNATURE_LEN + 16;

/// What [`Store::export_relay_bundle`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayExport {
    /// The bundle, to be written to a file or shared.
    pub bytes: Vec<u8>,
    /// Records in it (the oldest undelivered ones).
    pub records: u64,
    /// Undelivered records that did not fit in the size asked for: a
    /// second bundle, after the first is delivered, carries them.
    pub left_out: u64,
}

/// What [`Store::import_relay_bundle`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelayImport {
    /// The phone that wrote the bundle.
    pub device: DeviceId,
    /// Records in the bundle.
    pub records: u64,
    /// Of them, new to this relay outbox (the rest it already carried).
    pub added: u64,
}

/// A relayed record waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// Its row, to settle it by.
    pub(crate) row: i64,
    /// The record, sealed by its device.
    pub record: SealedRecord,
}

impl Store {
    /// The organisation's sealing key from the enrollment.
    fn seal_key(&self) -> Result<OrgPublicKey, StoreError> {
        self.session()
            .enrollment
            .as_ref()
            .and_then(|e| e.seal_key)
            .ok_or(StoreError::Relay(RelayError::NoSealKey))
    }

    /// Writes this device's undelivered records (pending or in flight),
    /// oldest first, as a relay bundle of at most `max_bytes` (and at most
    /// [`MAX_BUNDLE_BYTES`]), each sealed to the organisation and the whole
    /// signed with the device key. Nothing changes in the store: the
    /// records stay pending until a receipt, this phone's own or the one
    /// its next sync gets (`already`) after a relay delivered them.
    pub fn export_relay_bundle(&self, max_bytes: usize) -> Result<RelayExport, StoreError> {
        let org = self.seal_key()?;
        let budget = max_bytes.min(MAX_BUNDLE_BYTES);
        let mut sealed = Vec::new();
        let mut left_out = 0u64;
        {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE r.state IN (0, 1) ORDER BY r.seq"
            ))?;
            let mut rows = stmt.query([])?;
            let mut size = HEADER_LEN + crate::identity::SIGNATURE_LEN;
            while let Some(r) = rows.next()? {
                let rec = stored_record(&self.vault, &self.device, r)?;
                let entry = ENTRY_FIXED + SEAL_OVERHEAD + rec.envelope.body.len();
                if left_out > 0
                    || size + entry > budget
                    || sealed.len() == crate::relay::MAX_BUNDLE_RECORDS
                {
                    left_out += 1;
                    continue;
                }
                size += entry;
                sealed.push(
                    SealedRecord::seal(&org, &self.device, rec.seq, &rec.envelope)
                        .map_err(StoreError::Seal)?,
                );
            }
        }
        let records = sealed.len() as u64;
        let bytes = RelayBundle::write(&self.key, &org, &sealed)?;
        tracing::info!(
            records,
            left_out,
            bytes = bytes.len(),
            "relay bundle written"
        );
        Ok(RelayExport {
            bytes,
            records,
            left_out,
        })
    }

    /// Checks a bundle another phone wrote ([`RelayBundle::read`]: whole,
    /// signed, for this organisation, not this phone's own) and adds its
    /// records to the relay outbox in one transaction; records already
    /// carried are skipped. A refused bundle changes nothing.
    pub fn import_relay_bundle(&self, bytes: &[u8]) -> Result<RelayImport, StoreError> {
        let bundle = RelayBundle::read(bytes)?;
        if *bundle.org() != self.seal_key()? {
            return Err(RelayError::OtherOrganisation.into());
        }
        if bundle.device() == &self.device {
            return Err(RelayError::OwnBundle.into());
        }
        let device = bundle.device().clone();
        let records = bundle.records().len() as u64;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let held: u64 = tx.query_row("SELECT count(*) FROM relay", [], |r| r.get(0))?;
        let mut added = 0u64;
        {
            let now = Utc::now().timestamp_millis();
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO relay (tag, content, imported_at) VALUES (?1, ?2, ?3)",
            )?;
            for s in bundle.records() {
                let tag = encrypted::relay_tag(&self.vault, &s.device, s.seq);
                added += insert.execute(params![
                    tag,
                    encrypted::encrypt_relayed(&self.vault, s)?,
                    now
                ])? as u64;
            }
        }
        if held + added > MAX_RELAY_HELD {
            // Dropping the transaction rolls the inserts back.
            return Err(RelayError::RelayFull { held }.into());
        }
        tx.commit()?;
        tracing::info!(records, added, "relay bundle imported");
        Ok(RelayImport {
            device,
            records,
            added,
        })
    }

    /// Records carried for other phones, not yet settled by a receipt.
    pub fn relay_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT count(*) FROM relay", [], |r| r.get(0))?)
    }

    /// Every record carried for others, in the order imported.
    pub fn relay_pending(&self) -> Result<Vec<Relayed>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id, content FROM relay ORDER BY id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let row: i64 = r.get(0)?;
            let record = encrypted::decrypt_relayed(&self.vault, &r.get::<_, Vec<u8>>(1)?)
                .map_err(|_| StoreError::Unreadable {
                    what: format!("relayed record {row}"),
                })?;
            out.push(Relayed { row, record });
        }
        Ok(out)
    }

    /// Drops relayed records a verified receipt settled (delivered or
    /// refused for good). Returns how many were dropped.
    pub fn settle_relayed(&self, rows: &[i64]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut dropped = 0;
        {
            let mut delete = tx.prepare_cached("DELETE FROM relay WHERE id = ?1")?;
            for row in rows {
                dropped += delete.execute([row])?;
            }
        }
        tx.commit()?;
        Ok(dropped)
    }
}
