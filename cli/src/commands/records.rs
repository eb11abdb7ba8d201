//! Recording and reading the outbox: `record`, `media`, `list`,
//! `verify`, `load`, `demo`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use observer_core::media::PhotoTags;
use observer_core::record::NewRecord;
use observer_core::store::{DeliveryState, OnTampering, Query, StateFilter, StoredRecord};
use serde_json::{Value, json};

use super::{Ctx, Result};

/// `record`'s options.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// The polling station's id, as the commission numbers it.
    #[arg(long)]
    pub station: String,
    /// The form's id.
    #[arg(long)]
    pub form: String,
    /// The form's version.
    #[arg(long, default_value_t = 1)]
    pub form_version: u32,
    /// What sort of observation (checklist, incident, results, access...).
    #[arg(long)]
    pub kind: String,
    /// The answers, a JSON object.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// A media reference SHA256:BYTES:MIME (repeatable).
    #[arg(long = "attachment", value_name = "SHA256:BYTES:MIME")]
    pub attachments: Vec<String>,
    /// A photo, audio or video file to import as evidence and attach
    /// (repeatable; the MIME type comes from the extension, or FILE=MIME).
    #[arg(long = "attach", value_name = "FILE[=MIME]")]
    pub attach: Vec<String>,
    /// Keep JPEG location and device tags (removed by default).
    #[arg(long)]
    pub keep_photo_tags: bool,
    /// The id of a record this one corrects.
    #[arg(long)]
    pub supersedes: Option<String>,
    /// Print JSON instead of the bare id.
    #[arg(long)]
    pub json: bool,
}

/// `list --state`.
#[derive(Clone, Copy, ValueEnum)]
pub enum StateArg {
    Pending,
    InFlight,
    Delivered,
    Undelivered,
    Rejected,
}

impl From<StateArg> for StateFilter {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => StateFilter::Pending,
            StateArg::InFlight => StateFilter::InFlight,
            StateArg::Delivered => StateFilter::Delivered,
            StateArg::Undelivered => StateFilter::Undelivered,
            StateArg::Rejected => StateFilter::Rejected,
        }
    }
}

