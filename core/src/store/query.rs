//! Reading the outbox: by state, station, kind and capture time, in pages.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::Value as SqlValue;

use super::{DeliveryState, Store, StoreError, encrypted};
use crate::at_rest::DataKey;
use crate::identity::DeviceId;
use crate::record::{Envelope, RecordId};
use crate::seal::SealedRecord;

/// Which delivery states a query selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFilter {
    /// Not yet handed to sync.
    Pending,
    /// Handed to sync, not yet acknowledged.
    InFlight,
    /// Acknowledged by a verified receipt.
    Delivered,
    /// Pending or in flight: everything still on its way.
    Undelivered,
    /// Refused by the coordinator (kept, with the reason).
    Rejected,
}

impl StateFilter {
    fn sql(self) -> &'static str {
        match self {
            StateFilter::Pending => "r.state = 0",
            StateFilter::InFlight => "r.state = 1",
            StateFilter::Delivered => "r.state = 2",
            StateFilter::Undelivered => "r.state IN (0, 1)",
            StateFilter::Rejected => "r.state = 3",
        }
    }
}

/// A filter over stored records, in chain order. Pages with
/// [`Query::after_seq`] + [`Query::limit`] (keyset paging), so listing a
/// million records holds only one page in memory.
///
/// ```
/// use observer_core::store::{Query, StateFilter};
/// let first_page = Query::new().state(StateFilter::Pending).limit(100);
/// let next_page = first_page.clone().after_seq(100);
/// # let _ = next_page;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Query {
    state: Option<StateFilter>,
    station: Option<String>,
    kind: Option<String>,
    captured_from: Option<DateTime<Utc>>,
    captured_before: Option<DateTime<Utc>>,
    after_seq: Option<u64>,
    limit: Option<u32>,
}

impl Query {
    /// Every record.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only records in this delivery state.
    pub fn state(mut self, s: StateFilter) -> Self {
        self.state = Some(s);
        self
    }
    /// Only records for this station.
    pub fn station(mut self, s: impl Into<String>) -> Self {
        self.station = Some(s.into());
        self
    }
    /// Only records of this kind.
    pub fn kind(mut self, k: impl Into<String>) -> Self {
        self.kind = Some(k.into());
        self
    }
    /// Only records captured at or after `t`.
    pub fn captured_from(mut self, t: DateTime<Utc>) -> Self {
        self.captured_from = Some(t);
        self
    }
    /// Only records captured before `t`.
    pub fn captured_before(mut self, t: DateTime<Utc>) -> Self {
        self.captured_before = Some(t);
        self
    }
    /// Only records with a seq above `seq` (the last seq of the previous page).
    pub fn after_seq(mut self, seq: u64) -> Self {
        self.after_seq = Some(seq);
        self
    }
    /// At most `n` records.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    fn where_clause(&self) -> (String, Vec<SqlValue>) {
        let mut clauses = vec!["1".to_string()];
        let mut args = Vec::new();
        if let Some(s) = self.state {
            clauses.push(s.sql().into());
        }
        let mut arg = |clause: &str, v: SqlValue| {
            args.push(v);
            clauses.push(clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(s) = &self.station {
            arg("r.station = ?", SqlValue::Text(s.clone()));
        }
        if let Some(t) = self.captured_from {
            arg(
                "r.captured_at >= ?",
                SqlValue::Integer(t.timestamp_millis()),
            );
        }
        if let Some(t) = self.captured_before {
            arg("r.captured_at < ?", SqlValue::Integer(t.timestamp_millis()));
        }
        if let Some(s) = self.after_seq {
            arg("r.seq > ?", SqlValue::Integer(s as i64));
        }
        (clauses.join(" AND "), args)
    }
}

/// A record as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// Position in this device's chain.
    pub seq: u64,
    /// The record's id.
    pub id: RecordId,
    /// The signed bytes.
    pub envelope: Envelope,
    /// The station (from the signed body).
    pub station: String,
    /// The kind (from the signed body).
    pub kind: String,
    /// The signed capture time.
    pub captured_at: DateTime<Utc>,
    /// Where it is in the outbox.
    pub state: DeliveryState,
    /// The copy sealed to the organisation, for forms it seals: sync sends
    /// this instead of the readable record.
    pub for_org: Option<SealedRecord>,
}

