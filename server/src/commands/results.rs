//! The count: `import-official`, `results`, `compare`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::access::Resolved;
use super::{audited, now_ms, Result};
use crate::tabulate;

/// How `results` totals.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum By {
    /// One line per station.
    Station,
    /// One line per region.
    Region,
    /// One line per district (regions and districts from the registry).
    District,
    /// The whole country.
    Country,
}

/// `import-official FILE`: the official per-station results.
pub fn import_official(at: &Resolved, file: &Path, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let rows = tabulate::read_official(file).map_err(|e| format!("{}: {e}", file.display()))?;
    c.storage.import_official(&rows, now_ms())?;
    tracing::info!(stations = rows.len(), "official results imported");
    audited(
        &c,
        "official.imported",
        file.display().to_string(),
        serde_json::json!({ "stations": rows.len() }),
    )?;
    writeln!(out, "imported official results for {} stations", rows.len())?;
    Ok(())
}

fn figures_line(f: &BTreeMap<String, i64>) -> String {
    f.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `results`: totals from the observers' results protocols.
pub fn results(at: &Resolved, by: By, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let stations = tabulate::stations(&c.reader())?;
    if let By::Station = by {
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&stations)?)?;
        } else {
            for s in &stations {
                writeln!(
                    out,
                    "{:<16} {:<24} {}{}",
                    s.station,
                    s.agreement.to_string(),
                    figures_line(&s.figures),
                    if s.in_registry == Some(false) {
                        "  (not in the registry)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        return Ok(());
    }
    let area = match by {
        By::Station | By::Country => tabulate::Area::Country,
        By::Region => tabulate::Area::Region,
        By::District => tabulate::Area::District,
    };
    let totals = tabulate::totals(&stations, area);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&totals)?)?;
    } else {
        for t in &totals {
            writeln!(
                out,
                "{:<16} {} stations ({} left out: observers disagree)  {}",
                t.area,
                t.stations,
                t.conflicts,
                figures_line(&t.figures)
            )?;
        }
    }
    Ok(())
}

/// `compare`: stations where the observers' copy differs from the official
/// result.
pub fn compare(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let stations = tabulate::stations(&c.reader())?;
    let diffs = tabulate::compare(&stations, &c.storage.official()?);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&diffs)?)?;
    } else if diffs.is_empty() {
        writeln!(
            out,
            "the observers' copies match the official results at every station both report"
        )?;
    } else {
        for d in &diffs {
            writeln!(
                out,
                "{:<16} {:<20} observers {:>8}  official {:>8}",
                d.station,
                d.figure,
                d.observed.map_or("-".into(), |v| v.to_string()),
                d.official
            )?;
        }
    }
    Ok(())
}
