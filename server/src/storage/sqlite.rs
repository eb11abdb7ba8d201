//! The embedded default: one SQLite file, WAL, `synchronous = FULL` (a
//! receipt is only signed for what survives a power cut).
//!
//! The log's leaves are the records themselves: a record's rowid is its leaf
//! index and its leaf hash is `leaf_hash(id)`, so the log cannot disagree
//! with the records table. The Merkle frontier (O(log n) hashes) is kept in
//! `meta`, read and updated inside the transaction that appends (never
//! cached in memory: a second handle on the file, or another process,
//! appends to the same log).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use observer_core::identity::{DeviceId, PublicKey};
use observer_core::merkle::{Frontier, NodeId, TreeHead, leaf_hash, stored_nodes};
use observer_core::record::{ChainHead, ChainVerifier, RecordId, Sha256Digest};
use observer_core::store::{configure, schema};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    AuditEntry, DeviceInfo, DeviceView, FormCheck, IngestBatch, IngestResult, LogHashes, NewToken,
    OfficialResult, OfficialVersion, Outcome, PublishedForm, RecordFilter, RecordRow,
    RegistryVersion, Station, Storage, StorageError, StoredReceipt, TokenProblem, Totals,
    official_digest,
};

mod accounts;
mod checkpoint;
mod review;
mod sms;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_devices_records_log.sql"),
    include_str!("../../migrations/sqlite/0002_forms_quarantine_official.sql"),
    include_str!("../../migrations/sqlite/0003_media.sql"),
    include_str!("../../migrations/sqlite/0004_sealed_at_rest.sql"),
    include_str!("../../migrations/sqlite/0005_station_registry.sql"),
    include_str!("../../migrations/sqlite/0006_audit_log.sql"),
    include_str!("../../migrations/sqlite/0007_accounts.sql"),
    include_str!("../../migrations/sqlite/0008_review_and_coverage.sql"),
    include_str!("../../migrations/sqlite/0009_account_region_and_totp.sql"),
    include_str!("../../migrations/sqlite/0010_official_versions.sql"),
    include_str!("../../migrations/sqlite/0011_log_nodes.sql"),
    include_str!("../../migrations/sqlite/0012_receipts.sql"),
    include_str!("../../migrations/sqlite/0013_sms.sql"),
];

const META_FRONTIER: &str = "frontier";

/// The SQLite storage. One writing connection behind a mutex (SQLite has
/// one writer at a time anyway, and a group of batches is one
/// transaction), and a few reading ones: in WAL mode readers never wait
/// for the writer, so verifying the next batches (which looks up their
/// devices and forms) goes on while a group commit flushes.
pub struct SqliteStorage {
    conn: Mutex<Connection>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Copies the log back into the file, so that commits need not.
    _checkpointer: checkpoint::Checkpointer,
}

/// Reading connections kept open when idle.
const IDLE_READERS: usize = 8;

/// A reading connection, back to the idle ones when dropped.
struct ReadConn<'a> {
    conn: Option<Connection>,
    owner: &'a SqliteStorage,
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut idle = self.owner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(c);
            }
        }
    }
}

/// Statements kept prepared per connection. rusqlite keeps 16; the
/// committing connection alone uses a dozen for every group (and the
/// receipt archive and enrollments share it), and a statement pushed out
/// is parsed again at its next use.
const STATEMENT_CACHE: usize = 64;

impl SqliteStorage {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate_to(&mut conn, MIGRATIONS, MIGRATIONS.len() as u32)?;
        let frontier = read_frontier(&conn)?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?;
        if frontier.size() != rows as u64 {
            return Err(StorageError::Corrupt(format!(
                "the log has {} leaves but {rows} records are stored",
                frontier.size()
            )));
        }
        fill_nodes(&mut conn, &frontier)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            readers: Mutex::default(),
            _checkpointer: checkpoint::Checkpointer::start(path)?,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> Result<ReadConn<'_>, StorageError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                configure(&c)?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        Ok(ReadConn {
            conn: Some(conn),
            owner: self,
        })
    }
}

fn read_frontier(conn: &Connection) -> Result<Frontier, StorageError> {
    let raw: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_FRONTIER],
            |r| r.get(0),
        )
        .optional()?;
    match raw {
        Some(v) => serde_json::from_slice(&v)
            .map_err(|e| StorageError::Corrupt(format!("log frontier: {e}"))),
        None => Ok(Frontier::new()),
    }
}

/// Stores the log nodes a group's leaves completed.
fn write_nodes(
    tx: &rusqlite::Transaction<'_>,
    kept: &[(NodeId, Sha256Digest)],
) -> Result<(), StorageError> {
    let mut insert =
        tx.prepare_cached("INSERT INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
    for (id, hash) in kept {
        insert.execute(params![id.level, id.index as i64, hash.as_bytes()])?;
    }
    Ok(())
}

/// Writes the log's nodes from its records when they are not all there (a
/// database from before they were kept), checking that the records give
/// the root the log's head names.
fn fill_nodes(conn: &mut Connection, head: &Frontier) -> Result<(), StorageError> {
    let held: i64 = conn.query_row("SELECT count(*) FROM log_nodes", [], |r| r.get(0))?;
    if held as u64 == stored_nodes(head.size()) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut frontier = Frontier::new();
    let mut kept = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id FROM records ORDER BY log_index")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            frontier.push_keeping(leaf_hash(&blob32(r, 0)?), &mut kept);
        }
    }
    if frontier.root() != head.root() {
        return Err(StorageError::Corrupt(
            "the records do not give the root the log's head names".into(),
        ));
    }
    tx.execute("DELETE FROM log_nodes", [])?;
    write_nodes(&tx, &kept)?;
    tx.commit()?;
    Ok(())
}

