//! The coordinator's minimal view: stations, devices, their last contact,
//! their gaps, and the latest records, rendered on the server (no script).

use std::fmt::Write as _;

use chrono::DateTime;

use crate::reader::Reader;
use crate::storage::{RecordFilter, StorageError};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}\
th{background:#f3f3f3}.gap{color:#b00;font-weight:bold}.ok{color:#070}code{font-size:.9em}";

/// The page shown without a valid token.
pub fn login_page() -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Observer: coordinator token required</title>\
         <style>{STYLE}</style></head><body><h1>Coordinator token required</h1>\
         <p>Open this page with <code>?token=…</code> from <code>dashboard.token</code> in the server's data directory.</p></body></html>"
    )
}

/// The overview page.
pub fn render(reader: &Reader<'_>, org: &str) -> Result<String, StorageError> {
    let storage = reader.storage();
    let devices = storage.devices()?;
    let totals = storage.totals()?;
    let missing: u64 = devices.iter().map(|d| d.missing_count()).sum();
    let tree = storage.tree_head()?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><title>Observer: {org}</title><style>{STYLE}</style></head><body>\
         <h1>Observer coordinator: {org}</h1>\
         <p>{} devices ({} revoked) · {} records from {} stations · <span class={}>{} records known to exist but not received</span> · log size {} root <code>{}</code></p>",
        totals.devices,
        totals.revoked,
        totals.records,
        totals.stations,
        if missing > 0 { "gap" } else { "ok" },
        missing,
        tree.size,
        tree.root,
        org = escape(org),
    );
    h.push_str("<h2>Devices</h2><table><tr><th>device</th><th>observer</th><th>stations</th><th>last contact</th><th>records</th><th>complete to</th><th>declared head</th><th>missing (possible deletions)</th><th>conflicts</th><th>quarantined</th><th>status</th></tr>");
    for d in &devices {
        let missing: Vec<String> = d.missing().map(|r| r.to_string()).collect();
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class={}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(d.info.id.as_str()),
            escape(d.info.name.as_deref().unwrap_or("")),
            escape(&d.info.stations.join(", ")),
            time(d.info.last_contact_ms),
            d.records,
            d.contiguous,
            d.heartbeat.map_or("–".into(), |h| h.seq.to_string()),
            if missing.is_empty() { "ok" } else { "gap" },
            if missing.is_empty() { "none".into() } else { escape(&missing.join(", ")) },
            d.conflicts,
            d.quarantined,
            if d.info.revoked_at_ms.is_some() { "revoked" } else { "active" },
        );
    }
    let registry = crate::registry::current(storage)?;
    h.push_str("</table><h2>Latest records</h2><table><tr><th>log index</th><th>received</th><th>captured (device clock)</th><th>station</th><th>kind</th><th>device</th><th>seq</th><th>form check</th><th>media</th><th>answers</th></tr>");
    reader.records(
        &RecordFilter {
            newest: Some(50),
            ..Default::default()
        },
        &mut |r| {
            let body = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default();
            let payload = body["payload"].to_string();
            let attached = body["attachments"].as_array().map_or(0, Vec::len) as u64;
            let media = match (attached, r.media_missing) {
                (0, _) => "<td></td>".to_string(),
                (n, 0) => format!("<td class=ok>{n} arrived</td>"),
                (n, m) => format!("<td class=gap>{m} of {n} not arrived</td>"),
            };
            let check = match &r.check {
                None => "<td>form unknown</td>".to_string(),
                Some(c) if c.clean => "<td class=ok>ok</td>".to_string(),
                Some(c) => {
                    let v: serde_json::Value = serde_json::from_str(&c.json).unwrap_or_default();
                    let named = |list: &str, key: &str| -> Vec<String> {
                        v[list]
                            .as_array()
                            .map(|a| a.iter().filter_map(|f| f[key].as_str().map(escape)).collect())
                            .unwrap_or_default()
                    };
                    let mut rules = named("flags", "flag");
                    rules.extend(named("findings", "rule"));
                    format!("<td class=gap>flagged {}</td>", rules.join(", "))
                }
            };
            let unlisted = if crate::registry::holds(registry.as_ref(), &r.station) == Some(false) {
                " <span class=gap>not in the registry</span>"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{unlisted}</td><td>{}</td><td><code>{}</code></td><td>{}</td>{check}{media}<td><code>{}</code></td></tr>",
                r.index,
                time(Some(r.received_at_ms)),
                time(Some(r.captured_at_ms)),
                escape(&r.station),
                escape(&r.kind),
                escape(&r.device.as_str()[..8]),
                r.seq,
                escape(&payload.chars().take(160).collect::<String>()),
            );
            Ok(())
        },
    )?;
    h.push_str("</table></body></html>");
    Ok(h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
