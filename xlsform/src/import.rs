//! An XLSForm workbook into an Observer form definition. The workbook is
//! converted to the published JSON format and then parsed by the same
//! parser the phones run, so an imported form is checked exactly as a
//! hand-written one; before that, every cell is checked here so that an
//! error names the sheet, row and column a coordinator has to fix.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use observer_core::forms::{Cmp, Expr, FormDefinition, FormError, is_id};
use serde_json::{Map, Value, json};

use crate::workbook::{Row, Sheet, Workbook, language_code};
use crate::{ImportError, Warning, xpath};

/// Survey columns Observer reads.
const SURVEY_COLUMNS: &[&str] = &[
    "type",
    "name",
    "label",
    "hint",
    "required",
    "relevant",
    "constraint",
    "constraint_message",
    "calculation",
    "default",
];
/// Survey columns about presentation only: ignored with a warning.
const PRESENTATION: &[&str] = &["appearance", "guidance_hint"];
/// Metadata questions: Observer records them itself, signed.
const METADATA: &[&str] = &[
    "start",
    "end",
    "today",
    "deviceid",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "audit",
    "start-geopoint",
];

/// The Observer kind of a survey row.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    YesNo,
    Integer,
    Decimal,
    Text,
    Single(String),
    Multiple(String),
    Time,
    Date,
    DateTime,
    Note,
    Acknowledge,
    Calculate,
    Media(&'static str),
}

impl Kind {
    fn json(&self) -> &'static str {
        match self {
            Kind::YesNo => "yes_no",
            Kind::Integer => "integer",
            Kind::Decimal => "decimal",
            Kind::Text => "text",
            Kind::Single(_) => "single_choice",
            Kind::Multiple(_) => "multiple_choice",
            Kind::Time => "time",
            Kind::Date => "date",
            Kind::DateTime => "datetime",
            Kind::Note => "note",
            Kind::Acknowledge => "acknowledge",
            Kind::Calculate => "calculate",
            Kind::Media(m) => m,
        }
    }
}

/// The choices sheet: per list, each choice's name and label by language.
type Choices = HashMap<String, Vec<(String, BTreeMap<String, String>)>>;

/// What a survey row is.
enum Line {
    Field(Kind),
    BeginGroup,
    EndGroup,
    Skip(String),
}

/// The choice list Observer reads as its yes/no type.
pub const YES_NO_LIST: &str = "yes_no";

const ID_RULE: &str = "must be 1 to 64 of a-z 0-9 _ - . (Observer ids are lower case)";

fn line(sheet: &Sheet, row: &Row, ty: &str, choices: &Choices) -> Result<Line, ImportError> {
    let words: Vec<&str> = ty.split_whitespace().collect();
    let bad = |detail: String| Err(sheet.at(row, Some("type"), detail));
    let list = |l: &str| -> Result<String, ImportError> {
        if choices.contains_key(l) {
            Ok(l.to_string())
        } else {
            Err(sheet.at(
                row,
                Some("type"),
                format!("the choice list {l:?} is not on the choices sheet"),
            ))
        }
    };
    Ok(Line::Field(match words.as_slice() {
        ["integer" | "int"] => Kind::Integer,
        ["decimal"] => Kind::Decimal,
        ["text" | "string"] => Kind::Text,
        ["date"] => Kind::Date,
        ["time"] => Kind::Time,
        ["dateTime" | "datetime"] => Kind::DateTime,
        ["note"] => Kind::Note,
        ["acknowledge" | "trigger"] => Kind::Acknowledge,
        ["calculate"] => Kind::Calculate,
        ["image" | "photo"] => Kind::Media("photo"),
        ["audio"] => Kind::Media("audio"),
        ["video"] => Kind::Media("video"),
        ["select_one" | "select1", l] => {
            let l = list(l)?;
            let names: BTreeSet<&str> = choices[&l].iter().map(|c| c.0.as_str()).collect();
            if l == YES_NO_LIST && names == BTreeSet::from(["yes", "no"]) {
                Kind::YesNo
            } else {
                Kind::Single(l)
            }
        }
        ["select_multiple" | "select_all_that_apply", l] => Kind::Multiple(list(l)?),
        ["select_one" | "select_multiple", _, "or_other"] => {
            return bad("`or_other` is not supported: add an \"other\" choice and a text question shown when it is selected".into());
        }
        ["begin" | "begin_group", "group"] | ["begin_group"] => return Ok(Line::BeginGroup),
        ["end" | "end_group", "group"] | ["end_group"] => return Ok(Line::EndGroup),
        ["begin" | "end", "repeat"] | ["begin_repeat" | "end_repeat"] => {
            return bad("repeats are not supported: one Observer record is one observation; use several records".into());
        }
        [m] if METADATA.contains(m) => {
            return Ok(Line::Skip(format!(
                "the metadata question {m:?} is skipped: Observer records the device and a signed time itself"
            )));
        }
        _ => return bad(format!("the type {ty:?} is not supported")),
    }))
}