fn blob32(r: &Row<'_>, i: usize) -> rusqlite::Result<[u8; 32]> {
    let v: Vec<u8> = r.get(i)?;
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            "expected 32 bytes".into(),
        )
    })
}

fn device_id(r: &Row<'_>, i: usize) -> rusqlite::Result<DeviceId> {
    let s: String = r.get(i)?;
    DeviceId::try_from(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

fn stations(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

const DEVICE_COLUMNS: &str =
    "id, public_key, name, stations, enrolled_at, revoked_at, last_contact, hb_seq, hb_head";

fn device_row(r: &Row<'_>) -> rusqlite::Result<(DeviceInfo, Option<ChainHead>)> {
    let hb = match (r.get::<_, Option<i64>>(7)?, r.get::<_, Option<Vec<u8>>>(8)?) {
        (Some(seq), Some(head)) if seq > 0 => Some(ChainHead {
            seq: seq as u64,
            id: RecordId::from_bytes(head.try_into().unwrap_or([0; 32])),
        }),
        _ => None,
    };
    Ok((
        DeviceInfo {
            id: device_id(r, 0)?,
            key: PublicKey::from_bytes(blob32(r, 1)?),
            name: r.get(2)?,
            stations: stations(&r.get::<_, String>(3)?),
            enrolled_at_ms: r.get(4)?,
            revoked_at_ms: r.get(5)?,
            last_contact_ms: r.get(6)?,
        },
        hb,
    ))
}

/// Decides and writes one batch of a group inside its transaction,
/// appending to `frontier` (and to `kept` the log nodes that completes);
/// returns its outcomes.
fn ingest_one(
    tx: &rusqlite::Transaction<'_>,
    frontier: &mut Frontier,
    kept: &mut Vec<(NodeId, Sha256Digest)>,
    batch: &IngestBatch,
    now_ms: i64,
) -> Result<Vec<Outcome>, StorageError> {
    let (device, hb, records) = (&batch.device, batch.heartbeat.as_ref(), &batch.records);
    let mut outcomes = Vec::with_capacity(records.len());
    // What the device's counters gain: records stored, their highest seq.
    let (mut held, mut max_seq) = (0i64, 0i64);
    // Every statement here is prepared once per connection and kept: on
    // election night this runs for thousands of batches a second, on the
    // one thread that commits.
    let revoked_after: Option<i64> = tx
        .prepare_cached("SELECT revoked_after_seq FROM devices WHERE id = ?1")?
        .query_row([device.as_str()], |r| r.get(0))?;
    {
        let mut by_id = tx.prepare_cached("SELECT log_index FROM records WHERE id = ?1")?;
        let mut by_seq =
            tx.prepare_cached("SELECT id FROM records WHERE device = ?1 AND seq = ?2")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO records (log_index, id, device, seq, prev, station, kind, captured_at, received_at, body, sig, form_clean, form_check, sealed,
                                  category, priority, phase, supersedes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT DO NOTHING",
        )?;
        let mut reported = tx.prepare_cached(
            "INSERT INTO station_phases (station, phase, first_captured, first_received, records)
             VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (station, phase) DO UPDATE SET records = records + 1,
                 first_captured = min(first_captured, excluded.first_captured)",
        )?;
        let mut quarantine = tx.prepare_cached(
            "INSERT OR IGNORE INTO quarantine (id, device, seq, received_at, body, sig, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut conflict = tx.prepare_cached(
            "INSERT OR IGNORE INTO conflicts (id, device, seq, received_at, body, sig, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut attachment = tx.prepare_cached(
            "INSERT OR IGNORE INTO attachments (record_id, sha256, bytes) VALUES (?1, ?2, ?3)",
        )?;
        for incoming in records {
            let r = &incoming.record;
            let b = &r.body;
            let check = &incoming.check;
            // A record that arrived sealed rests sealed: its body and
            // signature are stored only inside the sealed record.
            let (body, sig, sealed): (&[u8], &[u8], Option<String>) = match &incoming.sealed {
                Some(s) => (
                    &[],
                    &[],
                    Some(serde_json::to_string(s).expect("serialises")),
                ),
                None => (&r.envelope.body, r.envelope.sig.as_slice(), None),
            };
            // Quarantine and conflicts keep a record alike, each in its table.
            let set_aside = |table: &mut rusqlite::CachedStatement<'_>| {
                table.execute(params![
                    r.id.as_bytes(),
                    device.as_str(),
                    b.seq as i64,
                    now_ms,
                    body,
                    sig,
                    &sealed
                ])
            };
            let held_at = |by_id: &mut rusqlite::CachedStatement<'_>| {
                by_id
                    .query_row([r.id.as_bytes()], |row| row.get::<_, i64>(0))
                    .optional()
            };
            if revoked_after.is_some_and(|after| b.seq as i64 > after) {
                // One it already holds is answered as held, revoked or not.
                if let Some(index) = held_at(&mut by_id)? {
                    outcomes.push(Outcome::Already {
                        index: index as u64,
                    });
                    continue;
                }
                set_aside(&mut quarantine)?;
                outcomes.push(Outcome::Quarantined);
                continue;
            }
            // Stored at the log's next index unless its id or its seq is
            // held already: the insert's own uniqueness checks decide, and
            // only a record that was not new is looked up again (on
            // election night nearly all are new, and two lookups a record
            // were an eighth of the committing thread's time).
            let index = frontier.size();
            let triage = crate::triage::triage(b, check);
            let inserted = insert.execute(params![
                index as i64,
                r.id.as_bytes(),
                device.as_str(),
                b.seq as i64,
                b.prev.map(|p| p.as_bytes().to_vec()),
                b.station.as_str(),
                b.kind.as_str(),
                b.captured_at.timestamp_millis(),
                now_ms,
                body,
                sig,
                check.clean,
                check.json,
                sealed,
                triage.category,
                triage.priority.rank(),
                triage.phase.map(|p| p.as_str()),
                triage.supersedes.map(|s| s.as_bytes().to_vec()),
            ])?;
            if inserted == 0 {
                if let Some(index) = held_at(&mut by_id)? {
                    outcomes.push(Outcome::Already {
                        index: index as u64,
                    });
                    continue;
                }
                let existing: [u8; 32] = by_seq
                    .query_row(params![device.as_str(), b.seq as i64], |row| blob32(row, 0))
                    .optional()?
                    .ok_or_else(|| {
                        StorageError::Corrupt(format!(
                            "leaf {index} of the log is already a record's, but the log's head says it is the next one"
                        ))
                    })?;
                set_aside(&mut conflict)?;
                outcomes.push(Outcome::Conflict {
                    existing: RecordId::from_bytes(existing),
                });
                continue;
            }
            frontier.push_keeping(leaf_hash(r.id.as_bytes()), kept);
            if let Some(phase) = triage.phase {
                reported.execute(params![
                    b.station.as_str(),
                    phase.as_str(),
                    b.captured_at.timestamp_millis(),
                    now_ms
                ])?;
            }
            for a in &b.attachments {
                attachment.execute(params![
                    r.id.as_bytes(),
                    a.sha256.to_string(),
                    a.bytes as i64
                ])?;
            }
            held += 1;
            max_seq = max_seq.max(b.seq as i64);
            outcomes.push(Outcome::Accepted { index });
        }
    }
    tx.prepare_cached(
        "UPDATE devices SET last_contact = ?1,
             hb_seq = CASE WHEN ?2 > coalesce(hb_seq, 0) THEN ?2 ELSE hb_seq END,
             hb_head = CASE WHEN ?2 > coalesce(hb_seq, 0) THEN ?3 ELSE hb_head END,
             held = held + ?5, max_seq = max(max_seq, ?6)
         WHERE id = ?4",
    )?
    .execute(params![
        now_ms,
        hb.map_or(0, |h| h.seq as i64),
        hb.and_then(|h| h.head).map(|h| h.as_bytes().to_vec()),
        device.as_str(),
        held,
        max_seq
    ])?;
    Ok(outcomes)
}

const AUDIT_COLUMNS: &str = "seq, at_ms, actor, action, subject, detail, prev, hash, sig";

/// An audit row; a digest that does not parse is corruption, reported as
/// such rather than as a database error.
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AuditEntry, StorageError>> {
    let seq: u64 = r.get(0)?;
    let digest = |i: usize| -> rusqlite::Result<Result<Sha256Digest, StorageError>> {
        Ok(r.get::<_, String>(i)?
            .parse()
            .map_err(|_| StorageError::Corrupt(format!("audit entry {seq}: a hash"))))
    };
    let (prev, hash) = (digest(6)?, digest(7)?);
    Ok((|| {
        Ok(AuditEntry {
            seq,
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            subject: r.get(4)?,
            detail: r.get(5)?,
            prev: prev?,
            hash: hash?,
            sig: r.get(8)?,
        })
    })())
}

impl Storage for SqliteStorage {
    fn account_store(&self) -> &dyn super::AccountStore {
        self
    }

    fn review_store(&self) -> &dyn super::ReviewStore {
        self
    }

    fn sms_store(&self) -> &dyn super::SmsStore {
        self
    }

    fn add_token(&self, t: &NewToken, now_ms: i64) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO tokens (hash, stations, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                t.hash.as_bytes(),
                serde_json::to_string(&t.stations).expect("serialises"),
                t.name,
                now_ms,
                t.expires_at_ms
            ],
        )?;
        Ok(())
    }

    fn codes(&self, limit: u32) -> Result<Vec<super::IssuedCode>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT name, stations, created_at, expires_at, used_at, device FROM tokens
             ORDER BY created_at DESC, hash LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(super::IssuedCode {
                    name: r.get(0)?,
                    stations: stations(&r.get::<_, String>(1)?),
                    created_at_ms: r.get(2)?,
                    expires_at_ms: r.get(3)?,
                    used_at_ms: r.get(4)?,
                    device: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn enroll(
        &self,
        token_hash: &Sha256Digest,
        key: &PublicKey,
        name: Option<&str>,
        now_ms: i64,
    ) -> Result<Result<DeviceInfo, TokenProblem>, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let token: Option<(String, Option<String>, i64, Option<i64>)> = tx
            .query_row(
                "SELECT stations, name, expires_at, used_at FROM tokens WHERE hash = ?1",
                [token_hash.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((st, token_name, expires, used)) = token else {
            return Ok(Err(TokenProblem::Unknown));
        };
        if used.is_some() {
            return Ok(Err(TokenProblem::Used));
        }
        if expires <= now_ms {
            return Ok(Err(TokenProblem::Expired));
        }
        let id = key.device_id();
        let revoked: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_at FROM devices WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if revoked.flatten().is_some() {
            return Ok(Err(TokenProblem::DeviceRevoked));
        }
        let name = name.map(str::to_string).or(token_name);
        tx.execute(
            "UPDATE tokens SET used_at = ?1, device = ?2 WHERE hash = ?3",
            params![now_ms, id.as_str(), token_hash.as_bytes()],
        )?;
        tx.execute(
            "INSERT INTO devices (id, public_key, name, stations, enrolled_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, devices.name),
                 stations = excluded.stations",
            params![id.as_str(), key.as_bytes(), name, st, now_ms],
        )?;
        let info = tx.query_row(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
            [id.as_str()],
            device_row,
        )?;
        tx.commit()?;
        Ok(Ok(info.0))
    }

    fn device(&self, id: &DeviceId) -> Result<Option<DeviceInfo>, StorageError> {
        let conn = self.read()?;
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([id.as_str()], device_row)
            .optional()?
            .map(|(d, _)| d))
    }

    fn assign(&self, id: &DeviceId, stations: &[String]) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "UPDATE devices SET stations = ?1 WHERE id = ?2",
            params![
                serde_json::to_string(stations).expect("serialises"),
                id.as_str()
            ],
        )?;
        Ok(n > 0)
    }

    fn revoke(&self, id: &DeviceId, now_ms: i64) -> Result<bool, StorageError> {
        // Records up to the newest one received are the device's word from
        // before revocation (the chain commits to every earlier seq); later
        // seqs will be quarantined.
        let n = self.conn().execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1),
                 revoked_after_seq = coalesce(revoked_after_seq,
                     (SELECT coalesce(max(seq), 0) FROM records WHERE device = ?2))
             WHERE id = ?2",
            params![now_ms, id.as_str()],
        )?;
        Ok(n > 0)
    }

    fn ingest_group(
        &self,
        batches: &[&IngestBatch],
        now_ms: i64,
    ) -> Result<Vec<IngestResult>, StorageError> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock first, then the frontier it protects.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut frontier = read_frontier(&tx)?;
        let before = frontier.size();
        let mut all = Vec::with_capacity(batches.len());
        let mut kept = Vec::new();
        for b in batches {
            all.push(ingest_one(&tx, &mut frontier, &mut kept, b, now_ms)?);
        }
        write_nodes(&tx, &kept)?;
        if frontier.size() != before {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                .execute(params![
                    META_FRONTIER,
                    serde_json::to_vec(&frontier).expect("serialises")
                ])?;
        }
        tx.commit()?;
        Ok(IngestResult::for_group(all, &frontier))
    }

    fn devices(&self) -> Result<Vec<DeviceView>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, id"
        ))?;
        let devices: Vec<(DeviceInfo, Option<ChainHead>)> =
            stmt.query_map([], device_row)?.collect::<Result<_, _>>()?;
        let mut chain = conn
            .prepare_cached("SELECT seq, id, prev FROM records WHERE device = ?1 ORDER BY seq")?;
        let mut conflicts = conn.prepare_cached(
            "SELECT (SELECT count(*) FROM conflicts WHERE device = ?1),
                    (SELECT count(*) FROM quarantine WHERE device = ?1)",
        )?;
        let mut out = Vec::with_capacity(devices.len());
        for (info, heartbeat) in devices {
            let mut v = ChainVerifier::new();
            let mut rows = chain.query([info.id.as_str()])?;
            let mut contiguous = 0u64;
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let seq = r.get::<_, i64>(0)? as u64;
                let prev: Option<Vec<u8>> = r.get(2)?;
                v.push(
                    seq,
                    RecordId::from_bytes(blob32(r, 1)?),
                    prev.and_then(|p| p.try_into().ok())
                        .map(RecordId::from_bytes),
                );
                n += 1;
                if seq == contiguous + 1 {
                    contiguous = seq;
                }
            }
            let report = v.finish(heartbeat);
            let (conflicts, quarantined): (i64, i64) =
                conflicts.query_row([info.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            out.push(DeviceView {
                info,
                records: n,
                contiguous,
                heartbeat,
                faults: report.faults,
                conflicts: conflicts as u64,
                quarantined: quarantined as u64,
            });
        }
        Ok(out)
    }

    fn records(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(RecordRow) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let conn = self.read()?;
        let mut sql = String::from(
            "SELECT log_index, id, device, seq, station, kind, captured_at, received_at, body, sig, form_clean, form_check,
                    (SELECT count(*) FROM attachments a WHERE a.record_id = records.id
                         AND NOT EXISTS (SELECT 1 FROM media m WHERE m.sha256 = a.sha256)),
                    sealed
             FROM records WHERE 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = &filter.station {
            args.push(s.clone().into());
            sql.push_str(&format!(" AND station = ?{}", args.len()));
        }
        if let Some(k) = &filter.kind {
            args.push(k.clone().into());
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
        if let Some(d) = &filter.device {
            args.push(d.as_str().to_string().into());
            sql.push_str(&format!(" AND device = ?{}", args.len()));
        }
        if let Some(i) = filter.index {
            args.push((i as i64).into());
            sql.push_str(&format!(" AND log_index = ?{}", args.len()));
        }
        match filter.newest {
            Some(n) => {
                args.push((n as i64).into());
                sql.push_str(&format!(" ORDER BY log_index DESC LIMIT ?{}", args.len()));
            }
            None => sql.push_str(" ORDER BY log_index"),
        }
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            each(RecordRow {
                index: r.get::<_, i64>(0)? as u64,
                id: RecordId::from_bytes(blob32(r, 1)?),
                device: device_id(r, 2)?,
                seq: r.get::<_, i64>(3)? as u64,
                station: r.get(4)?,
                kind: r.get(5)?,
                captured_at_ms: r.get(6)?,
                received_at_ms: r.get(7)?,
                body: r.get(8)?,
                sig: r.get(9)?,
                check: match (
                    r.get::<_, Option<bool>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ) {
                    (Some(clean), Some(json)) => Some(FormCheck { clean, json }),
                    _ => None,
                },
                media_missing: r.get::<_, i64>(12)? as u64,
                sealed: r
                    .get::<_, Option<String>>(13)?
                    .map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(|e| StorageError::Corrupt(format!("a sealed record: {e}")))?,
            })?;
        }
        Ok(())
    }

    fn expected_media(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
    ) -> Result<Option<u64>, StorageError> {
        let conn = self.read()?;
        Ok(conn
            .prepare_cached(
                "SELECT a.bytes FROM attachments a JOIN records r ON r.id = a.record_id
                 WHERE a.sha256 = ?1 AND r.device = ?2 LIMIT 1",
            )?
            .query_row(params![sha256.to_string(), device.as_str()], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|b| b as u64))
    }

    fn device_keys(&self) -> Result<Vec<(DeviceId, PublicKey)>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare("SELECT id, public_key FROM devices")?;
        let rows = stmt.query_map([], |r| {
            Ok((device_id(r, 0)?, PublicKey::from_bytes(blob32(r, 1)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn log_leaves(
        &self,
        each: &mut dyn FnMut(u64, RecordId) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare("SELECT log_index, id FROM records ORDER BY log_index")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(
                r.get::<_, i64>(0)? as u64,
                RecordId::from_bytes(blob32(r, 1)?),
            )?;
        }
        Ok(())
    }

    fn log_hashes(&self, nodes: &[NodeId]) -> Result<LogHashes, StorageError> {
        let (leaves, inner): (Vec<NodeId>, Vec<NodeId>) = nodes.iter().partition(|n| n.level == 0);
        let conn = self.read()?;
        // One snapshot for both reads.
        let tx = conn.unchecked_transaction()?;
        let size = read_frontier(&tx)?.size();
        let mut out = HashMap::with_capacity(nodes.len());
        let wanted: Vec<i64> = leaves.iter().map(|n| n.index as i64).collect();
        let mut stmt = tx.prepare_cached(
            "SELECT r.log_index, r.id FROM json_each(?1) j JOIN records r ON r.log_index = j.value",
        )?;
        let mut rows = stmt.query([serde_json::to_string(&wanted).expect("serialises")])?;
        while let Some(r) = rows.next()? {
            let index = r.get::<_, i64>(0)? as u64;
            out.insert(NodeId { level: 0, index }, leaf_hash(&blob32(r, 1)?));
        }
        let wanted: Vec<(u32, i64)> = inner.iter().map(|n| (n.level, n.index as i64)).collect();
        let mut stmt = tx.prepare_cached(
            "SELECT n.level, n.idx, n.hash FROM json_each(?1) j JOIN log_nodes n
             ON n.level = j.value ->> 0 AND n.idx = j.value ->> 1",
        )?;
        let mut rows = stmt.query([serde_json::to_string(&wanted).expect("serialises")])?;
        while let Some(r) = rows.next()? {
            let id = NodeId {
                level: r.get(0)?,
                index: r.get::<_, i64>(1)? as u64,
            };
            out.insert(id, Sha256Digest::from_bytes(blob32(r, 2)?));
        }
        Ok(LogHashes { size, hashes: out })
    }

    fn ping(&self) -> Result<(), StorageError> {
        self.read()?
            .query_row("SELECT count(*) FROM meta", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let conn = self.read()?;
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_metas(&self, values: &[(&str, Vec<u8>)]) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in values {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn media_complete(
        &self,
        sha256: &Sha256Digest,
        bytes: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO media (sha256, bytes, completed_at) VALUES (?1, ?2, ?3)",
            params![sha256.to_string(), bytes as i64, now_ms],
        )?;
        Ok(())
    }

    fn media_held(&self, sha256: &Sha256Digest) -> Result<bool, StorageError> {
        Ok(self.read()?.query_row(
            "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = ?1)",
            [sha256.to_string()],
            |r| r.get(0),
        )?)
    }

    fn put_receipts(&self, receipts: &[StoredReceipt]) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO receipts (device, server_time, body, sig) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in receipts {
                insert.execute(params![
                    r.device.as_str(),
                    r.server_time_ms,
                    r.signed.body,
                    r.signed.sig
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn receipts(
        &self,
        devices: &std::collections::BTreeSet<DeviceId>,
    ) -> Result<Vec<StoredReceipt>, StorageError> {
        let mut gather = crate::receipts::Gather::new(devices);
        let conn = self.read()?;
        let mut stmt =
            conn.prepare_cached("SELECT device, server_time, body, sig FROM receipts ORDER BY n")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let device: String = r.get(0)?;
            if let Some(device) = gather.wants(&device) {
                gather.keep(device, r.get(1)?, r.get(2)?, r.get(3)?);
            }
        }
        Ok(gather.found())
    }

    fn totals(&self) -> Result<Totals, StorageError> {
        let (devices, revoked, records, stations) = self.read()?.query_row(
            "SELECT (SELECT count(*) FROM devices),
                    (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL),
                    (SELECT count(*) FROM records),
                    (SELECT count(DISTINCT station) FROM records)",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )?;
        Ok(Totals {
            devices: devices as u64,
            revoked: revoked as u64,
            records: records as u64,
            stations: stations as u64,
        })
    }

    fn publish_form(&self, f: &PublishedForm, now_ms: i64) -> Result<bool, StorageError> {
        Ok(self.conn().execute(
            "INSERT OR IGNORE INTO forms (id, version, definition, published_at) VALUES (?1, ?2, ?3, ?4)",
            params![f.id, f.version, f.definition, now_ms],
        )? > 0)
    }

    fn forms(&self) -> Result<Vec<PublishedForm>, StorageError> {
        let conn = self.read()?;
        let mut stmt =
            conn.prepare_cached("SELECT id, version, definition FROM forms ORDER BY id, version")?;
        let rows = stmt.query_map([], |r| {
            Ok(PublishedForm {
                id: r.get(0)?,
                version: r.get(1)?,
                definition: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn form(&self, id: &str, version: u32) -> Result<Option<PublishedForm>, StorageError> {
        let conn = self.read()?;
        Ok(conn
            .prepare_cached("SELECT definition FROM forms WHERE id = ?1 AND version = ?2")?
            .query_row(params![id, version], |r| r.get::<_, String>(0))
            .optional()?
            .map(|definition| PublishedForm {
                id: id.to_string(),
                version,
                definition,
            }))
    }

    fn import_official(
        &self,
        base: Option<u32>,
        version: &OfficialVersion,
        rows: &[OfficialResult],
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let newest: Option<u32> =
            tx.query_row("SELECT MAX(version) FROM official_versions", [], |r| {
                r.get(0)
            })?;
        if newest != base {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO official_versions
                 (version, imported_at, imported_by, source, digest, stations, added, changed, removed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                version.version,
                version.imported_at_ms,
                version.imported_by,
                version.source,
                version.digest.map(|d| d.to_string()),
                version.stations,
                version.added,
                version.changed,
                version.removed
            ],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO official_results (version, station, region, figures) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in rows {
                insert.execute(params![
                    version.version,
                    r.station,
                    r.region,
                    serde_json::to_string(&r.figures).expect("serialises"),
                ])?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    fn official_versions(&self) -> Result<Vec<OfficialVersion>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT version, imported_at, imported_by, source, digest, stations, added, changed, removed
             FROM official_versions ORDER BY version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, u32>(0)?, r.get::<_, i64>(1)?),
                (r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                r.get::<_, Option<String>>(4)?,
                [r.get::<_, u64>(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
            ))
        })?;
        rows.map(|row| {
            let (
                (version, imported_at_ms),
                (imported_by, source),
                digest,
                [stations, added, changed, removed],
            ) = row?;
            Ok(OfficialVersion {
                version,
                imported_at_ms,
                imported_by,
                source,
                digest: official_digest(version, digest.as_deref())?,
                stations,
                added,
                changed,
                removed,
            })
        })
        .collect()
    }

    fn import_registry(
        &self,
        base: Option<u32>,
        version: &RegistryVersion,
        stations: &[Station],
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let newest: Option<u32> =
            tx.query_row("SELECT MAX(version) FROM registry_versions", [], |r| {
                r.get(0)
            })?;
        if newest != base {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO registry_versions (version, imported_at, digest, stations, added, changed, removed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                version.version,
                version.imported_at_ms,
                version.digest.to_string(),
                version.stations,
                version.added,
                version.changed,
                version.removed
            ],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO registry_stations (version, id, name, region, district, address, registered_voters, latitude, longitude)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for st in stations {
                insert.execute(params![
                    version.version,
                    st.id,
                    st.name,
                    st.region,
                    st.district,
                    st.address,
                    st.registered_voters,
                    st.location.map(|l| l.latitude),
                    st.location.map(|l| l.longitude),
                ])?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    fn registry_versions(&self) -> Result<Vec<RegistryVersion>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT version, imported_at, digest, stations, added, changed, removed
             FROM registry_versions ORDER BY version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                [r.get::<_, u64>(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
            ))
        })?;
        rows.map(|row| {
            let (version, imported_at_ms, digest, [stations, added, changed, removed]) = row?;
            Ok(RegistryVersion {
                version,
                imported_at_ms,
                digest: digest.parse().map_err(|_| {
                    StorageError::Corrupt(format!("registry version {version}: digest"))
                })?,
                stations,
                added,
                changed,
                removed,
            })
        })
        .collect()
    }

    fn registry_stations(&self, version: u32) -> Result<Vec<Station>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, region, district, address, registered_voters, latitude, longitude
             FROM registry_stations WHERE version = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([version], |r| {
            let lat: Option<f64> = r.get(6)?;
            let lon: Option<f64> = r.get(7)?;
            Ok(Station {
                id: r.get(0)?,
                name: r.get(1)?,
                region: r.get(2)?,
                district: r.get(3)?,
                address: r.get(4)?,
                registered_voters: r.get(5)?,
                location: lat
                    .zip(lon)
                    .map(|(latitude, longitude)| crate::registry::Location {
                        latitude,
                        longitude,
                    }),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn append_audit(
        &self,
        seal: &mut dyn FnMut(Option<&AuditEntry>) -> AuditEntry,
    ) -> Result<AuditEntry, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let newest = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1"
            ))?;
            stmt.query_row([], audit_row).optional()?
        };
        let newest = newest.transpose()?;
        let entry = seal(newest.as_ref());
        tx.execute(
            "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev, hash, sig)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.seq,
                entry.at_ms,
                entry.actor,
                entry.action,
                entry.subject,
                entry.detail,
                entry.prev.to_string(),
                entry.hash.to_string(),
                entry.sig
            ],
        )?;
        tx.commit()?;
        Ok(entry)
    }

    fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit], audit_row)?;
        rows.map(|r| r?).collect()
    }

    fn audit_before(&self, before: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
        ))?;
        let before = before.min(i64::MAX as u64) as i64;
        let rows = stmt.query_map(params![before, limit], audit_row)?;
        rows.map(|r| r?).collect()
    }

    fn official_results(&self, version: u32) -> Result<Vec<OfficialResult>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT station, region, figures FROM official_results WHERE version = ?1 ORDER BY station",
        )?;
        let rows = stmt.query_map([version], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (station, region, figures) = row?;
            Ok(OfficialResult {
                station,
                region,
                figures: serde_json::from_str(&figures)
                    .map_err(|e| StorageError::Corrupt(format!("official figures: {e}")))?,
            })
        })
        .collect()
    }

    fn tree_head(&self) -> Result<TreeHead, StorageError> {
        let f = read_frontier(&*self.read()?)?;
        Ok(TreeHead {
            size: f.size(),
            root: f.root(),
        })
    }
}

#[cfg(test)]
mod migration_files {
    /// Every numbered file in `server/migrations/sqlite/` and
    /// `core/migrations/` is listed, in order: a migration added as a file
    /// but not listed would never run.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (dir, listed) in [
            (root.join("migrations/sqlite"), super::MIGRATIONS),
            (
                root.join("../core/migrations"),
                observer_core::store::schema::MIGRATIONS,
            ),
        ] {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            names.sort();
            assert_eq!(names.len(), listed.len(), "{}", dir.display());
            for (i, name) in names.iter().enumerate() {
                assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}");
                let text = std::fs::read_to_string(dir.join(name)).unwrap();
                assert_eq!(text, listed[i], "{name}");
            }
        }
    }
}

#[cfg(test)]
mod account_upgrade {
    use crate::storage::AccountStore as _;

    /// A directory of the version before regional accounts and second
    /// factors keeps its accounts (national, password only) through the
    /// table's rebuild; its sessions end, as the migration says.
    #[test]
    fn accounts_survive_the_rebuild_of_migration_9_and_sessions_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        super::configure(&conn).unwrap();
        observer_core::store::schema::migrate_to(&mut conn, super::MIGRATIONS, 8).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, role, password_hash, disabled, created_at_ms, failed_logins, last_login_ms)
             VALUES ('aigerim', 'admin', '$argon2id$x', 0, 5, 2, 7);
             INSERT INTO sessions (digest, account, created_at_ms, last_seen_ms) VALUES ('d', 'aigerim', 5, 6);",
        )
        .unwrap();
        drop(conn);
        let s = super::SqliteStorage::open(&path).unwrap();
        let a = s.account("aigerim").unwrap().unwrap();
        assert_eq!(
            (a.role, a.failed_logins, a.last_login_ms),
            (crate::accounts::Role::Admin, 2, Some(7))
        );
        assert_eq!((a.region, a.totp_sealed), (None, None));
        let sessions: i64 = s
            .read()
            .unwrap()
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sessions, 0);
        // The pairing of role and region holds in the database itself.
        let refused = s.conn().execute(
            "INSERT INTO accounts (name, role, password_hash, created_at_ms, region) VALUES ('x', 'admin', 'h', 1, 'North')",
            [],
        );
        assert!(refused.is_err(), "an admin with a region");
        let refused = s.conn().execute(
            "INSERT INTO accounts (name, role, password_hash, created_at_ms) VALUES ('y', 'coordinator', 'h', 1)",
            [],
        );
        assert!(refused.is_err(), "a coordinator without one");
    }
}

