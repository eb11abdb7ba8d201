//! [`ReviewStore`] on PostgreSQL.

use observer_core::record::RecordId;
use postgres::Row;
use postgres::types::ToSql;

use super::{PostgresStorage, device_id, id32};
use crate::review::{
    Claim, ClaimOutcome, DecideOutcome, Decision, QueueFilter, QueueItem, ReviewState, Verdict,
};
use crate::storage::StorageError;
use crate::storage::review::{
    Arg, FIELD_DEVICE_SQL, FieldDevice, ITEM_COLUMNS, MAX_REPORTS, ReviewStore, StationPhase,
    phase, phase_of, queue_query, state,
};
use crate::triage::Priority;

fn item_row(r: &Row) -> Result<QueueItem, StorageError> {
    let claim = match (
        r.try_get::<_, Option<String>>(14)?,
        r.try_get::<_, Option<i64>>(15)?,
    ) {
        (Some(account), Some(until_ms)) => Some(Claim { account, until_ms }),
        _ => None,
    };
    Ok(QueueItem {
        index: r.try_get::<_, i64>(0)? as u64,
        id: RecordId::from_bytes(id32(r.try_get(1)?, "a record id")?),
        device: device_id(r.try_get(2)?)?,
        seq: r.try_get::<_, i64>(3)? as u64,
        station: r.try_get(4)?,
        kind: r.try_get(5)?,
        category: r.try_get(6)?,
        priority: Priority::from_rank(r.try_get::<_, i16>(7)?.into()),
        phase: phase(r.try_get(8)?)?,
        review: state(r.try_get(9)?)?,
        captured_at_ms: r.try_get(10)?,
        received_at_ms: r.try_get(11)?,
        supersedes: r
            .try_get::<_, Option<Vec<u8>>>(12)?
            .map(|v| id32(v, "a corrected record's id").map(RecordId::from_bytes))
            .transpose()?,
        device_revoked: r.try_get(13)?,
        claim,
    })
}

fn claim_row(r: &Row) -> Result<Claim, StorageError> {
    Ok(Claim {
        account: r.try_get(0)?,
        until_ms: r.try_get(1)?,
    })
}

/// One item's query, `where_` naming it by `$2` on.
fn one_item(where_: &str) -> String {
    format!(
        "SELECT {ITEM_COLUMNS} FROM records r JOIN devices d ON d.id = r.device \
         LEFT JOIN claims c ON c.log_index = r.log_index AND c.until_ms > $1 WHERE {where_}"
    )
}

