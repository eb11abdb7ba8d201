//! [`ReviewStore`] on SQLite.

use observer_core::record::RecordId;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStorage, blob32, device_id};
use crate::review::{
    Claim, ClaimOutcome, DecideOutcome, Decision, QueueFilter, QueueItem, ReviewState, Verdict,
};
use crate::storage::StorageError;
use crate::storage::review::{
    Arg, FIELD_DEVICE_SQL, FieldDevice, ITEM_COLUMNS, MAX_REPORTS, ReviewStore, StationPhase,
    phase, phase_of, queue_query, state,
};
use crate::triage::Priority;

/// A queue row, its texts still to be checked.
struct RawItem {
    item: QueueItem,
    review: String,
    phase: Option<String>,
}

fn item_row(r: &Row<'_>) -> rusqlite::Result<RawItem> {
    let claim = match (
        r.get::<_, Option<String>>(14)?,
        r.get::<_, Option<i64>>(15)?,
    ) {
        (Some(account), Some(until_ms)) => Some(Claim { account, until_ms }),
        _ => None,
    };
    Ok(RawItem {
        item: QueueItem {
            index: r.get::<_, i64>(0)? as u64,
            id: RecordId::from_bytes(blob32(r, 1)?),
            device: device_id(r, 2)?,
            seq: r.get::<_, i64>(3)? as u64,
            station: r.get(4)?,
            kind: r.get(5)?,
            category: r.get(6)?,
            priority: Priority::from_rank(r.get(7)?),
            phase: None,
            review: ReviewState::Unreviewed,
            captured_at_ms: r.get(10)?,
            received_at_ms: r.get(11)?,
            supersedes: r
                .get::<_, Option<Vec<u8>>>(12)?
                .map(|v| {
                    v.try_into().map(RecordId::from_bytes).map_err(|_| {
                        rusqlite::Error::FromSqlConversionFailure(
                            12,
                            rusqlite::types::Type::Blob,
                            "expected 32 bytes".into(),
                        )
                    })
                })
                .transpose()?,
            device_revoked: r.get(13)?,
            claim,
        },
        review: r.get(9)?,
        phase: r.get(8)?,
    })
}

fn checked(raw: RawItem) -> Result<QueueItem, StorageError> {
    let mut item = raw.item;
    item.review = state(&raw.review)?;
    item.phase = phase(raw.phase.as_deref())?;
    Ok(item)
}

fn items(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<QueueItem>, StorageError> {
    let values = args.iter().map(|a| match a {
        Arg::Int(i) => rusqlite::types::Value::Integer(*i),
        Arg::Text(t) => rusqlite::types::Value::Text(t.clone()),
    });
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), item_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(checked).collect()
}

/// One item's query, `where_` naming it by `?2`.
fn one_item(where_: &str) -> String {
    format!(
        "SELECT {ITEM_COLUMNS} FROM records r JOIN devices d ON d.id = r.device \
         LEFT JOIN claims c ON c.log_index = r.log_index AND c.until_ms > ?1 WHERE {where_}"
    )
}