#[cfg(test)]
mod official_upgrade {
    use crate::storage::Storage as _;

    /// Official results imported before versions were kept become
    /// version 1, whole, by an unknown hand and without a file digest.
    #[test]
    fn results_imported_before_migration_10_are_its_first_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        super::configure(&conn).unwrap();
        observer_core::store::schema::migrate_to(&mut conn, super::MIGRATIONS, 9).unwrap();
        conn.execute_batch(
            r#"INSERT INTO official (station, region, figures, imported_at) VALUES
                 ('S-1', 'North', '{"party_1":5}', 70), ('S-2', NULL, '{"party_1":6}', 71);"#,
        )
        .unwrap();
        drop(conn);
        let s = super::SqliteStorage::open(&path).unwrap();
        let versions = s.official_versions().unwrap();
        assert_eq!(versions.len(), 1);
        let v = &versions[0];
        assert_eq!((v.version, v.imported_at_ms, v.stations), (1, 71, 2));
        assert_eq!(v.digest, None);
        assert!(v.imported_by.starts_with("unknown"));
        let rows = s.official().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].region.as_deref(), Some("North"));
        assert_eq!(rows[1].figures["party_1"], 6);

        // A directory that never imported any starts with no version.
        let empty = dir.path().join("empty.db");
        let s = super::SqliteStorage::open(&empty).unwrap();
        assert!(s.official_versions().unwrap().is_empty());
    }
}

