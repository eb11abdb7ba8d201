//! `evidence export`: an evidence package an outsider checks with
//! `observer-verify`.

use std::io::Write;
use std::path::Path;

use super::access::Resolved;
use super::{Result, audited, now_ms};
use crate::evidence::{Options, Selection, package, write_file};

/// Writes the package of `selection` to `out_file`.
pub fn export(
    at: &Resolved,
    selection: Selection,
    options: Options,
    out_file: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let made = package(&c, &selection, &options, now_ms())?;
    write_file(&made, out_file)?;
    let records = made
        .files
        .keys()
        .filter(|n| n.starts_with("records/"))
        .count();
    audited(
        &c,
        "evidence.export",
        selection.to_string(),
        serde_json::json!({
            "records": records,
            "open_sealed": options.open_sealed,
            "media": options.media,
        }),
    )?;
    writeln!(
        out,
        "wrote {} ({records} records, {} files); check it with: observer-verify {} --coordinator-key {}",
        out_file.display(),
        made.files.len(),
        out_file.display(),
        c.key.public_key()
    )?;
    Ok(())
}
