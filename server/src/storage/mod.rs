//! Where the coordinator's data lives, behind one trait so the HTTP layer
//! does not know which database holds it. [`sqlite::SqliteStorage`] is the
//! embedded default (a laptop); a PostgreSQL backend for a national
//! deployment implements the same trait.
//!
//! Every method is blocking; the HTTP layer calls them on tokio's blocking
//! pool. Records reach [`Storage::ingest`] already verified: the storage
//! only decides "new, already held, or conflicting" and commits atomically.

pub mod accounts;
pub mod postgres;
pub mod review;
pub mod sms;
pub mod sqlite;

use std::collections::HashMap;

use observer_core::identity::{DeviceId, PublicKey};
use observer_core::merkle::{NodeId, TreeHead};
use observer_core::protocol::Heartbeat;
use observer_core::record::{ChainFault, ChainHead, RecordId, Sha256Digest, VerifiedRecord};
use observer_core::seal::SealedRecord;
use serde::Serialize;

pub use crate::audit::AuditEntry;
pub use crate::receipts::StoredReceipt;
pub use crate::registry::{RegistryVersion, Station};
pub use accounts::AccountStore;
pub use review::ReviewStore;
pub use sms::{SmsLogEntry, SmsStore, WaitingSms};

/// A storage failure (not a refusal: those are typed outcomes), by kind:
/// what an operator does about a busy database differs from a full disk.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another writer held the database for too long: retry.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached or opened (a missing file, an I/O
    /// error, a server down).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full: nothing was written.
    #[error("the database's disk is full")]
    DiskFull,
    /// A constraint refused a write (a bug or a concurrent writer: the
    /// transaction was rolled back whole).
    #[error("a database constraint refused the write: {0}")]
    Constraint(String),
    /// The database is from a newer Observer; left untouched.
    #[error(
        "the database uses schema version {found}, newer than this observer-server understands ({supported}); update observer-server"
    )]
    TooNew { found: u32, supported: u32 },
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
    /// The database holds something this code cannot read.
    #[error("the server database is damaged: {0}")]
    Corrupt(String),
    /// Whoever a streamed read handed rows to could not take them (an
    /// output closed, say): not the database's failure.
    #[error("writing the output failed: {0}")]
    Output(#[source] std::io::Error),
}

impl StorageError {
    /// The same failure, for a second waiter: a group commit that fails
    /// fails every batch in it, each with the kind of the one failure.
    pub fn duplicate(&self) -> StorageError {
        match self {
            StorageError::Busy => StorageError::Busy,
            StorageError::Unavailable(m) => StorageError::Unavailable(m.clone()),
            StorageError::DiskFull => StorageError::DiskFull,
            StorageError::Constraint(m) => StorageError::Constraint(m.clone()),
            StorageError::TooNew { found, supported } => StorageError::TooNew {
                found: *found,
                supported: *supported,
            },
            StorageError::Database(m) => StorageError::Database(m.clone()),
            StorageError::Corrupt(m) => StorageError::Corrupt(m.clone()),
            StorageError::Output(e) => StorageError::Database(e.to_string()),
        }
    }

    /// A short, stable name of the kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Busy => "busy",
            StorageError::Unavailable(_) => "unavailable",
            StorageError::DiskFull => "disk_full",
            StorageError::Constraint(_) => "constraint",
            StorageError::TooNew { .. } => "too_new",
            StorageError::Database(_) => "database",
            StorageError::Corrupt(_) => "corrupt",
            StorageError::Output(_) => "output",
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => StorageError::Busy,
            Some(C::DiskFull) => StorageError::DiskFull,
            Some(C::CannotOpen | C::SystemIoFailure | C::ReadOnly | C::PermissionDenied) => {
                StorageError::Unavailable(e.to_string())
            }
            Some(C::ConstraintViolation) => StorageError::Constraint(e.to_string()),
            Some(C::DatabaseCorrupt | C::NotADatabase) => StorageError::Corrupt(e.to_string()),
            _ => StorageError::Database(e.to_string()),
        }
    }
}

