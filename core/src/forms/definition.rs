//! The form definition format (version 1), documented in `docs/forms.md`
//! with a JSON Schema (`docs/form.schema.json`). Parsing checks everything
//! a phone would otherwise discover in the middle of a polling station:
//! unknown types, duplicate ids, rules or conditions naming missing fields,
//! cycles between conditions. Every error names the place.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::FormError;
use super::expr::Expr;

/// Largest definition accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 512 * 1024;
/// Most fields in one form.
pub const MAX_FIELDS: usize = 1000;

/// Text in several languages, keyed by language code (`kk`, `ru`, `en`).
pub type Text = BTreeMap<String, String>;

/// An option of a choice field.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub id: String,
    pub label: Text,
}

/// What a field holds.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    YesNo,
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Decimal {
        min: Option<f64>,
        max: Option<f64>,
    },
    Text {
        max_length: usize,
    },
    SingleChoice {
        options: Vec<Choice>,
    },
    MultipleChoice {
        options: Vec<Choice>,
    },
    /// Local time of day, `HH:MM`.
    Time,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A local date and time, `YYYY-MM-DDTHH:MM`.
    DateTime,
    /// Text shown to the observer; takes no answer.
    Note,
    /// A statement the observer confirms (answer `true`), such as having
    /// read the safety briefing.
    Acknowledge,
    /// A value computed from other answers (not asked); rules and
    /// conditions read it like an answer.
    Calculate {
        calculation: Expr,
    },
    /// An evidence slot: SHA-256 references of attached media.
    Evidence {
        media: Media,
    },
}

/// Which media an evidence slot takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    Photo,
    Audio,
    Video,
}

/// One question.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub id: String,
    pub label: Text,
    pub help: Option<Text>,
    pub kind: FieldType,
    pub required: bool,
    /// Shown (and validated) only when this holds.
    pub show_if: Option<Expr>,
    /// The answer the app fills in before the observer changes it.
    pub default: Option<Value>,
    /// The group (section) the field is in.
    pub group: Option<String>,
}

/// A section of a form: a heading, and a condition that hides every field
/// in it at once. Groups nest.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: String,
    pub label: Option<Text>,
    pub show_if: Option<Expr>,
    /// The group this one is in.
    pub group: Option<String>,
}

/// How serious a failed rule is. Neither blocks saving: an observer must be
/// able to record what they saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Almost certainly a mistake (or a falsified protocol).
    Error,
    /// Unusual; worth a second look.
    Warning,
}

impl Severity {
    /// The stable code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A cross-field rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub check: Expr,
    pub severity: Severity,
    pub message: Text,
}

/// A parsed, checked form definition.
#[derive(Clone, Debug, PartialEq)]
pub struct FormDefinition {
    pub id: String,
    pub version: u32,
    /// The record kind the form produces.
    pub kind: String,
    pub title: Text,
    /// Whether answers are sealed to the organisation's key (issue 6).
    pub sealed: bool,
    pub fields: Vec<Field>,
    pub groups: Vec<Group>,
    pub rules: Vec<Rule>,
    index: HashMap<String, usize>,
    /// Per field: its own condition and those of every group around it.
    pub(super) conditions: Vec<Option<Expr>>,
    /// Field indexes with every field after the fields its condition reads.
    pub(super) order: Vec<usize>,
}

/// Whether `s` is a valid id for a form, field, group, option or rule
/// (what the XLSForm importer checks cell by cell before converting).
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        })
}

