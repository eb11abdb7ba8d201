//! Evidence of tampering with the store on the device itself.
//!
//! Opening runs [`Store::quick_check`]: row count against the chain head,
//! the head row itself, and the newest [`QUICK_WINDOW`] records in full. It
//! costs the same at ten records as at a million (one count over the
//! smallest index, then a fixed window), so opening stays fast.
//! [`Store::verify`] checks every record: id, signature, columns, links.

use std::fmt;

use rusqlite::Connection;
use serde::Serialize;

use super::{Store, StoreError, encrypted, read_head};
use crate::at_rest::DataKey;
use crate::identity::PublicKey;
use crate::record::{ChainFault, ChainHead, ChainVerifier, VerifyError, verify_envelope};

/// How many of the newest records opening checks in full.
pub const QUICK_WINDOW: u64 = 64;

/// One sign that stored records were altered, deleted or reordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum StoreFault {
    /// The body bytes no longer hash to the stored id: the body was altered.
    #[error("record {seq} was altered: its contents no longer match its id")]
    IdMismatch { seq: u64 },
    /// The record fails verification (a flipped signature byte, say).
    #[error("record {seq} is not genuine: {error}")]
    Invalid { seq: u64, error: VerifyError },
    /// The row's position disagrees with the seq the device signed.
    #[error("the row at position {row} holds record {body}: records were reordered or renumbered")]
    SeqMismatch { row: u64, body: u64 },
    /// An index column disagrees with the signed body.
    #[error("record {seq}: the stored {column} does not match the signed record")]
    ColumnMismatch { seq: u64, column: String },
    /// Rows are missing between 1 and the chain head.
    #[error("{found} records are stored but the device signed {expected}: {} were deleted", expected.saturating_sub(*found))]
    RowsMissing { expected: u64, found: u64 },
    /// The newest row is not the newest record the device signed.
    #[error("the newest record should be {} ({}), but {}", expected.seq, expected.id, match found {
        None => "the store holds none".to_string(),
        Some(s) if *s == expected.seq => "the store holds other contents at that position".to_string(),
        Some(s) => format!("the newest the store holds is {s}"),
    })]
    HeadMismatch {
        expected: ChainHead,
        /// The seq of the newest row, if any.
        found: Option<u64>,
    },
    /// The row's sealed contents do not decrypt: altered, moved from
    /// another position, or copied from another store.
    #[error("record {seq} cannot be decrypted: it was altered, moved or copied from another store")]
    Unreadable { seq: u64 },
    /// Rows exist but the chain head that saves maintain is gone.
    #[error("records are stored but the chain head is missing")]
    HeadMissing,
    /// A fault in the chain itself (gap, broken link, fork, order).
    #[error(transparent)]
    Chain(ChainFault),
}

/// What an integrity check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TamperReport {
    /// How many records were checked in full (id, signature, links).
    pub checked: u64,
    /// Whether every record was checked ([`Store::verify`]) or only the
    /// newest ones (opening).
    pub complete: bool,
    /// What was found, in order; empty means intact.
    pub faults: Vec<StoreFault>,
}

impl TamperReport {
    /// Nothing found.
    pub fn is_intact(&self) -> bool {
        self.faults.is_empty()
    }
}

impl fmt::Display for TamperReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.faults.is_empty() {
            return write!(f, "no tampering found in {} records", self.checked);
        }
        for (i, fault) in self.faults.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{fault}")?;
        }
        Ok(())
    }
}

struct Checker<'k> {
    key: &'k PublicKey,
    vault: &'k DataKey,
    chain: ChainVerifier,
    faults: Vec<StoreFault>,
    checked: u64,
}

impl<'k> Checker<'k> {
    fn fault(&mut self, f: StoreFault) {
        if self.faults.len() < ChainVerifier::MAX_FAULTS {
            self.faults.push(f);
        }
    }

    /// Checks one row in full and feeds it to the chain check.
    fn row(&mut self, row: Row) {
        self.checked += 1;
        let Ok(content) = encrypted::decrypt_record(self.vault, row.seq, &row.content) else {
            self.fault(StoreFault::Unreadable { seq: row.seq });
            self.chain.push_unreadable(row.seq);
            return;
        };
        let env = content.envelope;
        if env.id() != content.id || self.vault.tag(content.id.as_bytes()) != row.tag {
            self.fault(StoreFault::IdMismatch { seq: row.seq });
            self.chain.push(row.seq, content.id, None);
            return;
        }
        let rec = match verify_envelope(&env, self.key) {
            Ok(r) => r,
            Err(error) => {
                self.fault(StoreFault::Invalid {
                    seq: row.seq,
                    error,
                });
                self.chain.push(row.seq, content.id, None);
                return;
            }
        };
        let b = &rec.body;
        if b.seq != row.seq {
            self.fault(StoreFault::SeqMismatch {
                row: row.seq,
                body: b.seq,
            });
        }
        for (column, ok) in [
            ("station", b.station.as_str() == row.station),
            ("kind", b.kind.as_str() == content.kind),
            (
                "capture time",
                b.captured_at.timestamp_millis() == row.captured_at,
            ),
        ] {
            if !ok {
                self.fault(StoreFault::ColumnMismatch {
                    seq: b.seq,
                    column: column.into(),
                });
            }
        }
        self.chain.push_record(&rec);
    }