impl From<observer_core::store::StoreError> for StorageError {
    fn from(e: observer_core::store::StoreError) -> Self {
        use observer_core::store::StoreError as S;
        match e {
            S::Busy => StorageError::Busy,
            S::DiskFull => StorageError::DiskFull,
            S::TooNew { found, supported } => StorageError::TooNew { found, supported },
            S::Sqlite(e) => e.into(),
            S::NotWritable { .. } | S::NoWal(_) => StorageError::Unavailable(e.to_string()),
            S::Corrupt { .. } => StorageError::Corrupt(e.to_string()),
            other => StorageError::Database(other.to_string()),
        }
    }
}

/// A one-time enrollment token, stored only as its hash.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// SHA-256 of the token text.
    pub hash: Sha256Digest,
    /// Stations the enrolled observer is assigned to.
    pub stations: Vec<String>,
    /// The observer's name, as the coordinator wrote it.
    pub name: Option<String>,
    /// When the token stops working, ms since the epoch.
    pub expires_at_ms: i64,
}

/// An enrollment code as the workspace lists it (never the code, which
/// is not kept: only its hash is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedCode {
    pub name: Option<String>,
    pub stations: Vec<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    /// The device that enrolled with it.
    pub device: Option<String>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// No such token was issued.
    Unknown,
    /// It was used already (by another device).
    Used,
    /// It expired.
    Expired,
    /// The key belongs to a device the coordinator revoked: a new code does
    /// not bring it back (the code stays unused).
    DeviceRevoked,
}

/// An enrolled device.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceInfo {
    /// Its id (derived from its key).
    pub id: DeviceId,
    /// Its public key.
    #[serde(serialize_with = "as_text")]
    pub key: PublicKey,
    /// The observer's name.
    pub name: Option<String>,
    /// Assigned stations.
    pub stations: Vec<String>,
    /// Enrollment time, ms since the epoch.
    pub enrolled_at_ms: i64,
    /// Revocation time, if revoked.
    pub revoked_at_ms: Option<i64>,
    /// Last contact, ms since the epoch.
    pub last_contact_ms: Option<i64>,
}

fn as_text<S: serde::Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// A verified record on its way into storage.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The record, its signature checked.
    pub record: VerifiedRecord,
    /// Its check against its form (and its filing flags).
    pub check: FormCheck,
    /// When it travelled sealed to the organisation: what is stored in
    /// place of its body and signature, so that it rests sealed and is
    /// opened only in memory, by a reader holding the organisation's key.
    pub sealed: Option<SealedRecord>,
}

/// What happened to one record of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now, at this log index.
    Accepted { index: u64 },
    /// Held already, at this log index.
    Already { index: u64 },
    /// Another record holds this device's seq: kept aside as a conflict.
    Conflict { existing: RecordId },
    /// The device was revoked and this record's seq is after the last one
    /// received before revocation: kept in quarantine, never dropped.
    Quarantined,
}

/// One device's verified batch, on its way into a group commit.
#[derive(Clone, Debug)]
pub struct IngestBatch {
    /// The sending device (enrolled).
    pub device: DeviceId,
    /// Its heartbeat; none from a wiped phone delivering its sealed outbox.
    pub heartbeat: Option<Heartbeat>,
    /// Its verified records, in batch order.
    pub records: Vec<Incoming>,
}

/// The result of committing one batch.
#[derive(Clone, Debug)]
pub struct IngestResult {
    /// One outcome per record, in batch order.
    pub outcomes: Vec<Outcome>,
    /// The log's head after the commit.
    pub tree: TreeHead,
}

impl IngestResult {
    /// One result per batch of a committed group, in order, each with the
    /// tree head after the whole group (`frontier`).
    pub(crate) fn for_group(
        outcomes: Vec<Vec<Outcome>>,
        frontier: &observer_core::merkle::Frontier,
    ) -> Vec<IngestResult> {
        let tree = TreeHead {
            size: frontier.size(),
            root: frontier.root(),
        };
        outcomes
            .into_iter()
            .map(|outcomes| IngestResult { outcomes, tree })
            .collect()
    }
}

/// A device as the coordinator sees it: what arrived, what is known to
/// exist, what is missing.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceView {
    /// The device.
    #[serde(flatten)]
    pub info: DeviceInfo,
    /// Records held.
    pub records: u64,
    /// Highest seq such that 1..=seq are all held.
    pub contiguous: u64,
    /// The newest `(seq, id)` the device declared in a heartbeat.
    pub heartbeat: Option<ChainHead>,
    /// Missing ranges (possible deletions), broken links, forks.
    pub faults: Vec<ChainFault>,
    /// Records refused because another record holds their seq.
    pub conflicts: u64,
    /// Records that arrived after revocation, held in quarantine.
    pub quarantined: u64,
}

