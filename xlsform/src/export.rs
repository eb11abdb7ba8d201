//! An Observer form definition as an XLSForm workbook a coordinator can
//! edit in a spreadsheet and import again: ranges become constraints
//! (`. >= 0 and . <= 100000`), a rule named after a question becomes that
//! question's constraint, and the other cross-field rules go on a `rules`
//! sheet (which ODK tools ignore and Observer reads).

use std::collections::{BTreeMap, BTreeSet};

use observer_core::forms::{Expr, Field, FieldType, FormDefinition, Media, Rule, Severity, Text};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook, Worksheet, XlsxError};
use serde_json::Value;

use crate::import::{YES_NO_LIST, constraint_check};
use crate::workbook::language_name;
use crate::xpath;

/// Why a definition could not be written as a workbook.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("field {field:?}: {detail}")]
    Field { field: String, detail: String },
    #[error("rule {rule:?}: {detail}")]
    Rule { rule: String, detail: String },
}

/// The form's languages, Kazakh, Russian and English first.
fn languages(form: &FormDefinition) -> Vec<String> {
    let mut all = BTreeSet::new();
    let mut add = |t: &Text| all.extend(t.keys().cloned());
    add(&form.title);
    for f in &form.fields {
        add(&f.label);
        if let Some(h) = &f.help {
            add(h);
        }
        if let FieldType::SingleChoice { options } | FieldType::MultipleChoice { options } = &f.kind
        {
            options.iter().for_each(|o| add(&o.label));
        }
    }
    for g in &form.groups {
        if let Some(l) = &g.label {
            add(l);
        }
    }
    for r in &form.rules {
        add(&r.message);
    }
    let mut out: Vec<String> = ["kk", "ru", "en"]
        .into_iter()
        .filter(|l| all.remove(*l))
        .map(str::to_string)
        .collect();
    out.extend(all);
    out
}

/// A sheet being written: a header, then rows of cells by column name.
struct Table {
    headers: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    fn new(fixed: &[&str]) -> Self {
        Self {
            headers: fixed.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self) -> &mut BTreeMap<String, String> {
        self.rows.push(BTreeMap::new());
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    /// Columns in the order given, dropping those no row uses (other than
    /// the first `keep`).
    fn write(&self, ws: &mut Worksheet, keep: usize) -> Result<(), XlsxError> {
        let used: Vec<&String> = self
            .headers
            .iter()
            .enumerate()
            .filter(|(i, h)| *i < keep || self.rows.iter().any(|r| r.contains_key(*h)))
            .map(|(_, h)| h)
            .collect();
        for (c, h) in used.iter().enumerate() {
            ws.write_string(0, c as u16, h.as_str())?;
            ws.set_column_width(c as u16, if h.contains("::") { 40 } else { 18 })?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            for (c, h) in used.iter().enumerate() {
                if let Some(v) = row.get(*h) {
                    ws.write_string(r as u32 + 1, c as u16, v)?;
                }
            }
        }
        ws.set_freeze_panes(1, 0)?;
        Ok(())
    }
}

fn put_text(row: &mut BTreeMap<String, String>, base: &str, text: &Text) {
    for (lang, t) in text {
        row.insert(format!("{base}::{}", language_name(lang)), t.clone());
    }
}

fn translated(base: &str, langs: &[String]) -> Vec<String> {
    langs
        .iter()
        .map(|l| format!("{base}::{}", language_name(l)))
        .collect()
}

/// XLSForm spells Observer's `true` as `'yes'` for a yes/no question and
/// `'OK'` for an acknowledgement.
fn untype(e: &Expr, form: &FormDefinition) -> Expr {
    let spell = |f: &str, v: &Value| -> Option<Value> {
        match (form.field(f).map(|f| &f.kind), v) {
            (Some(FieldType::YesNo), Value::Bool(b)) => {
                Some(Value::String(if *b { "yes" } else { "no" }.into()))
            }
            (Some(FieldType::Acknowledge), Value::Bool(true)) => Some(Value::String("OK".into())),
            _ => None,
        }
    };
    let all = |l: &[Expr]| l.iter().map(|e| untype(e, form)).collect();
    let one = |e: &Expr| Box::new(untype(e, form));
    match e {
        Expr::Compare(c, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Field(f), Expr::Literal(v)) if spell(f, v).is_some() => Expr::Compare(
                *c,
                a.clone(),
                Box::new(Expr::Literal(spell(f, v).unwrap_or(Value::Null))),
            ),
            (Expr::Literal(v), Expr::Field(f)) if spell(f, v).is_some() => Expr::Compare(
                *c,
                Box::new(Expr::Literal(spell(f, v).unwrap_or(Value::Null))),
                b.clone(),
            ),
            (a, b) => Expr::Compare(*c, one(a), one(b)),
        },
        Expr::Sum(l) => Expr::Sum(all(l)),
        Expr::And(l) => Expr::And(all(l)),
        Expr::Or(l) => Expr::Or(all(l)),
        Expr::Not(e) => Expr::Not(one(e)),
        Expr::Includes(e, o) => Expr::Includes(one(e), o.clone()),
        Expr::Arith(op, a, b) => Expr::Arith(*op, one(a), one(b)),
        Expr::If(c, a, b) => Expr::If(one(c), one(a), one(b)),
        Expr::Coalesce(a, b) => Expr::Coalesce(one(a), one(b)),
        Expr::Length(e) => Expr::Length(one(e)),
        Expr::Count(e) => Expr::Count(one(e)),
        Expr::Matches(e, p) => Expr::Matches(one(e), p.clone()),
        e => e.clone(),
    }
}

fn print(e: &Expr, this: Option<&str>, form: &FormDefinition) -> Result<String, String> {
    xpath::print(&untype(e, form), this).map_err(|e| e.to_string())
}

/// The constraint a field's range or length is written as.
fn bounds(f: &Field) -> Option<String> {
    let join = |min: Option<String>, max: Option<String>| match (min, max) {
        (Some(a), Some(b)) => Some(format!(". >= {a} and . <= {b}")),
        (Some(a), None) => Some(format!(". >= {a}")),
        (None, Some(b)) => Some(format!(". <= {b}")),
        (None, None) => None,
    };
    let num = |v: f64| Value::from(v).to_string();
    match &f.kind {
        FieldType::Integer { min, max } => {
            join(min.map(|v| v.to_string()), max.map(|v| v.to_string()))
        }
        FieldType::Decimal { min, max } => join(min.map(num), max.map(num)),
        FieldType::Text { max_length } if *max_length != 1000 => {
            Some(format!("string-length(.) <= {max_length}"))
        }
        _ => None,
    }
}

/// The constraint of a rule that checks one question's own answer, as the
/// importer writes a question's constraint.
fn own_constraint<'r>(f: &Field, rules: &'r [Rule]) -> Option<(&'r Rule, Expr)> {
    let rule = rules
        .iter()
        .find(|r| r.id == f.id && r.severity == Severity::Error)?;
    match &rule.check {
        Expr::Or(l) if l.len() == 2 && constraint_check(&f.id, l[1].clone()) == rule.check => {
            Some((rule, l[1].clone()))
        }
        _ => None,
    }
}

