//! Whether a record is filed where it belongs: under a form this device
//! knows, with that form's kind, for a station the observer is assigned
//! to. None of these stops a save (an observer is never blocked: the form
//! may arrive later, the assignment may be stale), but each is flagged on
//! the phone when the record is saved and on the coordinator when it
//! arrives, so that nobody reads a misfiled record as a routine one.

use serde::{Deserialize, Serialize};

use super::FormDefinition;

/// One way a record is misfiled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum FilingFlag {
    /// Neither shipped nor published here: its answers cannot be checked.
    #[error("form {form} version {version} is not known here; its answers were not checked")]
    UnknownForm { form: String, version: u32 },
    /// The record's kind is not its form's.
    #[error("the record's kind is {kind:?} but form {form} is a {form_kind:?}")]
    KindMismatch {
        form: String,
        form_kind: String,
        kind: String,
    },
    /// The observer is not assigned to the record's station.
    #[error("station {station} is not one this observer is assigned to ({})", assigned.join(", "))]
    UnassignedStation {
        station: String,
        assigned: Vec<String>,
    },
}

/// The flags of a record of `form_id` at `version` (`form` when known),
/// of `kind`, for `station`, by an observer assigned to `assigned` (empty:
/// not enrolled yet, nothing to compare with).
pub fn filing_flags(
    form_id: &str,
    version: u32,
    form: Option<&FormDefinition>,
    kind: &str,
    station: &str,
    assigned: &[String],
) -> Vec<FilingFlag> {
    let mut flags = Vec::new();
    match form {
        None => flags.push(FilingFlag::UnknownForm {
            form: form_id.to_string(),
            version,
        }),
        Some(f) if f.kind != kind => flags.push(FilingFlag::KindMismatch {
            form: f.id.clone(),
            form_kind: f.kind.clone(),
            kind: kind.to_string(),
        }),
        Some(_) => {}
    }
    if !assigned.is_empty() && !assigned.iter().any(|s| s == station) {
        flags.push(FilingFlag::UnassignedStation {
            station: station.to_string(),
            assigned: assigned.to_vec(),
        });
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::default_forms;

    #[test]
    fn each_misfiling_is_flagged_and_a_proper_record_is_not() {
        let opening = default_forms().iter().find(|f| f.id == "opening").unwrap();
        let assigned = vec!["KZ-1".to_string()];
        let ok = filing_flags(
            "opening",
            1,
            Some(opening),
            &opening.kind,
            "KZ-1",
            &assigned,
        );
        assert_eq!(ok, vec![]);
        let all = filing_flags("opening", 1, Some(opening), "results", "KZ-9", &assigned);
        assert!(matches!(all[0], FilingFlag::KindMismatch { .. }));
        assert!(matches!(all[1], FilingFlag::UnassignedStation { .. }));
        let unknown = filing_flags("nosuch", 3, None, "x", "KZ-1", &[]);
        assert_eq!(
            unknown,
            vec![FilingFlag::UnknownForm {
                form: "nosuch".into(),
                version: 3
            }]
        );
        assert!(unknown[0].to_string().contains("not known here"));
    }
}