impl DeviceView {
    /// Seq numbers known to exist (from records or heartbeats) but not held.
    /// How many records are known to exist but not held.
    pub fn missing_count(&self) -> u64 {
        self.missing().map(|r| r.last - r.first + 1).sum()
    }

    /// The missing ranges.
    pub fn missing(&self) -> impl Iterator<Item = observer_core::record::SeqRange> + '_ {
        self.faults.iter().filter_map(|f| match f {
            ChainFault::Missing { range } => Some(*range),
            _ => None,
        })
    }
}

/// A stored record.
#[derive(Clone, Debug)]
pub struct RecordRow {
    /// Leaf index in the log.
    pub index: u64,
    /// The record's id.
    pub id: RecordId,
    /// The device.
    pub device: DeviceId,
    /// Its seq.
    pub seq: u64,
    /// Its station.
    pub station: String,
    /// Its kind.
    pub kind: String,
    /// Capture time (device clock), ms since the epoch.
    pub captured_at_ms: i64,
    /// Arrival time, ms since the epoch.
    pub received_at_ms: i64,
    /// The signed body (empty while the row is still sealed).
    pub body: Vec<u8>,
    /// The device's signature (empty while the row is still sealed).
    pub sig: Vec<u8>,
    /// The record as it rests when it arrived sealed: opened by
    /// `crate::reader`, never stored in the clear.
    pub sealed: Option<SealedRecord>,
    /// The check against its form, when the form was known.
    pub check: Option<FormCheck>,
    /// Media it references that have not arrived complete (hash checked).
    pub media_missing: u64,
}

/// Which records to read.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Only this station's.
    pub station: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this device's.
    pub device: Option<DeviceId>,
    /// Only the record at this log index.
    pub index: Option<u64>,
    /// At most this many, newest first when set (oldest first otherwise).
    pub newest: Option<u64>,
}

/// Totals for the coordinator's overview.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Enrolled devices.
    pub devices: u64,
    /// Revoked devices.
    pub revoked: u64,
    /// Records held.
    pub records: u64,
    /// Distinct stations with records.
    pub stations: u64,
}

/// How a record's answers fared against its form, computed by the HTTP
/// layer and stored beside the record.
#[derive(Clone, Debug, PartialEq)]
pub struct FormCheck {
    /// No invalid answer and no failed error rule.
    pub clean: bool,
    /// The validation result as JSON (problems and findings).
    pub json: String,
}

/// A published form version.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedForm {
    pub id: String,
    pub version: u32,
    /// The definition, JSON text exactly as published.
    pub definition: String,
}

/// One station's official results, as the election commission published them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OfficialResult {
    pub station: String,
    pub region: Option<String>,
    /// Figure name (as in the counting form: `ballots_cast`, `party_1`, ...) to value.
    pub figures: std::collections::BTreeMap<String, i64>,
}

/// One imported version of the official results. The commission corrects
/// its figures; every import is kept whole, beside the ones before it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OfficialVersion {
    /// 1 for the first import, then one more per import that changed them.
    pub version: u32,
    pub imported_at_ms: i64,
    /// Who imported it (the audit log's actor).
    pub imported_by: String,
    /// The file's name as given.
    pub source: String,
    /// SHA-256 of the file's bytes, to check it against the one the
    /// commission published (none for results imported before versions).
    pub digest: Option<Sha256Digest>,
    pub stations: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