impl PostgresStorage {
    fn items(&self, sql: &str, args: &[Arg]) -> Result<Vec<QueueItem>, StorageError> {
        let values: Vec<Box<dyn ToSql + Sync>> = args
            .iter()
            .map(|a| -> Box<dyn ToSql + Sync> {
                match a {
                    Arg::Int(i) => Box::new(*i),
                    Arg::Text(t) => Box::new(t.clone()),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        self.conn()?
            .query(sql, &refs)?
            .iter()
            .map(item_row)
            .collect()
    }
}

impl ReviewStore for PostgresStorage {
    fn claim(
        &self,
        index: u64,
        account: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<ClaimOutcome, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let index = index as i64;
        if tx
            .query_opt("SELECT 1 FROM records WHERE log_index = $1", &[&index])?
            .is_none()
        {
            return Ok(ClaimOutcome::NoSuchRecord);
        }
        // One statement decides, on every node at once: it takes a free or
        // expired claim, or extends the asker's own, else changes nothing.
        let taken = tx.query_opt(
            "INSERT INTO claims (log_index, account, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (log_index) DO UPDATE SET account = EXCLUDED.account, until_ms = EXCLUDED.until_ms
             WHERE claims.account = EXCLUDED.account OR claims.until_ms <= $4
             RETURNING account, until_ms",
            &[&index, &account, &until_ms, &now_ms],
        )?;
        let outcome = match taken {
            Some(r) => ClaimOutcome::Claimed(claim_row(&r)?),
            None => ClaimOutcome::HeldBy(claim_row(&tx.query_one(
                "SELECT account, until_ms FROM claims WHERE log_index = $1",
                &[&index],
            )?)?),
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn release(&self, index: u64, account: &str) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "DELETE FROM claims WHERE log_index = $1 AND account = $2",
            &[&(index as i64), &account],
        )?;
        Ok(n > 0)
    }

    fn decide(
        &self,
        index: u64,
        verdict: Verdict,
        account: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<DecideOutcome, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let index = index as i64;
        // The record's row locked: decisions on one record from two nodes
        // follow one another.
        if tx
            .query_opt(
                "SELECT 1 FROM records WHERE log_index = $1 FOR UPDATE",
                &[&index],
            )?
            .is_none()
        {
            return Ok(DecideOutcome::NoSuchRecord);
        }
        if let Some(r) = tx.query_opt(
            "SELECT account, until_ms FROM claims
             WHERE log_index = $1 AND account <> $2 AND until_ms > $3",
            &[&index, &account, &now_ms],
        )? {
            return Ok(DecideOutcome::HeldBy(claim_row(&r)?));
        }
        let s = verdict.state().as_str();
        tx.execute(
            "INSERT INTO reviews (log_index, state, reviewer, note, at_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&index, &s, &account, &note, &now_ms],
        )?;
        tx.execute(
            "UPDATE records SET review = $2 WHERE log_index = $1",
            &[&index, &s],
        )?;
        tx.execute("DELETE FROM claims WHERE log_index = $1", &[&index])?;
        tx.commit()?;
        Ok(DecideOutcome::Decided)
    }

    fn decisions(&self, index: u64) -> Result<Vec<Decision>, StorageError> {
        self.conn()?
            .query(
                "SELECT state, reviewer, note, at_ms FROM reviews WHERE log_index = $1 ORDER BY seq",
                &[&(index as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(Decision {
                    state: state(r.try_get(0)?)?,
                    reviewer: r.try_get(1)?,
                    note: r.try_get(2)?,
                    at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    fn queue_in(
        &self,
        state: ReviewState,
        filter: &QueueFilter,
        now_ms: i64,
    ) -> Result<Vec<QueueItem>, StorageError> {
        let (sql, args) = queue_query(state, filter, now_ms, |n| format!("${n}"));
        self.items(&sql, &args)
    }

    fn item(&self, index: u64, now_ms: i64) -> Result<Option<QueueItem>, StorageError> {
        Ok(self
            .items(
                &one_item("r.log_index = $2"),
                &[Arg::Int(now_ms), Arg::Int(index as i64)],
            )?
            .pop())
    }

    fn item_by_id(&self, id: &RecordId, now_ms: i64) -> Result<Option<QueueItem>, StorageError> {
        self.conn()?
            .query_opt(
                &one_item("r.id = $2"),
                &[&now_ms, &id.as_bytes().as_slice()],
            )?
            .as_ref()
            .map(item_row)
            .transpose()
    }

    fn corrections_of(&self, id: &RecordId, now_ms: i64) -> Result<Vec<QueueItem>, StorageError> {
        self.conn()?
            .query(
                &one_item("r.supersedes = $2 ORDER BY r.log_index LIMIT 100"),
                &[&now_ms, &id.as_bytes().as_slice()],
            )?
            .iter()
            .map(item_row)
            .collect()
    }

    fn reports(
        &self,
        station: &str,
        category: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<QueueItem>, StorageError> {
        self.items(
            &one_item(&format!(
                "r.station = $2 AND r.category = $3 AND r.captured_at BETWEEN $4 AND $5 \
                 ORDER BY r.captured_at LIMIT {MAX_REPORTS}"
            )),
            &[
                Arg::Int(now_ms),
                Arg::Text(station.into()),
                Arg::Text(category.into()),
                Arg::Int(from_ms),
                Arg::Int(to_ms),
            ],
        )
    }

    fn station_phases(&self) -> Result<Vec<StationPhase>, StorageError> {
        self.conn()?
            .query(
                "SELECT station, phase, first_captured, first_received, records FROM station_phases",
                &[],
            )?
            .iter()
            .map(|r| {
                let p: &str = r.try_get(1)?;
                Ok(StationPhase {
                    station: r.try_get(0)?,
                    phase: phase_of(p)?,
                    first_captured_ms: r.try_get(2)?,
                    first_received_ms: r.try_get(3)?,
                    records: r.try_get::<_, i64>(4)? as u64,
                })
            })
            .collect()
    }

    fn field_devices(&self) -> Result<Vec<FieldDevice>, StorageError> {
        let count = |v: i64| v.max(0) as u64;
        self.conn()?
            .query(FIELD_DEVICE_SQL, &[])?
            .iter()
            .map(|r| {
                Ok(FieldDevice {
                    id: device_id(r.try_get(0)?)?,
                    name: r.try_get(1)?,
                    stations: super::stations(r.try_get(2)?),
                    last_contact_ms: r.try_get(3)?,
                    revoked_at_ms: r.try_get(4)?,
                    revoked_after_seq: r.try_get::<_, Option<i64>>(5)?.map(count),
                    held: count(r.try_get(6)?),
                    max_seq: count(r.try_get(7)?),
                    declared: count(r.try_get(8)?),
                    quarantined: count(r.try_get(9)?),
                })
            })
            .collect()
    }
}
