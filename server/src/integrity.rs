//! Is what the server holds what the phones signed? Someone with the
//! server's disk (a seized laptop, an operator) can edit its database while
//! it is stopped. Two checks find that:
//!
//! - [`quick`], before `serve` takes a connection: the log's size against
//!   the records, the log root recomputed from every record id (a
//!   removed, reordered or replaced record changes it), and the newest
//!   records in full. A server that fails it refuses to start.
//! - [`full`], `observer-server verify`: every record in full (its id is
//!   the SHA-256 of its body, the enrolled device's signature verifies, the
//!   body says what the row's columns say), every device's chain, the root.
//!
//! Neither can catch a rewrite of the whole database together with its log
//! (the attacker has the disk); the signed tree heads that phones hold are
//! what prove that (`docs/threat-model.md`).

use std::collections::HashMap;

use observer_core::identity::{DeviceId, PublicKey};
use observer_core::merkle::{Frontier, leaf_hash};
use observer_core::record::{ChainFault, ChainVerifier, Envelope, RecordId, verify_envelope};

use crate::reader::Reader;
use crate::storage::{RecordFilter, RecordRow, Storage, StorageError};

/// Records checked in full by [`quick`].
pub const QUICK_NEWEST: u64 = 256;

/// What is wrong with one stored record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The body does not hash to the id it is stored under.
    #[error("its body hashes to {actual}, not to its id")]
    AlteredBody { actual: RecordId },
    /// The signature does not verify under the enrolled device's key.
    #[error("its signature does not verify under the device's enrolled key ({0})")]
    BadSignature(String),
    /// The row names a device that is not enrolled.
    #[error("its device is not enrolled here")]
    UnknownDevice,
    /// A column says something the signed body does not.
    #[error("its {column} column does not match its signed body")]
    ColumnMismatch { column: &'static str },
}

/// One finding: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The record's log index.
    pub index: u64,
    /// The id it is stored under.
    pub id: RecordId,
    /// What is wrong.
    pub problem: Problem,
}

/// The outcome of a check.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Records checked in full.
    pub checked: u64,
    /// Records in the log.
    pub leaves: u64,
    /// Altered or unverifiable records (at most [`MAX_FINDINGS`] kept).
    pub findings: Vec<Finding>,
    /// Findings beyond those kept.
    pub more_findings: u64,
    /// Whether the log root recomputed from the records matches the
    /// stored log head (and the sizes agree).
    pub root_matches: bool,
    /// Whether the log's stored nodes (what its proofs are made of) are
    /// the ones its records give: a proof from a wrong node would accuse
    /// the coordinator of rewriting its log.
    pub nodes_match: bool,
    /// Broken links and forks in the devices' chains, as their signed
    /// bodies declare them (the devices' own faults, also shown by
    /// `devices`; counted here so `verify` says everything).
    pub chain_faults: u64,
}

/// Findings kept in a report; the rest are counted.
pub const MAX_FINDINGS: usize = 1000;

impl Report {
    /// No altered record and a matching root.
    pub fn is_intact(&self) -> bool {
        self.root_matches && self.nodes_match && self.findings.is_empty() && self.more_findings == 0
    }

    fn find(&mut self, index: u64, id: RecordId, problem: Problem) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding { index, id, problem });
        } else {
            self.more_findings += 1;
        }
    }
}

/// Every enrolled device's key, read up front: record streams hold the
/// database while they run, so nothing may be looked up inside them.
pub struct DeviceKeys(HashMap<DeviceId, PublicKey>);

impl DeviceKeys {
    /// The keys `storage` holds now.
    pub fn load(storage: &dyn Storage) -> Result<Self, StorageError> {
        Ok(Self(storage.device_keys()?.into_iter().collect()))
    }

    /// The enrolled key of `device`, if it is enrolled.
    pub fn of(&self, device: &DeviceId) -> Option<&PublicKey> {
        self.0.get(device)
    }
}