/// The coordinator's storage.
pub trait Storage: Send + Sync + 'static {
    /// Stores a new enrollment token.
    fn add_token(&self, token: &NewToken, now_ms: i64) -> Result<(), StorageError>;

    /// The newest `limit` enrollment codes issued, newest first.
    fn codes(&self, limit: u32) -> Result<Vec<IssuedCode>, StorageError>;

    /// Consumes the token with this hash for `device`, atomically: a token
    /// works once. Re-enrolling the same key with a new token updates its
    /// stations (and its name, if one is given); a revoked key is refused
    /// and the token left unused.
    fn enroll(
        &self,
        token_hash: &Sha256Digest,
        key: &PublicKey,
        name: Option<&str>,
        now_ms: i64,
    ) -> Result<Result<DeviceInfo, TokenProblem>, StorageError>;

    /// The device with this id, if enrolled.
    fn device(&self, id: &DeviceId) -> Result<Option<DeviceInfo>, StorageError>;

    /// Assigns a device to `stations` (it learns them at its next sync);
    /// returns false if there is no such device.
    fn assign(&self, id: &DeviceId, stations: &[String]) -> Result<bool, StorageError>;

    /// Marks a device revoked; returns false if there is no such device.
    fn revoke(&self, id: &DeviceId, now_ms: i64) -> Result<bool, StorageError>;

    /// Commits several devices' batches in one transaction (a group
    /// commit: one durable write, one log append, one frontier update for
    /// all of them). Within the group, batches are decided in order, each
    /// exactly as if committed alone after the ones before it: for each,
    /// the heartbeat (none from a wiped phone delivering its sealed
    /// outbox), then each verified record (stored once, by id; a different
    /// record at a held seq is kept aside as a conflict; a sealed one rests
    /// sealed), appended to the log. Either every batch of the group is
    /// stored or none is. Every result carries the tree head after the
    /// whole group, which includes every index any of them lists.
    fn ingest_group(
        &self,
        batches: &[&IngestBatch],
        now_ms: i64,
    ) -> Result<Vec<IngestResult>, StorageError>;

    /// [`Storage::ingest_group`] for one batch.
    fn ingest(
        &self,
        device: &DeviceId,
        heartbeat: Option<&Heartbeat>,
        records: &[Incoming],
        now_ms: i64,
    ) -> Result<IngestResult, StorageError> {
        let batch = IngestBatch {
            device: device.clone(),
            heartbeat: heartbeat.cloned(),
            records: records.to_vec(),
        };
        let mut results = self.ingest_group(&[&batch], now_ms)?;
        results
            .pop()
            .ok_or_else(|| StorageError::Database("a group commit answered no batch".into()))
    }

    /// Stores a form version (already checked); false if that id and
    /// version exist (published versions are never changed).
    fn publish_form(&self, form: &PublishedForm, now_ms: i64) -> Result<bool, StorageError>;

    /// Every published form version, by id then version.
    fn forms(&self) -> Result<Vec<PublishedForm>, StorageError>;

    /// One published form version.
    fn form(&self, id: &str, version: u32) -> Result<Option<PublishedForm>, StorageError>;

    /// Stores `rows` as official results version `version.version`, in one
    /// transaction, if the newest version is still `base` (`None`: none
    /// imported yet). `false`, and nothing stored, when another import came
    /// first: its changes were not the ones listed to the user.
    fn import_official(
        &self,
        base: Option<u32>,
        version: &OfficialVersion,
        rows: &[OfficialResult],
    ) -> Result<bool, StorageError>;

    /// Every official results version, oldest first.
    fn official_versions(&self) -> Result<Vec<OfficialVersion>, StorageError>;

    /// The official results of `version`, by station.
    fn official_results(&self, version: u32) -> Result<Vec<OfficialResult>, StorageError>;

    /// The newest official results, by station (none before an import).
    fn official(&self) -> Result<Vec<OfficialResult>, StorageError> {
        match self.official_versions()?.pop() {
            Some(v) => self.official_results(v.version),
            None => Ok(Vec::new()),
        }
    }

    /// Stores `stations` as registry version `version.version`, in one
    /// transaction, if the newest version is still `base` (`None`: no
    /// registry yet). `false`, and nothing stored, when another import
    /// came first: its changes were not the ones listed to the user.
    fn import_registry(
        &self,
        base: Option<u32>,
        version: &RegistryVersion,
        stations: &[Station],
    ) -> Result<bool, StorageError>;

    /// Appends the audit entry `seal` makes from the newest one (`None`:
    /// the log is empty), in one transaction under a lock, so that
    /// appends from several nodes or consoles form one chain.
    fn append_audit(
        &self,
        seal: &mut dyn FnMut(Option<&AuditEntry>) -> AuditEntry,
    ) -> Result<AuditEntry, StorageError>;

    /// At most `limit` audit entries after seq `after`, oldest first.
    fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError>;

    /// At most `limit` audit entries before seq `before`, newest first
    /// (the workspace pages backwards from the newest).
    fn audit_before(&self, before: u64, limit: u32) -> Result<Vec<AuditEntry>, StorageError>;

    /// Every registry version, oldest first.
    fn registry_versions(&self) -> Result<Vec<RegistryVersion>, StorageError>;

    /// The stations of registry version `version`, by id.
    fn registry_stations(&self, version: u32) -> Result<Vec<Station>, StorageError>;

    /// Every device with its chain state.
    fn devices(&self) -> Result<Vec<DeviceView>, StorageError>;

    /// Records matching `filter`, streamed to `each` (constant memory).
    fn records(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(RecordRow) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// The size a held record of `device` declares for media `sha256`;
    /// `None` if none of its held records references it (then that device
    /// may not upload it: what another device declared never counts).
    fn expected_media(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
    ) -> Result<Option<u64>, StorageError>;

    /// Every enrolled device's id and key (revoked ones too).
    fn device_keys(&self) -> Result<Vec<(DeviceId, PublicKey)>, StorageError>;

    /// Every log leaf's record id, by log index, streamed (ids only: the
    /// integrity check at start recomputes the root from them).
    fn log_leaves(
        &self,
        each: &mut dyn FnMut(u64, RecordId) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// The log's stored hashes named in `nodes`: a leaf (level 0) is the
    /// leaf hash of the record at that index, a higher level a stored
    /// node ([`observer_core::merkle::STRIDE`]). One read for a whole
    /// proof, with the log's size; what the log does not hold is left out
    /// (the proof then names the missing node).
    fn log_hashes(&self, nodes: &[NodeId]) -> Result<LogHashes, StorageError>;

    /// Answers when the database can be read (for the health check).
    fn ping(&self) -> Result<(), StorageError>;

    /// A value of the coordinator's own (its wrapped keys, how they are
    /// wrapped), by name.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Writes several of those values in one transaction: all or none (the
    /// wrapped keys and the description of their lock change together).
    fn set_metas(&self, values: &[(&str, Vec<u8>)]) -> Result<(), StorageError>;

    /// Records that media `sha256` arrived complete, its hash checked.
    fn media_complete(
        &self,
        sha256: &Sha256Digest,
        bytes: u64,
        now_ms: i64,
    ) -> Result<(), StorageError>;

    /// Whether media `sha256` arrived complete, its hash checked.
    fn media_held(&self, sha256: &Sha256Digest) -> Result<bool, StorageError>;

    /// Appends signed receipts, in one transaction.
    fn put_receipts(&self, receipts: &[StoredReceipt]) -> Result<(), StorageError>;

    /// The receipts kept for any of `devices`, in the order kept. Reads
    /// the whole archive (it has no index to keep its appends cheap): for
    /// exports, not for answering syncs.
    fn receipts(
        &self,
        devices: &std::collections::BTreeSet<DeviceId>,
    ) -> Result<Vec<StoredReceipt>, StorageError>;

    /// Overview numbers.
    fn totals(&self) -> Result<Totals, StorageError>;

    /// The log's current head.
    fn tree_head(&self) -> Result<TreeHead, StorageError>;

    /// The coordinators' accounts and sessions, in the same database.
    fn account_store(&self) -> &dyn AccountStore;

    /// Review decisions, claims and the queue, in the same database.
    fn review_store(&self) -> &dyn ReviewStore;

    /// SMS report parts and the SMS log.
    fn sms_store(&self) -> &dyn SmsStore;
}

/// Stored hashes of the log, and its size when they were read: every node
/// of a tree no larger than that size is stored and never changes.
#[derive(Debug, Default)]
pub struct LogHashes {
    /// The log's size.
    pub size: u64,
    /// The hashes asked for that the log holds.
    pub hashes: HashMap<NodeId, Sha256Digest>,
}

/// A stored official version's file digest, read back.
pub(crate) fn official_digest(
    version: u32,
    text: Option<&str>,
) -> Result<Option<Sha256Digest>, StorageError> {
    text.map(|t| {
        t.parse().map_err(|_| {
            StorageError::Corrupt(format!("official results version {version}: digest"))
        })
    })
    .transpose()
}