    fn finish(mut self, expected_head: Option<ChainHead>, complete: bool) -> TamperReport {
        let chain = self.chain.finish(expected_head);
        self.faults
            .extend(chain.faults.into_iter().map(StoreFault::Chain));
        TamperReport {
            checked: self.checked,
            complete,
            faults: self.faults,
        }
    }
}

struct Row {
    seq: u64,
    tag: [u8; 32],
    content: Vec<u8>,
    station: String,
    captured_at: i64,
}

fn rows_from(
    conn: &Connection,
    from_seq: u64,
    mut each: impl FnMut(Row),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, tag, content, station, captured_at
         FROM records WHERE seq >= ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([from_seq as i64])?;
    while let Some(r) = rows.next()? {
        each(Row {
            seq: r.get::<_, i64>(0)? as u64,
            tag: r.get::<_, Vec<u8>>(1)?.try_into().unwrap_or([0; 32]),
            content: r.get(2)?,
            station: r.get(3)?,
            captured_at: r.get(4)?,
        });
    }
    Ok(())
}

/// The row at `seq` (or the newest row): its seq and lookup tag.
fn row_at(conn: &Connection, seq: Option<u64>) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    let sql = match seq {
        Some(_) => "SELECT seq, tag FROM records WHERE seq = ?1",
        None => "SELECT seq, tag FROM records WHERE ?1 IS NULL ORDER BY seq DESC LIMIT 1",
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([seq.map(|s| s as i64)])?;
    Ok(match rows.next()? {
        Some(r) => Some((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, Vec<u8>>(1)?.try_into().unwrap_or([0; 32]),
        )),
        None => None,
    })
}

impl Store {
    /// The cheap check opening runs: see the module docs.
    pub(super) fn quick_check(&self) -> Result<TamperReport, StoreError> {
        let conn = self.conn()?;
        let key = self.public_key();
        let head = read_head(&conn, &self.vault)?;
        let count: u64 =
            conn.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))? as u64;
        let newest_row = row_at(&conn, None)?;
        let mut faults = Vec::new();
        let Some(head) = head else {
            if count > 0 {
                faults.push(StoreFault::HeadMissing);
            }
            return Ok(TamperReport {
                checked: 0,
                complete: false,
                faults,
            });
        };
        if count < head.seq {
            faults.push(StoreFault::RowsMissing {
                expected: head.seq,
                found: count,
            });
        }
        let head_row = Some((head.seq, self.vault.tag(head.id.as_bytes())));
        if row_at(&conn, Some(head.seq))? != head_row || newest_row != head_row {
            faults.push(StoreFault::HeadMismatch {
                expected: head,
                found: newest_row.map(|(seq, _)| seq),
            });
        }
        let start = head.seq.saturating_sub(QUICK_WINDOW - 1).max(1);
        let mut checker = Checker {
            key: &key,
            vault: &self.vault,
            chain: ChainVerifier::starting_at(start),
            faults,
            checked: 0,
        };
        rows_from(&conn, start, |row| checker.row(row))?;
        Ok(checker.finish(Some(head), false))
    }

    /// Checks every record in full: id, signature, the columns used for
    /// queries, the chain links from 1 to the head, and the head itself.
    /// Runs in constant memory; about one signature verification per record.
    pub fn verify(&self) -> Result<TamperReport, StoreError> {
        let conn = self.conn()?;
        let key = self.public_key();
        let head = read_head(&conn, &self.vault)?;
        let mut checker = Checker {
            key: &key,
            vault: &self.vault,
            chain: ChainVerifier::new(),
            faults: Vec::new(),
            checked: 0,
        };
        let count: u64 =
            conn.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))? as u64;
        if head.is_none() && count > 0 {
            checker.fault(StoreFault::HeadMissing);
        }
        rows_from(&conn, 1, |row| checker.row(row))?;
        let newest = row_at(&conn, None)?;
        if let (Some(h), Some((n, _))) = (head, newest)
            && n > h.seq
        {
            checker.fault(StoreFault::HeadMismatch {
                expected: h,
                found: Some(n),
            });
        }
        Ok(checker.finish(head, true))
    }
}