fn default_text(f: &Field) -> Option<String> {
    let d = f.default.as_ref()?;
    Some(match (&f.kind, d) {
        (FieldType::YesNo, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (FieldType::Acknowledge, Value::Bool(true)) => "OK".into(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        (_, other) => other.to_string(),
    })
}

/// Writes a definition as an XLSForm workbook (`.xlsx` bytes).
pub fn export(form: &FormDefinition) -> Result<Vec<u8>, ExportError> {
    let langs = languages(form);
    let mut survey_cols = vec!["type".to_string(), "name".to_string()];
    survey_cols.extend(translated("label", &langs));
    survey_cols.extend(translated("hint", &langs));
    survey_cols.extend(["required", "relevant", "constraint"].map(String::from));
    survey_cols.extend(translated("constraint_message", &langs));
    survey_cols.extend(["calculation", "default"].map(String::from));
    let cols: Vec<&str> = survey_cols.iter().map(String::as_str).collect();
    let mut survey = Table::new(&cols);
    let mut choice_cols = vec!["list_name".to_string(), "name".to_string()];
    choice_cols.extend(translated("label", &langs));
    let cols: Vec<&str> = choice_cols.iter().map(String::as_str).collect();
    let mut choices = Table::new(&cols);
    let mut rule_cols = vec![
        "name".to_string(),
        "check".to_string(),
        "severity".to_string(),
    ];
    rule_cols.extend(translated("message", &langs));
    let cols: Vec<&str> = rule_cols.iter().map(String::as_str).collect();
    let mut rules_table = Table::new(&cols);

    let mut open: Vec<String> = Vec::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut used_rules = BTreeSet::new();
    let mut yes_no = false;
    for f in &form.fields {
        let bad = |detail: String| ExportError::Field {
            field: f.id.clone(),
            detail,
        };
        // Groups: end those this field is not in, begin those it is.
        let chain: Vec<String> = form.sections(f).iter().map(|g| g.id.clone()).collect();
        while !chain.starts_with(&open) {
            let g = open.pop().unwrap_or_default();
            survey.row().insert("type".into(), "end group".into());
            closed.insert(g);
        }
        for g in &chain[open.len()..] {
            if closed.contains(g) {
                return Err(bad(format!(
                    "the questions of group {g:?} are not together, which XLSForm cannot write"
                )));
            }
            let group = form
                .group(g)
                .ok_or_else(|| bad(format!("no group {g:?}")))?;
            let row = survey.row();
            row.insert("type".into(), "begin group".into());
            row.insert("name".into(), g.clone());
            if let Some(l) = &group.label {
                put_text(row, "label", l);
            }
            if let Some(e) = &group.show_if {
                row.insert("relevant".into(), print(e, None, form).map_err(&bad)?);
            }
            open.push(g.clone());
        }

        let mut row = BTreeMap::new();
        let ty = match &f.kind {
            FieldType::YesNo => {
                yes_no = true;
                format!("select_one {YES_NO_LIST}")
            }
            FieldType::Integer { .. } => "integer".into(),
            FieldType::Decimal { .. } => "decimal".into(),
            FieldType::Text { .. } => "text".into(),
            FieldType::SingleChoice { options } | FieldType::MultipleChoice { options } => {
                if f.id == YES_NO_LIST {
                    return Err(bad(format!(
                        "a choice question named {YES_NO_LIST:?} clashes with the yes/no list; rename it"
                    )));
                }
                for o in options {
                    let r = choices.row();
                    r.insert("list_name".into(), f.id.clone());
                    r.insert("name".into(), o.id.clone());
                    put_text(r, "label", &o.label);
                }
                let word = if matches!(f.kind, FieldType::SingleChoice { .. }) {
                    "select_one"
                } else {
                    "select_multiple"
                };
                format!("{word} {}", f.id)
            }
            FieldType::Time => "time".into(),
            FieldType::Date => "date".into(),
            FieldType::DateTime => "dateTime".into(),
            FieldType::Note => "note".into(),
            FieldType::Acknowledge => "acknowledge".into(),
            FieldType::Calculate { calculation } => {
                row.insert(
                    "calculation".into(),
                    print(calculation, None, form).map_err(&bad)?,
                );
                "calculate".into()
            }
            FieldType::Evidence { media } => match media {
                Media::Photo => "image",
                Media::Audio => "audio",
                Media::Video => "video",
            }
            .into(),
        };
        row.insert("type".into(), ty);
        row.insert("name".into(), f.id.clone());
        put_text(&mut row, "label", &f.label);
        if let Some(h) = &f.help {
            put_text(&mut row, "hint", h);
        }
        if f.required {
            row.insert("required".into(), "yes".into());
        }
        if let Some(e) = &f.show_if {
            row.insert("relevant".into(), print(e, None, form).map_err(&bad)?);
        }
        match (bounds(f), own_constraint(f, &form.rules)) {
            (Some(b), _) => {
                row.insert("constraint".into(), b);
            }
            (None, Some((rule, c))) => {
                row.insert(
                    "constraint".into(),
                    print(&c, Some(&f.id), form).map_err(&bad)?,
                );
                put_text(&mut row, "constraint_message", &rule.message);
                used_rules.insert(rule.id.clone());
            }
            (None, None) => {}
        }
        if let Some(d) = default_text(f) {
            row.insert("default".into(), d);
        }
        *survey.row() = row;
    }
    for _ in open {
        survey.row().insert("type".into(), "end group".into());
    }
    if yes_no {
        for (id, kk, ru, en) in [("yes", "Иә", "Да", "Yes"), ("no", "Жоқ", "Нет", "No")] {
            let r = choices.row();
            r.insert("list_name".into(), YES_NO_LIST.into());
            r.insert("name".into(), id.into());
            for (lang, t) in [("kk", kk), ("ru", ru), ("en", en)] {
                if langs.iter().any(|l| l == lang) {
                    r.insert(format!("label::{}", language_name(lang)), t.into());
                }
            }
        }
    }
    for rule in form.rules.iter().filter(|r| !used_rules.contains(&r.id)) {
        let r = rules_table.row();
        r.insert("name".into(), rule.id.clone());
        r.insert(
            "check".into(),
            print(&rule.check, None, form).map_err(|detail| ExportError::Rule {
                rule: rule.id.clone(),
                detail,
            })?,
        );
        r.insert("severity".into(), rule.severity.code().into());
        put_text(r, "message", &rule.message);
    }

    let mut settings = Table::new(&[]);
    let default_lang = if langs.iter().any(|l| l == "en") {
        "en".to_string()
    } else {
        langs.first().cloned().unwrap_or_else(|| "en".into())
    };
    let row = settings.row();
    row.insert("form_id".into(), form.id.clone());
    row.insert("version".into(), form.version.to_string());
    row.insert(
        "form_title".into(),
        FormDefinition::localise(&form.title, &default_lang).to_string(),
    );
    // pyxform refuses a translated form_title: the translations have a
    // column of their own, which ODK tools ignore.
    put_text(row, "observer_title", &form.title);
    row.insert("default_language".into(), language_name(&default_lang));
    row.insert("observer_kind".into(), form.kind.clone());
    if form.sealed {
        row.insert("observer_sealed".into(), "yes".into());
    }
    settings.headers = ["form_id", "version", "form_title"]
        .map(String::from)
        .into_iter()
        .chain(translated("observer_title", &langs))
        .chain(["default_language", "observer_kind", "observer_sealed"].map(String::from))
        .collect();

    let mut book = Workbook::new();
    // A fixed creation time: the same form exports to the same bytes.
    book.set_properties(
        &DocProperties::new().set_creation_datetime(&ExcelDateTime::from_ymd(2026, 1, 1)?),
    );
    survey.write(book.add_worksheet().set_name("survey")?, 2)?;
    choices.write(book.add_worksheet().set_name("choices")?, 3)?;
    settings.write(book.add_worksheet().set_name("settings")?, 0)?;
    if !rules_table.rows.is_empty() {
        rules_table.write(book.add_worksheet().set_name("rules")?, 3)?;
    }
    Ok(book.save_to_buffer()?)
}
