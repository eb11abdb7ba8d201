//! `observer-server`: the coordinating server's command line.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use observer_core::identity::DeviceId;
use observer_server::coordinator::Coordinator;
use observer_server::demo::{self, DemoOptions};
use observer_server::limits::ServeLimits;
use observer_server::serve::{serve, serve_with};
use observer_server::storage::{RecordFilter, Storage};
use observer_server::tabulate;
use observer_server::unlock::Unlock;
use serde_json::json;

/// Observer's coordinating server: enrolls observers' phones, receives their
/// signed records, shows what arrived and what is missing.
#[derive(Parser)]
#[command(name = "observer-server", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    access: Access,
    #[command(subcommand)]
    command: Command,
}

/// Where the server's data is and what unlocks its keys.
#[derive(clap::Args)]
struct Access {
    /// The server's data directory.
    #[arg(
        long,
        global = true,
        env = "OBSERVER_SERVER_DATA",
        default_value = "observer-server-data"
    )]
    data: PathBuf,
    /// A key file on other storage (a USB stick, a secrets mount) that
    /// unlocks the coordinator's keys; `init` creates it if missing.
    #[arg(long, global = true, env = "OBSERVER_SERVER_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// A file holding the passphrase that unlocks the coordinator's keys
    /// (or give the passphrase itself in OBSERVER_SERVER_PASSPHRASE).
    #[arg(long, global = true, env = "OBSERVER_SERVER_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,
}

/// The environment variable that may hold the passphrase itself (never a
/// flag: flags show in process listings).
const PASSPHRASE_ENV: &str = "OBSERVER_SERVER_PASSPHRASE";

impl Access {
    /// What the operator gave to unlock the keys, if anything.
    fn unlock(&self) -> Result<Option<Unlock>> {
        self.unlock_from(PASSPHRASE_ENV)
    }