#[cfg(test)]
mod error_kinds {
    use super::StorageError;

    /// A failure keeps its kind, so the operator's log and the answer's
    /// Retry-After can tell a busy database from a full disk.
    #[test]
    fn sqlite_failures_keep_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let a = rusqlite::Connection::open(&path).unwrap();
        a.execute_batch(
            "CREATE TABLE t (x INTEGER PRIMARY KEY); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);",
        )
        .unwrap();
        let b = rusqlite::Connection::open(&path).unwrap();
        b.busy_timeout(std::time::Duration::from_millis(10))
            .unwrap();
        let busy = b.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert!(matches!(StorageError::from(busy), StorageError::Busy));
        a.execute_batch("COMMIT").unwrap();
        let dup = a.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(matches!(
            StorageError::from(dup),
            StorageError::Constraint(_)
        ));
        std::fs::write(dir.path().join("junk.db"), vec![7u8; 8192]).unwrap();
        let junk = super::SqliteStorage::open(&dir.path().join("junk.db"))
            .err()
            .unwrap();
        assert!(matches!(junk, StorageError::Corrupt(_)), "{junk:?}");
        let missing = super::SqliteStorage::open(&dir.path().join("no/such/dir/x.db"))
            .err()
            .unwrap();
        assert!(
            matches!(missing, StorageError::Unavailable(_)),
            "{missing:?}"
        );
    }
}

