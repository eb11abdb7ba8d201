//! `relay export` and `relay import`: carrying another phone's undelivered
//! records to the coordinator as a file (see `observer_core::relay`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use observer_core::relay::MAX_BUNDLE_BYTES;

use super::{Ctx, Result};

/// `relay export`: writes this device's undelivered records to `output`.
/// The file is written beside and renamed into place, so a full disk or a
/// kill never leaves a half bundle under the name.
pub fn export(ctx: &Ctx, output: &Path, max_bytes: usize, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let e = store.export_relay_bundle(max_bytes)?;
    let partial = output.with_extension("partial");
    std::fs::write(&partial, &e.bytes)
        .and_then(|()| std::fs::rename(&partial, output))
        .map_err(|err| format!("cannot write {}: {err}", output.display()))?;
    writeln!(
        out,
        "wrote {} undelivered records ({} bytes) to {}; any phone of your organisation can import it and deliver them",
        e.records,
        e.bytes.len(),
        output.display()
    )?;
    if e.left_out > 0 {
        writeln!(
            out,
            "{} more records did not fit; export again after these are delivered",
            e.left_out
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `relay import`: adds another phone's bundle to this phone's relay outbox.
pub fn import(ctx: &Ctx, input: &Path, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let meta = std::fs::metadata(input)
        .map_err(|err| format!("cannot read {}: {err}", input.display()))?;
    if meta.len() > MAX_BUNDLE_BYTES as u64 {
        return Err(format!(
            "{} is {} bytes, larger than any relay bundle ({MAX_BUNDLE_BYTES})",
            input.display(),
            meta.len()
        )
        .into());
    }
    let bytes =
        std::fs::read(input).map_err(|err| format!("cannot read {}: {err}", input.display()))?;
    let i = store.import_relay_bundle(&bytes)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&i)?)?;
    } else {
        writeln!(
            out,
            "carrying {} records of device {} ({} new); they are sent at the next sync",
            i.records, i.device, i.added
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