    /// [`Access::unlock`], with the passphrase itself in `env`.
    fn unlock_from(&self, env: &str) -> Result<Option<Unlock>> {
        let phrase = std::env::var(env).ok().filter(|p| !p.is_empty());
        match (&self.key_file, &self.passphrase_file, phrase) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(
                "give one of --key-file, --passphrase-file or OBSERVER_SERVER_PASSPHRASE, not several".into(),
            ),
            (Some(k), None, None) => Ok(Some(Unlock::KeyFile(k.clone()))),
            (None, Some(f), None) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| format!("--passphrase-file {}: {e}", f.display()))?;
                let phrase = text.trim_end_matches(['\n', '\r']).to_string();
                if phrase.is_empty() {
                    return Err(format!("--passphrase-file {} is empty", f.display()).into());
                }
                Ok(Some(Unlock::Passphrase(zeroize::Zeroizing::new(phrase))))
            }
            (None, None, Some(p)) => Ok(Some(Unlock::Passphrase(zeroize::Zeroizing::new(p)))),
            (None, None, None) => Ok(None),
        }
    }

    /// Opens the coordinator, warning when its keys still sit beside the
    /// database.
    fn open(&self) -> Result<Coordinator> {
        let c = Coordinator::open(&self.data, self.unlock()?.as_ref())?;
        if c.legacy_keys {
            eprintln!(
                "observer-server: warning: this directory's keys are wrapped by {} beside the database; move them with `observer-server rekey --key-file PATH` (or a passphrase)",
                c.dir.join(observer_server::unlock::LEGACY_KEY_FILE).display()
            );
        }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create the coordinator's signing key, TLS certificate and database.
    Init {
        /// How phones reach this server: https://HOST:PORT.
        #[arg(long)]
        url: String,
        /// The organisation's id (letters, digits, '-', '_', '.').
        #[arg(long, default_value = "observers")]
        org: String,
        /// Where to keep evidence media (default: DATA/media).
        #[arg(long)]
        media_dir: Option<PathBuf>,
    },
    /// Serve HTTPS until interrupted (SIGTERM or Ctrl-C finishes requests
    /// in flight first).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Issue a one-time enrollment code (text and QR code) for an observer.
    Enroll {
        /// Station(s) the observer is assigned to (repeatable).
        #[arg(long = "station", required = true)]
        stations: Vec<String>,
        /// The observer's name.
        #[arg(long)]
        name: Option<String>,
        /// Hours until the code expires.
        #[arg(long, default_value_t = 72)]
        valid_hours: u32,
        /// Print only the code text (no QR code), for scripts.
        #[arg(long)]
        text: bool,
    },
    /// Enrolled devices, their last contact and their gaps.
    Devices {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Received records, oldest first.
    Records {
        /// Only this station's.
        #[arg(long)]
        station: Option<String>,
        /// Only this device's.
        #[arg(long)]
        device: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Export every record (with its signed body and signature).
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
    },
    /// Wrap the coordinator's keys with a new key file or passphrase (the
    /// current one unlocks them as usual); also moves a directory from
    /// before keys were protected off its key file beside the database.
    Rekey {
        /// The new key file (created if missing), on other storage.
        #[arg(long, conflicts_with = "new_passphrase_file")]
        new_key_file: Option<PathBuf>,
        /// A file holding the new passphrase (or OBSERVER_SERVER_NEW_PASSPHRASE).
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Re-check every stored record (its id, the enrolled device's
    /// signature, its chain) and the log root; exits 1 if anything was
    /// altered on this server's disk.
    Verify,
    /// Publish and list forms (phones pull them at every sync).
    Forms {
        #[command(subcommand)]
        action: FormsAction,
    },
    /// Evidence media held by this coordinator.
    Media {
        #[command(subcommand)]
        action: MediaAction,
    },
    /// Import the official per-station results (CSV: station, region, one
    /// column per figure such as ballots_cast, party_1), replacing the last import.
    ImportOfficial {
        /// The CSV file.
        file: PathBuf,
    },
    /// Totals from the observers' results protocols.
    Results {
        /// By station, region or the whole country.
        #[arg(long, value_enum, default_value_t = By::Country)]
        by: By,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stations where the observers' copy differs from the official result.
    Compare {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Assign a device to stations (it learns them at its next sync).
    Assign {
        /// The device id (see `devices`).
        device: String,
        /// Station(s) (repeatable); replaces the current assignment.
        #[arg(long = "station", required = true)]
        stations: Vec<String>,
    },
    /// Revoke a device: nothing more is accepted from it.
    Revoke {
        /// The device id (see `devices`).
        device: String,
    },
    /// The main job: a server on loopback, simulated observers through a
    /// blackout and a seized phone, then everything delivered.
    Demo {
        /// Simulated observers.
        #[arg(long, default_value_t = 20)]
        observers: usize,
        /// Records per observer (at least 8: the seized phone loses records 5 to 7).
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(8..=100_000))]
        records: u64,
        /// Exit after the simulation instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
enum FormsAction {
    /// Publish a form definition (a new id, or a new version of one).
    Publish {
        /// The definition (JSON, format 1; see docs/forms.md).
        file: PathBuf,
    },
    /// List published forms.
    List,
}

#[derive(Subcommand)]
enum MediaAction {
    /// Re-hash every stored media file; exits 1 if any was altered.
    Verify,
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Station,
    Region,
    Country,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Ndjson,
    Csv,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // `export | head`: the reader has what it wanted.
        Err(e) if closed_output(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("observer-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is, or was caused by, writing to an output whose reader
/// went away (a closed pipe).
fn closed_output(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        if let Some(csv) = err.downcast_ref::<csv::Error>() {
            if let csv::ErrorKind::Io(io) = csv.kind() {
                return io.kind() == std::io::ErrorKind::BrokenPipe;
            }
        }
        cur = err.source();
    }
    false
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn interrupted() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// `serve`'s limits (`docs/operations.md`); the defaults are
/// [`ServeLimits::default`]'s.
#[derive(clap::Args)]
struct LimitArgs {
    /// Open connections in all.
    #[arg(long, default_value_t = ServeLimits::default().max_connections)]
    max_connections: usize,
    /// Open connections from one address (an IPv6 /64 counts as one).
    #[arg(long, default_value_t = ServeLimits::default().max_connections_per_address)]
    max_connections_per_address: usize,
    /// Seconds to finish the TLS handshake.
    #[arg(long, default_value_t = ServeLimits::default().tls_handshake_timeout.as_secs())]
    tls_handshake_timeout_secs: u64,
    /// Seconds to send a request's headers; idle connections close after it.
    #[arg(long, default_value_t = ServeLimits::default().header_timeout.as_secs())]
    header_timeout_secs: u64,
    /// Seconds before a body must keep up --body-min-rate.
    #[arg(long, default_value_t = ServeLimits::default().body_grace.as_secs())]
    body_grace_secs: u64,
    /// Slowest average a body may arrive at after its grace, bytes/s.
    #[arg(long, default_value_t = ServeLimits::default().body_min_rate)]
    body_min_rate: u64,
    /// Longest wait for the next piece of a body, in seconds.
    #[arg(long, default_value_t = ServeLimits::default().body_idle_timeout.as_secs())]
    body_idle_secs: u64,
    /// Request bytes all requests together may hold in memory, in MiB.
    #[arg(long, default_value_t = ServeLimits::default().bodies_in_flight_bytes / (1024 * 1024))]
    bodies_in_flight_mib: usize,
    /// Requests per second from one address (bursts of ten times it).
    #[arg(long, default_value_t = ServeLimits::default().rate_per_address)]
    rate_per_address: u32,
    /// Requests per second from one device (bursts of ten times it).
    #[arg(long, default_value_t = ServeLimits::default().rate_per_device)]
    rate_per_device: u32,
    /// Seconds that SIGTERM waits for requests in flight.
    #[arg(long, default_value_t = ServeLimits::default().shutdown_grace.as_secs())]
    shutdown_grace_secs: u64,
}

impl LimitArgs {
    fn limits(&self) -> ServeLimits {
        use std::time::Duration;
        ServeLimits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            tls_handshake_timeout: Duration::from_secs(self.tls_handshake_timeout_secs.max(1)),
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            body_grace: Duration::from_secs(self.body_grace_secs),
            body_min_rate: self.body_min_rate,
            body_idle_timeout: Duration::from_secs(self.body_idle_secs.max(1)),
            bodies_in_flight_bytes: self.bodies_in_flight_mib.saturating_mul(1024 * 1024),
            rate_per_address: self.rate_per_address,
            rate_per_device: self.rate_per_device,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn run(cli: Cli) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Init {
            url,
            org,
            media_dir,
        } => {
            let unlock = cli.access.unlock()?.ok_or(
                "init needs a key that is not kept with the data: --key-file PATH on other storage, or a passphrase in OBSERVER_SERVER_PASSPHRASE or --passphrase-file PATH",
            )?;
            let c = Coordinator::init_with_media(
                &cli.access.data,
                &url,
                &org,
                media_dir.as_deref(),
                &unlock,
            )?;
            writeln!(out, "initialised {}", cli.access.data.display())?;
            writeln!(out, "url              {}", c.url)?;
            writeln!(out, "organisation     {}", c.org)?;
            writeln!(out, "coordinator key  {}", c.key.public_key())?;
            writeln!(out, "TLS certificate  sha256 {}", c.tls_sha256())?;
        }
        Command::Serve { listen, limits } => {
            let c = cli.access.open()?;
            let listener = TcpListener::bind(&listen)?;
            let addr = listener.local_addr()?;
            let files = observer_server::serve::raise_open_files_limit();
            writeln!(out, "observer-server listening on {addr} for {}", c.url)?;
            // The token itself stays out of logs: logs are copied and kept.
            writeln!(
                out,
                "coordinator view: {}/ (its token is in {})",
                c.url,
                c.dir.join("dashboard.token").display()
            )?;
            let limits = limits.limits();
            if files.is_some_and(|f| f < limits.max_connections as u64 + 64) {
                eprintln!(
                    "observer-server: warning: the open-file limit ({}) is below --max-connections ({}); raise it (ulimit -n) or lower the cap",
                    files.unwrap_or_default(),
                    limits.max_connections
                );
            }
            out.flush()?;
            runtime()?.block_on(serve_with(c, listener, limits, interrupted()))?;
        }
        Command::Enroll {
            stations,
            name,
            valid_hours,
            text,
        } => {
            let c = cli.access.open()?;
            let code = c
                .issue_code(&stations, name.as_deref(), valid_hours, now_ms())?
                .to_text();
            if !text {
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
        }
        Command::Devices { json } => {
            let c = cli.access.open()?;
            let devices = c.storage.devices()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&devices)?)?;
            } else {
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
            }
        }
        Command::Records {
            station,
            device,
            json,
        } => {
            let c = cli.access.open()?;
            let filter = RecordFilter {
                station,
                device: device
                    .map(|d| DeviceId::try_from(d).map_err(|e| format!("--device: {e}")))
                    .transpose()?,
                newest: None,
                kind: None,
            };
            c.reader().records(&filter, &mut |r| {
                let line = if json {
                    json!({
                        "index": r.index, "id": r.id, "device": r.device, "seq": r.seq,
                        "station": r.station, "kind": r.kind,
                        "captured_at_ms": r.captured_at_ms, "received_at_ms": r.received_at_ms,
                        "form": body_form(&r.body),
                        "form_check": r.check.as_ref().map(|c| serde_json::json!({
                            "clean": c.clean,
                            "result": serde_json::from_str::<serde_json::Value>(&c.json).unwrap_or_default(),
                        })),
                    })
                    .to_string()
                } else {
                    format!(
                        "{:>8}  {}  {}  seq {:>5}  {:<16}  {}",
                        r.index,
                        &r.id.to_string()[..16],
                        r.device,
                        r.seq,
                        r.station,
                        r.kind
                    )
                };
                writeln!(out, "{line}")
                    .map_err(observer_server::storage::StorageError::Output)
            })?;
        }
        Command::Rekey {
            new_key_file,
            new_passphrase_file,
        } => {
            let c = cli.access.open()?;
            let new = Access {
                data: cli.access.data.clone(),
                key_file: new_key_file,
                passphrase_file: new_passphrase_file,
            }
            .unlock_from("OBSERVER_SERVER_NEW_PASSPHRASE")?
            .ok_or("give the new key: --new-key-file PATH, --new-passphrase-file PATH or OBSERVER_SERVER_NEW_PASSPHRASE")?;
            c.rekey(&new)?;
            writeln!(
                out,
                "the coordinator's keys are now wrapped by the new {}; keep it away from {}",
                match new {
                    Unlock::KeyFile(_) => "key file",
                    Unlock::Passphrase(_) => "passphrase",
                },
                c.dir.display()
            )?;
        }
        Command::Verify => {
            let c = cli.access.open()?;
            let report = observer_server::integrity::full(&c.reader())?;
            for f in &report.findings {
                writeln!(
                    out,
                    "ALTERED record {} at log index {}: {}",
                    f.id, f.index, f.problem
                )?;
            }
            if report.more_findings > 0 {
                writeln!(out, "... and {} more altered records", report.more_findings)?;
            }
            if !report.root_matches {
                writeln!(
                    out,
                    "ALTERED log: the root recomputed from the {} records does not match the stored log head",
                    report.leaves
                )?;
            }
            if !report.is_intact() {
                return Err("this server's database was altered; restore it from a backup".into());
            }
            writeln!(
                out,
                "{} records intact (id, signature and columns checked), log root matches, {} chain faults from the devices (see `devices`)",
                report.checked, report.chain_faults
            )?;
        }
        Command::Export { format } => {
            let c = cli.access.open()?;
            export(&c, format, &mut out)?;
        }
        Command::Media {
            action: MediaAction::Verify,
        } => {
            let c = cli.access.open()?;
            let files = observer_server::media::MediaFiles::new(c.media_dir.clone())
                .map_err(|e| format!("{}: {e}", c.media_dir.display()))?;
            let (count, bad) = files
                .verify_all()
                .map_err(|e| format!("{}: {e}", c.media_dir.display()))?;
            for (expected, found) in &bad {
                writeln!(out, "ALTERED {expected}: its bytes now hash to {found}")?;
            }
            if !bad.is_empty() {
                return Err(format!(
                    "{} of {count} media files were altered on this disk",
                    bad.len()
                )
                .into());
            }
            writeln!(out, "{count} media files intact (every SHA-256 checked)")?;
        }
        Command::Forms { action } => {
            let c = cli.access.open()?;
            match action {
                FormsAction::Publish { file } => {
                    use observer_server::publish::{publish, Published};
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let (def, how) = publish(c.storage.as_ref(), &text, now_ms())
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let what = match how {
                        Published::New => "published",
                        Published::Already => "already published:",
                        Published::Shipped => "ships with Observer already:",
                    };
                    writeln!(
                        out,
                        "{what} {} v{} ({} fields, {} rules); phones receive it at their next sync",
                        def.id,
                        def.version,
                        def.fields.len(),
                        def.rules.len()
                    )?;
                }
                FormsAction::List => {
                    for f in c.storage.forms()? {
                        writeln!(out, "{:<12} v{}", f.id, f.version)?;
                    }
                }
            }
        }
        Command::ImportOfficial { file } => {
            let c = cli.access.open()?;
            let rows =
                tabulate::read_official(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            c.storage.import_official(&rows, now_ms())?;
            writeln!(out, "imported official results for {} stations", rows.len())?;
        }
        Command::Results { by, json } => {
            let c = cli.access.open()?;
            let stations = tabulate::stations(&c.reader())?;
            if let By::Station = by {
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&stations)?)?;
                } else {
                    for s in &stations {
                        writeln!(
                            out,
                            "{:<16} {:<24} {}",
                            s.station,
                            s.agreement.to_string(),
                            figures_line(&s.figures)
                        )?;
                    }
                }
            } else {
                let totals = tabulate::totals(&stations, matches!(by, By::Region));
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&totals)?)?;
                } else {
                    for t in &totals {
                        writeln!(
                            out,
                            "{:<16} {} stations ({} left out: observers disagree)  {}",
                            t.area,
                            t.stations,
                            t.conflicts,
                            figures_line(&t.figures)
                        )?;
                    }
                }
            }
        }
        Command::Compare { json } => {
            let c = cli.access.open()?;
            let stations = tabulate::stations(&c.reader())?;
            let diffs = tabulate::compare(&stations, &c.storage.official()?);
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&diffs)?)?;
            } else if diffs.is_empty() {
                writeln!(
                    out,
                    "the observers' copies match the official results at every station both report"
                )?;
            } else {
                for d in &diffs {
                    writeln!(
                        out,
                        "{:<16} {:<20} observers {:>8}  official {:>8}",
                        d.station,
                        d.figure,
                        d.observed.map_or("-".into(), |v| v.to_string()),
                        d.official
                    )?;
                }
            }
        }
        Command::Assign { device, stations } => {
            let c = cli.access.open()?;
            let id = DeviceId::try_from(device).map_err(|e| format!("device id: {e}"))?;
            for s in &stations {
                observer_core::record::StationId::new(s.clone())
                    .map_err(|e| format!("--station {s:?}: {e}"))?;
            }
            if !c.storage.assign(&id, &stations)? {
                return Err(format!("no enrolled device {id}").into());
            }
            writeln!(
                out,
                "assigned {id} to {}; it learns this at its next sync",
                stations.join(", ")
            )?;
        }
        Command::Revoke { device } => {
            let c = cli.access.open()?;
            let id = DeviceId::try_from(device).map_err(|e| format!("device id: {e}"))?;
            if !c.storage.revoke(&id, now_ms())? {
                return Err(format!("no enrolled device {id}").into());
            }
            writeln!(out, "revoked {id}: nothing more is accepted from it")?;
        }
        Command::Demo {
            observers,
            records,
            once,
        } => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            std::fs::create_dir_all(&cli.access.data)?;
            let dir = tempfile::Builder::new()
                .prefix("demo-")
                .tempdir_in(&cli.access.data)?
                .keep();
            let server = demo::init_server(&dir, port)?;
            let view = format!("{}/?token={}", server.url, server.dashboard_token()?);
            let serving = Coordinator::open(&server.dir, Some(&demo::unlock(&dir)))?;
            let rt = runtime()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = rt.spawn(serve(serving, listener, async {
                let _ = stopped.await;
            }));
            writeln!(
                out,
                "Observer demo: coordinating server on {} (data in {})",
                server.url,
                dir.display()
            )?;
            demo::simulate(
                &server,
                &DemoOptions {
                    dir: dir.clone(),
                    observers: observers.max(1),
                    records: records as usize,
                },
                &mut out,
            )?;
            let me = format!(
                "{} --key-file {}",
                this_command(),
                dir.join("demo.key").display()
            );
            writeln!(out, "\nLook:")?;
            if !once {
                writeln!(
                    out,
                    "  coordinator view   {view}   (self-signed certificate: the phones pin it)"
                )?;
            }
            writeln!(
                out,
                "  devices and gaps   {me} --data {} devices",
                server.dir.display()
            )?;
            writeln!(
                out,
                "  all records        {me} --data {} export --format csv",
                server.dir.display()
            )?;
            writeln!(
                out,
                "  check everything   {me} --data {} verify",
                server.dir.display()
            )?;
            out.flush()?;
            if !once {
                writeln!(out, "Serving until Ctrl-C.")?;
                out.flush()?;
                rt.block_on(interrupted());
            }
            let _ = stop.send(());
            rt.block_on(task)??;
        }
    }
    out.flush()?;
    Ok(())
}