#[cfg(test)]
mod readers {
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use observer_core::identity::SigningKey;
    use observer_core::record::Sha256Digest;

    use crate::storage::Storage as _;

    /// What a sync looks up before its batch joins a group (the device,
    /// settings, a form, an expected upload) is read beside the writer: a
    /// group commit holding the writing connection, mid-transaction, must
    /// not make the next batches wait for its flush. (It did: the device
    /// lookup shared the writer's lock, and a fifth of the CPU sat idle in
    /// a burst of twenty-record syncs.)
    #[test]
    fn lookups_on_the_sync_path_do_not_wait_for_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(super::SqliteStorage::open(&dir.path().join("s.db")).unwrap());
        let device = SigningKey::generate().unwrap().public_key().device_id();
        let writer = storage.conn();
        writer
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('k', x'00')")
            .unwrap();
        let (answered, answers) = mpsc::channel();
        let reader = storage.clone();
        std::thread::spawn(move || {
            let looked = (
                reader.device(&device).unwrap().is_none(),
                reader.meta("k").unwrap(),
                reader.form("f", 1).unwrap(),
                reader
                    .expected_media(&device, &Sha256Digest::of(b"m"))
                    .unwrap(),
            );
            answered.send(looked).unwrap();
        });
        let looked = answers
            .recv_timeout(Duration::from_secs(10))
            .expect("the lookups answered while the writer held its transaction");
        // And they read the last committed state, not the open transaction.
        assert_eq!(looked, (true, None, None, None));
        writer.execute_batch("ROLLBACK").unwrap();
    }
}
