//! Sealing a store written before encryption at rest (schema v2).
//!
//! Migration v3 renames the readable tables to `plain_records` and
//! `plain_receipts`; this moves their rows into the sealed tables, seals the
//! readable `meta` values and drops the old tables, all in one transaction,
//! then checkpoints the write-ahead log so no readable page stays in it.
//! With `secure_delete` on, the dropped pages are zeroed in the file too.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{META_HEAD, StoreError, encrypted, session};
use crate::at_rest::DataKey;
use crate::record::{Envelope, RecordId};

/// Whether a readable v2 table still waits to be sealed.
pub(super) fn pending(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'plain_records')",
        [],
        |r| r.get(0),
    )?)
}

/// Whether a readable v2 table holds records.
pub(super) fn pending_rows(conn: &Connection) -> Result<bool, StoreError> {
    Ok(pending(conn)?
        && conn.query_row("SELECT EXISTS(SELECT 1 FROM plain_records)", [], |r| {
            r.get(0)
        })?)
}

pub(super) fn convert(conn: &mut Connection, vault: &DataKey) -> Result<(), StoreError> {
    if !pending(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut read = tx.prepare("SELECT id, received_at, bytes FROM plain_receipts")?;
        let mut write =
            tx.prepare("INSERT INTO receipts (id, received_at, content) VALUES (?1, ?2, ?3)")?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let bytes: Vec<u8> = r.get(2)?;
            write.execute(params![
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                encrypted::encrypt_receipt(vault, &bytes)?
            ])?;
        }
    }
    {
        let mut read = tx.prepare(
            "SELECT seq, id, body, sig, station, kind, captured_at, state, receipt, rejection
             FROM plain_records",
        )?;
        let mut write = tx.prepare(
            "INSERT INTO records (seq, tag, content, station, captured_at, state, receipt, rejection)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let seq = r.get::<_, i64>(0)? as u64;
            let malformed = || StoreError::Corrupt {
                path: Default::default(),
                detail: format!("record {seq} of the old schema is malformed"),
            };
            let id: [u8; 32] = r
                .get::<_, Vec<u8>>(1)?
                .try_into()
                .map_err(|_| malformed())?;
            let id = RecordId::from_bytes(id);
            let env = Envelope {
                body: r.get(2)?,
                sig: r
                    .get::<_, Vec<u8>>(3)?
                    .try_into()
                    .map_err(|_| malformed())?,
            };
            let kind: String = r.get(5)?;
            let rejection = r
                .get::<_, Option<String>>(9)?
                .map(|text| {
                    let (reason, detail) = encrypted::parse_rejection(&text);
                    encrypted::encrypt_rejection(vault, seq, reason, &detail)
                })
                .transpose()?;
            write.execute(params![
                seq as i64,
                vault.tag(id.as_bytes()),
                encrypted::encrypt_record(vault, seq, &id, &kind, &env)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<i64>>(8)?,
                rejection,
            ])?;
        }
    }
    for name in [META_HEAD].into_iter().chain(session::META_KEYS) {
        let plain: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(plain) = plain {
            encrypted::write_meta(&tx, vault, name, &plain)?;
        }
    }
    tx.execute_batch("DROP TABLE plain_records; DROP TABLE plain_receipts;")?;
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}
