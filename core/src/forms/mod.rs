//! Observation forms: checklists, incident reports and results protocols
//! that coordinators define and phones validate offline.
//!
//! ```
//! use observer_core::forms::{default_forms, Problem};
//!
//! let counting = default_forms().iter().find(|f| f.id == "counting").unwrap();
//! let answers = serde_json::json!({"registered_voters": 1840, "ballots_received": 1500,
//!     "ballots_issued": 1100, "ballots_spoiled": 3, "ballots_unused": 400});
//! let v = counting.validate(answers.as_object().unwrap(), "ru");
//! // 1100 + 3 + 400 != 1500: the reconciliation rule fails, and says so in Russian.
//! assert!(v.findings.iter().any(|f| f.rule == "received_reconciles"));
//! assert!(v.problems.iter().any(|p| p.problem == Problem::Missing));
//! ```

mod defaults;
mod definition;
mod expr;
mod filing;
mod messages;
mod validate;

pub use defaults::default_forms;
pub use definition::{
    Choice, Field, FieldType, FormDefinition, Group, MAX_DEFINITION_BYTES, MAX_FIELDS, Media, Rule,
    Severity, Text, is_id,
};
pub use expr::{Arith, Cmp, Eval, Expr, MAX_PATTERN_BYTES, Num, Pattern};
pub use filing::{FilingFlag, filing_flags};
pub use validate::{FieldProblem, Problem, RuleFinding, Validation};

/// Why a form definition was refused. Each variant names the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Not JSON.
    #[error("the form definition is not JSON: {0}")]
    Json(String),
    /// Over the size limit.
    #[error("the form definition is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// A field of a type this Observer does not know.
    #[error("field {field:?} has unknown type {found:?}; update Observer or fix the form")]
    UnknownType { field: String, found: String },
    /// Two fields, rules or options with one id.
    #[error("{place} has two {what}s with id {id:?}")]
    Duplicate {
        place: String,
        what: &'static str,
        id: String,
    },
    /// A condition or rule reads a field the form does not have.
    #[error("{place} refers to field {field:?}, which the form does not have")]
    UnknownField { place: String, field: String },
    /// Conditions (or calculations) that depend on each other in a loop.
    #[error("the conditions or calculations of fields {} depend on each other in a loop, so none could ever be shown", fields.join(" -> "))]
    ConditionCycle { fields: Vec<String> },
    /// Anything else malformed, with where and what.
    #[error("{place}: {detail}")]
    Invalid { place: String, detail: String },
}
