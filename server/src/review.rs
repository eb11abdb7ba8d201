//! The verification workflow: what a verifier decides about a record, who
//! holds a record while deciding, and how reports from several observers
//! corroborate one another.
//!
//! A decision is never an edit of the record (its signed bytes stay as
//! they arrived): it is a row of its own, newest last, and an audit entry.
//! A claim is ELMO's review lock with an expiry, so that two verifiers do
//! not both take one record unnoticed and a verifier who walked away does
//! not hold it for ever. Decisions only: storing is
//! [`crate::storage::ReviewStore`]'s.

use std::collections::BTreeSet;
use std::time::Duration;

use observer_core::identity::DeviceId;
use observer_core::record::RecordId;
use serde::Serialize;

use crate::triage::{Phase, Priority};

/// How long a claim holds a record for its verifier.
pub const CLAIM_FOR: Duration = Duration::from_secs(15 * 60);

/// Longest reviewer's note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Records one queue page lists at most.
pub const MAX_PAGE: u32 = 200;

/// Where a record stands in review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Unreviewed,
    Confirmed,
    Rejected,
    NeedsCorroboration,
}

impl ReviewState {
    /// Every state.
    pub const ALL: [ReviewState; 4] = [
        ReviewState::Unreviewed,
        ReviewState::Confirmed,
        ReviewState::Rejected,
        ReviewState::NeedsCorroboration,
    ];

    /// The name stored and used in URLs and the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Unreviewed => "unreviewed",
            ReviewState::Confirmed => "confirmed",
            ReviewState::Rejected => "rejected",
            ReviewState::NeedsCorroboration => "needs_corroboration",
        }
    }

    /// Whether a record in this state still waits for a verifier.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ReviewState::Unreviewed | ReviewState::NeedsCorroboration
        )
    }
}

impl std::str::FromStr for ReviewState {
    type Err = BadReview;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReviewState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(BadReview::UnknownState)
    }
}

/// What a verifier may decide: every state but "unreviewed" (a decision
/// cannot be taken back, only followed by another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirmed,
    Rejected,
    NeedsCorroboration,
}

impl Verdict {
    /// The state the record is in after this verdict.
    pub fn state(self) -> ReviewState {
        match self {
            Verdict::Confirmed => ReviewState::Confirmed,
            Verdict::Rejected => ReviewState::Rejected,
            Verdict::NeedsCorroboration => ReviewState::NeedsCorroboration,
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = BadReview;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<ReviewState>()? {
            ReviewState::Confirmed => Ok(Verdict::Confirmed),
            ReviewState::Rejected => Ok(Verdict::Rejected),
            ReviewState::NeedsCorroboration => Ok(Verdict::NeedsCorroboration),
            ReviewState::Unreviewed => Err(BadReview::Unreviewed),
        }
    }
}

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadReview {
    #[error("no such review state (unreviewed, confirmed, rejected, needs_corroboration)")]
    UnknownState,
    #[error("a decision cannot make a record unreviewed again")]
    Unreviewed,
    #[error("the note is longer than {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error("a rejection needs a note saying why")]
    RejectionWithoutReason,
}

/// A reviewer's note, checked: bounded, and required for a rejection (a
/// rejected report with no reason cannot be argued with later).
pub fn check_note(verdict: Verdict, note: &str) -> Result<String, BadReview> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(BadReview::NoteTooLong);
    }
    if verdict == Verdict::Rejected && note.is_empty() {
        return Err(BadReview::RejectionWithoutReason);
    }
    Ok(note.to_string())
}

/// One decision about one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub state: ReviewState,
    pub reviewer: String,
    pub note: String,
    pub at_ms: i64,
}

/// A verifier's hold on a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub account: String,
    pub until_ms: i64,
}

/// What asking to claim a record came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Held now by the asker, until then (a claim the asker held already
    /// is extended).
    Claimed(Claim),
    /// Another verifier holds it.
    HeldBy(Claim),
    /// There is no record at that index.
    NoSuchRecord,
}

/// What a decision came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecideOutcome {
    /// Stored; the asker's claim (if any) is released.
    Decided,
    /// Another verifier holds the record: nothing stored.
    HeldBy(Claim),
    /// There is no record at that index.
    NoSuchRecord,
}

