//! This device: `init`, `status`, `enroll`, `wipe`, `start-over`.

use std::io::Write;
use std::process::ExitCode;

use observer_core::identity::FileKeyStore;
use observer_core::protocol::EnrollmentCode;
use observer_core::store::{OnTampering, SCHEMA_VERSION, Store};
use observer_core::sync::enroll as enroll_with;
use serde_json::json;

use super::{Ctx, Result};

/// `init`: creates the data directory and this device's key.
pub fn init(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    if json {
        writeln!(
            out,
            "{}",
            json!({
                "device": store.device_id().as_str(),
                "public_key": store.public_key().to_string(),
                "data": ctx.data,
            })
        )?;
    } else {
        writeln!(out, "device     {}", store.device_id())?;
        writeln!(out, "public key {}", store.public_key())?;
        writeln!(out, "data       {}", ctx.data.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`: this device, its chain head, its outbox.
pub fn status(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let c = store.counts()?;
    let head = store.head()?;
    let relaying = store.relay_count()?;
    if json {
        writeln!(
            out,
            "{}",
            json!({
                "device": store.device_id().as_str(),
                "public_key": store.public_key().to_string(),
                "schema_version": SCHEMA_VERSION,
                "head": head,
                "counts": c,
                "relaying": relaying,
                "tampering": store.tampering(),
                "stations": store.enrollment().map(|e| e.stations),
            })
        )?;
    } else {
        writeln!(out, "device      {}", store.device_id())?;
        writeln!(out, "public key  {}", store.public_key())?;
        match store.enrollment() {
            Some(e) => {
                writeln!(out, "enrolled    with {} ({})", e.org, e.url)?;
                writeln!(out, "stations    {}", e.stations.join(", "))?;
            }
            None => writeln!(out, "enrolled    not yet (see `observer enroll`)")?,
        }
        match head {
            Some(h) => writeln!(out, "chain head  seq {} ({})", h.seq, h.id)?,
            None => writeln!(out, "chain head  no records yet")?,
        }
        writeln!(out, "pending     {}", c.pending)?;
        writeln!(out, "in flight   {}", c.in_flight)?;
        writeln!(out, "delivered   {}", c.delivered)?;
        writeln!(out, "rejected    {}", c.rejected)?;
        if relaying > 0 {
            writeln!(out, "relaying    {relaying} records of other phones")?;
        }
        if store.revoked_at_ms().is_some() {
            writeln!(
                out,
                "REVOKED     by the coordinator: this device signs nothing more"
            )?;
        }
        if let Some(t) = store.tampering() {
            writeln!(out, "TAMPERING   {t}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `enroll`: enrolls with the coordinator that issued `code`.
pub fn enroll(
    ctx: &Ctx,
    code: String,
    name: Option<String>,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let code = EnrollmentCode::parse(&code)?;
    let store = ctx.open()?;
    let e = enroll_with(&store, &code, name.as_deref())?;
    writeln!(
        out,
        "enrolled with {} ({}) as device {}",
        e.url, e.org, e.device
    )?;
    writeln!(out, "stations: {}", e.stations.join(", "))?;
    Ok(ExitCode::SUCCESS)
}

/// `wipe`: the panic wipe.
pub fn wipe(ctx: &Ctx, keep_sealed: bool, yes: bool, out: &mut dyn Write) -> Result<ExitCode> {
    if !yes {
        return Err("a wipe cannot be undone; run again with --yes".into());
    }
    let keys = FileKeyStore::open_or_create(ctx.data.join("device.kek"))?;
    let store = Store::open_with(&ctx.data, &keys, OnTampering::Continue)?;
    let started = std::time::Instant::now();
    let s = store.wipe(&keys, keep_sealed)?;
    writeln!(
        out,
        "wiped in {} ms; {} sealed records kept for delivery",
        started.elapsed().as_millis(),
        s.sealed_waiting
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `start-over`: clears a wiped directory.
pub fn start_over(ctx: &Ctx, discard_sealed: bool, out: &mut dyn Write) -> Result<ExitCode> {
    Store::start_over(&ctx.data, discard_sealed)?;
    writeln!(out, "cleared; the next command creates a new identity")?;
    Ok(ExitCode::SUCCESS)
}
