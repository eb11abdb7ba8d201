//! Delivery to the coordinator: `sync`, `deliver-sealed`, and `audit-log`
//! (every delivered record proved still in the coordinator's log).

use std::io::Write;
use std::process::ExitCode;

use observer_core::sync::{Backoff, SyncOptions, sync_with_retry};

use super::{Ctx, Result};

/// `sync`: delivers the outbox, retrying with backoff.
pub fn sync(ctx: &Ctx, attempts: u32, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let s = sync_with_retry(
        &store,
        &SyncOptions::default(),
        &Backoff::default(),
        attempts.max(1),
    )?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
    } else {
        writeln!(
            out,
            "sent {}, delivered {} ({} new, {} already there), rejected {}, still pending {}",
            s.sent,
            s.delivered(),
            s.accepted,
            s.already,
            s.rejected.len(),
            s.remaining
        )?;
        for r in &s.rejected {
            writeln!(
                out,
                "  rejected {}: {}: {}",
                r.id,
                r.reason.code(),
                r.detail
            )?;
        }
        if s.relayed + s.relay_refused + s.relay_remaining > 0 {
            writeln!(
                out,
                "relay: delivered {} records for other phones, refused {}, still carrying {}",
                s.relayed, s.relay_refused, s.relay_remaining
            )?;
        }
        if s.forms_received > 0 {
            writeln!(
                out,
                "forms: {} new form versions from the coordinator (see `observer forms`)",
                s.forms_received
            )?;
        }
        if let Some(stations) = &s.stations_assigned {
            writeln!(
                out,
                "stations: the coordinator now assigns you to {}",
                stations.join(", ")
            )?;
        }
        if s.media_delivered > 0 || !s.media_failed.is_empty() {
            writeln!(
                out,
                "media: {} files delivered, {} not delivered",
                s.media_delivered,
                s.media_failed.len()
            )?;
        }
        for (sha, why) in &s.media_failed {
            writeln!(out, "  not delivered {sha}: {why}")?;
        }
        if let Some(o) = s.clock_offset_ms {
            writeln!(
                out,
                "clock: this device is {} ms {} the coordinator",
                o.abs(),
                if o >= 0 { "behind" } else { "ahead of" }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `deliver-sealed`: delivers what a wipe kept.
pub fn deliver_sealed(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let s = observer_core::sync::deliver_sealed(&ctx.data, &SyncOptions::default())?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
    } else {
        writeln!(
            out,
            "sent {}, delivered {}, rejected {}, still waiting {}",
            s.sent,
            s.delivered(),
            s.rejected.len(),
            s.remaining
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit-log`: proves every delivered record in the coordinator's log.
pub fn audit_log(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let a = observer_core::sync::audit_log(&store, &SyncOptions::default())?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "records_proved": a.records_proved, "log_size": a.size })
        )?;
    } else {
        writeln!(
            out,
            "{} delivered records proved in the coordinator's log of {} records, which extends every head it signed for this phone",
            a.records_proved, a.size
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