struct Reader<'a> {
    place: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Reader<'a> {
    fn new(place: impl Into<String>, v: &'a Value) -> Result<Self, FormError> {
        let place = place.into();
        match v {
            Value::Object(obj) => Ok(Self { place, obj }),
            _ => Err(FormError::Invalid {
                place,
                detail: "expected an object".into(),
            }),
        }
    }

    fn bad(&self, detail: impl Into<String>) -> FormError {
        FormError::Invalid {
            place: self.place.clone(),
            detail: detail.into(),
        }
    }

    fn known(&self, keys: &[&str]) -> Result<(), FormError> {
        match self.obj.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(self.bad(format!("unknown key {k:?}"))),
            None => Ok(()),
        }
    }

    fn id(&self, key: &str) -> Result<String, FormError> {
        let s = self.str(key)?;
        if is_id(&s) {
            Ok(s)
        } else {
            Err(self.bad(format!("{key} {s:?} must be 1 to 64 of a-z 0-9 _ - .")))
        }
    }

    fn str(&self, key: &str) -> Result<String, FormError> {
        self.obj
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.bad(format!("{key} must be a string")))
    }

    fn bool(&self, key: &str) -> Result<bool, FormError> {
        match self.obj.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(format!("{key} must be true or false"))),
        }
    }

    fn text(&self, key: &str) -> Result<Text, FormError> {
        let obj = self
            .obj
            .get(key)
            .and_then(Value::as_object)
            .ok_or_else(|| self.bad(format!("{key} must map language codes to text")))?;
        if obj.is_empty() {
            return Err(self.bad(format!("{key} has no language")));
        }
        obj.iter()
            .map(|(lang, t)| match t.as_str() {
                Some(t) if lang.len() <= 8 && t.len() <= 4096 => Ok((lang.clone(), t.to_string())),
                _ => Err(self.bad(format!("{key}.{lang} must be text of at most 4096 bytes"))),
            })
            .collect()
    }

    fn opt_text(&self, key: &str) -> Result<Option<Text>, FormError> {
        if self.obj.contains_key(key) {
            self.text(key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, FormError> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.bad(format!("{key} must be an integer"))),
        }
    }

    fn num(&self, key: &str) -> Result<Option<f64>, FormError> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(format!("{key} must be a number"))),
        }
    }

    fn expr(&self, key: &str) -> Result<Option<Expr>, FormError> {
        self.obj
            .get(key)
            .map(|v| Expr::parse(v).map_err(|e| self.bad(format!("{key}: {e}"))))
            .transpose()
    }

    fn list(&self, key: &str) -> Result<&'a Vec<Value>, FormError> {
        match self.obj.get(key) {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(self.bad(format!("{key} must be a list"))),
        }
    }
}

fn options(r: &Reader<'_>) -> Result<Vec<Choice>, FormError> {
    let list = r.list("options")?;
    if list.is_empty() {
        return Err(r.bad("a choice field needs options"));
    }
    let mut seen = HashSet::new();
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let o = Reader::new(format!("{} option {}", r.place, i + 1), o)?;
            o.known(&["id", "label"])?;
            let id = o.id("id")?;
            if !seen.insert(id.clone()) {
                return Err(FormError::Duplicate {
                    place: r.place.clone(),
                    what: "option",
                    id,
                });
            }
            Ok(Choice {
                id,
                label: o.text("label")?,
            })
        })
        .collect()
}

fn field(i: usize, v: &Value) -> Result<Field, FormError> {
    let r = Reader::new(format!("field {}", i + 1), v)?;
    let id = r.id("id")?;
    let r = Reader {
        place: format!("field {id:?}"),
        obj: r.obj,
    };
    let ty = r.str("type")?;
    let (kind, extra): (FieldType, &[&str]) = match ty.as_str() {
        "yes_no" => (FieldType::YesNo, &[]),
        "integer" => {
            let (min, max) = (r.int("min")?, r.int("max")?);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(r.bad(format!("min {a} is above max {b}")));
            }
            (FieldType::Integer { min, max }, &["min", "max"])
        }
        "decimal" => {
            let (min, max) = (r.num("min")?, r.num("max")?);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(r.bad(format!("min {a} is above max {b}")));
            }
            (FieldType::Decimal { min, max }, &["min", "max"])
        }
        "text" => {
            let max = r.int("max_length")?.unwrap_or(1000);
            if !(1..=10_000).contains(&max) {
                return Err(r.bad("max_length must be 1 to 10000"));
            }
            (
                FieldType::Text {
                    max_length: max as usize,
                },
                &["max_length"],
            )
        }
        "single_choice" => (
            FieldType::SingleChoice {
                options: options(&r)?,
            },
            &["options"],
        ),
        "multiple_choice" => (
            FieldType::MultipleChoice {
                options: options(&r)?,
            },
            &["options"],
        ),
        "time" => (FieldType::Time, &[]),
        "date" => (FieldType::Date, &[]),
        "datetime" => (FieldType::DateTime, &[]),
        "note" => (FieldType::Note, &[]),
        "acknowledge" => (FieldType::Acknowledge, &[]),
        "calculate" => (
            FieldType::Calculate {
                calculation: r
                    .expr("calculation")?
                    .ok_or_else(|| r.bad("a calculate field needs a calculation"))?,
            },
            &["calculation"],
        ),
        "photo" => (
            FieldType::Evidence {
                media: Media::Photo,
            },
            &[],
        ),
        "audio" => (
            FieldType::Evidence {
                media: Media::Audio,
            },
            &[],
        ),
        "video" => (
            FieldType::Evidence {
                media: Media::Video,
            },
            &[],
        ),
        other => {
            return Err(FormError::UnknownType {
                field: id,
                found: other.to_string(),
            });
        }
    };
    let mut keys = vec![
        "id", "type", "label", "help", "required", "show_if", "default", "group",
    ];
    keys.extend_from_slice(extra);
    r.known(&keys)?;
    let default = match r.obj.get("default") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if matches!(kind, FieldType::Note | FieldType::Calculate { .. }) {
                return Err(r.bad("a note or a calculation takes no default"));
            }
            if let Some((_, m)) = super::validate::check_type(&kind, v) {
                return Err(r.bad(format!("default {v}: {}", m.render("en"))));
            }
            Some(v.clone())
        }
    };
    let group = match r.obj.get("group") {
        None => None,
        Some(_) => Some(r.id("group")?),
    };
    Ok(Field {
        label: r.text("label")?,
        help: r.opt_text("help")?,
        required: r.bool("required")?,
        show_if: r.expr("show_if")?,
        default,
        group,
        kind,
        id,
    })
}

