//! Checking answers against a form, offline, on the phone (and again on the
//! server). Nothing here blocks saving: the app shows the problems and the
//! observer decides, because what they saw must be recordable even when it
//! breaks the arithmetic.

use serde::Serialize;
use serde_json::{Map, Value};

use super::definition::{FieldType, FormDefinition, Severity};
use super::expr::{Eval, Num};
use super::messages::Message;

/// What is wrong with one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A required, visible field has no answer.
    Missing,
    /// The answer is not of the field's type.
    WrongType,
    /// A number outside the field's range.
    OutOfRange,
    /// Text longer than allowed.
    TooLong,
    /// A choice that is not one of the options (or chosen twice).
    UnknownOption,
    /// Not `HH:MM`.
    BadTime,
    /// Not `YYYY-MM-DD` (or, for a date and time, `YYYY-MM-DDTHH:MM`).
    BadDate,
    /// A calculated field's answer differs from what its calculation gives.
    Miscalculated,
    /// Not a SHA-256 attachment reference.
    NotAnAttachment,
    /// No such field in the form.
    UnknownField,
    /// Answered, but the field is hidden by its condition (the answer is
    /// ignored by rules; the app may drop it).
    HiddenAnswered,
}

impl Problem {
    /// The stable code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::WrongType => "wrong_type",
            Problem::OutOfRange => "out_of_range",
            Problem::TooLong => "too_long",
            Problem::UnknownOption => "unknown_option",
            Problem::BadTime => "bad_time",
            Problem::BadDate => "bad_date",
            Problem::Miscalculated => "miscalculated",
            Problem::NotAnAttachment => "not_an_attachment",
            Problem::UnknownField => "unknown_field",
            Problem::HiddenAnswered => "hidden_answered",
        }
    }
}

/// One answer's problem.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: Problem,
    /// In words, with the field's label in the requested language.
    pub message: String,
}

/// A cross-field rule that failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleFinding {
    pub rule: String,
    pub severity: Severity,
    /// The rule's message in the requested language.
    pub message: String,
}

/// The result of checking answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Validation {
    /// Field ids to show, in form order.
    pub visible: Vec<String>,
    /// Problems with individual answers.
    pub problems: Vec<FieldProblem>,
    /// Failed rules.
    pub findings: Vec<RuleFinding>,
}

impl Validation {
    /// No answer problem (other than hidden answers) and no failed rule of
    /// severity error.
    pub fn is_clean(&self) -> bool {
        self.problems
            .iter()
            .all(|p| p.problem == Problem::HiddenAnswered)
            && self
                .findings
                .iter()
                .all(|f| f.severity == Severity::Warning)
    }
}

fn is_sha256(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit)
        && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && s[3..].parse::<u8>().is_ok_and(|m| m < 60)
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// `YYYY-MM-DDTHH:MM` as a phone writes it, or a full RFC 3339 time with
/// an offset as ODK Collect writes it.
fn is_datetime(s: &str) -> bool {
    (s.len() == 16 && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").is_ok())
        || chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Checks one present answer against its type.
pub(super) fn check_type(kind: &FieldType, v: &Value) -> Option<(Problem, Message)> {
    let wrong = |what: Message| Some((Problem::WrongType, what));
    let out_of_range = |n: String, min: String, max: String| {
        Some((
            Problem::OutOfRange,
            Message::OutOfRange { value: n, min, max },
        ))
    };
    match kind {
        FieldType::YesNo => {
            (!v.is_boolean()).then_some((Problem::WrongType, Message::ExpectedYesNo))
        }
        FieldType::Integer { min, max } => match v.as_i64() {
            None => wrong(Message::ExpectedWholeNumber),
            Some(n) if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) => {
                out_of_range(n.to_string(), fmt(min), fmt(max))
            }
            _ => None,
        },
        FieldType::Decimal { min, max } => match v.as_f64() {
            None => wrong(Message::ExpectedNumber),
            Some(n) if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) => {
                out_of_range(n.to_string(), fmt(min), fmt(max))
            }
            _ => None,
        },
        FieldType::Text { max_length } => match v.as_str() {
            None => wrong(Message::ExpectedText),
            Some(s) if s.chars().count() > *max_length => {
                Some((Problem::TooLong, Message::TooLong { max: *max_length }))
            }
            _ => None,
        },
        FieldType::SingleChoice { options } => match v.as_str() {
            None => wrong(Message::ExpectedOneOption),
            Some(s) if !options.iter().any(|o| o.id == s) => Some((
                Problem::UnknownOption,
                Message::NotAnOption {
                    value: format!("{s:?}"),
                },
            )),
            _ => None,
        },
        FieldType::MultipleChoice { options } => match v.as_array() {
            None => wrong(Message::ExpectedOptions),
            Some(list) => {
                let mut seen = Vec::new();
                for item in list {
                    match item.as_str() {
                        Some(s) if options.iter().any(|o| o.id == s) && !seen.contains(&s) => {
                            seen.push(s)
                        }
                        _ => {
                            return Some((
                                Problem::UnknownOption,
                                Message::NotAnOptionOrTwice {
                                    value: item.to_string(),
                                },
                            ));
                        }
                    }
                }
                None
            }
        },
        FieldType::Time => match v.as_str() {
            Some(s) if is_time(s) => None,
            _ => Some((Problem::BadTime, Message::ExpectedTime)),
        },
        FieldType::Date => match v.as_str() {
            Some(s) if is_date(s) => None,
            _ => Some((Problem::BadDate, Message::ExpectedDate)),
        },
        FieldType::DateTime => match v.as_str() {
            Some(s) if is_datetime(s) => None,
            _ => Some((Problem::BadDate, Message::ExpectedDateTime)),
        },
        FieldType::Acknowledge => {
            (v != &Value::Bool(true)).then_some((Problem::WrongType, Message::ExpectedAcknowledge))
        }
        FieldType::Note => Some((Problem::WrongType, Message::TakesNoAnswer)),
        // Compared with the computed value by `validate`.
        FieldType::Calculate { .. } => None,
        FieldType::Evidence { .. } => {
            let ok = is_sha256(v)
                || v.as_array()
                    .is_some_and(|a| !a.is_empty() && a.len() <= 32 && a.iter().all(is_sha256));
            (!ok).then_some((Problem::NotAnAttachment, Message::ExpectedMedia))
        }
    }
}