fn record_exists(tx: &rusqlite::Transaction<'_>, index: u64) -> Result<bool, StorageError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM records WHERE log_index = ?1",
            [index as i64],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

impl ReviewStore for SqliteStorage {
    fn claim(
        &self,
        index: u64,
        account: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<ClaimOutcome, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !record_exists(&tx, index)? {
            return Ok(ClaimOutcome::NoSuchRecord);
        }
        // One statement decides: it takes a free or expired claim, or
        // extends the asker's own, and otherwise changes nothing.
        let taken = tx
            .query_row(
                "INSERT INTO claims (log_index, account, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (log_index) DO UPDATE SET account = excluded.account, until_ms = excluded.until_ms
                 WHERE claims.account = excluded.account OR claims.until_ms <= ?4
                 RETURNING account, until_ms",
                params![index as i64, account, until_ms, now_ms],
                |r| Ok(Claim { account: r.get(0)?, until_ms: r.get(1)? }),
            )
            .optional()?;
        let outcome = match taken {
            Some(c) => ClaimOutcome::Claimed(c),
            None => ClaimOutcome::HeldBy(tx.query_row(
                "SELECT account, until_ms FROM claims WHERE log_index = ?1",
                [index as i64],
                |r| {
                    Ok(Claim {
                        account: r.get(0)?,
                        until_ms: r.get(1)?,
                    })
                },
            )?),
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn release(&self, index: u64, account: &str) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "DELETE FROM claims WHERE log_index = ?1 AND account = ?2",
            params![index as i64, account],
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !record_exists(&tx, index)? {
            return Ok(DecideOutcome::NoSuchRecord);
        }
        let held = tx
            .query_row(
                "SELECT account, until_ms FROM claims
                 WHERE log_index = ?1 AND account <> ?2 AND until_ms > ?3",
                params![index as i64, account, now_ms],
                |r| {
                    Ok(Claim {
                        account: r.get(0)?,
                        until_ms: r.get(1)?,
                    })
                },
            )
            .optional()?;
        if let Some(claim) = held {
            return Ok(DecideOutcome::HeldBy(claim));
        }
        let s = verdict.state().as_str();
        tx.execute(
            "INSERT INTO reviews (log_index, state, reviewer, note, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![index as i64, s, account, note, now_ms],
        )?;
        tx.execute(
            "UPDATE records SET review = ?2 WHERE log_index = ?1",
            params![index as i64, s],
        )?;
        tx.execute("DELETE FROM claims WHERE log_index = ?1", [index as i64])?;
        tx.commit()?;
        Ok(DecideOutcome::Decided)
    }

    fn decisions(&self, index: u64) -> Result<Vec<Decision>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT state, reviewer, note, at_ms FROM reviews WHERE log_index = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([index as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(s, reviewer, note, at_ms)| {
                Ok(Decision {
                    state: state(&s)?,
                    reviewer,
                    note,
                    at_ms,
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
        let (sql, args) = queue_query(state, filter, now_ms, |n| format!("?{n}"));
        items(&*self.read()?, &sql, &args)
    }

    fn item(&self, index: u64, now_ms: i64) -> Result<Option<QueueItem>, StorageError> {
        let sql = one_item("r.log_index = ?2");
        Ok(items(
            &*self.read()?,
            &sql,
            &[Arg::Int(now_ms), Arg::Int(index as i64)],
        )?
        .pop())
    }

    fn item_by_id(&self, id: &RecordId, now_ms: i64) -> Result<Option<QueueItem>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&one_item("r.id = ?2"))?;
        let row = stmt
            .query_row(params![now_ms, id.as_bytes()], item_row)
            .optional()?;
        row.map(checked).transpose()
    }

    fn corrections_of(&self, id: &RecordId, now_ms: i64) -> Result<Vec<QueueItem>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&one_item(
            "r.supersedes = ?2 ORDER BY r.log_index LIMIT 100",
        ))?;
        let rows = stmt
            .query_map(params![now_ms, id.as_bytes()], item_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(checked).collect()
    }

    fn reports(
        &self,
        station: &str,
        category: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<QueueItem>, StorageError> {
        let sql = one_item(&format!(
            "r.station = ?2 AND r.category = ?3 AND r.captured_at BETWEEN ?4 AND ?5 \
             ORDER BY r.captured_at LIMIT {MAX_REPORTS}"
        ));
        items(
            &*self.read()?,
            &sql,
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
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT station, phase, first_captured, first_received, records FROM station_phases",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(station, p, first_captured_ms, first_received_ms, records)| {
                    Ok(StationPhase {
                        station,
                        phase: phase_of(&p)?,
                        first_captured_ms,
                        first_received_ms,
                        records: records as u64,
                    })
                },
            )
            .collect()
    }

    fn field_devices(&self) -> Result<Vec<FieldDevice>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(FIELD_DEVICE_SQL)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FieldDevice {
                    id: device_id(r, 0)?,
                    name: r.get(1)?,
                    stations: super::stations(&r.get::<_, String>(2)?),
                    last_contact_ms: r.get(3)?,
                    revoked_at_ms: r.get(4)?,
                    revoked_after_seq: r.get::<_, Option<i64>>(5)?.map(|s| s.max(0) as u64),
                    held: r.get::<_, i64>(6)?.max(0) as u64,
                    max_seq: r.get::<_, i64>(7)?.max(0) as u64,
                    declared: r.get::<_, i64>(8)?.max(0) as u64,
                    quarantined: r.get::<_, i64>(9)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