fn group(i: usize, v: &Value) -> Result<Group, FormError> {
    let r = Reader::new(format!("group {}", i + 1), v)?;
    let id = r.id("id")?;
    let r = Reader {
        place: format!("group {id:?}"),
        obj: r.obj,
    };
    r.known(&["id", "label", "show_if", "group"])?;
    Ok(Group {
        label: r.opt_text("label")?,
        show_if: r.expr("show_if")?,
        group: match r.obj.get("group") {
            None => None,
            Some(_) => Some(r.id("group")?),
        },
        id,
    })
}

fn rule(i: usize, v: &Value) -> Result<Rule, FormError> {
    let r = Reader::new(format!("rule {}", i + 1), v)?;
    let id = r.id("id")?;
    let r = Reader {
        place: format!("rule {id:?}"),
        obj: r.obj,
    };
    r.known(&["id", "check", "severity", "message"])?;
    let severity = match r.str("severity")?.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        other => {
            return Err(r.bad(format!(
                "severity {other:?} must be \"error\" or \"warning\""
            )));
        }
    };
    Ok(Rule {
        check: r
            .expr("check")?
            .ok_or_else(|| r.bad("a rule needs a check"))?,
        message: r.text("message")?,
        severity,
        id,
    })
}

impl FormDefinition {
    /// Parses and checks a definition.
    pub fn parse(json: &str) -> Result<Self, FormError> {
        if json.len() > MAX_DEFINITION_BYTES {
            return Err(FormError::TooLarge {
                bytes: json.len(),
                limit: MAX_DEFINITION_BYTES,
            });
        }
        let v: Value = serde_json::from_str(json).map_err(|e| FormError::Json(e.to_string()))?;
        let r = Reader::new("the form", &v)?;
        r.known(&[
            "format", "id", "version", "kind", "title", "sealed", "fields", "groups", "rules",
        ])?;
        match r.obj.get("format").and_then(Value::as_u64) {
            Some(1) => {}
            _ => return Err(r.bad("format must be 1 (this Observer reads form format 1)")),
        }
        let version =
            r.obj
                .get("version")
                .and_then(Value::as_u64)
                .filter(|v| (1..=u32::MAX as u64).contains(v))
                .ok_or_else(|| r.bad("version must be a whole number from 1"))? as u32;
        let field_values = r.list("fields")?;
        if field_values.is_empty() || field_values.len() > MAX_FIELDS {
            return Err(r.bad(format!("a form has 1 to {MAX_FIELDS} fields")));
        }
        let fields: Vec<Field> = field_values
            .iter()
            .enumerate()
            .map(|(i, f)| field(i, f))
            .collect::<Result<_, _>>()?;
        let groups: Vec<Group> = match r.obj.get("groups") {
            None => Vec::new(),
            Some(_) => r
                .list("groups")?
                .iter()
                .enumerate()
                .map(|(i, g)| group(i, g))
                .collect::<Result<_, _>>()?,
        };
        let rules: Vec<Rule> = match r.obj.get("rules") {
            None => Vec::new(),
            Some(_) => r
                .list("rules")?
                .iter()
                .enumerate()
                .map(|(i, x)| rule(i, x))
                .collect::<Result<_, _>>()?,
        };
        let mut index = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            if index.insert(f.id.clone(), i).is_some() {
                return Err(FormError::Duplicate {
                    place: "the form".into(),
                    what: "field",
                    id: f.id.clone(),
                });
            }
        }
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            if index.contains_key(&g.id) || group_index.insert(&g.id, i).is_some() {
                return Err(FormError::Duplicate {
                    place: "the form".into(),
                    what: "field or group",
                    id: g.id.clone(),
                });
            }
            // A group is inside one defined before it, so groups cannot
            // contain each other in a loop.
            if let Some(parent) = &g.group
                && group_index.get(parent.as_str()).is_none_or(|&p| p >= i)
            {
                return Err(FormError::Invalid {
                    place: format!("group {:?}", g.id),
                    detail: format!("group {parent:?} is not a group defined before it"),
                });
            }
        }
        for f in &fields {
            if let Some(g) = &f.group
                && !group_index.contains_key(g.as_str())
            {
                return Err(FormError::Invalid {
                    place: format!("field {:?}", f.id),
                    detail: format!("group {g:?} is not a group of the form"),
                });
            }
        }
        let conditions = fields
            .iter()
            .map(|f| {
                let mut all = Vec::new();
                let mut at = f.group.as_deref();
                while let Some(g) = at.and_then(|g| group_index.get(g)).map(|&i| &groups[i]) {
                    all.extend(g.show_if.clone());
                    at = g.group.as_deref();
                }
                all.reverse();
                all.extend(f.show_if.clone());
                match all.len() {
                    0 => None,
                    1 => all.pop(),
                    _ => Some(Expr::And(all)),
                }
            })
            .collect();
        let mut rule_ids = HashSet::new();
        for rule in &rules {
            if !rule_ids.insert(rule.id.clone()) {
                return Err(FormError::Duplicate {
                    place: "the form".into(),
                    what: "rule",
                    id: rule.id.clone(),
                });
            }
        }
        let mut form = FormDefinition {
            id: r.id("id")?,
            kind: r.id("kind")?,
            title: r.text("title")?,
            sealed: r.bool("sealed")?,
            version,
            fields,
            groups,
            rules,
            index,
            conditions,
            order: Vec::new(),
        };
        form.check_references()?;
        form.order = form.dependency_order()?;
        Ok(form)
    }

    fn check_references(&self) -> Result<(), FormError> {
        let mut refs = Vec::new();
        let mut exprs: Vec<(String, &Expr)> = Vec::new();
        for f in &self.fields {
            if let Some(e) = &f.show_if {
                exprs.push((format!("field {:?} show_if", f.id), e));
            }
            if let FieldType::Calculate { calculation } = &f.kind {
                exprs.push((format!("field {:?} calculation", f.id), calculation));
            }
        }
        for g in &self.groups {
            if let Some(e) = &g.show_if {
                exprs.push((format!("group {:?} show_if", g.id), e));
            }
        }
        for (place, e) in exprs {
            refs.clear();
            e.fields(&mut refs);
            if let Some(missing) = refs.iter().find(|r| !self.index.contains_key(*r)) {
                return Err(FormError::UnknownField {
                    place,
                    field: missing.clone(),
                });
            }
        }
        for rule in &self.rules {
            refs.clear();
            rule.check.fields(&mut refs);
            if let Some(missing) = refs.iter().find(|r| !self.index.contains_key(*r)) {
                return Err(FormError::UnknownField {
                    place: format!("rule {:?}", rule.id),
                    field: missing.clone(),
                });
            }
        }
        Ok(())
    }

    /// A field shown only if another holds, which is shown only if the first
    /// holds, could never be shown: refused, naming the loop. Calculations
    /// count as dependencies too (a value computed from itself has none).
    fn dependency_order(&self) -> Result<Vec<usize>, FormError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let deps: Vec<Vec<usize>> = self
            .fields
            .iter()
            .zip(&self.conditions)
            .map(|(f, condition)| {
                let mut refs = Vec::new();
                if let Some(e) = condition {
                    e.fields(&mut refs);
                }
                if let FieldType::Calculate { calculation } = &f.kind {
                    calculation.fields(&mut refs);
                }
                refs.iter()
                    .filter_map(|r| self.index.get(r).copied())
                    .collect()
            })
            .collect();
        let mut mark = vec![Mark::New; self.fields.len()];
        let mut order = Vec::with_capacity(self.fields.len());
        for start in 0..self.fields.len() {
            if mark[start] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, next dependency to visit).
            let mut stack = vec![(start, 0usize)];
            mark[start] = Mark::Active;
            while let Some((node, next)) = stack.last_mut() {
                if let Some(&d) = deps[*node].get(*next) {
                    *next += 1;
                    match mark[d] {
                        Mark::New => {
                            mark[d] = Mark::Active;
                            stack.push((d, 0));
                        }
                        Mark::Active => {
                            let from = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[from..]
                                .iter()
                                .map(|(n, _)| self.fields[*n].id.clone())
                                .collect();
                            cycle.push(self.fields[d].id.clone());
                            return Err(FormError::ConditionCycle { fields: cycle });
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[*node] = Mark::Done;
                    order.push(*node);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    /// The field with this id.
    pub fn field(&self, id: &str) -> Option<&Field> {
        self.index.get(id).map(|&i| &self.fields[i])
    }

    /// The condition under which a field is shown: its own and those of
    /// every group around it.
    pub fn condition(&self, id: &str) -> Option<&Expr> {
        self.index
            .get(id)
            .and_then(|&i| self.conditions[i].as_ref())
    }

    /// The headings of the groups around a field, outermost first.
    pub fn sections(&self, field: &Field) -> Vec<&Group> {
        let mut out = Vec::new();
        let mut at = field.group.as_deref();
        while let Some(g) = at.and_then(|g| self.group(g)) {
            out.push(g);
            at = g.group.as_deref();
        }
        out.reverse();
        out
    }

    /// The group with this id.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The definition as JSON in the published format, the inverse of
    /// [`FormDefinition::parse`] (what the XLSForm importer publishes).
    pub fn to_json(&self) -> Value {
        use serde_json::json;
        let text = |t: &Text| json!(t);
        let choices = |o: &[Choice]| {
            Value::Array(
                o.iter()
                    .map(|c| json!({"id": c.id, "label": text(&c.label)}))
                    .collect(),
            )
        };
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let mut o = Map::new();
                o.insert("id".into(), json!(f.id));
                let ty = match &f.kind {
                    FieldType::YesNo => "yes_no",
                    FieldType::Integer { min, max } => {
                        if let Some(m) = min {
                            o.insert("min".into(), json!(m));
                        }
                        if let Some(m) = max {
                            o.insert("max".into(), json!(m));
                        }
                        "integer"
                    }
                    FieldType::Decimal { min, max } => {
                        if let Some(m) = min {
                            o.insert("min".into(), json!(m));
                        }
                        if let Some(m) = max {
                            o.insert("max".into(), json!(m));
                        }
                        "decimal"
                    }
                    FieldType::Text { max_length } => {
                        o.insert("max_length".into(), json!(max_length));
                        "text"
                    }
                    FieldType::SingleChoice { options } => {
                        o.insert("options".into(), choices(options));
                        "single_choice"
                    }
                    FieldType::MultipleChoice { options } => {
                        o.insert("options".into(), choices(options));
                        "multiple_choice"
                    }
                    FieldType::Time => "time",
                    FieldType::Date => "date",
                    FieldType::DateTime => "datetime",
                    FieldType::Note => "note",
                    FieldType::Acknowledge => "acknowledge",
                    FieldType::Calculate { calculation } => {
                        o.insert("calculation".into(), calculation.to_json());
                        "calculate"
                    }
                    FieldType::Evidence { media } => match media {
                        Media::Photo => "photo",
                        Media::Audio => "audio",
                        Media::Video => "video",
                    },
                };
                o.insert("type".into(), json!(ty));
                o.insert("label".into(), text(&f.label));
                if let Some(h) = &f.help {
                    o.insert("help".into(), text(h));
                }
                if f.required {
                    o.insert("required".into(), json!(true));
                }
                if let Some(e) = &f.show_if {
                    o.insert("show_if".into(), e.to_json());
                }
                if let Some(d) = &f.default {
                    o.insert("default".into(), d.clone());
                }
                if let Some(g) = &f.group {
                    o.insert("group".into(), json!(g));
                }
                Value::Object(o)
            })
            .collect();
        let mut form = json!({
            "format": 1,
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "title": text(&self.title),
            "fields": fields,
        });
        if self.sealed {
            form["sealed"] = json!(true);
        }
        if !self.groups.is_empty() {
            form["groups"] = Value::Array(
                self.groups
                    .iter()
                    .map(|g| {
                        let mut o = Map::new();
                        o.insert("id".into(), json!(g.id));
                        if let Some(l) = &g.label {
                            o.insert("label".into(), text(l));
                        }
                        if let Some(e) = &g.show_if {
                            o.insert("show_if".into(), e.to_json());
                        }
                        if let Some(p) = &g.group {
                            o.insert("group".into(), json!(p));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            );
        }
        if !self.rules.is_empty() {
            form["rules"] = Value::Array(
                self.rules
                    .iter()
                    .map(|r| {
                        json!({"id": r.id, "severity": r.severity.code(),
                               "check": r.check.to_json(), "message": text(&r.message)})
                    })
                    .collect(),
            );
        }
        form
    }

    /// `text` in `lang`, falling back to English, then to any language.
    pub fn localise<'t>(text: &'t Text, lang: &str) -> &'t str {
        text.get(lang)
            .or_else(|| text.get("en"))
            .or_else(|| text.values().next())
            .map_or("", String::as_str)
    }
}