/// A computed value as an answer would hold it; unknown is no value.
fn to_json(e: Eval) -> Option<Value> {
    match e {
        Eval::Num(Num::Int(i)) => i64::try_from(i).ok().map(Value::from),
        Eval::Num(Num::Float(f)) => serde_json::Number::from_f64(f).map(Value::Number),
        Eval::Bool(b) => Some(Value::Bool(b)),
        Eval::Text(t) => Some(Value::String(t)),
        Eval::List(l) => Some(Value::from(l)),
        Eval::Unknown => None,
    }
}

/// Equal as answers: numbers by value (`2` and `2.0` agree).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn fmt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or(String::new(), |v| v.to_string())
}

impl FormDefinition {
    /// Checks `answers` (a payload object): which fields are visible, which
    /// answers are invalid and why, which rules fail. Labels and messages are
    /// in `lang` where the form has it.
    pub fn validate(&self, answers: &Map<String, Value>, lang: &str) -> Validation {
        let mut visible = vec![false; self.fields.len()];
        // Answers of visible fields only: hidden answers never feed a
        // condition or a rule. Calculations are computed here, in
        // dependency order, from what is shown.
        let mut shown = Map::new();
        let mut computed = Map::new();
        for &i in &self.order {
            let f = &self.fields[i];
            visible[i] = match &self.conditions[i] {
                None => true,
                Some(e) => e.eval(&shown) == Eval::Bool(true),
            };
            if !visible[i] {
                continue;
            }
            if let FieldType::Calculate { calculation } = &f.kind {
                if let Some(v) = to_json(calculation.eval(&shown)) {
                    shown.insert(f.id.clone(), v.clone());
                    computed.insert(f.id.clone(), v);
                }
            } else if let Some(v) = answers.get(&f.id).filter(|v| !v.is_null()) {
                shown.insert(f.id.clone(), v.clone());
            }
        }
        let mut out = Validation::default();
        let mut typed_ok = Map::new();
        for (i, f) in self.fields.iter().enumerate() {
            let label = Self::localise(&f.label, lang);
            let answer = answers.get(&f.id).filter(|v| !v.is_null());
            let mut problem = |p: Problem, detail: Message| {
                out.problems.push(super::validate::FieldProblem {
                    field: f.id.clone(),
                    problem: p,
                    message: format!("{label}: {}", detail.render(lang)),
                })
            };
            if !visible[i] {
                if answer.is_some() {
                    problem(Problem::HiddenAnswered, Message::HiddenAnswered);
                }
                continue;
            }
            if let FieldType::Calculate { .. } = f.kind {
                // Not asked: the computed value is what rules read, and an
                // answer the app stored must agree with it.
                let value = computed.get(&f.id);
                if let (Some(a), Some(c)) = (answer, value)
                    && !same_value(a, c)
                {
                    problem(
                        Problem::Miscalculated,
                        Message::Miscalculated {
                            value: a.to_string(),
                            expected: c.to_string(),
                        },
                    );
                }
                if let Some(c) = value {
                    typed_ok.insert(f.id.clone(), c.clone());
                }
                continue;
            }
            out.visible.push(f.id.clone());
            match answer {
                None if f.required => problem(Problem::Missing, Message::Required),
                None => {}
                Some(v) => match check_type(&f.kind, v) {
                    Some((p, detail)) => problem(p, detail),
                    None => {
                        typed_ok.insert(f.id.clone(), v.clone());
                    }
                },
            }
        }
        for key in answers.keys().filter(|k| self.field(k).is_none()) {
            out.problems.push(FieldProblem {
                field: key.clone(),
                problem: Problem::UnknownField,
                message: Message::UnknownField {
                    key: format!("{key:?}"),
                    form: self.id.clone(),
                    version: self.version,
                }
                .render(lang),
            });
        }
        // Rules read only well-typed visible answers; a rule reading an
        // unanswered one neither holds nor fails.
        for r in &self.rules {
            if r.check.eval(&typed_ok) == Eval::Bool(false) {
                out.findings.push(RuleFinding {
                    rule: r.id.clone(),
                    severity: r.severity,
                    message: Self::localise(&r.message, lang).to_string(),
                });
            }
        }
        out
    }
}
