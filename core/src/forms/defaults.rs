//! The forms Observer ships, in Kazakh, Russian and English, drawn from the
//! field reports and common observation practice (`core/forms/*.json`).
//! Coordinators publish their own versions; these work offline from the
//! first start.

use std::sync::OnceLock;

use super::FormDefinition;

const DEFAULTS: [&str; 6] = [
    include_str!("../../forms/opening.json"),
    include_str!("../../forms/voting.json"),
    include_str!("../../forms/closing.json"),
    include_str!("../../forms/counting.json"),
    include_str!("../../forms/incident.json"),
    include_str!("../../forms/access.json"),
];

/// The default forms, parsed once per process (by the same parser as any
/// coordinator's form; a test keeps them valid).
pub fn default_forms() -> &'static [FormDefinition] {
    static PARSED: OnceLock<Vec<FormDefinition>> = OnceLock::new();
    PARSED.get_or_init(|| {
        DEFAULTS
            .iter()
            .map(|json| FormDefinition::parse(json).expect("the shipped forms are valid"))
            .collect()
    })
}
