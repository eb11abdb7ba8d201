//! The audit log: `audit` (the entries) and `audit verify` (the chain).

use std::io::Write;

use super::Result;
use super::access::Resolved;
use crate::audit::ChainCheck;
use crate::storage::{AuditEntry, StorageError};

/// Entries read per query: constant memory however long the log.
const PAGE: u32 = 1000;

/// Every entry after `after`, oldest first, to `each`.
fn each_entry(
    storage: &dyn crate::storage::Storage,
    after: u64,
    each: &mut dyn FnMut(&AuditEntry) -> Result<()>,
) -> Result<()> {
    let mut after = after;
    loop {
        let page = storage.audit_entries(after, PAGE)?;
        for e in &page {
            each(e)?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => return Ok(()),
        }
    }
}

/// `audit`: the entries after seq `after`, oldest first.
pub fn audit(at: &Resolved, after: u64, json: bool, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    each_entry(c.storage.as_ref(), after, &mut |e| {
        if json {
            writeln!(out, "{}", serde_json::to_string(e)?).map_err(StorageError::Output)?;
        } else {
            let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "{:>6}  {at}  {:<20} {:<18} {}  {}",
                e.seq, e.actor, e.action, e.subject, e.detail
            )
            .map_err(StorageError::Output)?;
        }
        Ok(())
    })
}

/// `audit verify`: every link and signature; exits 1 naming each fault.
pub fn audit_verify(at: &Resolved, out: &mut dyn Write) -> Result<()> {
    let c = at.open()?;
    let key = c.key.public_key();
    let mut check = ChainCheck::new(&key);
    each_entry(c.storage.as_ref(), 0, &mut |e| {
        check.check(e);
        Ok(())
    })?;
    if !check.faults.is_empty() {
        for f in &check.faults {
            writeln!(out, "{f}")?;
        }
        return Err(format!(
            "the audit log was altered: {} fault{}",
            check.faults.len(),
            if check.faults.len() == 1 { "" } else { "s" }
        )
        .into());
    }
    match check.head() {
        None => writeln!(out, "the audit log is empty")?,
        Some((seq, hash)) => writeln!(
            out,
            "the audit log checks: {seq} entries, each linked and signed by the coordinator; newest hash {hash} (write it down: a log cut short after it would still check)"
        )?,
    }
    Ok(())
}
