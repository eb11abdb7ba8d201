//! Forms: `forms`, `validate`.

use std::io::Write;
use std::process::ExitCode;

use observer_core::forms::FormDefinition;
use serde_json::json;

use super::{Ctx, Result};

/// `forms`: the forms available offline.
pub fn forms(ctx: &Ctx, lang: String, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    for f in store.forms()? {
        let title = FormDefinition::localise(&f.title, &lang);
        if json {
            writeln!(
                out,
                "{}",
                json!({"id": f.id, "version": f.version, "kind": f.kind, "title": title,
                       "fields": f.fields.len(), "rules": f.rules.len(), "sealed": f.sealed})
            )?;
        } else {
            writeln!(
                out,
                "{:<10} v{:<3} {:<10} {:>3} fields {:>2} rules  {title}",
                f.id,
                f.version,
                f.kind,
                f.fields.len(),
                f.rules.len()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `validate`: answers checked against a form; fails when not clean.
pub fn validate(
    ctx: &Ctx,
    form: String,
    form_version: Option<u32>,
    payload: String,
    lang: String,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let store = ctx.open()?;
    let def = store.form(&form, form_version)?.ok_or_else(|| {
        format!(
            "no form {form:?}{} on this device; see `observer forms`",
            form_version.map_or(String::new(), |v| format!(" version {v}"))
        )
    })?;
    let answers: serde_json::Value =
        serde_json::from_str(&payload).map_err(|e| format!("--payload is not JSON: {e}"))?;
    let answers = answers
        .as_object()
        .ok_or("--payload must be a JSON object")?;
    let v = def.validate(answers, &lang);
    if json {
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    } else {
        for p in &v.problems {
            writeln!(out, "answer  {}: {}", p.field, p.message)?;
        }
        for r in &v.findings {
            writeln!(
                out,
                "{:<7} {}: {}",
                format!("{:?}", r.severity).to_lowercase(),
                r.rule,
                r.message
            )?;
        }
        if v.problems.is_empty() && v.findings.is_empty() {
            writeln!(out, "ok: the answers fit {} v{}", def.id, def.version)?;
        }
    }
    Ok(if v.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