/// Which records a queue page lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueFilter {
    /// Only records in this state; `None`: every open one (unreviewed or
    /// needing corroboration).
    pub state: Option<ReviewState>,
    pub category: Option<String>,
    pub phase: Option<Phase>,
    pub station: Option<String>,
    /// Only stations of this region in this registry version.
    pub region: Option<(u32, String)>,
    /// Only records received at or after this time.
    pub since_ms: Option<i64>,
    /// Where the previous page ended: the storage reads the rest of that
    /// priority after it.
    pub after: Option<QueueCursor>,
    /// Only records at this priority or a less urgent one.
    pub from_priority: Option<Priority>,
    /// At most this many (at most [`MAX_PAGE`]).
    pub limit: u32,
}

/// A position in the queue's order: priority, then arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct QueueCursor {
    pub priority: Priority,
    pub index: u64,
}

impl QueueCursor {
    /// The cursor's text in a URL: `rank-index`.
    pub fn to_text(self) -> String {
        format!("{}-{}", self.priority.rank(), self.index)
    }

    /// A cursor from its text; `None` when it is not one.
    pub fn parse(s: &str) -> Option<QueueCursor> {
        let (rank, index) = s.split_once('-')?;
        let rank: i64 = rank.parse().ok()?;
        (0..=2).contains(&rank).then_some(())?;
        Some(QueueCursor {
            priority: Priority::from_rank(rank),
            index: index.parse().ok()?,
        })
    }
}

/// One record as the queue lists it: what the database holds beside the
/// record, never its (perhaps sealed) answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueItem {
    pub index: u64,
    #[serde(serialize_with = "as_text")]
    pub id: RecordId,
    #[serde(serialize_with = "as_text")]
    pub device: DeviceId,
    pub seq: u64,
    pub station: String,
    pub kind: String,
    pub category: Option<String>,
    pub priority: Priority,
    pub phase: Option<Phase>,
    pub review: ReviewState,
    pub captured_at_ms: i64,
    pub received_at_ms: i64,
    #[serde(serialize_with = "opt_text")]
    pub supersedes: Option<RecordId>,
    /// Whether its device was revoked since (its earlier records stand,
    /// but no longer corroborate anyone's).
    pub device_revoked: bool,
    pub claim: Option<Claim>,
}

impl QueueItem {
    /// Where the queue goes on after this item.
    pub fn cursor(&self) -> QueueCursor {
        QueueCursor {
            priority: self.priority,
            index: self.index,
        }
    }
}

fn as_text<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_text<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// How reports corroborate each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorroborationRule {
    /// Reports of one category at one station count together when their
    /// capture times are at most this far apart.
    pub window: Duration,
    /// Distinct devices needed to call a report corroborated.
    pub devices: usize,
}

impl Default for CorroborationRule {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60 * 60),
            devices: 2,
        }
    }
}

/// A report and the reports that corroborate it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Corroboration {
    /// Distinct enrolled, unrevoked devices among the report and its
    /// matches (the report's own device counts even if revoked, so a
    /// revoked device's report reads "1").
    pub observers: usize,
    pub corroborated: bool,
    /// The other reports of the same category at the same station within
    /// the window, from other devices (rejected ones left out).
    pub matches: Vec<QueueItem>,
}

