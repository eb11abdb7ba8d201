//! The count: `import-official`, `results`, `compare`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use observer_core::record::Sha256Digest;

use super::access::Resolved;
use super::{Result, audited, now_ms};
use crate::storage::OfficialVersion;
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

/// `import-official FILE`: the official per-station results, as the next
/// version; the one before stays, and what changed is listed and audited.
pub fn import_official(
    at: &Resolved,
    file: &Path,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let size = std::fs::metadata(file)?.len();
    if size > tabulate::MAX_OFFICIAL_BYTES {
        return Err(format!(
            "{}: over {} bytes",
            file.display(),
            tabulate::MAX_OFFICIAL_BYTES
        )
        .into());
    }
    let bytes = std::fs::read(file)?;
    let known = tabulate::figure_names(c.storage.as_ref())?;
    let rows =
        tabulate::parse_official(&bytes, &known).map_err(|e| format!("{}: {e}", file.display()))?;
    let newest = c.storage.official_versions()?.pop();
    let old = match &newest {
        Some(v) => c.storage.official_results(v.version)?,
        None => Vec::new(),
    };
    let changes = tabulate::official_changes(&old, &rows);
    if let (Some(v), true) = (&newest, changes.is_empty()) {
        writeln!(
            out,
            "the official results already hold exactly these figures: version {} ({} stations) unchanged",
            v.version, v.stations
        )?;
        return Ok(());
    }
    let version = OfficialVersion {
        version: newest.as_ref().map_or(1, |v| v.version + 1),
        imported_at_ms: now_ms(),
        imported_by: crate::audit::cli_actor(),
        source: file.display().to_string(),
        digest: Some(Sha256Digest::of(&bytes)),
        stations: rows.len() as u64,
        added: changes.added.len() as u64,
        changed: changes.changed.len() as u64,
        removed: changes.removed.len() as u64,
    };
    let verb = if dry_run { "would be" } else { "is" };
    writeln!(
        out,
        "official results version {} {verb} {} stations: {} added, {} changed, {} removed; file SHA-256 {}",
        version.version,
        version.stations,
        version.added,
        version.changed,
        version.removed,
        Sha256Digest::of(&bytes),
    )?;
    // The first import adds everything: its count says enough.
    if newest.is_some() {
        for id in &changes.added {
            writeln!(out, "  + {id}")?;
        }
        for (id, what) in &changes.changed {
            writeln!(out, "  ~ {id}: {}", what.join(", "))?;
        }
        for id in &changes.removed {
            writeln!(out, "  - {id}")?;
        }
    }
    if dry_run {
        writeln!(out, "nothing imported (--dry-run)")?;
        return Ok(());
    }
    let base = newest.as_ref().map(|v| v.version);
    if !c.storage.import_official(base, &version, &rows)? {
        return Err(
            "another import of official results came first; nothing imported: run this again to see the changes against it"
                .into(),
        );
    }
    tracing::info!(
        version = version.version,
        stations = version.stations,
        changed = version.changed,
        "official results imported"
    );
    audited(
        &c,
        "official.imported",
        file.display().to_string(),
        serde_json::json!({
            "version": version.version,
            "digest": version.digest,
            "stations": version.stations,
            "added": changes.added,
            "changed": changes.changed,
            "removed": changes.removed,
        }),
    )?;
    Ok(())
}

/// `official-versions`: every import of the official results.
pub fn official_versions(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let versions = at.open()?.storage.official_versions()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&versions)?)?;
        return Ok(());
    }
    if versions.is_empty() {
        writeln!(
            out,
            "no official results imported yet (import-official FILE)"
        )?;
    }
    for v in &versions {
        let at = chrono::DateTime::from_timestamp_millis(v.imported_at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "version {}: {} stations ({} added, {} changed, {} removed), {at} by {} from {} {}",
            v.version,
            v.stations,
            v.added,
            v.changed,
            v.removed,
            v.imported_by,
            if v.source.is_empty() { "-" } else { &v.source },
            v.digest
                .map_or_else(|| "(no digest)".into(), |d| d.to_string()),
        )?;
    }
    Ok(())
}

fn figures_line(f: &BTreeMap<String, i64>) -> String {
    f.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shares_line(s: &tabulate::Shares) -> String {
    let mut parts: Vec<String> = s
        .shares
        .iter()
        .map(|(k, v)| format!("{k} {:.2}%", 100.0 * v))
        .collect();
    if let Some(t) = s.turnout {
        parts.push(format!("turnout {:.2}%", 100.0 * t));
    }
    parts.join(" ")
}

/// `results`: totals from the observers' results protocols.
pub fn results(at: &Resolved, by: By, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let stations = tabulate::stations(&c.reader(), now_ms())?;
    if let By::Station = by {
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&stations)?)?;
        } else {
            for s in &stations {
                writeln!(
                    out,
                    "{:<16} {:<24} {}  {}{}",
                    s.station,
                    s.agreement.to_string(),
                    figures_line(&s.figures),
                    shares_line(&s.shares),
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
    let registry = crate::registry::current(c.storage.as_ref())?;
    let totals = tabulate::totals(&stations, area, registry.as_ref());
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&totals)?)?;
    } else {
        for t in &totals {
            let of = t
                .registered_stations
                .map_or(String::new(), |m| format!(" of {m}"));
            writeln!(
                out,
                "{:<16} {} stations{of} reported ({} left out: observers disagree)  {}  {}",
                t.area,
                t.stations,
                t.conflicts,
                figures_line(&t.figures),
                shares_line(&t.shares)
            )?;
        }
    }
    Ok(())
}

/// `compare`: the observers' copies against the official results: how
/// many stations were compared, every figure that differs, and the
/// stations only one side has. Never a match when nothing was compared.
pub fn compare(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let stations = tabulate::stations(&c.reader(), now_ms())?;
    let official = c.storage.official()?;
    let cmp = tabulate::compare(&stations, &official);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&cmp)?)?;
        return Ok(());
    }
    if official.is_empty() {
        writeln!(
            out,
            "no official results imported yet (import-official FILE): nothing compared"
        )?;
    } else if cmp.compared == 0 {
        writeln!(
            out,
            "no station has both an official result and an agreed observers' copy: nothing compared"
        )?;
    } else if cmp.discrepancies.is_empty() {
        writeln!(
            out,
            "compared {} stations: the observers' copies match the official results at every one",
            cmp.compared
        )?;
    } else {
        let differing: std::collections::BTreeSet<&str> = cmp
            .discrepancies
            .iter()
            .map(|d| d.station.as_str())
            .collect();
        writeln!(
            out,
            "compared {} stations: {} differ",
            cmp.compared,
            differing.len()
        )?;
        for d in &cmp.discrepancies {
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
    let list = |v: &[String]| v.join(", ");
    if !cmp.observers_disagree.is_empty() {
        writeln!(
            out,
            "not compared, the observers disagree: {}",
            list(&cmp.observers_disagree)
        )?;
    }
    if !cmp.only_official.is_empty() {
        writeln!(
            out,
            "official result without an observers' copy ({}): {}",
            cmp.only_official.len(),
            list(&cmp.only_official)
        )?;
    }
    if !cmp.only_observed.is_empty() {
        writeln!(
            out,
            "observers' copy without an official result ({}): {}",
            cmp.only_observed.len(),
            list(&cmp.only_observed)
        )?;
    }
    Ok(())
}
