//! Where review decisions and claims are kept, and what the queue, the
//! record view and the coverage view read: a trait of its own beside
//! [`super::Storage`], with its own conformance story.

use observer_core::record::RecordId;

use super::StorageError;
use crate::review::{
    ClaimOutcome, DecideOutcome, Decision, QueueFilter, QueueItem, ReviewState, Verdict,
};
use crate::triage::Phase;

/// The first report of one phase from one station.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationPhase {
    pub station: String,
    pub phase: Phase,
    /// Earliest capture time among its records (device clock).
    pub first_captured_ms: i64,
    /// When the first of them arrived.
    pub first_received_ms: i64,
    pub records: u64,
}

/// Review decisions, claims, and the queue's reads. A decision and the
/// state it leaves the record in change in one transaction; a claim is one
/// statement, so that two verifiers on two nodes cannot both hold a record.
pub trait ReviewStore: Send + Sync {
    /// Claims the record at `index` for `account` until `until_ms`, unless
    /// another account holds an unexpired claim (then says whose).
    fn claim(
        &self,
        index: u64,
        account: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<ClaimOutcome, StorageError>;

    /// Gives up `account`'s claim on `index`; false if it held none.
    fn release(&self, index: u64, account: &str) -> Result<bool, StorageError>;

    /// Stores `account`'s verdict on `index` (refused while another
    /// account's claim holds it) and releases `account`'s claim.
    fn decide(
        &self,
        index: u64,
        verdict: Verdict,
        account: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<DecideOutcome, StorageError>;

    /// Every decision on `index`, oldest first.
    fn decisions(&self, index: u64) -> Result<Vec<Decision>, StorageError>;

    /// Records in `state` matching `filter` (its `state` is ignored), by
    /// priority then arrival, from `filter.after`, at most `filter.limit`;
    /// claims shown only while unexpired at `now_ms`.
    fn queue_in(
        &self,
        state: ReviewState,
        filter: &QueueFilter,
        now_ms: i64,
    ) -> Result<Vec<QueueItem>, StorageError>;

    /// The record at `index`.
    fn item(&self, index: u64, now_ms: i64) -> Result<Option<QueueItem>, StorageError>;

    /// The record with id `id`.
    fn item_by_id(&self, id: &RecordId, now_ms: i64) -> Result<Option<QueueItem>, StorageError>;

    /// Records that say they correct `id`, by arrival.
    fn corrections_of(&self, id: &RecordId, now_ms: i64) -> Result<Vec<QueueItem>, StorageError>;

    /// Reports of `category` at `station` captured between `from_ms` and
    /// `to_ms`, by capture time, at most [`MAX_REPORTS`].
    fn reports(
        &self,
        station: &str,
        category: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<QueueItem>, StorageError>;

    /// Which station reported on which phase, and since when.
    fn station_phases(&self) -> Result<Vec<StationPhase>, StorageError>;

    /// Every device with its counters (no chain is read).
    fn field_devices(&self) -> Result<Vec<FieldDevice>, StorageError>;
}

/// A device as coverage sees it: its counters, not its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDevice {
    pub id: observer_core::identity::DeviceId,
    pub name: Option<String>,
    pub stations: Vec<String>,
    pub last_contact_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// Its newest seq held when it was revoked.
    pub revoked_after_seq: Option<u64>,
    /// Records held.
    pub held: u64,
    /// Highest seq held.
    pub max_seq: u64,
    /// Highest seq its heartbeats declared.
    pub declared: u64,
    /// Records kept in quarantine (sent after its revocation).
    pub quarantined: u64,
}

impl FieldDevice {
    /// Records known to exist (from its chain and its heartbeats) but not
    /// held: possible deletions. A revoked device's records after its
    /// revocation are in quarantine or were never wanted, so they are
    /// never counted here.
    pub fn missing(&self) -> u64 {
        let mut known = self.max_seq.max(self.declared);
        if let Some(after) = self.revoked_after_seq {
            known = known.min(after);
        }
        known.saturating_sub(self.held)
    }
}

/// The columns a [`FieldDevice`] is read from.
pub(crate) const FIELD_DEVICE_SQL: &str = "SELECT d.id, d.name, d.stations, d.last_contact, \
     d.revoked_at, d.revoked_after_seq, d.held, d.max_seq, coalesce(d.hb_seq, 0), \
     (SELECT count(*) FROM quarantine q WHERE q.device = d.id) FROM devices d ORDER BY d.enrolled_at, d.id";

/// Reports of one category at one station that [`ReviewStore::reports`]
/// answers at most (a corroboration count past it says "at least").
pub const MAX_REPORTS: u32 = 500;

/// A stored review state that does not parse is corruption.
pub(crate) fn state(text: &str) -> Result<ReviewState, StorageError> {
    text.parse().map_err(|_| {
        StorageError::Corrupt(format!("a record has the unknown review state {text:?}"))
    })
}

/// A stored phase that does not parse is corruption.
pub(crate) fn phase(text: Option<&str>) -> Result<Option<Phase>, StorageError> {
    text.map(phase_of).transpose()
}

/// [`phase`] of a column that always holds one.
pub(crate) fn phase_of(text: &str) -> Result<Phase, StorageError> {
    text.parse()
        .map_err(|_| StorageError::Corrupt(format!("a row has the unknown phase {text:?}")))
}

/// The queue's columns, the same on both backends (`r` is `records`, `d`
/// its device, `c` an unexpired claim).
pub(crate) const ITEM_COLUMNS: &str = "r.log_index, r.id, r.device, r.seq, r.station, r.kind, \
     r.category, r.priority, r.phase, r.review, r.captured_at, r.received_at, r.supersedes, \
     d.revoked_at IS NOT NULL, c.account, c.until_ms";

/// A value bound to a queue query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// The `WHERE` clause of a queue page and its values, the same on both
/// backends; `mark(n)` writes the n-th placeholder (`?n` or `$n`).
/// Integers are cast to BIGINT where the column is narrower, so that
/// PostgreSQL infers a 64-bit parameter.
/// `now_ms` is the first value (the claims' join uses it).
pub(crate) fn queue_query(
    state: ReviewState,
    f: &QueueFilter,
    now_ms: i64,
    mark: fn(usize) -> String,
) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Int(now_ms), Arg::Text(state.as_str().into())];
    let mut sql = format!(
        "SELECT {ITEM_COLUMNS} FROM records r JOIN devices d ON d.id = r.device \
         LEFT JOIN claims c ON c.log_index = r.log_index AND c.until_ms > {} \
         WHERE r.review = {}",
        mark(1),
        mark(2)
    );
    let mut push = |sql: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('#', &mark(args.len())));
    };
    if let Some(c) = &f.category {
        push(&mut sql, " AND r.category = #", Arg::Text(c.clone()));
    }
    if let Some(p) = f.phase {
        push(&mut sql, " AND r.phase = #", Arg::Text(p.as_str().into()));
    }
    if let Some(s) = &f.station {
        push(&mut sql, " AND r.station = #", Arg::Text(s.clone()));
    }
    if let Some(t) = f.since_ms {
        push(&mut sql, " AND r.received_at >= #", Arg::Int(t));
    }
    if let Some((version, region)) = &f.region {
        push(
            &mut sql,
            " AND r.station IN (SELECT id FROM registry_stations WHERE version = CAST(# AS BIGINT)",
            Arg::Int(*version as i64),
        );
        push(&mut sql, " AND region = #)", Arg::Text(region.clone()));
    }
    // A cursor reads the rest of its own priority only (an equality and a
    // range: one seek in the queue's index; a row-value comparison was
    // walked from the start of the priority on SQLite, 100 ms at 900,000
    // records in); `review::queue` asks for the next priorities apart.
    if let Some(after) = f.after {
        push(
            &mut sql,
            " AND r.priority = CAST(# AS BIGINT)",
            Arg::Int(after.priority.rank()),
        );
        push(
            &mut sql,
            " AND r.log_index > #",
            Arg::Int(after.index as i64),
        );
    }
    if let Some(p) = f.from_priority {
        push(
            &mut sql,
            " AND r.priority >= CAST(# AS BIGINT)",
            Arg::Int(p.rank()),
        );
    }
    // A region's records are found station by station (the index on
    // `(station, review, priority, log_index)`) and sorted, rather than
    // by walking the whole queue for the few that are in the region: the
    // `+ 0` keeps the planner off the queue's index.
    let order = if f.region.is_some() {
        " ORDER BY r.priority + 0, r.log_index LIMIT #"
    } else {
        " ORDER BY r.priority, r.log_index LIMIT #"
    };
    push(
        &mut sql,
        order,
        Arg::Int(f.limit.min(crate::review::MAX_PAGE) as i64),
    );
    (sql, args)
}
