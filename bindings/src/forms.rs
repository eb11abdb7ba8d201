//! Forms for the apps: what to show, in which language, and what is wrong
//! with the answers so far.

use observer_core::forms::{FieldType, FormDefinition, Media, Validation};

/// A form available offline.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormSummary {
    pub id: String,
    pub version: u32,
    /// The record kind it produces.
    pub kind: String,
    /// In the requested language.
    pub title: String,
    /// Whether answers are sealed to the organisation's key.
    pub sealed: bool,
    /// Whether to show it first: the results protocol, when one of the
    /// observer's stations is in the quick count's sample (the
    /// coordinator's signed updates say so).
    pub priority: bool,
}

/// An option of a choice question.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormOption {
    pub id: String,
    pub label: String,
}

/// One question, ready to render.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormField {
    pub id: String,
    pub label: String,
    pub help: Option<String>,
    /// `yes_no`, `integer`, `decimal`, `text`, `single_choice`,
    /// `multiple_choice`, `time`, `date` (`YYYY-MM-DD`), `datetime`
    /// (`YYYY-MM-DDTHH:MM`), `note` (shown, not answered), `acknowledge`
    /// (answer `true`), `photo`, `audio` or `video`. Calculated values are
    /// not listed: `validate_answers` computes them.
    pub field_type: String,
    pub required: bool,
    /// Whether it depends on other answers, its own condition or its
    /// section's (ask `validate_answers` which fields are visible).
    pub conditional: bool,
    /// The headings of the sections it is in, outermost first, in the
    /// requested language (empty for a field outside any section).
    pub sections: Vec<String>,
    /// The answer to fill in before the observer changes it, as JSON.
    pub default_json: Option<String>,
    pub options: Vec<FormOption>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<u32>,
}

/// A problem with one answer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AnswerProblem {
    pub field: String,
    /// Stable code: `missing`, `wrong_type`, `out_of_range`, `too_long`,
    /// `unknown_option`, `bad_time`, `bad_date`, `not_an_attachment`,
    /// `unknown_field`, `hidden_answered`, `miscalculated`.
    pub problem: String,
    pub message: String,
}

/// A failed rule.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RuleProblem {
    pub rule: String,
    /// `error` or `warning`. Neither blocks saving.
    pub severity: String,
    pub message: String,
}

/// The state of a form being filled in.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormValidation {
    /// Field ids to show now.
    pub visible: Vec<String>,
    pub problems: Vec<AnswerProblem>,
    pub findings: Vec<RuleProblem>,
    /// No invalid answer and no failed error rule.
    pub clean: bool,
}

impl From<Validation> for FormValidation {
    fn from(v: Validation) -> Self {
        Self {
            clean: v.is_clean(),
            visible: v.visible,
            problems: v
                .problems
                .into_iter()
                .map(|p| AnswerProblem {
                    field: p.field,
                    problem: p.problem.code().into(),
                    message: p.message,
                })
                .collect(),
            findings: v
                .findings
                .into_iter()
                .map(|f| RuleProblem {
                    rule: f.rule,
                    severity: f.severity.code().into(),
                    message: f.message,
                })
                .collect(),
        }
    }
}

pub(crate) fn summary(f: &FormDefinition, lang: &str, sampled: bool) -> FormSummary {
    FormSummary {
        priority: sampled && f.kind == observer_core::store::PRIORITY_KIND,
        id: f.id.clone(),
        version: f.version,
        kind: f.kind.clone(),
        title: FormDefinition::localise(&f.title, lang).to_string(),
        sealed: f.sealed,
    }
}

pub(crate) fn fields(f: &FormDefinition, lang: &str) -> Vec<FormField> {
    f.fields
        .iter()
        .filter(|field| !matches!(field.kind, FieldType::Calculate { .. }))
        .map(|field| {
            let (field_type, options, min, max, max_length) = match &field.kind {
                FieldType::YesNo => ("yes_no", vec![], None, None, None),
                FieldType::Integer { min, max } => (
                    "integer",
                    vec![],
                    min.map(|v| v as f64),
                    max.map(|v| v as f64),
                    None,
                ),
                FieldType::Decimal { min, max } => ("decimal", vec![], *min, *max, None),
                FieldType::Text { max_length } => {
                    ("text", vec![], None, None, Some(*max_length as u32))
                }
                FieldType::SingleChoice { options } => {
                    ("single_choice", options.clone(), None, None, None)
                }
                FieldType::MultipleChoice { options } => {
                    ("multiple_choice", options.clone(), None, None, None)
                }
                FieldType::Time => ("time", vec![], None, None, None),
                FieldType::Date => ("date", vec![], None, None, None),
                FieldType::DateTime => ("datetime", vec![], None, None, None),
                FieldType::Note => ("note", vec![], None, None, None),
                FieldType::Acknowledge => ("acknowledge", vec![], None, None, None),
                FieldType::Calculate { .. } => ("calculate", vec![], None, None, None),
                FieldType::Evidence {
                    media: Media::Photo,
                } => ("photo", vec![], None, None, None),
                FieldType::Evidence {
                    media: Media::Audio,
                } => ("audio", vec![], None, None, None),
                FieldType::Evidence {
                    media: Media::Video,
                } => ("video", vec![], None, None, None),
            };
            FormField {
                id: field.id.clone(),
                label: FormDefinition::localise(&field.label, lang).to_string(),
                help: field
                    .help
                    .as_ref()
                    .map(|h| FormDefinition::localise(h, lang).to_string()),
                field_type: field_type.into(),
                required: field.required,
                conditional: f.condition(&field.id).is_some(),
                sections: f
                    .sections(field)
                    .iter()
                    .filter_map(|g| g.label.as_ref())
                    .map(|l| FormDefinition::localise(l, lang).to_string())
                    .collect(),
                default_json: field.default.as_ref().map(|d| d.to_string()),
                options: options
                    .iter()
                    .map(|o| FormOption {
                        id: o.id.clone(),
                        label: FormDefinition::localise(&o.label, lang).to_string(),
                    })
                    .collect(),
                min,
                max,
                max_length,
            }
        })
        .collect()
}
