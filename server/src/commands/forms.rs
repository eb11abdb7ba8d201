//! `forms publish | import | export | list`: the forms phones fill in,
//! published as JSON or as an XLSForm workbook, and written back out as a
//! workbook a coordinator can edit.

use std::io::Write;
use std::path::Path;

use observer_core::forms::{FormDefinition, default_forms};

use super::access::Resolved;
use super::{Result, audited, now_ms};
use crate::coordinator::Coordinator;
use crate::publish::{Published, definition_text, publish};

/// The format `forms export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormFormat {
    /// An XLSForm workbook (ODK, KoboToolbox), to edit and import again.
    Xlsx,
    /// Observer's JSON definition (format 1).
    Json,
}

/// `forms publish FILE`.
pub fn publish_file(at: &Resolved, file: &Path, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    publish_text(&c, &text, file, out)
}

fn publish_text(c: &Coordinator, text: &str, file: &Path, out: &mut dyn Write) -> Result<()> {
    let (def, how) = publish(c.storage.as_ref(), text, now_ms())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if let Published::New = how {
        audited(
            c,
            "form.published",
            format!("{} v{}", def.id, def.version),
            serde_json::json!({ "id": def.id, "version": def.version, "file": file.display().to_string() }),
        )?;
    }
    let what = match how {
        Published::New => "published",
        Published::Already => "already published:",
        Published::Shipped => "ships with Observer already:",
    };
    writeln!(
        out,
        "{what} {}; phones receive it at their next sync",
        summary(&def)
    )?;
    Ok(())
}

/// `counting v2 (17 fields, 5 rules)`.
fn summary(def: &FormDefinition) -> String {
    format!(
        "{} v{} ({} fields, {} rules)",
        def.id,
        def.version,
        def.fields.len(),
        def.rules.len()
    )
}

/// `forms import FILE.xlsx [--publish] [--json OUT]`.
pub fn import(
    at: &Resolved,
    file: &Path,
    publish: bool,
    json_out: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let imported =
        observer_xlsform::import(&bytes, stem).map_err(|e| format!("{}: {e}", file.display()))?;
    for w in &imported.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let text = definition_text(&imported.form);
    if let Some(path) = json_out {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if publish {
        let c = at.open()?;
        return publish_text(&c, &text, file, out);
    }
    writeln!(
        out,
        "checked {}; not published (add --publish)",
        summary(&imported.form)
    )?;
    Ok(())
}

/// The published (or shipped) definition of a form: the given version, or
/// the newest.
pub fn find(c: &Coordinator, id: &str, version: Option<u32>) -> Result<FormDefinition> {
    let mut found: Option<FormDefinition> = None;
    for f in c.storage.forms()? {
        if f.id == id && version.is_none_or(|v| v == f.version) {
            let def = FormDefinition::parse(&f.definition)?;
            if found.as_ref().is_none_or(|d| d.version < def.version) {
                found = Some(def);
            }
        }
    }
    for def in default_forms() {
        if def.id == id
            && version.is_none_or(|v| v == def.version)
            && found.as_ref().is_none_or(|d| d.version < def.version)
        {
            found = Some(def.clone());
        }
    }
    found.ok_or_else(|| {
        match version {
            Some(v) => format!("no form {id:?} version {v} is published or shipped"),
            None => format!("no form {id:?} is published or shipped"),
        }
        .into()
    })
}

/// `forms export ID [--version N] [--format xlsx|json] --output FILE`.
pub fn export(
    at: &Resolved,
    id: &str,
    version: Option<u32>,
    format: FormFormat,
    output: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let def = find(&c, id, version)?;
    let bytes = match format {
        FormFormat::Xlsx => observer_xlsform::export(&def)?,
        FormFormat::Json => definition_text(&def).into_bytes(),
    };
    std::fs::write(output, &bytes).map_err(|e| format!("{}: {e}", output.display()))?;
    writeln!(
        out,
        "wrote {} v{} to {} ({} bytes)",
        def.id,
        def.version,
        output.display(),
        bytes.len()
    )?;
    Ok(())
}

/// `forms list`.
pub fn list(at: &Resolved, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    for f in c.storage.forms()? {
        writeln!(out, "{:<12} v{}", f.id, f.version)?;
    }
    Ok(())
}
