//! `observer`: the desktop field client.
//!
//! The same core the phones run, driven from a terminal: for trainers who
//! demonstrate it, testers who script it, and load generation.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use observer_core::forms::FormDefinition;
use observer_core::identity::FileKeyStore;
use observer_core::media::PhotoTags;
use observer_core::protocol::EnrollmentCode;
use observer_core::record::NewRecord;
use observer_core::store::{
    DeliveryState, OnTampering, Query, StateFilter, Store, StoreError, StoredRecord, SCHEMA_VERSION,
};
use observer_core::sync::{enroll, sync_with_retry, Backoff, SyncOptions};
use serde_json::{json, Value};

/// Observer's desktop field client: record signed observations offline,
/// inspect the outbox, verify that nothing was altered.
#[derive(Parser)]
#[command(name = "observer", version, about, long_about = None)]
struct Cli {
    /// The data directory (database and, on desktop, the key file).
    #[arg(long, env = "OBSERVER_DATA")]
    data: PathBuf,
    /// Open the store even if tampering was found, to keep recording
    /// (the gap stays visible to the coordinator).
    #[arg(long, global = true)]
    accept_tampering: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory and this device's key (idempotent).
    Init {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign and save one observation; prints its id.
    Record {
        /// The polling station's id, as the commission numbers it.
        #[arg(long)]
        station: String,
        /// The form's id.
        #[arg(long)]
        form: String,
        /// The form's version.
        #[arg(long, default_value_t = 1)]
        form_version: u32,
        /// What sort of observation (checklist, incident, results, access...).
        #[arg(long)]
        kind: String,
        /// The answers, a JSON object.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// A media reference SHA256:BYTES:MIME (repeatable).
        #[arg(long = "attachment", value_name = "SHA256:BYTES:MIME")]
        attachments: Vec<String>,
        /// A photo, audio or video file to import as evidence and attach
        /// (repeatable; the MIME type comes from the extension, or FILE=MIME).
        #[arg(long = "attach", value_name = "FILE[=MIME]")]
        attach: Vec<String>,
        /// Keep JPEG location and device tags (removed by default).
        #[arg(long)]
        keep_photo_tags: bool,
        /// The id of a record this one corrects.
        #[arg(long)]
        supersedes: Option<String>,
        /// Print JSON instead of the bare id.
        #[arg(long)]
        json: bool,
    },
    /// List the evidence media held, smallest first, with delivery state.
    Media {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List records in chain order.
    List {
        /// Only records in this delivery state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only records for this station.
        #[arg(long)]
        station: Option<String>,
        /// Only records of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object per line (with the signed body) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every record: ids, signatures, chain links. Exits 1 on tampering.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show this device, its chain head and its outbox counts.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enroll this device with a coordinator, from the code it issued
    /// (`observer-server enroll`).
    Enroll {
        /// The enrollment code (OBS1:...).
        code: String,
        /// Your name, shown to the coordinator.
        #[arg(long)]
        name: Option<String>,
    },
    /// Panic wipe: destroy this device's keys and every readable record at
    /// once. Opening the directory afterwards says it was wiped.
    Wipe {
        /// Keep undelivered records of sealed forms (unreadable here, still
        /// deliverable with `deliver-sealed`).
        #[arg(long)]
        keep_sealed: bool,
        /// Confirm: there is no undo.
        #[arg(long)]
        yes: bool,
    },
    /// After a wipe: deliver the sealed records it kept.
    DeliverSealed {
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// After a wipe: clear the directory to start again with a new identity.
    StartOver {
        /// Also discard sealed records that were never delivered.
        #[arg(long)]
        discard_sealed: bool,
    },
    /// Deliver pending records to the coordinator, retrying with backoff.
    Sync {
        /// Attempts before giving up (each after a randomised, growing wait).
        #[arg(long, default_value_t = 5)]
        attempts: u32,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the forms available offline (shipped and published).
    Forms {
        /// Language for titles: kk, ru or en.
        #[arg(long, default_value = "en")]
        lang: String,
        /// One JSON object per form, with its whole definition summary.
        #[arg(long)]
        json: bool,
    },
    /// Check answers against a form: visible fields, invalid answers, failed
    /// rules. Exits 1 if an answer is invalid or a rule of severity error fails.
    Validate {
        /// The form's id.
        #[arg(long)]
        form: String,
        /// The form's version (default: the newest available).
        #[arg(long)]
        form_version: Option<u32>,
        /// The answers, a JSON object.
        #[arg(long)]
        payload: String,
        /// Language for messages: kk, ru or en.
        #[arg(long, default_value = "en")]
        lang: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record a sample election day offline (access log, checklists, an
    /// incident, a results protocol and its correction), then verify it.
    Demo,
    /// Save COUNT records one at a time, printing each id as soon as it is
    /// durable (scripted load and crash testing).
    Load {
        /// How many records (0: until killed).
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// The station to record for.
        #[arg(long, default_value = "LOAD-0001")]
        station: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
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

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("observer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The desktop key store lives beside the data; see `FileKeyStore` for why
/// that is weaker than a phone's.
fn open(data: &Path, on_tampering: OnTampering) -> Result<Store> {
    std::fs::create_dir_all(data).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}; choose a directory you may write to",
            data.display()
        )
    })?;
    let keys = FileKeyStore::open_or_create(data.join("device.kek"))?;
    match Store::open_with(data, &keys, on_tampering) {
        Err(e @ StoreError::Wiped { .. }) => {
            let dir = data.display();
            Err(format!(
                "{e}\n  deliver them:  observer --data {dir} deliver-sealed\n  then:          observer --data {dir} start-over"
            )
            .into())
        }
        other => Ok(other?),
    }
}

/// The MIME type an evidence file's extension names (what phones' cameras
/// and recorders write); anything else is sent as opaque bytes.
fn mime_of(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "heic" => "image/heic",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "3gp" => "video/3gpp",
        "webm" => "video/webm",
        "m4a" | "aac" => "audio/mp4",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let policy = if cli.accept_tampering {
        OnTampering::Continue
    } else {
        OnTampering::Refuse
    };
    let mut out = BufWriter::new(io::stdout().lock());
    match cli.command {
        Command::Init { json } => {
            let store = open(&cli.data, policy)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({
                        "device": store.device_id().as_str(),
                        "public_key": store.public_key().to_string(),
                        "data": cli.data,
                    })
                )?;
            } else {
                writeln!(out, "device     {}", store.device_id())?;
                writeln!(out, "public key {}", store.public_key())?;
                writeln!(out, "data       {}", cli.data.display())?;
            }
        }
        Command::Record {
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
        } => {
            let mut b = NewRecord::builder(station, form, form_version, kind).payload_json(payload);
            for a in &attachments {
                let (hash, bytes, mime) = parse_attachment(a)?;
                b = b.attachment(hash, bytes, mime);
            }
            let store = open(&cli.data, policy)?;
            for a in &attach {
                let (file, mime) = match a.split_once('=') {
                    Some((f, m)) => (PathBuf::from(f), m.to_string()),
                    None => (PathBuf::from(a), mime_of(Path::new(a)).to_string()),
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
        }
        Command::Media { json } => {
            let store = open(&cli.data, policy)?;
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
        }
        Command::List {
            state,
            station,
            kind,
            limit,
            json,
        } => {
            let store = open(&cli.data, policy)?;
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
                    print_record(&mut out, r, json)?;
                }
            }
        }
        Command::Verify { json } => {
            let store = open(&cli.data, OnTampering::Continue)?;
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
            return Ok(if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Status { json } => {
            let store = open(&cli.data, policy)?;
            let c = store.counts()?;
            let head = store.head()?;
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
        }
        Command::Enroll { code, name } => {
            let code = EnrollmentCode::parse(&code)?;
            let store = open(&cli.data, policy)?;
            let e = enroll(&store, &code, name.as_deref())?;
            writeln!(
                out,
                "enrolled with {} ({}) as device {}",
                e.url, e.org, e.device
            )?;
            writeln!(out, "stations: {}", e.stations.join(", "))?;
        }
        Command::Wipe { keep_sealed, yes } => {
            if !yes {
                return Err("a wipe cannot be undone; run again with --yes".into());
            }
            let keys = FileKeyStore::open_or_create(cli.data.join("device.kek"))?;
            let store = Store::open_with(&cli.data, &keys, OnTampering::Continue)?;
            let started = std::time::Instant::now();
            let s = store.wipe(&keys, keep_sealed)?;
            writeln!(
                out,
                "wiped in {} ms; {} sealed records kept for delivery",
                started.elapsed().as_millis(),
                s.sealed_waiting
            )?;
        }
        Command::DeliverSealed { json } => {
            let s = observer_core::sync::deliver_sealed(&cli.data, &SyncOptions::default())?;
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
        }
        Command::StartOver { discard_sealed } => {
            Store::start_over(&cli.data, discard_sealed)?;
            writeln!(out, "cleared; the next command creates a new identity")?;
        }
        Command::Sync { attempts, json } => {
            let store = open(&cli.data, policy)?;
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
        }
        Command::Forms { lang, json } => {
            let store = open(&cli.data, policy)?;
            for f in store.forms()? {
                let title = FormDefinition::localise(&f.title, &lang);
                if json {
                    writeln!(
                        out,
                        "{}",
                        json!({"id": f.id, "version": f.version, "kind": f.kind, "title": title,
                               "fields": f.fields.len(), "rules": f.rules.len(), "sealed": f.sealed})
                    )?;
                } else {
                    writeln!(
                        out,
                        "{:<10} v{:<3} {:<10} {:>3} fields {:>2} rules  {title}",
                        f.id,
                        f.version,
                        f.kind,
                        f.fields.len(),
                        f.rules.len()
                    )?;
                }
            }
        }
        Command::Validate {
            form,
            form_version,
            payload,
            lang,
            json,
        } => {
            let store = open(&cli.data, policy)?;
            let def = store.form(&form, form_version)?.ok_or_else(|| {
                format!(
                    "no form {form:?}{} on this device; see `observer forms`",
                    form_version.map_or(String::new(), |v| format!(" version {v}"))
                )
            })?;
            let answers: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| format!("--payload is not JSON: {e}"))?;
            let answers = answers
                .as_object()
                .ok_or("--payload must be a JSON object")?;
            let v = def.validate(answers, &lang);
            if json {
                writeln!(out, "{}", serde_json::to_string(&v)?)?;
            } else {
                for p in &v.problems {
                    writeln!(out, "answer  {}: {}", p.field, p.message)?;
                }
                for r in &v.findings {
                    writeln!(
                        out,
                        "{:<7} {}: {}",
                        format!("{:?}", r.severity).to_lowercase(),
                        r.rule,
                        r.message
                    )?;
                }
                if v.problems.is_empty() && v.findings.is_empty() {
                    writeln!(out, "ok: the answers fit {} v{}", def.id, def.version)?;
                }
            }
            return Ok(if v.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Demo => {
            let store = open(&cli.data, policy)?;
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
                cli.data.display(),
                cli.data.display()
            )?;
        }
        Command::Load { count, station } => {
            let store = open(&cli.data, policy)?;
            let mut i = 0u64;
            while count == 0 || i < count {
                i += 1;
                let new = NewRecord::builder(station.as_str(), "load", 1, "load")
                    .payload(json!({ "n": i }))
                    .build()?;
                let saved = store.save(new)?;
                // Printed (and flushed) only after the save returned: every
                // id on stdout is a promise that the record is durable.
                let mut o = io::stdout().lock();
                writeln!(o, "{}", saved.id)?;
                o.flush()?;
            }
        }
    }
    out.flush()?;
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

fn print_record(out: &mut impl Write, r: &StoredRecord, json: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
