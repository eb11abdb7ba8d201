//! PostgreSQL, for a national deployment: any number of identical
//! `observer-server serve` nodes on one database.
//!
//! The tables are the SQLite backend's, in PostgreSQL's types. What
//! differs is that several processes write at once, so nothing that
//! decides is cached in a node: the log's frontier lives in the one row
//! of `log_head`, and each ingest transaction locks that row before it
//! looks at what is held. Appends from every node are therefore
//! serialised in the database, which keeps leaf indexes unique and
//! gap-free and every node's tree head the same. Each batch is a handful
//! of statements whatever its size (arrays in, `UNNEST` out), so the lock
//! is held for a few round trips, not one per record.

mod accounts;
mod connect;
mod pool;
mod review;
mod sms;

use std::collections::HashMap;

use observer_core::identity::{DeviceId, PublicKey};
use observer_core::merkle::{Frontier, NodeId, TreeHead, leaf_hash, stored_nodes};
use observer_core::record::{ChainHead, ChainVerifier, RecordId, Sha256Digest};
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator as _;
use postgres::types::ToSql;

pub use connect::{DatabaseUrl, UrlError};

use super::{
    AuditEntry, DeviceInfo, DeviceView, FormCheck, IngestBatch, IngestResult, LogHashes, NewToken,
    OfficialResult, OfficialVersion, Outcome, PublishedForm, RecordFilter, RecordRow,
    RegistryVersion, Station, Storage, StorageError, StoredReceipt, TokenProblem, Totals,
    official_digest,
};

/// The PostgreSQL storage: a pool of connections, no state of its own.
pub struct PostgresStorage {
    pool: pool::Pool,
}

impl PostgresStorage {
    /// Connects, creates or migrates the schema (a newer one is refused
    /// untouched), and checks that the log's head covers the records.
    pub fn open(url: &DatabaseUrl) -> Result<Self, StorageError> {
        let pool = url.open_pool()?;
        let s = Self { pool };
        let mut c = s.conn()?;
        let frontier = read_frontier(&mut c.client, "")?;
        let next: i64 = c
            .query_one("SELECT coalesce(max(log_index) + 1, 0) FROM records", &[])?
            .get(0);
        if frontier.size() != next as u64 {
            return Err(StorageError::Corrupt(format!(
                "the log has {} leaves but records reach index {next}",
                frontier.size()
            )));
        }
        fill_nodes(&mut c.client, &frontier)?;
        drop(c);
        Ok(s)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<pool::Manager>, StorageError> {
        Ok(self.pool.get()?)
    }
}

fn read_frontier(
    c: &mut impl postgres::GenericClient,
    lock: &str,
) -> Result<Frontier, StorageError> {
    let raw: Vec<u8> = c
        .query_one(
            &format!("SELECT frontier FROM log_head WHERE id = 1 {lock}"),
            &[],
        )?
        .get(0);
    frontier_from(&raw)
}

/// The log's frontier now, by a statement prepared once per connection
/// (the head is read on every proof and every receipt's tree head).
fn current_frontier(conn: &mut pool::Connection) -> Result<Frontier, StorageError> {
    let read = conn.prepared("SELECT frontier FROM log_head WHERE id = 1")?;
    let raw: Vec<u8> = conn.query_one(&read, &[])?.get(0);
    frontier_from(&raw)
}

fn frontier_from(raw: &[u8]) -> Result<Frontier, StorageError> {
    serde_json::from_slice(raw).map_err(|e| StorageError::Corrupt(format!("log frontier: {e}")))
}

/// Stores log nodes (those a group's leaves completed), in one statement.
const INSERT_NODES: &str = "INSERT INTO log_nodes (level, idx, hash)
     SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])";

fn write_nodes(
    tx: &mut impl postgres::GenericClient,
    insert: &(impl postgres::ToStatement + ?Sized),
    kept: &[(NodeId, Sha256Digest)],
) -> Result<(), StorageError> {
    if kept.is_empty() {
        return Ok(());
    }
    let levels: Vec<i16> = kept.iter().map(|(id, _)| id.level as i16).collect();
    let idx: Vec<i64> = kept.iter().map(|(id, _)| id.index as i64).collect();
    let hashes: Vec<&[u8]> = kept.iter().map(|(_, h)| h.as_bytes().as_slice()).collect();
    tx.execute(insert, &[&levels, &idx, &hashes])?;
    Ok(())
}

/// Writes the log's nodes from its records when they are not all there (a
/// database from before they were kept), checking that the records give
/// the root the log's head names. Under the append lock: nodes starting
/// at once fill them once.
fn fill_nodes(c: &mut postgres::Client, head: &Frontier) -> Result<(), StorageError> {
    let count = "SELECT count(*) FROM log_nodes";
    if c.query_one(count, &[])?.get::<_, i64>(0) as u64 == stored_nodes(head.size()) {
        return Ok(());
    }
    let mut tx = c.transaction()?;
    let head = read_frontier(&mut tx, "FOR UPDATE")?;
    if tx.query_one(count, &[])?.get::<_, i64>(0) as u64 == stored_nodes(head.size()) {
        return Ok(());
    }
    let mut frontier = Frontier::new();
    let mut kept = Vec::new();
    let mut rows = tx.query_raw(
        "SELECT id FROM records ORDER BY log_index",
        std::iter::empty::<&(dyn ToSql + Sync)>(),
    )?;
    while let Some(r) = rows.next()? {
        frontier.push_keeping(leaf_hash(&id32(r.try_get(0)?, "a record id")?), &mut kept);
    }
    drop(rows);
    if frontier.root() != head.root() {
        return Err(StorageError::Corrupt(
            "the records do not give the root the log's head names".into(),
        ));
    }
    tx.execute("DELETE FROM log_nodes", &[])?;
    for chunk in kept.chunks(50_000) {
        write_nodes(&mut tx, INSERT_NODES, chunk)?;
    }
    tx.commit()?;
    Ok(())
}