impl CorroborationRule {
    /// The corroboration of `report` by `candidates` (reports of its
    /// category at its station, by capture time, as the storage found
    /// them). Reports from the same device never corroborate each other,
    /// and neither do revoked devices' or rejected reports.
    pub fn judge(&self, report: &QueueItem, candidates: Vec<QueueItem>) -> Corroboration {
        let window = self.window.as_millis() as i64;
        let matches: Vec<QueueItem> = candidates
            .into_iter()
            .filter(|c| {
                c.index != report.index
                    && c.device != report.device
                    && c.category == report.category
                    && c.station == report.station
                    && c.review != ReviewState::Rejected
                    && !c.device_revoked
                    && (c.captured_at_ms - report.captured_at_ms).abs() <= window
            })
            .collect();
        let observers = 1 + matches
            .iter()
            .map(|m| m.device.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        Corroboration {
            observers,
            corroborated: report.category.is_some()
                && !report.device_revoked
                && observers >= self.devices,
            matches,
        }
    }
}

/// A queue page: `filter.state`'s records, or, with no state given, the
/// open ones (unreviewed and needing corroboration), merged in the
/// queue's order (each state is one walk of the queue's index).
pub fn queue(
    store: &dyn crate::storage::ReviewStore,
    filter: &QueueFilter,
    now_ms: i64,
) -> Result<Vec<QueueItem>, crate::storage::StorageError> {
    let limit = filter.limit.min(MAX_PAGE) as usize;
    let states = match filter.state {
        Some(s) => vec![s],
        None => vec![ReviewState::Unreviewed, ReviewState::NeedsCorroboration],
    };
    let mut items = Vec::new();
    for state in states {
        items.extend(in_state(store, state, filter, limit, now_ms)?);
    }
    items.sort_by_key(|i| (i.priority, i.index));
    items.truncate(limit);
    Ok(items)
}

/// One state's part of a page: the rest of the cursor's priority, then
/// (when that is not enough) the less urgent priorities.
fn in_state(
    store: &dyn crate::storage::ReviewStore,
    state: ReviewState,
    filter: &QueueFilter,
    limit: usize,
    now_ms: i64,
) -> Result<Vec<QueueItem>, crate::storage::StorageError> {
    let Some(after) = filter.after else {
        return store.queue_in(state, filter, now_ms);
    };
    let mut items = store.queue_in(state, filter, now_ms)?;
    let next = match after.priority {
        Priority::Critical => Some(Priority::Flagged),
        Priority::Flagged => Some(Priority::Routine),
        Priority::Routine => None,
    };
    if let (true, Some(next)) = (items.len() < limit, next) {
        let rest = QueueFilter {
            after: None,
            from_priority: Some(next),
            limit: (limit - items.len()) as u32,
            ..filter.clone()
        };
        items.extend(store.queue_in(state, &rest, now_ms)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: u64, device: &DeviceId, minute: i64) -> QueueItem {
        QueueItem {
            index,
            id: RecordId::from_bytes([index as u8; 32]),
            device: device.clone(),
            seq: index,
            station: "S-1".into(),
            kind: "incident".into(),
            category: Some("ballot_stuffing".into()),
            priority: Priority::Critical,
            phase: None,
            review: ReviewState::Unreviewed,
            captured_at_ms: minute * 60_000,
            received_at_ms: minute * 60_000,
            supersedes: None,
            device_revoked: false,
            claim: None,
        }
    }

    fn device() -> DeviceId {
        observer_core::identity::SigningKey::generate()
            .unwrap()
            .public_key()
            .device_id()
    }

    #[test]
    fn only_other_unrevoked_devices_within_the_window_corroborate() {
        let rule = CorroborationRule::default();
        let (a, b, c) = (device(), device(), device());
        let report = item(1, &a, 100);
        let alone = rule.judge(&report, vec![report.clone(), item(2, &a, 110)]);
        assert_eq!((alone.observers, alone.corroborated), (1, false));

        let mut revoked = item(3, &b, 110);
        revoked.device_revoked = true;
        let mut rejected = item(4, &c, 110);
        rejected.review = ReviewState::Rejected;
        let mut elsewhere = item(5, &b, 110);
        elsewhere.station = "S-2".into();
        let late = item(6, &b, 161);
        let j = rule.judge(&report, vec![revoked, rejected, elsewhere, late]);
        assert_eq!((j.observers, j.corroborated), (1, false));

        let j = rule.judge(&report, vec![item(7, &b, 40), item(8, &b, 150)]);
        assert_eq!((j.observers, j.corroborated, j.matches.len()), (2, true, 2));
    }

    #[test]
    fn decisions_are_checked_before_they_are_stored() {
        assert_eq!("unreviewed".parse::<Verdict>(), Err(BadReview::Unreviewed));
        assert_eq!("maybe".parse::<Verdict>(), Err(BadReview::UnknownState));
        assert_eq!(
            check_note(Verdict::Rejected, "  "),
            Err(BadReview::RejectionWithoutReason)
        );
        assert_eq!(
            check_note(Verdict::Confirmed, &"я".repeat(MAX_NOTE_CHARS + 1)),
            Err(BadReview::NoteTooLong)
        );
        assert_eq!(check_note(Verdict::Confirmed, " seen "), Ok("seen".into()));
        let c = QueueCursor {
            priority: Priority::Flagged,
            index: 42,
        };
        assert_eq!(QueueCursor::parse(&c.to_text()), Some(c));
        for bad in ["", "3-1", "x-1", "1-", "1--2"] {
            assert_eq!(QueueCursor::parse(bad), None, "{bad:?}");
        }
    }
}
