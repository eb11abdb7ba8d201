//! [`SmsStore`] on SQLite.

use observer_core::sms::Part;
use rusqlite::{Row, TransactionBehavior, params};

use super::SqliteStorage;
use crate::storage::StorageError;
use crate::storage::sms::{SmsLogEntry, SmsStore, WaitingSms};

const WAITING: &str = "SELECT sender, message, total, count(*), min(received_at) FROM sms_parts \
     GROUP BY sender, message, total";

fn waiting_row(r: &Row<'_>) -> rusqlite::Result<WaitingSms> {
    Ok(WaitingSms {
        sender: r.get(0)?,
        message: r.get(1)?,
        total: r.get::<_, i64>(2)? as usize,
        held: r.get::<_, i64>(3)? as usize,
        first_ms: r.get(4)?,
    })
}

impl SmsStore for SqliteStorage {
    fn hold_sms_part(
        &self,
        sender: &str,
        part: &Part,
        now_ms: i64,
    ) -> Result<Vec<Part>, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO sms_parts (sender, message, total, idx, data, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                sender,
                part.message,
                part.total as i64,
                part.index as i64,
                part.data,
                now_ms
            ],
        )?;
        let parts = {
            let mut stmt = tx.prepare_cached(
                "SELECT idx, data FROM sms_parts WHERE sender = ?1 AND message = ?2 AND total = ?3
                 ORDER BY idx",
            )?;
            stmt.query_map(params![sender, part.message, part.total as i64], |r| {
                Ok(Part {
                    message: part.message.clone(),
                    index: r.get::<_, i64>(0)? as usize,
                    total: part.total,
                    data: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        Ok(parts)
    }

    fn sms_parts_held(&self, sender: &str) -> Result<u64, StorageError> {
        let n: i64 = self.read()?.query_row(
            "SELECT count(*) FROM sms_parts WHERE sender = ?1",
            [sender],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn drop_sms_message(
        &self,
        sender: &str,
        message: &str,
        total: usize,
    ) -> Result<(), StorageError> {
        self.conn().execute(
            "DELETE FROM sms_parts WHERE sender = ?1 AND message = ?2 AND total = ?3",
            params![sender, message, total as i64],
        )?;
        Ok(())
    }

    fn expire_sms(&self, before_ms: i64) -> Result<Vec<WaitingSms>, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let expired = {
            let mut stmt = tx.prepare_cached(&format!(
                "{WAITING} HAVING min(received_at) < ?1 ORDER BY min(received_at)"
            ))?;
            stmt.query_map([before_ms], waiting_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        {
            let mut drop = tx.prepare_cached(
                "DELETE FROM sms_parts WHERE sender = ?1 AND message = ?2 AND total = ?3",
            )?;
            for w in &expired {
                drop.execute(params![w.sender, w.message, w.total as i64])?;
            }
        }
        tx.commit()?;
        Ok(expired)
    }

    fn sms_waiting(&self) -> Result<Vec<WaitingSms>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!("{WAITING} ORDER BY min(received_at)"))?;
        Ok(stmt
            .query_map([], waiting_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn log_sms(&self, e: &SmsLogEntry) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO sms_log (at, sender, gateway, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.at_ms, e.sender, e.gateway, e.outcome, e.detail],
        )?;
        Ok(())
    }

    fn sms_log(&self, limit: u32) -> Result<Vec<SmsLogEntry>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT at, sender, gateway, outcome, detail FROM sms_log ORDER BY id DESC LIMIT ?1",
        )?;
        Ok(stmt
            .query_map([limit], |r| {
                Ok(SmsLogEntry {
                    at_ms: r.get(0)?,
                    sender: r.get(1)?,
                    gateway: r.get(2)?,
                    outcome: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
