//! Received records: `records` (a listing) and `export` (every record with
//! its signed body, checked against its signature as it goes out).

use std::io::Write;

use base64::Engine as _;
use observer_core::identity::DeviceId;
use serde_json::json;

use super::access::Resolved;
use super::{Result, audited};
use crate::coordinator::Coordinator;
use crate::integrity::{DeviceKeys, check_row};
use crate::storage::{RecordFilter, RecordRow, StorageError};

/// `export`'s formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

/// `records`: received records, oldest first.
pub fn records(
    at: &Resolved,
    station: Option<String>,
    device: Option<String>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let filter = RecordFilter {
        station,
        device: device
            .map(|d| DeviceId::try_from(d).map_err(|e| format!("--device: {e}")))
            .transpose()?,
        ..RecordFilter::default()
    };
    let registry = crate::registry::current(c.storage.as_ref())?;
    c.reader().records(&filter, &mut |r| {
        let in_registry = crate::registry::holds(registry.as_ref(), &r.station);
        let line = if json {
            json!({
                "index": r.index, "id": r.id, "device": r.device, "seq": r.seq,
                "station": r.station, "in_registry": in_registry, "kind": r.kind,
                "captured_at_ms": r.captured_at_ms, "received_at_ms": r.received_at_ms,
                "form": body_form(&r.body),
                "form_check": r.check.as_ref().map(|c| json!({
                    "clean": c.clean,
                    "result": serde_json::from_str::<serde_json::Value>(&c.json).unwrap_or_default(),
                })),
            })
            .to_string()
        } else {
            format!(
                "{:>8}  {}  {}  seq {:>5}  {:<16}  {}{}",
                r.index,
                &r.id.to_string()[..16],
                r.device,
                r.seq,
                r.station,
                r.kind,
                if in_registry == Some(false) {
                    "  (station not in the registry)"
                } else {
                    ""
                }
            )
        };
        writeln!(out, "{line}").map_err(StorageError::Output)
    })?;
    Ok(())
}

fn body_form(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|b| b["form"].clone())
        .unwrap_or_default()
}

/// `export`: every record with its signed body and signature.
pub fn export(at: &Resolved, format: ExportFormat, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    // Recorded before the first record leaves: an export cut short was
    // still an export.
    audited(
        &c,
        "export",
        "",
        serde_json::json!({ "format": format!("{format:?}").to_lowercase() }),
    )?;
    export_from(&c, format, out)
}

fn export_from(c: &Coordinator, format: ExportFormat, out: &mut dyn Write) -> Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    let all = RecordFilter::default();
    // Nothing altered on this disk leaves it as evidence: each record is
    // checked against its id and its device's signature as it goes out.
    let keys = DeviceKeys::load(c.storage.as_ref())?;
    let registry = crate::registry::current(c.storage.as_ref())?;
    let in_registry = |station: &str| crate::registry::holds(registry.as_ref(), station);
    let intact = |r: &RecordRow| {
        check_row(r, keys.of(&r.device)).map(|_| ()).map_err(|problem| {
            StorageError::Corrupt(format!(
                "record {} at log index {} was altered on this server ({problem}); the export stops here, run `observer-server verify`",
                r.id, r.index
            ))
        })
    };
    match format {
        ExportFormat::Ndjson => c.reader().records(&all, &mut |r| {
            intact(&r)?;
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let line = json!({
                "index": r.index, "id": r.id, "device": r.device, "seq": r.seq,
                "station": r.station, "in_registry": in_registry(&r.station), "kind": r.kind,
                "captured_at": time(r.captured_at_ms), "received_at": time(r.received_at_ms),
                "media_missing": r.media_missing,
                "sealed": r.sealed.is_some(),
                "body": body, "body_base64": b64.encode(&r.body), "sig_base64": b64.encode(&r.sig),
            });
            writeln!(out, "{line}").map_err(StorageError::Output)
        })?,
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "index",
                "id",
                "device",
                "seq",
                "station",
                "in_registry",
                "kind",
                "captured_at",
                "received_at",
                "payload",
                "body_base64",
                "sig_base64",
            ])?;
            c.reader().records(&all, &mut |r| {
                intact(&r)?;
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let listed = in_registry(&r.station).map_or(String::new(), |b| b.to_string());
                w.write_record([
                    r.index.to_string(),
                    r.id.to_string(),
                    r.device.to_string(),
                    r.seq.to_string(),
                    r.station,
                    listed,
                    r.kind,
                    time(r.captured_at_ms),
                    time(r.received_at_ms),
                    body["payload"].to_string(),
                    b64.encode(&r.body),
                    b64.encode(&r.sig),
                ])
                .map_err(|e| {
                    let message = e.to_string();
                    match e.into_kind() {
                        csv::ErrorKind::Io(io) => StorageError::Output(io),
                        _ => StorageError::Output(std::io::Error::other(message)),
                    }
                })
            })?;
            w.flush()?;
        }
    }
    Ok(())
}