fn yes(sheet: &Sheet, row: &Row, column: &str) -> Result<bool, ImportError> {
    match sheet.get(row, column).to_ascii_lowercase().as_str() {
        "" | "no" | "false" | "false()" => Ok(false),
        "yes" | "true" | "true()" => Ok(true),
        other => Err(sheet.at(
            row,
            Some(column),
            format!("{other:?} must be yes or no (expressions are not supported here)"),
        )),
    }
}

/// A parsed cell with the field names it reads checked.
fn expression(
    sheet: &Sheet,
    row: &Row,
    column: &str,
    this: Option<&str>,
    names: &HashMap<String, NameKind>,
) -> Result<Option<Expr>, ImportError> {
    let src = sheet.get(row, column);
    if src.is_empty() {
        return Ok(None);
    }
    let e = xpath::parse(src, this).map_err(|e| sheet.at(row, Some(column), e.to_string()))?;
    let mut refs = Vec::new();
    e.fields(&mut refs);
    for r in refs {
        match names.get(&r) {
            Some(NameKind::Field(_)) => {}
            Some(NameKind::Group) => {
                return Err(sheet.at(
                    row,
                    Some(column),
                    format!("${{{r}}} is a group, not a question"),
                ));
            }
            None => {
                return Err(sheet.at(
                    row,
                    Some(column),
                    format!("${{{r}}} is not a question of this form"),
                ));
            }
        }
    }
    Ok(Some(retype(e, names)))
}

#[derive(Clone, Debug)]
enum NameKind {
    Field(Kind),
    Group,
}

/// XLSForm compares yes/no answers with `'yes'` and acknowledgements with
/// `'OK'`; Observer's answers are `true`/`false`.
fn retype(e: Expr, names: &HashMap<String, NameKind>) -> Expr {
    let kind = |f: &str| match names.get(f) {
        Some(NameKind::Field(k)) => Some(k.clone()),
        _ => None,
    };
    let literal = |f: &str, v: &Value| -> Option<Value> {
        match (kind(f), v.as_str()) {
            (Some(Kind::YesNo), Some("yes")) => Some(Value::Bool(true)),
            (Some(Kind::YesNo), Some("no")) => Some(Value::Bool(false)),
            (Some(Kind::Acknowledge), Some("OK")) => Some(Value::Bool(true)),
            _ => None,
        }
    };
    let all = |l: Vec<Expr>| l.into_iter().map(|e| retype(e, names)).collect();
    let one = |e: Box<Expr>| Box::new(retype(*e, names));
    match e {
        Expr::Compare(c, a, b) => match (*a, *b) {
            (Expr::Field(f), Expr::Literal(v)) if literal(&f, &v).is_some() => {
                let v = literal(&f, &v).unwrap_or(v);
                Expr::Compare(c, Box::new(Expr::Field(f)), Box::new(Expr::Literal(v)))
            }
            (Expr::Literal(v), Expr::Field(f)) if literal(&f, &v).is_some() => {
                let v = literal(&f, &v).unwrap_or(v);
                Expr::Compare(c, Box::new(Expr::Literal(v)), Box::new(Expr::Field(f)))
            }
            (a, b) => Expr::Compare(c, Box::new(retype(a, names)), Box::new(retype(b, names))),
        },
        Expr::Includes(e, o) => match *e {
            Expr::Field(f) if kind(&f) == Some(Kind::YesNo) && (o == "yes" || o == "no") => {
                Expr::Compare(
                    Cmp::Eq,
                    Box::new(Expr::Field(f)),
                    Box::new(Expr::Literal(Value::Bool(o == "yes"))),
                )
            }
            e => Expr::Includes(Box::new(retype(e, names)), o),
        },
        Expr::Sum(l) => Expr::Sum(all(l)),
        Expr::And(l) => Expr::And(all(l)),
        Expr::Or(l) => Expr::Or(all(l)),
        Expr::Not(e) => Expr::Not(one(e)),
        Expr::Arith(op, a, b) => Expr::Arith(op, one(a), one(b)),
        Expr::If(c, a, b) => Expr::If(one(c), one(a), one(b)),
        Expr::Coalesce(a, b) => Expr::Coalesce(one(a), one(b)),
        Expr::Length(e) => Expr::Length(one(e)),
        Expr::Count(e) => Expr::Count(one(e)),
        Expr::Matches(e, p) => Expr::Matches(one(e), p),
        e @ (Expr::Literal(_) | Expr::Field(_) | Expr::Answered(_)) => e,
    }
}