fn id32(v: Vec<u8>, what: &str) -> Result<[u8; 32], StorageError> {
    v.try_into()
        .map_err(|_| StorageError::Corrupt(format!("{what}: expected 32 bytes")))
}

fn device_id(s: String) -> Result<DeviceId, StorageError> {
    DeviceId::try_from(s).map_err(|e| StorageError::Corrupt(format!("a device id: {e}")))
}

fn stations(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The columns [`device_row`] reads, as a literal for `concat!`.
macro_rules! device_columns {
    () => {
        "id, public_key, name, stations, enrolled_at, revoked_at, last_contact, hb_seq, hb_head"
    };
}
const DEVICE_COLUMNS: &str = device_columns!();
/// Every authenticated request asks it: prepared once per connection.
const DEVICE_BY_ID: &str = concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1");

fn device_row(r: &Row) -> Result<(DeviceInfo, Option<ChainHead>), StorageError> {
    let hb = match (
        r.try_get::<_, Option<i64>>(7)?,
        r.try_get::<_, Option<Vec<u8>>>(8)?,
    ) {
        (Some(seq), Some(head)) if seq > 0 => Some(ChainHead {
            seq: seq as u64,
            id: RecordId::from_bytes(id32(head, "a heartbeat head")?),
        }),
        _ => None,
    };
    Ok((
        DeviceInfo {
            id: device_id(r.try_get(0)?)?,
            key: PublicKey::from_bytes(id32(r.try_get(1)?, "a device key")?),
            name: r.try_get(2)?,
            stations: stations(r.try_get::<_, &str>(3)?),
            enrolled_at_ms: r.try_get(4)?,
            revoked_at_ms: r.try_get(5)?,
            last_contact_ms: r.try_get(6)?,
        },
        hb,
    ))
}

/// A batch's new records, column by column, in one statement.
const INSERT_RECORDS: &str = "INSERT INTO records (log_index, id, device, seq, prev, station, kind, captured_at, received_at, body, sig, form_clean, form_check, sealed,
                          category, priority, phase, supersedes)
     SELECT l, i, d, s, p, st, k, c, $9, b, g, fc, fj, x, ca, pr, ph, su
     FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::bigint[], $5::bytea[], $6::text[], $7::text[], $8::bigint[],
                 $10::bytea[], $11::bytea[], $12::bool[], $13::text[], $14::text[],
                 $15::text[], $16::smallint[], $17::text[], $18::bytea[])
          AS t(l, i, d, s, p, st, k, c, b, g, fc, fj, x, ca, pr, ph, su)";

/// Which stations reported on which phase: one row per station and phase
/// of the group (a statement may not update one row twice).
const REPORTED: &str = "INSERT INTO station_phases (station, phase, first_captured, first_received, records)
     SELECT st, ph, c, $4, n FROM UNNEST($1::text[], $2::text[], $3::bigint[], $5::bigint[]) AS t(st, ph, c, n)
     ON CONFLICT (station, phase) DO UPDATE SET records = station_phases.records + EXCLUDED.records,
         first_captured = least(station_phases.first_captured, EXCLUDED.first_captured)";

/// A group's rows bound for the tables, column by column.
#[derive(Default)]
struct Rows<'a> {
    new: Aside<'a>,
    index: Vec<i64>,
    prev: Vec<Option<&'a [u8]>>,
    station: Vec<&'a str>,
    kind: Vec<&'a str>,
    captured: Vec<i64>,
    clean: Vec<bool>,
    check: Vec<&'a str>,
    category: Vec<Option<String>>,
    priority: Vec<i16>,
    phase: Vec<Option<&'static str>>,
    supersedes: Vec<Option<Vec<u8>>>,
    /// Station and phase to the earliest capture and the count.
    reported: std::collections::BTreeMap<(&'a str, &'static str), (i64, i64)>,
    att_record: Vec<&'a [u8]>,
    att_sha: Vec<String>,
    att_bytes: Vec<i64>,
    quarantine: Aside<'a>,
    conflicts: Aside<'a>,
}

/// The rows of one batch bound for a table, column by column.
#[derive(Default)]
struct Aside<'a> {
    ids: Vec<&'a [u8]>,
    devices: Vec<&'a str>,
    seqs: Vec<i64>,
    bodies: Vec<&'a [u8]>,
    sigs: Vec<&'a [u8]>,
    sealed: Vec<Option<String>>,
}

impl<'a> Aside<'a> {
    fn push(
        &mut self,
        id: &'a [u8],
        device: &'a str,
        seq: u64,
        body: &'a [u8],
        sig: &'a [u8],
        sealed: Option<String>,
    ) {
        self.ids.push(id);
        self.devices.push(device);
        self.seqs.push(seq as i64);
        self.bodies.push(body);
        self.sigs.push(sig);
        self.sealed.push(sealed);
    }

    /// Kept aside once by id (a retry of a conflict is not a second one).
    fn insert(
        &self,
        tx: &mut postgres::Transaction<'_>,
        table: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        tx.execute(
            &format!(
                "INSERT INTO {table} (id, device, seq, received_at, body, sig, sealed)
                 SELECT i, d, s, $3, b, g, x
                 FROM UNNEST($1::bytea[], $2::text[], $4::bigint[], $5::bytea[], $6::bytea[], $7::text[]) AS t(i, d, s, b, g, x)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &self.ids,
                &self.devices,
                &now_ms,
                &self.seqs,
                &self.bodies,
                &self.sigs,
                &self.sealed,
            ],
        )?;
        Ok(())
    }
}

/// An audit row.
fn audit_row(r: &postgres::Row) -> Result<AuditEntry, StorageError> {
    let seq = r.try_get::<_, i64>(0)? as u64;
    let digest = |i: usize| -> Result<Sha256Digest, StorageError> {
        r.try_get::<_, &str>(i)?
            .parse()
            .map_err(|_| StorageError::Corrupt(format!("audit entry {seq}: a hash")))
    };
    Ok(AuditEntry {
        seq,
        at_ms: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        subject: r.try_get(4)?,
        detail: r.try_get(5)?,
        prev: digest(6)?,
        hash: digest(7)?,
        sig: r.try_get(8)?,
    })
}