/// `record`: signs and saves one observation (importing its media first).
pub fn record(ctx: &Ctx, args: RecordArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let RecordArgs {
        station,
        form,
        form_version,
        kind,
        payload,
        attachments,
        attach,
        keep_photo_tags,
        supersedes,
        json,
    } = args;
    let mut b = NewRecord::builder(station, form, form_version, kind).payload_json(payload);
    for a in &attachments {
        let (hash, bytes, mime) = parse_attachment(a)?;
        b = b.attachment(hash, bytes, mime);
    }
    let store = ctx.open()?;
    for a in &attach {
        let (file, mime) = match a.split_once('=') {
            Some((f, m)) => (PathBuf::from(f), m.to_string()),
            None => (
                PathBuf::from(a),
                observer_core::media::mime_for_file(Path::new(a)).to_string(),
            ),
        };
        let tags = if keep_photo_tags {
            PhotoTags::Keep
        } else {
            PhotoTags::Remove
        };
        let m = store.import_media(&file, &mime, tags, None)?;
        b = b.attachment(m.sha256.to_string(), m.bytes, m.mime);
    }
    if let Some(s) = supersedes {
        b = b.supersedes(s.parse().map_err(|e| format!("--supersedes {s:?}: {e}"))?);
    }
    let new = b.build()?;
    let flags = store.filing_flags(&new)?;
    let saved = store.save(new)?;
    if json {
        writeln!(
            out,
            "{}",
            json!({"id": saved.id, "seq": saved.seq, "captured_at": saved.captured_at, "flags": flags})
        )?;
    } else {
        writeln!(out, "{}", saved.id)?;
    }
    // Saved all the same: an observer is never blocked.
    for f in &flags {
        eprintln!("observer: saved, but flagged: {f}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `media`: the evidence files held, smallest first.
pub fn media(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    for m in store.media()? {
        if json {
            writeln!(out, "{}", serde_json::to_string(&m)?)?;
        } else {
            writeln!(
                out,
                "{}  {:>12} bytes  {:<24} {}",
                m.sha256,
                m.bytes,
                m.mime,
                if m.delivered { "delivered" } else { "waiting" }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `list`: records in chain order, a page at a time.
pub fn list(
    ctx: &Ctx,
    state: Option<StateArg>,
    station: Option<String>,
    kind: Option<String>,
    limit: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let store = ctx.open()?;
    let mut q = Query::new();
    if let Some(s) = state {
        q = q.state(s.into());
    }
    if let Some(s) = station {
        q = q.station(s);
    }
    if let Some(k) = kind {
        q = q.kind(k);
    }
    if !json {
        writeln!(
            out,
            "{:>7}  {:<16}  {:<24}  {:<16}  {:<12}  state",
            "seq", "id", "captured at (UTC)", "station", "kind"
        )?;
    }
    let mut left = limit.unwrap_or(u64::MAX);
    const PAGE: u64 = 500;
    while left > 0 {
        let page = store.list(&q.clone().limit(left.min(PAGE) as u32))?;
        let Some(last) = page.last() else { break };
        q = q.after_seq(last.seq);
        left -= page.len() as u64;
        for r in &page {
            print_record(out, r, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `verify`: every record's id, signature and links; fails on tampering.
pub fn verify(ctx: &Ctx, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open_with(OnTampering::Continue)?;
    let report = store.verify()?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else if report.is_intact() {
        writeln!(
            out,
            "ok: {} records, every id, signature and link verified",
            report.checked
        )?;
    } else {
        out.flush()?;
        eprintln!("observer: TAMPERING FOUND in {} records:", report.checked);
        for f in &report.faults {
            eprintln!("  - {f}");
        }
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `load`: saves records one at a time, printing each id once durable.
pub fn load(ctx: &Ctx, count: u64, station: String, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let mut i = 0u64;
    while count == 0 || i < count {
        i += 1;
        let new = NewRecord::builder(station.as_str(), "load", 1, "load")
            .payload(json!({ "n": i }))
            .build()?;
        let saved = store.save(new)?;
        // Printed (and flushed) only after the save returned: every
        // id on stdout is a promise that the record is durable.
        writeln!(out, "{}", saved.id)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `demo`: a sample election day recorded offline, then verified.
pub fn demo(ctx: &Ctx, out: &mut dyn Write) -> Result<ExitCode> {
    let store = ctx.open()?;
    let station = "KZ-ALA-0042";
    // A day against the shipped forms (see `observer forms`).
    let protocol = |cast: i64| {
        json!({"registered_voters": 1840, "ballots_received": 1500, "ballots_issued": 1030,
               "ballots_spoiled": 2, "ballots_unused": 468, "ballots_cast": cast,
               "ballots_invalid": 9, "party_1": 610, "party_2": 201, "party_3": 102,
               "party_4": 60, "party_5": cast - 982, "count_announced": false, "copy_received": true})
    };
    let day = [
        (
            "access",
            "access",
            json!({"event": "denied", "time": "06:00",
            "reason_given": "certificate not notarised", "credentials_disputed": true}),
        ),
        (
            "access",
            "access",
            json!({"event": "admitted", "time": "07:00"}),
        ),
        (
            "opening",
            "checklist",
            json!({"arrival_time": "06:00", "admitted_on_time": false,
            "admitted_time": "07:00", "boxes_empty_shown": true, "boxes_sealed": false,
            "ballots_received": 1500, "voter_list_available": true, "opened_on_time": true}),
        ),
        (
            "incident",
            "incident",
            json!({"type": "ballot_stuffing", "time": "11:40",
            "description": "a man put a stack of ballots into box 2", "reported_to_chair": true,
            "chair_response": "ignored"}),
        ),
        (
            "incident",
            "incident",
            json!({"type": "internet_outage", "time": "12:05",
            "description": "no mobile data around the station", "reported_to_chair": false}),
        ),
        ("counting", "results", protocol(1012)),
    ];
    let mut last = None;
    for (form, kind, answers) in day {
        let saved = store.save(
            NewRecord::builder(station, form, 1, kind)
                .payload(answers)
                .build()?,
        )?;
        writeln!(out, "saved {kind:<10} seq {:>3}  {}", saved.seq, saved.id)?;
        last = Some(saved.id);
    }
    let correction = NewRecord::builder(station, "counting", 1, "results")
        .payload(protocol(1021))
        .supersedes(last.expect("the day has records"))
        .build()?;
    let saved = store.save(correction)?;
    writeln!(
        out,
        "saved correction of the results, seq {:>3}  {}",
        saved.seq, saved.id
    )?;
    let c = store.counts()?;
    let report = store.verify()?;
    writeln!(
        out,
        "\n{} records waiting for a link (pending); {}",
        c.pending, report
    )?;
    writeln!(
        out,
        "data directory: {}  (try: observer --data {} list)",
        ctx.data.display(),
        ctx.data.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn parse_attachment(s: &str) -> Result<(String, u64, String)> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(b), Some(m)) => Ok((
            h.to_string(),
            b.parse()
                .map_err(|_| format!("--attachment {s:?}: size {b:?} is not a number"))?,
            m.to_string(),
        )),
        _ => Err(format!("--attachment {s:?}: expected SHA256:BYTES:MIME").into()),
    }
}

fn print_record(out: &mut dyn Write, r: &StoredRecord, json: bool) -> Result<()> {
    let state = match &r.state {
        DeliveryState::Pending => "pending".to_string(),
        DeliveryState::InFlight => "in flight".to_string(),
        DeliveryState::Delivered { .. } => "delivered".to_string(),
        DeliveryState::Rejected { reason, detail, .. } => {
            format!("rejected: {}: {detail}", reason.code())
        }
    };
    if json {
        let body: Value = serde_json::from_slice(&r.envelope.body)?;
        writeln!(
            out,
            "{}",
            json!({
                "seq": r.seq,
                "id": r.id,
                "station": r.station,
                "kind": r.kind,
                "captured_at": r.captured_at,
                "state": r.state,
                "body": body,
            })
        )?;
    } else {
        let id = r.id.to_string();
        writeln!(
            out,
            "{:>7}  {:<16}  {:<24}  {:<16}  {:<12}  {state}",
            r.seq,
            &id[..16],
            r.captured_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            r.station,
            r.kind
        )?;
    }
    Ok(())
}