/// `. >= a and . <= b` (either side alone too) as a field's range.
fn range(e: &Expr, me: &str) -> Option<(Option<Value>, Option<Value>)> {
    let bound = |e: &Expr| match e {
        Expr::Compare(c @ (Cmp::Ge | Cmp::Le), a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Field(f), Expr::Literal(v @ Value::Number(_))) if f == me => {
                Some((*c, v.clone()))
            }
            _ => None,
        },
        _ => None,
    };
    let parts: Vec<&Expr> = match e {
        Expr::And(l) if l.len() == 2 => l.iter().collect(),
        e => vec![e],
    };
    let (mut min, mut max) = (None, None);
    for p in parts {
        match bound(p)? {
            (Cmp::Ge, v) if min.is_none() => min = Some(v),
            (Cmp::Le, v) if max.is_none() => max = Some(v),
            _ => return None,
        }
    }
    Some((min, max))
}

/// `string-length(.) <= n` as a text's longest length.
fn max_length(e: &Expr, me: &str) -> Option<i64> {
    match e {
        Expr::Compare(Cmp::Le, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Length(f), Expr::Literal(Value::Number(n))) if matches!(f.as_ref(), Expr::Field(f) if f == me) => {
                n.as_i64().filter(|n| (1..=10_000).contains(n))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The message of a constraint without a `constraint_message`.
fn generic_message(langs: &BTreeSet<String>) -> Value {
    let mut m = Map::new();
    for lang in langs {
        let text = match lang.as_str() {
            "ru" => "Недопустимое значение.",
            "kk" => "Жарамсыз мән.",
            _ => "This answer is not valid.",
        };
        m.insert(lang.clone(), json!(text));
    }
    Value::Object(m)
}

/// The check a field's constraint becomes: it holds when the field is
/// unanswered, as XLSForm constraints apply to answers only.
pub(crate) fn constraint_check(field: &str, c: Expr) -> Expr {
    Expr::Or(vec![
        Expr::Not(Box::new(Expr::Answered(field.to_string()))),
        c,
    ])
}

fn default_value(sheet: &Sheet, row: &Row, kind: &Kind) -> Result<Option<Value>, ImportError> {
    let d = sheet.get(row, "default");
    if d.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| Err(sheet.at(row, Some("default"), format!("{d:?} is not {what}")));
    Ok(Some(match kind {
        Kind::Integer => match d.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => return bad("a whole number"),
        },
        Kind::Decimal => match d.parse::<f64>() {
            Ok(f) if f.is_finite() => json!(f),
            _ => return bad("a number"),
        },
        Kind::YesNo => match d {
            "yes" => json!(true),
            "no" => json!(false),
            _ => return bad("yes or no"),
        },
        Kind::Acknowledge => match d {
            "OK" | "yes" => json!(true),
            _ => return bad("OK"),
        },
        Kind::Multiple(_) => json!(d.split_whitespace().collect::<Vec<_>>()),
        Kind::Note | Kind::Calculate | Kind::Media(_) => {
            return Err(sheet.at(row, Some("default"), "this type takes no default"));
        }
        _ => json!(d),
    }))
}

/// Reads an XLSForm workbook into a checked form definition.
pub fn import(bytes: &[u8], file_stem: &str) -> Result<crate::Imported, ImportError> {
    let mut book = Workbook::read(bytes)?;
    let survey = book
        .take("survey")
        .ok_or(ImportError::MissingSheet("survey"))?;
    let choices_sheet = book.take("choices");
    let settings = book.take("settings");
    let rules_sheet = book.take("rules");
    let mut warnings = Vec::new();
    for other in book.rest() {
        warnings.push(Warning {
            sheet: other.to_string(),
            row: None,
            detail: "this sheet is not read by Observer".into(),
        });
    }

    // Settings: one row of values under their headers.
    let empty = Row::empty();
    let (settings_sheet, settings_row) = match &settings {
        Some(s) => (Some(s), s.rows.first().unwrap_or(&empty)),
        None => (None, &empty),
    };
    let setting = |name: &str| settings_sheet.map_or("", |s| s.get(settings_row, name));
    let default_lang = match setting("default_language") {
        "" => "en".to_string(),
        l => language_code(l).ok_or_else(|| ImportError::At {
            sheet: "settings".into(),
            row: settings_row.number,
            column: Some("default_language".into()),
            detail: format!("{l:?} needs its code in parentheses, as in \"English (en)\""),
        })?,
    };
    let mut langs: BTreeSet<String> = survey.languages().map(str::to_string).collect();
    if let Some(c) = &choices_sheet {
        langs.extend(c.languages().map(str::to_string));
    }
    if langs.is_empty()
        || survey
            .columns
            .iter()
            .any(|c| c.base == "label" && c.lang.is_none())
    {
        langs.insert(default_lang.clone());
    }

    // Choices, by list.
    let mut choices = Choices::new();
    if let Some(sheet) = &choices_sheet {
        for row in &sheet.rows {
            let list = sheet.get(row, "list_name");
            let list = if list.is_empty() {
                sheet.get(row, "list name")
            } else {
                list
            };
            let name = sheet.get(row, "name");
            if list.is_empty() || name.is_empty() {
                return Err(sheet.at(row, None, "a choice needs a list_name and a name"));
            }
            if !is_id(name) {
                return Err(sheet.at(row, Some("name"), format!("{name:?} {ID_RULE}")));
            }
            let label = sheet.texts(row, "label", &default_lang);
            if label.is_empty() {
                return Err(sheet.at(row, Some("label"), "a choice needs a label"));
            }
            missing_translations(sheet, row, "label", &label, &langs, &mut warnings);
            let entry = choices.entry(list.to_string()).or_default();
            if entry.iter().any(|(n, _)| n == name) {
                return Err(sheet.at(
                    row,
                    Some("name"),
                    format!("the list {list:?} has {name:?} twice"),
                ));
            }
            entry.push((name.to_string(), label));
        }
    }

    // First pass: every name and what it is, so expressions can be checked
    // whatever order the rows are in.
    let mut names: HashMap<String, NameKind> = HashMap::new();
    let mut lines = Vec::new();
    for row in &survey.rows {
        let ty = survey.get(row, "type");
        if ty.is_empty() {
            return Err(survey.at(row, Some("type"), "a row with values needs a type"));
        }
        let l = line(&survey, row, ty, &choices)?;
        let name = survey.get(row, "name");
        match &l {
            Line::EndGroup | Line::Skip(_) => {}
            Line::Field(_) | Line::BeginGroup => {
                if !is_id(name) {
                    return Err(survey.at(row, Some("name"), format!("{name:?} {ID_RULE}")));
                }
                let kind = match &l {
                    Line::Field(k) => NameKind::Field(k.clone()),
                    _ => NameKind::Group,
                };
                if names.insert(name.to_string(), kind).is_some() {
                    return Err(survey.at(
                        row,
                        Some("name"),
                        format!("{name:?} names two rows; names must be unique"),
                    ));
                }
            }
        }
        lines.push((row, l));
    }

    // Second pass: fields, groups and field constraints.
    let mut fields = Vec::new();
    let mut groups: Vec<(u32, Map<String, Value>)> = Vec::new();
    let mut rules = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut used_groups = BTreeSet::new();
    for (row, l) in lines {
        let name = survey.get(row, "name").to_string();
        let kind = match l {
            Line::Skip(why) => {
                warnings.push(survey.warning(row, why));
                continue;
            }
            Line::EndGroup => {
                if stack.pop().is_none() {
                    return Err(survey.at(row, Some("type"), "`end group` without a group to end"));
                }
                continue;
            }
            Line::BeginGroup => {
                let mut g = Map::new();
                g.insert("id".into(), json!(name));
                let label = survey.texts(row, "label", &default_lang);
                if !label.is_empty() {
                    missing_translations(&survey, row, "label", &label, &langs, &mut warnings);
                    g.insert("label".into(), json!(label));
                }
                if let Some(e) = expression(&survey, row, "relevant", None, &names)? {
                    g.insert("show_if".into(), e.to_json());
                }
                if let Some(parent) = stack.last() {
                    g.insert("group".into(), json!(parent));
                }
                refuse_unknown(
                    &survey,
                    row,
                    &["type", "name", "label", "relevant"],
                    &mut warnings,
                )?;
                groups.push((row.number, g));
                stack.push(name);
                continue;
            }
            Line::Field(kind) => kind,
        };
        refuse_unknown(&survey, row, SURVEY_COLUMNS, &mut warnings)?;
        let mut f = Map::new();
        f.insert("id".into(), json!(name));
        f.insert("type".into(), json!(kind.json()));
        let mut label = survey.texts(row, "label", &default_lang);
        if label.is_empty() {
            if kind == Kind::Calculate {
                label.insert(default_lang.clone(), name.clone());
            } else {
                return Err(survey.at(row, Some("label"), "a question needs a label"));
            }
        } else {
            missing_translations(&survey, row, "label", &label, &langs, &mut warnings);
        }
        f.insert("label".into(), json!(label));
        let hint = survey.texts(row, "hint", &default_lang);
        if !hint.is_empty() {
            missing_translations(&survey, row, "hint", &hint, &langs, &mut warnings);
            f.insert("help".into(), json!(hint));
        }
        if yes(&survey, row, "required")? {
            f.insert("required".into(), json!(true));
        }
        if let Some(e) = expression(&survey, row, "relevant", None, &names)? {
            f.insert("show_if".into(), e.to_json());
        }
        if let Some(d) = default_value(&survey, row, &kind)? {
            f.insert("default".into(), d);
        }
        if let Some(g) = stack.last() {
            f.insert("group".into(), json!(g));
            used_groups.extend(stack.iter().cloned());
        }
        match &kind {
            Kind::Single(list) | Kind::Multiple(list) => {
                let options: Vec<Value> = choices[list]
                    .iter()
                    .map(|(id, label)| json!({"id": id, "label": label}))
                    .collect();
                f.insert("options".into(), Value::Array(options));
            }
            Kind::Calculate => {
                let e =
                    expression(&survey, row, "calculation", None, &names)?.ok_or_else(|| {
                        survey.at(
                            row,
                            Some("calculation"),
                            "a calculate row needs a calculation",
                        )
                    })?;
                f.insert("calculation".into(), e.to_json());
            }
            _ => {}
        }
        if !matches!(kind, Kind::Calculate) && !survey.get(row, "calculation").is_empty() {
            return Err(survey.at(
                row,
                Some("calculation"),
                "only a calculate row takes a calculation",
            ));
        }
        let message = survey.texts(row, "constraint_message", &default_lang);
        if let Some(c) = expression(&survey, row, "constraint", Some(&name), &names)? {
            let as_range = match (&kind, message.is_empty()) {
                (Kind::Integer | Kind::Decimal, true) => range(&c, &name).map(|(min, max)| {
                    if let Some(v) = min {
                        f.insert("min".into(), v);
                    }
                    if let Some(v) = max {
                        f.insert("max".into(), v);
                    }
                }),
                (Kind::Text, true) => {
                    max_length(&c, &name).map(|n| drop(f.insert("max_length".into(), json!(n))))
                }
                _ => None,
            };
            if as_range.is_none() {
                let message = if message.is_empty() {
                    generic_message(&langs)
                } else {
                    missing_translations(
                        &survey,
                        row,
                        "constraint_message",
                        &message,
                        &langs,
                        &mut warnings,
                    );
                    json!(message)
                };
                rules.push((
                    survey.name.clone(),
                    row.number,
                    json!({"id": name, "severity": "error",
                           "check": constraint_check(&name, c).to_json(), "message": message}),
                ));
            }
        } else if !message.is_empty() {
            return Err(survey.at(
                row,
                Some("constraint_message"),
                "a constraint_message without a constraint",
            ));
        }
        if matches!(kind, Kind::Integer | Kind::Decimal)
            && let (Some(a), Some(b)) = (
                f.get("min").and_then(Value::as_f64),
                f.get("max").and_then(Value::as_f64),
            )
            && a > b
        {
            return Err(survey.at(
                row,
                Some("constraint"),
                format!("no answer can be at least {a} and at most {b}"),
            ));
        }
        fields.push(Value::Object(f));
    }
    if let Some(open) = stack.last() {
        return Err(ImportError::Unclosed(open.clone()));
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .filter_map(|(row, g)| {
            let id = g.get("id").and_then(Value::as_str).unwrap_or_default();
            if used_groups.contains(id) {
                Some(Value::Object(g))
            } else {
                warnings.push(Warning {
                    sheet: "survey".into(),
                    row: Some(row),
                    detail: format!("the group {id:?} has no questions and is left out"),
                });
                None
            }
        })
        .collect();

    // The rules sheet: cross-field rules with an id and a severity.
    if let Some(sheet) = &rules_sheet {
        for row in &sheet.rows {
            refuse_unknown(
                sheet,
                row,
                &["name", "check", "severity", "message"],
                &mut warnings,
            )?;
            let name = sheet.get(row, "name");
            if !is_id(name) {
                return Err(sheet.at(row, Some("name"), format!("{name:?} {ID_RULE}")));
            }
            if rules.iter().any(|r| r.2["id"] == json!(name)) {
                return Err(sheet.at(
                    row,
                    Some("name"),
                    format!("the rule {name:?} is defined twice (a question's constraint is a rule named after it)"),
                ));
            }
            let check = expression(sheet, row, "check", None, &names)?
                .ok_or_else(|| sheet.at(row, Some("check"), "a rule needs a check"))?;
            let severity = match sheet.get(row, "severity") {
                "" | "error" => "error",
                "warning" => "warning",
                other => {
                    return Err(sheet.at(
                        row,
                        Some("severity"),
                        format!("{other:?} must be error or warning"),
                    ));
                }
            };
            let message = sheet.texts(row, "message", &default_lang);
            if message.is_empty() {
                return Err(sheet.at(row, Some("message"), "a rule needs a message"));
            }
            missing_translations(sheet, row, "message", &message, &langs, &mut warnings);
            rules.push((
                sheet.name.clone(),
                row.number,
                json!({"id": name, "severity": severity, "check": check.to_json(), "message": message}),
            ));
        }
    }

    // Settings.
    let form_id = match setting("form_id") {
        "" => file_stem.to_lowercase(),
        id => id.to_string(),
    };
    if !is_id(&form_id) {
        return Err(ImportError::At {
            sheet: "settings".into(),
            row: settings_row.number,
            column: Some("form_id".into()),
            detail: format!("{form_id:?} {ID_RULE}"),
        });
    }
    let version = match setting("version") {
        "" => 1,
        v => v
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| ImportError::At {
                sheet: "settings".into(),
                row: settings_row.number,
                column: Some("version".into()),
                detail: format!("{v:?} must be a whole number from 1 (Observer orders versions)"),
            })?,
    };
    // Titles by language are `observer_title::…` (pyxform refuses a
    // translated form_title); the plain form_title is the default language's.
    let mut title = settings_sheet.map_or_else(BTreeMap::new, |s| {
        s.texts(settings_row, "observer_title", &default_lang)
    });
    if let Some(s) = settings_sheet
        && let Some(t) = s
            .texts(settings_row, "form_title", &default_lang)
            .remove(&default_lang)
    {
        title.entry(default_lang.clone()).or_insert(t);
    }
    if title.is_empty() {
        title.insert(default_lang.clone(), form_id.clone());
    }
    let kind = match setting("observer_kind") {
        "" => "checklist".to_string(),
        k if is_id(k) => k.to_string(),
        k => {
            return Err(ImportError::At {
                sheet: "settings".into(),
                row: settings_row.number,
                column: Some("observer_kind".into()),
                detail: format!("{k:?} {ID_RULE}"),
            });
        }
    };
    if let Some(s) = settings_sheet {
        for col in s.unknown(
            settings_row,
            &[
                "form_id",
                "version",
                "form_title",
                "observer_title",
                "default_language",
                "observer_kind",
                "observer_sealed",
            ],
        ) {
            warnings.push(Warning {
                sheet: "settings".into(),
                row: Some(settings_row.number),
                detail: format!("the setting {col:?} is not read by Observer"),
            });
        }
    }
    let sealed = settings_sheet.is_some_and(|s| {
        matches!(
            s.get(settings_row, "observer_sealed")
                .to_ascii_lowercase()
                .as_str(),
            "yes" | "true"
        )
    });

    let mut form = json!({
        "format": 1,
        "id": form_id,
        "version": version,
        "kind": kind,
        "title": title,
        "fields": fields,
    });
    if sealed {
        form["sealed"] = json!(true);
    }
    if !groups.is_empty() {
        form["groups"] = Value::Array(groups);
    }
    if !rules.is_empty() {
        form["rules"] = Value::Array(rules.into_iter().map(|r| r.2).collect());
    }
    let form = FormDefinition::parse(&form.to_string()).map_err(|error| {
        // Name the rows of the questions the error names.
        let named: Vec<&String> = match &error {
            FormError::ConditionCycle { fields } => fields.iter().collect(),
            FormError::UnknownField { field, .. } | FormError::UnknownType { field, .. } => {
                vec![field]
            }
            _ => Vec::new(),
        };
        let mut rows: Vec<u32> = named
            .into_iter()
            .filter_map(|n| survey.rows.iter().find(|r| survey.get(r, "name") == n))
            .map(|r| r.number)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        ImportError::Form { rows, error }
    })?;
    Ok(crate::Imported { form, warnings })
}

/// A column with a value that Observer does not read is an error (it
/// would be dropped); presentation-only columns are a warning.
fn refuse_unknown(
    sheet: &Sheet,
    row: &Row,
    known: &[&str],
    warnings: &mut Vec<Warning>,
) -> Result<(), ImportError> {
    for col in sheet.unknown(row, known) {
        let base = col.split("::").next().unwrap_or(col).trim();
        if PRESENTATION.contains(&base) {
            warnings.push(sheet.warning(
                row,
                format!("the column {col:?} is about presentation and is not read by Observer"),
            ));
        } else {
            return Err(sheet.at(
                row,
                Some(col),
                format!("the column {col:?} is not supported"),
            ));
        }
    }
    Ok(())
}

fn missing_translations(
    sheet: &Sheet,
    row: &Row,
    column: &str,
    have: &BTreeMap<String, String>,
    langs: &BTreeSet<String>,
    warnings: &mut Vec<Warning>,
) {
    for lang in langs.iter().filter(|l| !have.contains_key(*l)) {
        warnings.push(sheet.warning(
            row,
            format!(
                "{column} has no {} text",
                crate::workbook::language_name(lang)
            ),
        ));
    }
}
