//! What a record is about, decided once when it arrives, from its signed
//! body: its category (what an incident or access report says happened),
//! whether that category is critical, the phase of the day it reports on,
//! and which record it corrects. The storage keeps these beside the record
//! so that the review queue and the coverage view are index walks, never
//! a reading of every body; the signed bytes themselves are never edited.
//!
//! The categories and phases are those of the shipped forms (their ids and
//! option ids), so a coordinator's own version of a shipped form keeps
//! them. A form of the coordinator's own invention has no category and no
//! phase: its records are reviewed in arrival order after the critical and
//! the flagged ones.

use observer_core::record::{Body, RecordId};
use serde::{Deserialize, Serialize};

use crate::storage::FormCheck;

/// The categories that go to the head of the review queue: the ones the
/// field reports say decide whether an observation holds (issue 16).
pub const CRITICAL: &[&str] = &[
    "ballot_stuffing",
    "carousel_voting",
    "observer_denied_entry",
    "observer_expelled",
    "unauthorised_persons",
    "count_not_announced",
];

/// Longest category kept (an option id of a form is at most 64 bytes).
const MAX_CATEGORY: usize = 64;

/// The part of election day a record reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Opening,
    Voting,
    Closing,
    Counting,
}

impl Phase {
    /// Every phase, in the order of the day.
    pub const ALL: [Phase; 4] = [
        Phase::Opening,
        Phase::Voting,
        Phase::Closing,
        Phase::Counting,
    ];

    /// The name stored and used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Opening => "opening",
            Phase::Voting => "voting",
            Phase::Closing => "closing",
            Phase::Counting => "counting",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = UnknownPhase;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(UnknownPhase)
    }
}

/// A phase name that is not one of [`Phase::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("no such phase (opening, voting, closing or counting)")]
pub struct UnknownPhase;

/// How soon a record needs a verifier, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// A critical category.
    Critical = 0,
    /// Its answers or its filing failed a check (an unknown form, a kind
    /// that does not match its form, a station it was not assigned to, a
    /// broken rule).
    Flagged = 1,
    /// Everything else.
    Routine = 2,
}

impl Priority {
    /// Its name in the JSON API and the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Flagged => "flagged",
            Priority::Routine => "routine",
        }
    }

    /// The number stored (the queue's index orders by it).
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The priority a stored rank stands for.
    pub fn from_rank(rank: i64) -> Priority {
        match rank {
            0 => Priority::Critical,
            1 => Priority::Flagged,
            _ => Priority::Routine,
        }
    }
}

/// What the storage keeps beside a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triage {
    pub category: Option<String>,
    pub priority: Priority,
    pub phase: Option<Phase>,
    pub supersedes: Option<RecordId>,
}

/// The triage of a verified record's `body`, given its form `check`.
pub fn triage(body: &Body, check: &FormCheck) -> Triage {
    let category = category(body);
    let priority = if category.as_deref().is_some_and(|c| CRITICAL.contains(&c)) {
        Priority::Critical
    } else if !check.clean {
        Priority::Flagged
    } else {
        Priority::Routine
    };
    Triage {
        category,
        priority,
        phase: phase(&body.form.id),
        supersedes: body.supersedes,
    }
}

fn phase(form: &str) -> Option<Phase> {
    form.parse().ok()
}

/// The category a shipped form's answers name: an incident's type, an
/// access report's refusal, a count that was not announced, unauthorised
/// people seen during voting.
fn category(body: &Body) -> Option<String> {
    let p = &body.payload;
    let named = match body.form.id.as_str() {
        "incident" => p.get("type").and_then(|v| v.as_str()).map(str::to_string),
        "access" => match p.get("event").and_then(|v| v.as_str()) {
            Some("denied") => Some("observer_denied_entry".into()),
            Some("expelled") => Some("observer_expelled".into()),
            _ => None,
        },
        "counting" => (p.get("count_announced").and_then(|v| v.as_bool()) == Some(false))
            .then(|| "count_not_announced".into()),
        "voting" => (p.get("unauthorised_persons").and_then(|v| v.as_bool()) == Some(true))
            .then(|| "unauthorised_persons".into()),
        _ => None,
    };
    // An unknown form's answers are anything a phone signed: only a
    // plain option id is kept as a category.
    named.filter(|c| {
        !c.is_empty()
            && c.len() <= MAX_CATEGORY
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use observer_core::identity::SigningKey;
    use observer_core::record::{ChainPosition, NewRecord, sign_record, verify_envelope};

    fn body(form: &str, kind: &str, payload: serde_json::Value) -> Body {
        let key = SigningKey::generate().unwrap();
        let new = NewRecord::builder("S-1", form, 1, kind)
            .payload(payload)
            .build()
            .unwrap();
        let env = sign_record(&new, &ChainPosition::first(&key), &key).unwrap();
        verify_envelope(&env, &key.public_key()).unwrap().body
    }

    fn clean(clean: bool) -> FormCheck {
        FormCheck {
            clean,
            json: "{}".into(),
        }
    }

    #[test]
    fn critical_reports_lead_flagged_ones_follow() {
        let stuffing = body(
            "incident",
            "incident",
            serde_json::json!({"type": "ballot_stuffing"}),
        );
        let t = triage(&stuffing, &clean(true));
        assert_eq!(t.category.as_deref(), Some("ballot_stuffing"));
        assert_eq!(t.priority, Priority::Critical);
        assert_eq!(t.phase, None);

        let sealing = body(
            "incident",
            "incident",
            serde_json::json!({"type": "improper_sealing"}),
        );
        assert_eq!(triage(&sealing, &clean(true)).priority, Priority::Routine);
        assert_eq!(triage(&sealing, &clean(false)).priority, Priority::Flagged);

        let denied = body("access", "access", serde_json::json!({"event": "denied"}));
        let t = triage(&denied, &clean(true));
        assert_eq!(t.category.as_deref(), Some("observer_denied_entry"));
        assert_eq!(t.priority, Priority::Critical);

        let arrived = body("access", "access", serde_json::json!({"event": "arrived"}));
        assert_eq!(triage(&arrived, &clean(true)).category, None);

        let silent = body(
            "counting",
            "results",
            serde_json::json!({"count_announced": false}),
        );
        let t = triage(&silent, &clean(true));
        assert_eq!(t.category.as_deref(), Some("count_not_announced"));
        assert_eq!(t.phase, Some(Phase::Counting));

        let opening = body("opening", "checklist", serde_json::json!({}));
        let t = triage(&opening, &clean(true));
        assert_eq!((t.category, t.phase), (None, Some(Phase::Opening)));
    }

    #[test]
    fn only_a_plain_option_id_becomes_a_category() {
        for odd in ["<script>", "", "Ballot Stuffing", &"x".repeat(65)] {
            let b = body("incident", "incident", serde_json::json!({ "type": odd }));
            assert_eq!(triage(&b, &clean(false)).category, None, "{odd:?}");
        }
        let b = body("incident", "incident", serde_json::json!({ "type": 7 }));
        assert_eq!(triage(&b, &clean(false)).priority, Priority::Flagged);
    }
}