/// Checks one stored record against its device's key; on success, the
/// `(seq, prev)` its signed body declares.
pub fn check_row(
    row: &RecordRow,
    key: Option<&PublicKey>,
) -> Result<(u64, Option<RecordId>), Problem> {
    let actual = RecordId::of(&row.body);
    if actual != row.id {
        return Err(Problem::AlteredBody { actual });
    }
    let key = key.ok_or(Problem::UnknownDevice)?;
    let sig: [u8; 64] = row
        .sig
        .as_slice()
        .try_into()
        .map_err(|_| Problem::BadSignature("not 64 bytes".into()))?;
    let env = Envelope {
        body: row.body.clone(),
        sig,
    };
    let rec = verify_envelope(&env, key).map_err(|e| Problem::BadSignature(e.to_string()))?;
    let b = &rec.body;
    let column = if b.device != row.device {
        Some("device")
    } else if b.seq != row.seq {
        Some("seq")
    } else if b.station.as_str() != row.station {
        Some("station")
    } else if b.kind.as_str() != row.kind {
        Some("kind")
    } else if b.captured_at.timestamp_millis() != row.captured_at_ms {
        Some("captured_at")
    } else {
        None
    };
    match column {
        Some(column) => Err(Problem::ColumnMismatch { column }),
        None => Ok((b.seq, b.prev)),
    }
}

/// Stored log nodes compared per read.
const NODES_PER_READ: usize = 1024;

/// Recomputes the log root and its stored nodes from every record id and
/// compares them with the stored head and nodes.
fn check_root(storage: &dyn Storage, report: &mut Report) -> Result<(), StorageError> {
    let mut frontier = Frontier::new();
    let mut in_order = true;
    let mut nodes = Vec::new();
    storage.log_leaves(&mut |index, id| {
        in_order &= index == frontier.size();
        frontier.push_keeping(leaf_hash(id.as_bytes()), &mut nodes);
        Ok(())
    })?;
    let head = storage.tree_head()?;
    report.leaves = frontier.size();
    report.root_matches = in_order && head.size == frontier.size() && head.root == frontier.root();
    report.nodes_match = true;
    for part in nodes.chunks(NODES_PER_READ) {
        let ids: Vec<_> = part.iter().map(|(id, _)| *id).collect();
        let held = storage.log_hashes(&ids)?.hashes;
        report.nodes_match &= part.iter().all(|(id, hash)| held.get(id) == Some(hash));
    }
    Ok(())
}

/// The check `serve` runs before it takes a connection.
pub fn quick(reader: &Reader<'_>) -> Result<Report, StorageError> {
    let storage = reader.storage();
    let mut report = Report::default();
    check_root(storage, &mut report)?;
    let keys = DeviceKeys::load(storage)?;
    let newest = RecordFilter {
        newest: Some(QUICK_NEWEST),
        ..RecordFilter::default()
    };
    let mut rows = Vec::new();
    reader.records(&newest, &mut |row| {
        rows.push(row);
        Ok(())
    })?;
    for row in rows {
        report.checked += 1;
        if let Err(problem) = check_row(&row, keys.of(&row.device)) {
            report.find(row.index, row.id, problem);
        }
    }
    Ok(report)
}

/// Every record in full, every chain, the root (`observer-server verify`).
pub fn full(reader: &Reader<'_>) -> Result<Report, StorageError> {
    let storage = reader.storage();
    let mut report = Report::default();
    check_root(storage, &mut report)?;
    let keys = DeviceKeys::load(storage)?;
    let mut chains: HashMap<DeviceId, Vec<(u64, RecordId, Option<RecordId>)>> = HashMap::new();
    reader.records(&RecordFilter::default(), &mut |row| {
        report.checked += 1;
        match check_row(&row, keys.of(&row.device)) {
            Ok((seq, prev)) => chains
                .entry(row.device.clone())
                .or_default()
                .push((seq, row.id, prev)),
            Err(problem) => report.find(row.index, row.id, problem),
        }
        Ok(())
    })?;
    for (_, mut links) in chains {
        links.sort_unstable_by_key(|l| l.0);
        let mut v = ChainVerifier::new();
        for (seq, id, prev) in links {
            v.push(seq, id, prev);
        }
        let faults = v.finish(None).faults;
        report.chain_faults += faults
            .iter()
            .filter(|f| !matches!(f, ChainFault::Missing { .. }))
            .count() as u64;
    }
    Ok(report)
}