/// How to run this program again from where it was started: the path of
/// this executable, relative to the current directory when it is below it
/// (`target/release/observer-server` after `cargo run --release`), so the
/// commands the demo prints work as printed.
fn this_command() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(exe), Some(cwd)) => match exe.strip_prefix(&cwd) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => exe.display().to_string(),
        },
        _ => "observer-server".into(),
    }
}

fn body_form(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|b| b["form"].clone())
        .unwrap_or_default()
}

fn figures_line(f: &std::collections::BTreeMap<String, i64>) -> String {
    f.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn export(c: &Coordinator, format: Format, out: &mut dyn std::io::Write) -> Result<()> {
    use base64::Engine as _;
    use observer_server::storage::StorageError;
    let b64 = base64::engine::general_purpose::STANDARD;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    let all = RecordFilter::default();
    // Nothing altered on this disk leaves it as evidence: each record is
    // checked against its id and its device's signature as it goes out.
    let keys = observer_server::integrity::DeviceKeys::load(c.storage.as_ref())?;
    let intact = |r: &observer_server::storage::RecordRow| {
        observer_server::integrity::check_row(r, keys.of(&r.device))
            .map(|_| ())
            .map_err(|problem| {
                StorageError::Corrupt(format!(
                    "record {} at log index {} was altered on this server ({problem}); the export stops here, run `observer-server verify`",
                    r.id, r.index
                ))
            })
    };
    match format {
        Format::Ndjson => c.reader().records(&all, &mut |r| {
            intact(&r)?;
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let line = json!({
                "index": r.index, "id": r.id, "device": r.device, "seq": r.seq,
                "station": r.station, "kind": r.kind,
                "captured_at": time(r.captured_at_ms), "received_at": time(r.received_at_ms),
                "media_missing": r.media_missing,
                "sealed": r.sealed.is_some(),
                "body": body, "body_base64": b64.encode(&r.body), "sig_base64": b64.encode(&r.sig),
            });
            writeln!(out, "{line}").map_err(StorageError::Output)
        })?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "index",
                "id",
                "device",
                "seq",
                "station",
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
                w.write_record([
                    r.index.to_string(),
                    r.id.to_string(),
                    r.device.to_string(),
                    r.seq.to_string(),
                    r.station,
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
