//! Observers' phones: `enroll`, `devices`, `assign`, `revoke`.

use std::io::Write;

use observer_core::identity::DeviceId;

use super::access::Resolved;
use super::{Result, audited, now_ms};

/// `enroll`: a one-time enrollment code, as a QR code and as text.
pub fn enroll(
    at: &Resolved,
    stations: &[String],
    name: Option<&str>,
    valid_hours: u32,
    text_only: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let code = c
        .issue_code(stations, name, valid_hours, now_ms())?
        .to_text();
    tracing::info!(
        stations = stations.len(),
        valid_hours,
        "enrollment code issued"
    );
    // Never the code itself: the audit log is read by more people than
    // may enroll a phone.
    audited(
        &c,
        "code.issued",
        stations.join(", "),
        serde_json::json!({ "stations": stations, "name": name, "valid_hours": valid_hours }),
    )?;
    if !text_only {
        let qr = qrcode::QrCode::new(code.as_bytes())?;
        let image = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        writeln!(out, "{image}")?;
        writeln!(
            out,
            "One-time enrollment code for {} (valid {valid_hours} h):",
            stations.join(", ")
        )?;
    }
    writeln!(out, "{code}")?;
    Ok(())
}

/// `devices`: every enrolled device, its last contact and its gaps.
pub fn devices(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let devices = c.storage.devices()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&devices)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32}  {:<20}  {:<20}  {:>7}  {:>8}  {:>9}  missing",
        "device", "observer", "last contact", "records", "complete", "heartbeat"
    )?;
    for d in devices {
        let missing: Vec<String> = d.missing().map(|r| r.to_string()).collect();
        writeln!(
            out,
            "{:<32}  {:<20}  {:<20}  {:>7}  {:>8}  {:>9}  {}{}",
            d.info.id,
            d.info.name.clone().unwrap_or_default(),
            d.info
                .last_contact_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or("never".into(), |t| t
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()),
            d.records,
            d.contiguous,
            d.heartbeat.map_or("-".into(), |h| h.seq.to_string()),
            if missing.is_empty() {
                "none".into()
            } else {
                missing.join(", ")
            },
            if d.info.revoked_at_ms.is_some() {
                "  (revoked)"
            } else {
                ""
            },
        )?;
    }
    Ok(())
}

fn device_id(text: String) -> Result<DeviceId> {
    Ok(DeviceId::try_from(text).map_err(|e| format!("device id: {e}"))?)
}

/// `assign`: replaces a device's stations (it learns them at its next sync).
pub fn assign(
    at: &Resolved,
    device: String,
    stations: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    let c = at.open()?;
    let id = device_id(device)?;
    c.check_stations(stations)?;
    if !c.storage.assign(&id, stations)? {
        return Err(format!("no enrolled device {id}").into());
    }
    tracing::info!(device = %id, stations = stations.len(), "device assigned");
    audited(
        &c,
        "device.assigned",
        id.to_string(),
        serde_json::json!({ "stations": stations }),
    )?;
    writeln!(
        out,
        "assigned {id} to {}; it learns this at its next sync",
        stations.join(", ")
    )?;
    Ok(())
}

/// `revoke`: nothing more is accepted from the device.
pub fn revoke(at: &Resolved, device: String, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let id = device_id(device)?;
    if !c.storage.revoke(&id, now_ms())? {
        return Err(format!("no enrolled device {id}").into());
    }
    tracing::info!(device = %id, "device revoked: its later records are quarantined");
    audited(&c, "device.revoked", id.to_string(), serde_json::json!({}))?;
    writeln!(out, "revoked {id}: nothing more is accepted from it")?;
    Ok(())
}
