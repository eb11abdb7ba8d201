//! [`SmsStore`] on PostgreSQL.

use observer_core::sms::Part;
use postgres::Row;

use super::PostgresStorage;
use crate::storage::StorageError;
use crate::storage::sms::{SmsLogEntry, SmsStore, WaitingSms};

const WAITING: &str = "SELECT sender, message, total, count(*), min(received_at) FROM sms_parts \
     GROUP BY sender, message, total";

fn waiting_row(r: &Row) -> Result<WaitingSms, StorageError> {
    Ok(WaitingSms {
        sender: r.try_get(0)?,
        message: r.try_get(1)?,
        total: r.try_get::<_, i32>(2)?.max(0) as usize,
        held: r.try_get::<_, i64>(3)?.max(0) as usize,
        first_ms: r.try_get(4)?,
    })
}

impl SmsStore for PostgresStorage {
    fn hold_sms_part(
        &self,
        sender: &str,
        part: &Part,
        now_ms: i64,
    ) -> Result<Vec<Part>, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let (total, index) = (part.total as i32, part.index as i32);
        tx.execute(
            "INSERT INTO sms_parts (sender, message, total, idx, data, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&sender, &part.message, &total, &index, &part.data, &now_ms],
        )?;
        let rows = tx.query(
            "SELECT idx, data FROM sms_parts WHERE sender = $1 AND message = $2 AND total = $3
             ORDER BY idx",
            &[&sender, &part.message, &total],
        )?;
        tx.commit()?;
        rows.iter()
            .map(|r| {
                Ok(Part {
                    message: part.message.clone(),
                    index: r.try_get::<_, i32>(0)?.max(0) as usize,
                    total: part.total,
                    data: r.try_get(1)?,
                })
            })
            .collect()
    }

    fn sms_parts_held(&self, sender: &str) -> Result<u64, StorageError> {
        let n: i64 = self
            .conn()?
            .query_one(
                "SELECT count(*) FROM sms_parts WHERE sender = $1",
                &[&sender],
            )?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    fn drop_sms_message(
        &self,
        sender: &str,
        message: &str,
        total: usize,
    ) -> Result<(), StorageError> {
        self.conn()?.execute(
            "DELETE FROM sms_parts WHERE sender = $1 AND message = $2 AND total = $3",
            &[&sender, &message, &(total as i32)],
        )?;
        Ok(())
    }

    fn expire_sms(&self, before_ms: i64) -> Result<Vec<WaitingSms>, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let expired = tx
            .query(
                &format!("{WAITING} HAVING min(received_at) < $1 ORDER BY min(received_at)"),
                &[&before_ms],
            )?
            .iter()
            .map(waiting_row)
            .collect::<Result<Vec<_>, _>>()?;
        for w in &expired {
            tx.execute(
                "DELETE FROM sms_parts WHERE sender = $1 AND message = $2 AND total = $3",
                &[&w.sender, &w.message, &(w.total as i32)],
            )?;
        }
        tx.commit()?;
        Ok(expired)
    }

    fn sms_waiting(&self) -> Result<Vec<WaitingSms>, StorageError> {
        self.conn()?
            .query(&format!("{WAITING} ORDER BY min(received_at)"), &[])?
            .iter()
            .map(waiting_row)
            .collect()
    }

    fn log_sms(&self, e: &SmsLogEntry) -> Result<(), StorageError> {
        self.conn()?.execute(
            "INSERT INTO sms_log (at, sender, gateway, outcome, detail) VALUES ($1, $2, $3, $4, $5)",
            &[&e.at_ms, &e.sender, &e.gateway, &e.outcome, &e.detail],
        )?;
        Ok(())
    }

    fn sms_log(&self, limit: u32) -> Result<Vec<SmsLogEntry>, StorageError> {
        self.conn()?
            .query(
                "SELECT at, sender, gateway, outcome, detail FROM sms_log ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(SmsLogEntry {
                    at_ms: r.try_get(0)?,
                    sender: r.try_get(1)?,
                    gateway: r.try_get(2)?,
                    outcome: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            })
            .collect()
    }
}