impl Storage for PostgresStorage {
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
        self.conn()?.execute(
            "INSERT INTO tokens (hash, stations, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &t.hash.as_bytes().as_slice(),
                &serde_json::to_string(&t.stations).expect("serialises"),
                &t.name,
                &now_ms,
                &t.expires_at_ms,
            ],
        )?;
        Ok(())
    }

    fn codes(&self, limit: u32) -> Result<Vec<super::IssuedCode>, StorageError> {
        self.conn()?
            .query(
                "SELECT name, stations, created_at, expires_at, used_at, device FROM tokens
                 ORDER BY created_at DESC, hash LIMIT $1",
                &[&(limit as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(super::IssuedCode {
                    name: r.try_get(0)?,
                    stations: stations(r.try_get(1)?),
                    created_at_ms: r.try_get(2)?,
                    expires_at_ms: r.try_get(3)?,
                    used_at_ms: r.try_get(4)?,
                    device: r.try_get(5)?,
                })
            })
            .collect()
    }

    fn enroll(
        &self,
        token_hash: &Sha256Digest,
        key: &PublicKey,
        name: Option<&str>,
        now_ms: i64,
    ) -> Result<Result<DeviceInfo, TokenProblem>, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let hash = token_hash.as_bytes().as_slice();
        // Locked: two nodes given the same code at once enroll one device.
        let Some(token) = tx.query_opt(
            "SELECT stations, name, expires_at, used_at FROM tokens WHERE hash = $1 FOR UPDATE",
            &[&hash],
        )?
        else {
            return Ok(Err(TokenProblem::Unknown));
        };
        let (st, token_name, expires, used): (String, Option<String>, i64, Option<i64>) = (
            token.try_get(0)?,
            token.try_get(1)?,
            token.try_get(2)?,
            token.try_get(3)?,
        );
        if used.is_some() {
            return Ok(Err(TokenProblem::Used));
        }
        if expires <= now_ms {
            return Ok(Err(TokenProblem::Expired));
        }
        let id = key.device_id();
        let revoked: Option<Option<i64>> = tx
            .query_opt(
                "SELECT revoked_at FROM devices WHERE id = $1",
                &[&id.as_str()],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if revoked.flatten().is_some() {
            return Ok(Err(TokenProblem::DeviceRevoked));
        }
        let name = name.map(str::to_string).or(token_name);
        tx.execute(
            "UPDATE tokens SET used_at = $1, device = $2 WHERE hash = $3",
            &[&now_ms, &id.as_str(), &hash],
        )?;
        tx.execute(
            "INSERT INTO devices (id, public_key, name, stations, enrolled_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = coalesce(EXCLUDED.name, devices.name),
                 stations = EXCLUDED.stations",
            &[
                &id.as_str(),
                &key.as_bytes().as_slice(),
                &name,
                &st,
                &now_ms,
            ],
        )?;
        let row = tx.query_one(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"),
            &[&id.as_str()],
        )?;
        let info = device_row(&row)?;
        tx.commit()?;
        Ok(Ok(info.0))
    }

    fn device(&self, id: &DeviceId) -> Result<Option<DeviceInfo>, StorageError> {
        let mut conn = self.conn()?;
        let by_id = conn.prepared(DEVICE_BY_ID)?;
        conn.query_opt(&by_id, &[&id.as_str()])?
            .map(|r| device_row(&r).map(|(d, _)| d))
            .transpose()
    }

    fn assign(&self, id: &DeviceId, stations: &[String]) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "UPDATE devices SET stations = $1 WHERE id = $2",
            &[
                &serde_json::to_string(stations).expect("serialises"),
                &id.as_str(),
            ],
        )?;
        Ok(n > 0)
    }

    fn revoke(&self, id: &DeviceId, now_ms: i64) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Taken with the appends' lock: no batch of this device commits
        // between reading its newest seq and marking it revoked.
        tx.execute("SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE", &[])?;
        let n = tx.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $1),
                 revoked_after_seq = coalesce(revoked_after_seq,
                     (SELECT coalesce(max(seq), 0) FROM records WHERE device = $2))
             WHERE id = $2",
            &[&now_ms, &id.as_str()],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn ingest_group(
        &self,
        batches: &[&IngestBatch],
        now_ms: i64,
    ) -> Result<Vec<IngestResult>, StorageError> {
        let mut conn = self.conn()?;
        let lock = conn.prepared(
            "SELECT l.frontier, d.id, d.revoked_after_seq, d.max_seq FROM log_head l, devices d
             WHERE l.id = 1 AND d.id = ANY($1) FOR UPDATE OF l FOR KEY SHARE OF d",
        )?;
        // What is held already, by id and by (device, seq): two lookups,
        // each on its unique index (one with an OR between them is planned
        // as a scan), in one statement (one round trip while the log's
        // lock is held, not two). Only records at or below their device's
        // highest stored seq can be held (a record's id is the hash of a
        // body that names its device and seq), so on election night, when
        // every record is new, a group has nothing to look up. A batch
        // committed alone looks everything up: should that seq ever be
        // wrong (a database edited by hand), the group's insert fails on
        // a constraint, its batches are committed one by one
        // (`ingest::group`), and each is decided by the lookups.
        let held_rows = conn.prepared(
            "SELECT r.id, r.log_index, NULL::text, NULL::bigint FROM records r WHERE r.id = ANY($1)
             UNION ALL
             SELECT r.id, NULL::bigint, r.device, r.seq FROM records r
             JOIN UNNEST($2::text[], $3::bigint[]) AS t(d, s) ON r.device = t.d AND r.seq = t.s",
        )?;
        let insert = conn.prepared(INSERT_RECORDS)?;
        let insert_nodes = conn.prepared(INSERT_NODES)?;
        let reported = conn.prepared(REPORTED)?;
        let finish = conn.prepared(
            "WITH hb AS (
                 UPDATE devices d SET last_contact = $1,
                     hb_seq = CASE WHEN t.s > coalesce(d.hb_seq, 0) THEN t.s ELSE d.hb_seq END,
                     hb_head = CASE WHEN t.s > coalesce(d.hb_seq, 0) THEN t.h ELSE d.hb_head END,
                     held = d.held + t.n, max_seq = greatest(d.max_seq, t.m)
                 FROM UNNEST($2::text[], $3::bigint[], $4::bytea[], $6::bigint[], $7::bigint[]) AS t(i, s, h, n, m)
                 WHERE d.id = t.i RETURNING 1)
             UPDATE log_head SET frontier = coalesce($5, frontier) WHERE id = 1",
        )?;
        let mut tx = conn.transaction()?;
        let devices: Vec<&str> = {
            let mut d: Vec<&str> = batches.iter().map(|b| b.device.as_str()).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        // The append lock: from here to the commit, this group is the only
        // one deciding what is new, on every node.
        let locked = tx.query(&lock, &[&devices])?;
        let first = locked
            .first()
            .ok_or_else(|| StorageError::Constraint("a batch from a device not enrolled".into()))?;
        let mut frontier = frontier_from(first.try_get::<_, &[u8]>(0)?)?;
        // Per device: the seq after which it was revoked, its highest stored.
        let mut known: HashMap<String, (Option<i64>, i64)> = HashMap::new();
        for r in &locked {
            known.insert(r.try_get(1)?, (r.try_get(2)?, r.try_get(3)?));
        }
        if known.len() != devices.len() {
            return Err(StorageError::Constraint(
                "a batch from a device not enrolled".into(),
            ));
        }
        let (mut ids, mut seq_devices, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
        for b in batches {
            let up_to = match batches.len() {
                1 => i64::MAX,
                _ => known.get(b.device.as_str()).map_or(0, |k| k.1),
            };
            for i in b
                .records
                .iter()
                .filter(|i| i.record.body.seq as i64 <= up_to)
            {
                ids.push(i.record.id.as_bytes().as_slice());
                seq_devices.push(b.device.as_str());
                seqs.push(i.record.body.seq as i64);
            }
        }
        let mut held: HashMap<[u8; 32], u64> = HashMap::new();
        let mut at_seq: HashMap<(String, i64), [u8; 32]> = HashMap::new();
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            tx.query(&held_rows, &[&ids, &seq_devices, &seqs])?
        };
        for r in found {
            let id = id32(r.try_get(0)?, "a record id")?;
            match (
                r.try_get::<_, Option<i64>>(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
            ) {
                (Some(index), _, _) => {
                    held.insert(id, index as u64);
                }
                (None, Some(device), Some(seq)) => {
                    at_seq.insert((device, seq), id);
                }
                _ => {
                    return Err(StorageError::Corrupt(
                        "a held record answered without its index or its seq".into(),
                    ));
                }
            }
        }

        // Decided in group order, batch by batch, exactly as one record at
        // a time would be.
        let mut rows = Rows::default();
        let mut kept = Vec::new();
        let mut all = Vec::with_capacity(batches.len());
        let mut heartbeats: HashMap<&str, (i64, Option<Vec<u8>>)> = HashMap::new();
        // Per device: records stored, their highest seq.
        let mut counts: HashMap<&str, (i64, i64)> = HashMap::new();
        for batch in batches {
            let dev = batch.device.as_str();
            let after = known.get(dev).and_then(|k| k.0);
            let mut outcomes = Vec::with_capacity(batch.records.len());
            for incoming in &batch.records {
                let r = &incoming.record;
                let b = &r.body;
                let id = r.id.as_bytes();
                let sealed = incoming
                    .sealed
                    .as_ref()
                    .map(|s| serde_json::to_string(s).expect("serialises"));
                let (body, sig): (&[u8], &[u8]) = match sealed {
                    Some(_) => (&[], &[]),
                    None => (&r.envelope.body, r.envelope.sig.as_slice()),
                };
                if let Some(&index) = held.get(id) {
                    outcomes.push(Outcome::Already { index });
                    continue;
                }
                if after.is_some_and(|after| b.seq as i64 > after) {
                    rows.quarantine.push(id, dev, b.seq, body, sig, sealed);
                    outcomes.push(Outcome::Quarantined);
                    continue;
                }
                if let Some(existing) = at_seq.get(&(dev.to_string(), b.seq as i64)) {
                    rows.conflicts.push(id, dev, b.seq, body, sig, sealed);
                    outcomes.push(Outcome::Conflict {
                        existing: RecordId::from_bytes(*existing),
                    });
                    continue;
                }
                let index = frontier.push_keeping(leaf_hash(id), &mut kept);
                held.insert(*id, index);
                at_seq.insert((dev.to_string(), b.seq as i64), *id);
                rows.new.push(id, dev, b.seq, body, sig, sealed);
                rows.index.push(index as i64);
                rows.prev
                    .push(b.prev.as_ref().map(|p| p.as_bytes().as_slice()));
                rows.station.push(b.station.as_str());
                rows.kind.push(b.kind.as_str());
                rows.captured.push(b.captured_at.timestamp_millis());
                rows.clean.push(incoming.check.clean);
                rows.check.push(incoming.check.json.as_str());
                let triage = crate::triage::triage(b, &incoming.check);
                let phase = triage.phase.map(|p| p.as_str());
                if let Some(phase) = phase {
                    let captured = b.captured_at.timestamp_millis();
                    let seen = rows
                        .reported
                        .entry((b.station.as_str(), phase))
                        .or_insert((captured, 0));
                    seen.0 = seen.0.min(captured);
                    seen.1 += 1;
                }
                rows.category.push(triage.category);
                rows.priority.push(triage.priority.rank() as i16);
                rows.phase.push(phase);
                rows.supersedes
                    .push(triage.supersedes.map(|s| s.as_bytes().to_vec()));
                for a in &b.attachments {
                    rows.att_record.push(id.as_slice());
                    rows.att_sha.push(a.sha256.to_string());
                    rows.att_bytes.push(a.bytes as i64);
                }
                let counted = counts.entry(dev).or_insert((0, 0));
                counted.0 += 1;
                counted.1 = counted.1.max(b.seq as i64);
                outcomes.push(Outcome::Accepted { index });
            }
            let hb = batch.heartbeat.as_ref();
            let seq = hb.map_or(0, |h| h.seq as i64);
            let head = hb.and_then(|h| h.head).map(|h| h.as_bytes().to_vec());
            let entry = heartbeats.entry(dev).or_insert((0, None));
            if seq > entry.0 {
                *entry = (seq, head);
            }
            all.push(outcomes);
        }
        if !rows.new.ids.is_empty() {
            let params: [&(dyn ToSql + Sync); 18] = [
                &rows.index,
                &rows.new.ids,
                &rows.new.devices,
                &rows.new.seqs,
                &rows.prev,
                &rows.station,
                &rows.kind,
                &rows.captured,
                &now_ms,
                &rows.new.bodies,
                &rows.new.sigs,
                &rows.clean,
                &rows.check,
                &rows.new.sealed,
                &rows.category,
                &rows.priority,
                &rows.phase,
                &rows.supersedes,
            ];
            tx.execute(&insert, &params)?;
        }
        write_nodes(&mut tx, &insert_nodes, &kept)?;
        if !rows.reported.is_empty() {
            // In key order, so that two nodes' groups lock these rows in
            // the same order (they also hold the log's lock, but a
            // statement outside ingest might not).
            let (mut st, mut ph, mut first, mut n) = (vec![], vec![], vec![], vec![]);
            for ((station, phase), (captured, count)) in &rows.reported {
                st.push(*station);
                ph.push(*phase);
                first.push(*captured);
                n.push(*count);
            }
            tx.execute(&reported, &[&st, &ph, &first, &now_ms, &n])?;
        }
        if !rows.att_record.is_empty() {
            tx.execute(
                "INSERT INTO attachments (record_id, sha256, bytes)
                 SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING",
                &[&rows.att_record, &rows.att_sha, &rows.att_bytes],
            )?;
        }
        rows.quarantine.insert(&mut tx, "quarantine", now_ms)?;
        rows.conflicts.insert(&mut tx, "conflicts", now_ms)?;
        let mut hb_devices = Vec::with_capacity(heartbeats.len());
        let mut hb_seqs = Vec::with_capacity(heartbeats.len());
        let mut hb_heads = Vec::with_capacity(heartbeats.len());
        let mut held = Vec::with_capacity(heartbeats.len());
        let mut max_seqs = Vec::with_capacity(heartbeats.len());
        for (d, (seq, head)) in heartbeats {
            let (n, m) = counts.get(d).copied().unwrap_or((0, 0));
            hb_devices.push(d);
            hb_seqs.push(seq);
            hb_heads.push(head);
            held.push(n);
            max_seqs.push(m);
        }
        let moved: Option<Vec<u8>> =
            (!rows.new.ids.is_empty()).then(|| serde_json::to_vec(&frontier).expect("serialises"));
        tx.execute(
            &finish,
            &[
                &now_ms,
                &hb_devices,
                &hb_seqs,
                &hb_heads,
                &moved,
                &held,
                &max_seqs,
            ],
        )?;
        tx.commit()?;
        Ok(IngestResult::for_group(all, &frontier))
    }

    fn devices(&self) -> Result<Vec<DeviceView>, StorageError> {
        let mut conn = self.conn()?;
        let devices = conn
            .query(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, id"),
                &[],
            )?
            .iter()
            .map(device_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut aside: HashMap<String, (u64, u64)> = HashMap::new();
        for r in conn.query(
            "SELECT device, count(*) FILTER (WHERE t = 'c'), count(*) FILTER (WHERE t = 'q')
             FROM (SELECT device, 'c' AS t FROM conflicts UNION ALL SELECT device, 'q' FROM quarantine) a
             GROUP BY device",
            &[],
        )? {
            aside.insert(
                r.try_get(0)?,
                (r.try_get::<_, i64>(1)? as u64, r.try_get::<_, i64>(2)? as u64),
            );
        }
        // One pass over every chain, in (device, seq) order: one query
        // however many devices there are.
        struct Chain {
            verifier: ChainVerifier,
            records: u64,
            contiguous: u64,
        }
        let mut chains: HashMap<String, Chain> = HashMap::new();
        let mut rows = conn.query_raw(
            "SELECT device, seq, id, prev FROM records ORDER BY device, seq",
            std::iter::empty::<&(dyn ToSql + Sync)>(),
        )?;
        while let Some(r) = rows.next()? {
            let device: String = r.try_get(0)?;
            let seq = r.try_get::<_, i64>(1)? as u64;
            let id = RecordId::from_bytes(id32(r.try_get(2)?, "a record id")?);
            let prev = r
                .try_get::<_, Option<Vec<u8>>>(3)?
                .and_then(|p| p.try_into().ok())
                .map(RecordId::from_bytes);
            let c = chains.entry(device).or_insert_with(|| Chain {
                verifier: ChainVerifier::new(),
                records: 0,
                contiguous: 0,
            });
            c.verifier.push(seq, id, prev);
            c.records += 1;
            if seq == c.contiguous + 1 {
                c.contiguous = seq;
            }
        }
        Ok(devices
            .into_iter()
            .map(|(info, heartbeat)| {
                let chain = chains.remove(info.id.as_str());
                let (conflicts, quarantined) =
                    aside.get(info.id.as_str()).copied().unwrap_or_default();
                let (records, contiguous, faults) = match chain {
                    Some(c) => (c.records, c.contiguous, c.verifier.finish(heartbeat).faults),
                    None => (0, 0, ChainVerifier::new().finish(heartbeat).faults),
                };
                DeviceView {
                    info,
                    records,
                    contiguous,
                    heartbeat,
                    faults,
                    conflicts,
                    quarantined,
                }
            })
            .collect())
    }

    fn records(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(RecordRow) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut sql = String::from(
            "SELECT log_index, id, device, seq, station, kind, captured_at, received_at, body, sig, form_clean, form_check,
                    (SELECT count(*) FROM attachments a WHERE a.record_id = records.id
                         AND NOT EXISTS (SELECT 1 FROM media m WHERE m.sha256 = a.sha256)),
                    sealed
             FROM records WHERE true",
        );
        let device = filter.device.as_ref().map(|d| d.as_str().to_string());
        let newest = filter.newest.map(|n| n as i64);
        let index = filter.index.map(|i| i as i64);
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(i) = &index {
            args.push(i);
            sql.push_str(&format!(" AND log_index = ${}", args.len()));
        }
        for (column, value) in [
            ("station", filter.station.as_ref()),
            ("kind", filter.kind.as_ref()),
            ("device", device.as_ref()),
        ] {
            if let Some(v) = value {
                args.push(v);
                sql.push_str(&format!(" AND {column} = ${}", args.len()));
            }
        }
        match &newest {
            Some(n) => {
                args.push(n);
                sql.push_str(&format!(" ORDER BY log_index DESC LIMIT ${}", args.len()));
            }
            None => sql.push_str(" ORDER BY log_index"),
        }
        let mut conn = self.conn()?;
        let mut rows = conn.query_raw(&sql, args)?;
        while let Some(r) = rows.next()? {
            each(RecordRow {
                index: r.try_get::<_, i64>(0)? as u64,
                id: RecordId::from_bytes(id32(r.try_get(1)?, "a record id")?),
                device: device_id(r.try_get(2)?)?,
                seq: r.try_get::<_, i64>(3)? as u64,
                station: r.try_get(4)?,
                kind: r.try_get(5)?,
                captured_at_ms: r.try_get(6)?,
                received_at_ms: r.try_get(7)?,
                body: r.try_get(8)?,
                sig: r.try_get(9)?,
                check: match (
                    r.try_get::<_, Option<bool>>(10)?,
                    r.try_get::<_, Option<String>>(11)?,
                ) {
                    (Some(clean), Some(json)) => Some(FormCheck { clean, json }),
                    _ => None,
                },
                media_missing: r.try_get::<_, i64>(12)? as u64,
                sealed: r
                    .try_get::<_, Option<String>>(13)?
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
        Ok(self
            .conn()?
            .query_opt(
                "SELECT a.bytes FROM attachments a JOIN records r ON r.id = a.record_id
                 WHERE a.sha256 = $1 AND r.device = $2 LIMIT 1",
                &[&sha256.to_string(), &device.as_str()],
            )?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()?
            .map(|b| b as u64))
    }

    fn device_keys(&self) -> Result<Vec<(DeviceId, PublicKey)>, StorageError> {
        self.conn()?
            .query("SELECT id, public_key FROM devices", &[])?
            .into_iter()
            .map(|r| {
                Ok((
                    device_id(r.try_get(0)?)?,
                    PublicKey::from_bytes(id32(r.try_get(1)?, "a device key")?),
                ))
            })
            .collect()
    }

    fn log_leaves(
        &self,
        each: &mut dyn FnMut(u64, RecordId) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        let mut rows = conn.query_raw(
            "SELECT log_index, id FROM records ORDER BY log_index",
            std::iter::empty::<&(dyn ToSql + Sync)>(),
        )?;
        while let Some(r) = rows.next()? {
            each(
                r.try_get::<_, i64>(0)? as u64,
                RecordId::from_bytes(id32(r.try_get(1)?, "a record id")?),
            )?;
        }
        Ok(())
    }

    fn log_hashes(&self, nodes: &[NodeId]) -> Result<LogHashes, StorageError> {
        let mut conn = self.conn()?;
        // The nodes are looked up one by one on their key (the LIMIT keeps
        // the planner from joining the whole table by hash, which it
        // otherwise prefers for an array of unknown length).
        // The size first: the nodes of any tree up to it are there for the
        // statement after it to read (the log only grows). Both prepared
        // once per connection, on one connection: a proof is two round
        // trips after the pool's check.
        let size = current_frontier(&mut conn)?.size();
        let read = conn.prepared(
            "SELECT 0::smallint, log_index, id FROM records WHERE log_index = ANY($1)
             UNION ALL
             SELECT t.l, t.i, n.hash FROM UNNEST($2::smallint[], $3::bigint[]) AS t(l, i)
             CROSS JOIN LATERAL (
                 SELECT hash FROM log_nodes WHERE level = t.l AND idx = t.i LIMIT 1
             ) AS n",
        )?;
        let leaves: Vec<i64> = nodes
            .iter()
            .filter(|n| n.level == 0)
            .map(|n| n.index as i64)
            .collect();
        let (levels, idx): (Vec<i16>, Vec<i64>) = nodes
            .iter()
            .filter(|n| n.level > 0)
            .map(|n| (n.level as i16, n.index as i64))
            .unzip();
        let mut out = HashMap::with_capacity(nodes.len());
        for r in conn.query(&read, &[&leaves, &levels, &idx])? {
            let id = NodeId {
                level: r.try_get::<_, i16>(0)? as u32,
                index: r.try_get::<_, i64>(1)? as u64,
            };
            let bytes = id32(r.try_get(2)?, "a log hash")?;
            let hash = if id.level == 0 {
                leaf_hash(&bytes)
            } else {
                Sha256Digest::from_bytes(bytes)
            };
            out.insert(id, hash);
        }
        Ok(LogHashes { size, hashes: out })
    }

    fn ping(&self) -> Result<(), StorageError> {
        self.conn()?
            .query_one("SELECT count(*) FROM log_head", &[])?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.conn()?
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    fn set_metas(&self, values: &[(&str, Vec<u8>)]) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        for (key, value) in values {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[key, value],
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
        self.conn()?.execute(
            "INSERT INTO media (sha256, bytes, completed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&sha256.to_string(), &(bytes as i64), &now_ms],
        )?;
        Ok(())
    }

    fn media_held(&self, sha256: &Sha256Digest) -> Result<bool, StorageError> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1)",
                &[&sha256.to_string()],
            )?
            .try_get(0)?)
    }

    fn put_receipts(&self, receipts: &[StoredReceipt]) -> Result<(), StorageError> {
        if receipts.is_empty() {
            return Ok(());
        }
        // One statement whatever the count (arrays in, UNNEST out, in
        // order): a round trip per receipt would cost the database's share
        // of the cores more than the receipts are worth.
        let devices: Vec<&str> = receipts.iter().map(|r| r.device.as_str()).collect();
        let times: Vec<i64> = receipts.iter().map(|r| r.server_time_ms).collect();
        let bodies: Vec<&[u8]> = receipts.iter().map(|r| r.signed.body.as_slice()).collect();
        let sigs: Vec<&[u8]> = receipts.iter().map(|r| r.signed.sig.as_slice()).collect();
        self.conn()?.execute(
            "INSERT INTO receipts (device, server_time, body, sig)
             SELECT d, t, b, s FROM UNNEST($1::text[], $2::bigint[], $3::bytea[], $4::bytea[])
                 WITH ORDINALITY AS u(d, t, b, s, o) ORDER BY o",
            &[&devices, &times, &bodies, &sigs],
        )?;
        Ok(())
    }

    fn receipts(
        &self,
        devices: &std::collections::BTreeSet<DeviceId>,
    ) -> Result<Vec<StoredReceipt>, StorageError> {
        // Streamed: the archive can be larger than memory should hold.
        let mut gather = crate::receipts::Gather::new(devices);
        let mut conn = self.conn()?;
        let mut rows = conn.query_raw(
            "SELECT device, server_time, body, sig FROM receipts ORDER BY n",
            std::iter::empty::<&(dyn ToSql + Sync)>(),
        )?;
        while let Some(r) = rows.next()? {
            if let Some(device) = gather.wants(r.try_get(0)?) {
                gather.keep(device, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            }
        }
        Ok(gather.found())
    }

    fn totals(&self) -> Result<Totals, StorageError> {
        let r = self.conn()?.query_one(
            "SELECT (SELECT count(*) FROM devices),
                    (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL),
                    (SELECT count(*) FROM records),
                    (SELECT count(DISTINCT station) FROM records)",
            &[],
        )?;
        Ok(Totals {
            devices: r.try_get::<_, i64>(0)? as u64,
            revoked: r.try_get::<_, i64>(1)? as u64,
            records: r.try_get::<_, i64>(2)? as u64,
            stations: r.try_get::<_, i64>(3)? as u64,
        })
    }

    fn publish_form(&self, f: &PublishedForm, now_ms: i64) -> Result<bool, StorageError> {
        Ok(self.conn()?.execute(
            "INSERT INTO forms (id, version, definition, published_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&f.id, &(f.version as i32), &f.definition, &now_ms],
        )? > 0)
    }

    fn forms(&self) -> Result<Vec<PublishedForm>, StorageError> {
        self.conn()?
            .query(
                "SELECT id, version, definition FROM forms ORDER BY id, version",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(PublishedForm {
                    id: r.try_get(0)?,
                    version: r.try_get::<_, i32>(1)? as u32,
                    definition: r.try_get(2)?,
                })
            })
            .collect()
    }

    fn form(&self, id: &str, version: u32) -> Result<Option<PublishedForm>, StorageError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT definition FROM forms WHERE id = $1 AND version = $2",
                &[&id, &(version as i32)],
            )?
            .map(|r| r.try_get::<_, String>(0))
            .transpose()?
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
        let station: Vec<&str> = rows.iter().map(|r| r.station.as_str()).collect();
        let region: Vec<Option<&str>> = rows.iter().map(|r| r.region.as_deref()).collect();
        let figures: Vec<String> = rows
            .iter()
            .map(|r| serde_json::to_string(&r.figures).expect("serialises"))
            .collect();
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Imports from several nodes or consoles queue here, as the
        // registry's do.
        tx.execute("LOCK TABLE official_versions IN EXCLUSIVE MODE", &[])?;
        let newest: Option<i32> = tx
            .query_one("SELECT MAX(version) FROM official_versions", &[])?
            .try_get(0)?;
        if newest.map(|v| v as u32) != base {
            return Ok(false);
        }
        let n = |v: u64| v as i64;
        tx.execute(
            "INSERT INTO official_versions
                 (version, imported_at, imported_by, source, digest, stations, added, changed, removed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &(version.version as i32),
                &version.imported_at_ms,
                &version.imported_by,
                &version.source,
                &version.digest.map(|d| d.to_string()),
                &n(version.stations),
                &n(version.added),
                &n(version.changed),
                &n(version.removed),
            ],
        )?;
        tx.execute(
            "INSERT INTO official_results (version, station, region, figures)
             SELECT $1, s, r, f FROM UNNEST($2::text[], $3::text[], $4::text[]) AS t(s, r, f)",
            &[&(version.version as i32), &station, &region, &figures],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn official_versions(&self) -> Result<Vec<OfficialVersion>, StorageError> {
        self.conn()?
            .query(
                "SELECT version, imported_at, imported_by, source, digest, stations, added, changed, removed
                 FROM official_versions ORDER BY version",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let version = r.try_get::<_, i32>(0)? as u32;
                let count = |i: usize| r.try_get::<_, i64>(i).map(|v| v as u64);
                Ok(OfficialVersion {
                    version,
                    imported_at_ms: r.try_get(1)?,
                    imported_by: r.try_get(2)?,
                    source: r.try_get(3)?,
                    digest: official_digest(version, r.try_get(4)?)?,
                    stations: count(5)?,
                    added: count(6)?,
                    changed: count(7)?,
                    removed: count(8)?,
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
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Imports from several nodes or consoles queue here: the newest
        // version is read and the next written under one lock.
        tx.execute("LOCK TABLE registry_versions IN EXCLUSIVE MODE", &[])?;
        let newest: Option<i32> = tx
            .query_one("SELECT MAX(version) FROM registry_versions", &[])?
            .try_get(0)?;
        if newest.map(|v| v as u32) != base {
            return Ok(false);
        }
        let n = |v: u64| v as i64;
        tx.execute(
            "INSERT INTO registry_versions (version, imported_at, digest, stations, added, changed, removed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &(version.version as i32),
                &version.imported_at_ms,
                &version.digest.to_string(),
                &n(version.stations),
                &n(version.added),
                &n(version.changed),
                &n(version.removed),
            ],
        )?;
        let col = |f: fn(&Station) -> &str| stations.iter().map(f).collect::<Vec<&str>>();
        let voters: Vec<i64> = stations
            .iter()
            .map(|s| s.registered_voters as i64)
            .collect();
        let lat: Vec<Option<f64>> = stations
            .iter()
            .map(|s| s.location.map(|l| l.latitude))
            .collect();
        let lon: Vec<Option<f64>> = stations
            .iter()
            .map(|s| s.location.map(|l| l.longitude))
            .collect();
        tx.execute(
            "INSERT INTO registry_stations (version, id, name, region, district, address, registered_voters, latitude, longitude)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::float8[], $9::float8[])",
            &[
                &(version.version as i32),
                &col(|s| &s.id),
                &col(|s| &s.name),
                &col(|s| &s.region),
                &col(|s| &s.district),
                &col(|s| &s.address),
                &voters,
                &lat,
                &lon,
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn registry_versions(&self) -> Result<Vec<RegistryVersion>, StorageError> {
        self.conn()?
            .query(
                "SELECT version, imported_at, digest, stations, added, changed, removed
                 FROM registry_versions ORDER BY version",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let version = r.try_get::<_, i32>(0)? as u32;
                let count = |i: usize| r.try_get::<_, i64>(i).map(|v| v as u64);
                Ok(RegistryVersion {
                    version,
                    imported_at_ms: r.try_get(1)?,
                    digest: r.try_get::<_, &str>(2)?.parse().map_err(|_| {
                        StorageError::Corrupt(format!("registry version {version}: digest"))
                    })?,
                    stations: count(3)?,
                    added: count(4)?,
                    changed: count(5)?,
                    removed: count(6)?,
                })
            })
            .collect()
    }

    fn registry_stations(&self, version: u32) -> Result<Vec<Station>, StorageError> {
        self.conn()?
            .query(
                "SELECT id, name, region, district, address, registered_voters, latitude, longitude
                 FROM registry_stations WHERE version = $1 ORDER BY id",
                &[&(version as i32)],
            )?
            .into_iter()
            .map(|r| {
                let lat: Option<f64> = r.try_get(6)?;
                let lon: Option<f64> = r.try_get(7)?;
                Ok(Station {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    region: r.try_get(2)?,
                    district: r.try_get(3)?,
                    address: r.try_get(4)?,
                    registered_voters: r.try_get::<_, i64>(5)? as u64,
                    location: lat
                        .zip(lon)
                        .map(|(latitude, longitude)| crate::registry::Location {
                            latitude,
                            longitude,
                        }),
                })
            })
            .collect()
    }

    fn append_audit(
        &self,
        seal: &mut dyn FnMut(Option<&AuditEntry>) -> AuditEntry,
    ) -> Result<AuditEntry, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Appends from every node and console queue here: the newest entry
        // is read and the next written under one lock.
        tx.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE", &[])?;
        let newest = tx
            .query_opt(
                "SELECT seq, at_ms, actor, action, subject, detail, prev, hash, sig
                 FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )?
            .map(|r| audit_row(&r))
            .transpose()?;
        let entry = seal(newest.as_ref());
        tx.execute(
            "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev, hash, sig)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &(entry.seq as i64),
                &entry.at_ms,
                &entry.actor,
                &entry.action,
                &entry.subject,
                &entry.detail,
                &entry.prev.to_string(),
                &entry.hash.to_string(),
                &entry.sig,
            ],
        )?;
        tx.commit()?;
        Ok(entry)
    }

    fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError> {
        self.conn()?
            .query(
                "SELECT seq, at_ms, actor, action, subject, detail, prev, hash, sig
                 FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&(after as i64), &i64::from(limit)],
            )?
            .iter()
            .map(audit_row)
            .collect()
    }

    fn audit_before(&self, before: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError> {
        self.conn()?
            .query(
                "SELECT seq, at_ms, actor, action, subject, detail, prev, hash, sig
                 FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&(before.min(i64::MAX as u64) as i64), &i64::from(limit)],
            )?
            .iter()
            .map(audit_row)
            .collect()
    }

    fn official_results(&self, version: u32) -> Result<Vec<OfficialResult>, StorageError> {
        self.conn()?
            .query(
                "SELECT station, region, figures FROM official_results WHERE version = $1 ORDER BY station",
                &[&(version.min(i32::MAX as u32) as i32)],
            )?
            .into_iter()
            .map(|r| {
                Ok(OfficialResult {
                    station: r.try_get(0)?,
                    region: r.try_get(1)?,
                    figures: serde_json::from_str(r.try_get::<_, &str>(2)?)
                        .map_err(|e| StorageError::Corrupt(format!("official figures: {e}")))?,
                })
            })
            .collect()
    }

    fn tree_head(&self) -> Result<TreeHead, StorageError> {
        let f = current_frontier(&mut *self.conn()?)?;
        Ok(TreeHead {
            size: f.size(),
            root: f.root(),
        })
    }
}
