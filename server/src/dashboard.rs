//! The overview's content: stations, devices, their last contact, their
//! gaps, and the latest records, as plain values. The page's markup is a
//! template (`templates/overview.html`, auto-escaped by askama); the same
//! values are the JSON of `GET /api/v1/overview`.

use serde::Serialize;

use crate::i18n::time;
use crate::reader::Reader;
use crate::storage::{RecordFilter, StorageError, Totals};

/// How many of the newest records the overview lists.
pub const LATEST_RECORDS: u64 = 50;

/// The overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub totals: Totals,
    /// Records known to exist (from chains and heartbeats) but not held.
    pub missing: u64,
    pub tree_size: u64,
    pub tree_root: String,
    pub devices: Vec<DeviceLine>,
    pub records: Vec<RecordLine>,
}

/// One device's line.
#[derive(Debug, Serialize)]
pub struct DeviceLine {
    pub id: String,
    pub observer: String,
    pub stations: String,
    pub last_contact: String,
    pub records: u64,
    pub contiguous: u64,
    /// The newest seq its heartbeats declared, or "–".
    pub declared: String,
    /// Missing ranges, "3-4, 9", empty for none.
    pub missing: String,
    pub conflicts: u64,
    pub quarantined: u64,
    pub revoked: bool,
}

/// One record's line.
#[derive(Debug, Serialize)]
pub struct RecordLine {
    pub index: u64,
    pub received: String,
    pub captured: String,
    pub station: String,
    /// The station is not in the registry's newest version.
    pub unregistered: bool,
    pub kind: String,
    /// The device id's first 8 characters.
    pub device: String,
    pub seq: u64,
    /// "ok", "form unknown" or "flagged" and the rules.
    pub check: String,
    pub check_clean: bool,
    /// "", "2 arrived" or "1 of 2 not arrived".
    pub media: String,
    pub media_missing: u64,
    /// The answers' JSON, cut at 160 characters.
    pub answers: String,
}

/// What the overview shows now.
pub fn overview(reader: &Reader<'_>) -> Result<Overview, StorageError> {
    let storage = reader.storage();
    let devices = storage.devices()?;
    let totals = storage.totals()?;
    let tree = storage.tree_head()?;
    let registry = crate::registry::current(storage)?;
    let mut records = Vec::new();
    reader.records(
        &RecordFilter {
            newest: Some(LATEST_RECORDS),
            ..Default::default()
        },
        &mut |r| {
            records.push(record_line(&r, registry.as_ref()));
            Ok(())
        },
    )?;
    Ok(Overview {
        totals,
        missing: devices.iter().map(|d| d.missing_count()).sum(),
        tree_size: tree.size,
        tree_root: tree.root.to_string(),
        devices: devices.iter().map(device_line).collect(),
        records,
    })
}

fn device_line(d: &crate::storage::DeviceView) -> DeviceLine {
    DeviceLine {
        id: d.info.id.as_str().to_string(),
        observer: d.info.name.clone().unwrap_or_default(),
        stations: d.info.stations.join(", "),
        last_contact: time(d.info.last_contact_ms),
        records: d.records,
        contiguous: d.contiguous,
        declared: d.heartbeat.map_or("–".into(), |h| h.seq.to_string()),
        missing: d
            .missing()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        conflicts: d.conflicts,
        quarantined: d.quarantined,
        revoked: d.info.revoked_at_ms.is_some(),
    }
}

fn record_line(
    r: &crate::storage::RecordRow,
    registry: Option<&crate::registry::Current>,
) -> RecordLine {
    let body = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default();
    let attached = body["attachments"].as_array().map_or(0, Vec::len) as u64;
    let media = match (attached, r.media_missing) {
        (0, _) => String::new(),
        (n, 0) => format!("{n} arrived"),
        (n, m) => format!("{m} of {n} not arrived"),
    };
    let (check, check_clean) = check_summary(r.check.as_ref());
    RecordLine {
        index: r.index,
        received: time(Some(r.received_at_ms)),
        captured: time(Some(r.captured_at_ms)),
        station: r.station.clone(),
        unregistered: crate::registry::holds(registry, &r.station) == Some(false),
        kind: r.kind.clone(),
        device: r.device.as_str()[..8].to_string(),
        seq: r.seq,
        check,
        check_clean,
        media,
        media_missing: r.media_missing,
        answers: body["payload"].to_string().chars().take(160).collect(),
    }
}

/// A form check as a line: "ok", "form unknown", or "flagged" and the
/// rules and fields that failed; and whether it is clean.
pub fn check_summary(check: Option<&crate::storage::FormCheck>) -> (String, bool) {
    match check {
        None => ("form unknown".to_string(), false),
        Some(c) if c.clean => ("ok".to_string(), true),
        Some(c) => {
            let v: serde_json::Value = serde_json::from_str(&c.json).unwrap_or_default();
            let named = |list: &str, key: &str| -> Vec<String> {
                v[list]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f[key].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut rules = named("flags", "flag");
            rules.extend(named("findings", "rule"));
            rules.extend(
                v["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        Some(format!(
                            "{} {}",
                            p["field"].as_str()?,
                            p["problem"].as_str()?
                        ))
                    }),
            );
            (format!("flagged {}", rules.join(", ")), false)
        }
    }
}
