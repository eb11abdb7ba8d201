//! `witnesses add|list|remove`: the witnesses this coordinator asks to
//! cosign its checkpoints.

use std::io::Write;

use super::access::Resolved;
use super::{Result, audited};
use crate::witnesses;

/// `witnesses add --key VKEY --url URL`.
pub fn add(at: &Resolved, vkey: &str, url: &str, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let added = witnesses::add(c.storage.as_ref(), vkey, url)?;
    audited(
        &c,
        "witness.add",
        &added.witness.name,
        serde_json::json!({ "key": added.witness.vkey(), "url": added.url }),
    )?;
    writeln!(out, "asking {} at {}", added.witness.name, added.url)?;
    writeln!(
        out,
        "its operator follows this log with: observer-server witness follow --log-key {}",
        c.key.public_key()
    )?;
    Ok(())
}

/// `witnesses remove NAME`.
pub fn remove(at: &Resolved, name: &str, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    if !witnesses::remove(c.storage.as_ref(), name)? {
        return Err(format!("no witness named {name}").into());
    }
    audited(&c, "witness.remove", name, serde_json::json!({}))?;
    writeln!(out, "no longer asking {name}")?;
    Ok(())
}

/// `witnesses list`: each witness, its URL and what it cosigned last.
pub fn list(at: &Resolved, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let mut rows = Vec::new();
    for w in witnesses::configured(c.storage.as_ref())? {
        let cosigned = witnesses::cosigned(c.storage.as_ref(), &w.witness.name)?;
        rows.push((w, cosigned));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(w, cos)| {
                serde_json::json!({
                    "name": w.witness.name,
                    "key": w.witness.vkey(),
                    "url": w.url,
                    "cosigned_size": cos.as_ref().map(|c| c.size),
                    "cosigned_time": cos.as_ref().map(|c| c.time),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "log_key": c.key.public_key().to_string(), "witnesses": list })
        )?;
        return Ok(());
    }
    writeln!(out, "log key  {}", c.key.public_key())?;
    if rows.is_empty() {
        writeln!(
            out,
            "no witnesses (add one: observer-server witnesses add --key KEY --url URL)"
        )?;
    }
    for (w, cos) in rows {
        let state = match cos {
            Some(c) => format!(
                "cosigned size {} at {}",
                c.size,
                chrono::DateTime::from_timestamp(c.time as i64, 0)
                    .map_or_else(|| c.time.to_string(), |t| t.to_rfc3339())
            ),
            None => "nothing cosigned yet".into(),
        };
        writeln!(out, "{}  {}  {state}", w.witness.name, w.url)?;
    }
    Ok(())
}