pub(super) const RECORD_COLUMNS: &str = "r.seq, r.content, r.station, r.captured_at, r.state, \
     r.receipt, rc.received_at, r.rejection, r.for_org";

pub(super) const RECORD_FROM: &str = "records r LEFT JOIN receipts rc ON rc.id = r.receipt";

/// Reads a row selected with [`RECORD_COLUMNS`], opening its sealed parts.
pub(super) fn stored_record(
    vault: &DataKey,
    device: &DeviceId,
    r: &Row<'_>,
) -> Result<StoredRecord, StoreError> {
    let seq = r.get::<_, i64>(0)? as u64;
    let unreadable = |what: &str| StoreError::Unreadable {
        what: format!("record {seq}'s {what}"),
    };
    let content = encrypted::decrypt_record(vault, seq, &r.get::<_, Vec<u8>>(1)?)
        .map_err(|_| unreadable("contents"))?;
    let millis = |v: i64| DateTime::from_timestamp_millis(v).unwrap_or_default();
    let state = match r.get::<_, i64>(4)? {
        0 => DeliveryState::Pending,
        1 => DeliveryState::InFlight,
        2 => DeliveryState::Delivered {
            receipt: r.get(5)?,
            received_at: millis(r.get(6)?),
        },
        _ => {
            let (reason, detail) =
                encrypted::decrypt_rejection(vault, seq, &r.get::<_, Vec<u8>>(7)?)
                    .map_err(|_| unreadable("rejection reason"))?;
            DeliveryState::Rejected {
                receipt: r.get(5)?,
                reason,
                detail,
            }
        }
    };
    Ok(StoredRecord {
        seq,
        id: content.id,
        envelope: content.envelope,
        station: r.get(2)?,
        kind: content.kind,
        captured_at: millis(r.get(3)?),
        state,
        for_org: r
            .get::<_, Option<Vec<u8>>>(8)?
            .and_then(|b| encrypted::org_copy(device, seq, &b)),
    })
}

impl Store {
    /// The records matching `q`, in chain order.
    ///
    /// The kind is sealed (`sealed.rs`), so a kind filter is applied to
    /// opened rows: it reads the rows the other filters select until the
    /// limit is reached.
    pub fn list(&self, q: &Query) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::new();
        self.each(q, |rec| {
            out.push(rec);
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each record matching `q` in chain order until it
    /// returns `false` or the query's limit is reached.
    fn each(&self, q: &Query, mut f: impl FnMut(StoredRecord) -> bool) -> Result<(), StoreError> {
        let (clause, mut args) = q.where_clause();
        let limit = match (q.limit, &q.kind) {
            (Some(n), None) => {
                args.push(SqlValue::Integer(n.into()));
                format!(" LIMIT ?{}", args.len())
            }
            _ => String::new(),
        };
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE {clause} ORDER BY r.seq{limit}"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut taken = 0u64;
        while let Some(r) = rows.next()? {
            if q.limit.is_some_and(|l| taken >= l.into()) {
                break;
            }
            let rec = stored_record(&self.vault, &self.device, r)?;
            if q.kind.as_ref().is_some_and(|k| *k != rec.kind) {
                continue;
            }
            taken += 1;
            if !f(rec) {
                break;
            }
        }
        Ok(())
    }

    /// How many records match `q` (its `limit` and `after_seq` apply too).
    pub fn count(&self, q: &Query) -> Result<u64, StoreError> {
        if q.kind.is_some() {
            let mut n = 0;
            self.each(q, |_| {
                n += 1;
                true
            })?;
            return Ok(n);
        }
        let (clause, args) = q.where_clause();
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM records r WHERE {clause}"))?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(match q.limit {
            Some(l) => (n as u64).min(l.into()),
            None => n as u64,
        })
    }

    /// The record with this id, if this device holds it.
    pub fn get(&self, id: &RecordId) -> Result<Option<StoredRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE r.tag = ?1"
        ))?;
        let mut rows = stmt.query([self.vault.tag(id.as_bytes())])?;
        rows.next()?
            .map(|r| stored_record(&self.vault, &self.device, r))
            .transpose()
    }
}
