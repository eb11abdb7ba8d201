//! The station registry: `stations import`, `stations list`,
//! `stations versions`.

use std::io::{Read as _, Write};
use std::path::Path;

use super::access::Resolved;
use super::{Result, audited, now_ms};
use crate::registry::{self, MAX_REGISTRY_BYTES, RegistryVersion};

/// `stations import FILE`: the whole list as the registry's next version;
/// a file with any bad line is refused whole.
pub fn import(at: &Resolved, file: &Path, dry_run: bool, out: &mut dyn Write) -> Result<()> {
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| {
            f.take(MAX_REGISTRY_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let parsed = registry::parse(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let c = at.open()?;
    let current = registry::current(c.storage.as_ref())?;
    let old: Vec<_> = current
        .as_ref()
        .map(|r| r.stations.values().cloned().collect())
        .unwrap_or_default();
    let changes = registry::changes(&old, &parsed.stations);
    for column in &parsed.ignored_columns {
        writeln!(
            out,
            "note: column {column:?} is not a registry column; left out"
        )?;
    }
    if let (Some(r), true) = (&current, changes.is_empty()) {
        writeln!(
            out,
            "the registry already holds exactly this list: version {} ({} stations) unchanged",
            r.version.version, r.version.stations
        )?;
        return Ok(());
    }
    let version = RegistryVersion {
        version: current.as_ref().map_or(1, |r| r.version.version + 1),
        imported_at_ms: now_ms(),
        digest: registry::digest(&parsed.stations),
        stations: parsed.stations.len() as u64,
        added: changes.added.len() as u64,
        changed: changes.changed.len() as u64,
        removed: changes.removed.len() as u64,
    };
    let verb = if dry_run { "would be" } else { "is" };
    writeln!(
        out,
        "registry version {} {verb} {} stations: {} added, {} changed, {} removed; digest {}",
        version.version,
        version.stations,
        version.added,
        version.changed,
        version.removed,
        version.digest
    )?;
    // The first import adds everything: its count says enough.
    if current.is_some() {
        for id in &changes.added {
            writeln!(out, "  + {id}")?;
        }
        for (id, fields) in &changes.changed {
            writeln!(out, "  ~ {id}: {}", fields.join(", "))?;
        }
        for id in &changes.removed {
            writeln!(
                out,
                "  - {id} (its records are kept, flagged as not in the registry)"
            )?;
        }
    }
    if dry_run {
        writeln!(out, "nothing imported (--dry-run)")?;
        return Ok(());
    }
    let base = current.as_ref().map(|r| r.version.version);
    if !c
        .storage
        .import_registry(base, &version, &parsed.stations)?
    {
        return Err(
            "another import of the registry came first; nothing imported: run this again to see the changes against it"
                .into(),
        );
    }
    tracing::info!(
        version = version.version,
        stations = version.stations,
        added = version.added,
        changed = version.changed,
        removed = version.removed,
        "station registry imported"
    );
    audited(
        &c,
        "registry.imported",
        file.display().to_string(),
        serde_json::json!({
            "version": version.version,
            "digest": version.digest,
            "stations": version.stations,
            "added": version.added,
            "changed": version.changed,
            "removed": version.removed,
        }),
    )?;
    Ok(())
}

/// `stations list`: the registry (its newest version, or `version`),
/// optionally one region's or district's.
pub fn list(
    at: &Resolved,
    version: Option<u32>,
    region: Option<String>,
    district: Option<String>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let versions = c.storage.registry_versions()?;
    let Some(chosen) = (match version {
        Some(v) => versions.iter().find(|r| r.version == v),
        None => versions.last(),
    }) else {
        return Err(match version {
            Some(v) => format!("the registry has no version {v} (`observer-server stations versions`)"),
            None => "no station registry yet: import one with `observer-server stations import FILE.csv`".into(),
        }
        .into());
    };
    let stations = c.storage.registry_stations(chosen.version)?;
    let wanted = stations.iter().filter(|s| {
        region.as_ref().is_none_or(|r| &s.region == r)
            && district.as_ref().is_none_or(|d| &s.district == d)
    });
    if json {
        let list: Vec<_> = wanted.collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": chosen,
                "stations": list,
            }))?
        )?;
        return Ok(());
    }
    for s in wanted {
        writeln!(
            out,
            "{:<16} {:<20} {:<20} {:>7}  {}",
            s.id, s.region, s.district, s.registered_voters, s.name
        )?;
    }
    Ok(())
}

/// `stations versions`: every import, oldest first.
pub fn versions(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let versions = c.storage.registry_versions()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&versions)?)?;
        return Ok(());
    }
    if versions.is_empty() {
        writeln!(out, "no station registry yet")?;
    }
    for v in &versions {
        let at = chrono::DateTime::from_timestamp_millis(v.imported_at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "version {:>3}  {at}  {} stations ({} added, {} changed, {} removed)  digest {}",
            v.version, v.stations, v.added, v.changed, v.removed, v.digest
        )?;
    }
    Ok(())
}
