//! `observer-server`: the coordinating server's command line. This file
//! only parses and dispatches; each command is a function in
//! [`observer_server::commands`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use observer_server::commands::{self, Access, By, ExportFormat, Result};
use observer_server::config::ServeSettings;

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
        /// Where to keep evidence media (default: DATA/media; with several
        /// nodes, a directory they all mount).
        #[arg(long)]
        media_dir: Option<PathBuf>,
        /// Keep evidence media in object storage instead: s3://BUCKET/PREFIX
        /// (endpoint and credentials from AWS_ENDPOINT, AWS_ACCESS_KEY_ID,
        /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP).
        #[arg(long, conflicts_with = "media_dir")]
        media_store: Option<String>,
    },
    /// Serve HTTPS until interrupted (SIGTERM or Ctrl-C finishes requests
    /// in flight first).
    Serve {
        #[command(flatten)]
        settings: ServeSettings,
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
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
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
    /// The station registry: every polling station, its region, district,
    /// address and registered voters.
    Stations {
        #[command(subcommand)]
        action: StationsAction,
    },
    /// Coordinator accounts for the workspace (admin, supervisor,
    /// verifier, analyst).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// The audit log: every coordinator action, hash-chained and signed.
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        /// Only entries after this seq.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Evidence media held by this coordinator.
    Media {
        #[command(subcommand)]
        action: MediaAction,
    },
    /// The configuration file.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Evidence packages that an outsider checks with observer-verify.
    Evidence {
        #[command(subcommand)]
        action: EvidenceAction,
    },
    /// SMS reports: the gateways they arrive through, and what arrived.
    Sms {
        #[command(subcommand)]
        action: SmsAction,
    },
    /// The witnesses this coordinator asks to cosign its log's checkpoints.
    Witnesses {
        #[command(subcommand)]
        action: WitnessesAction,
    },
    /// Run a witness for another organisation's coordinator: follow its
    /// log, verify that it only grows, and cosign its checkpoints.
    Witness {
        #[command(subcommand)]
        action: WitnessAction,
    },
    /// Import the official per-station results (CSV: station, region, one
    /// column per figure such as ballots_cast, party_1) as their next
    /// version; earlier versions are kept, and what changed is listed.
    ImportOfficial {
        /// The CSV file.
        file: PathBuf,
        /// List what would change and import nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every imported version of the official results: who, when, the
    /// file's SHA-256 and what changed.
    OfficialVersions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    /// The quick count (parallel vote tabulation): the sample, the
    /// estimates with their margins of error, the verdict on the official
    /// result (docs/pvt.md).
    Pvt {
        #[command(subcommand)]
        action: commands::pvt::PvtAction,
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
    #[cfg(feature = "demo")]
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
    /// Convert an XLSForm workbook (ODK, KoboToolbox: survey, choices,
    /// settings sheets) into a form definition, listing what it does not
    /// read; with --publish, publish it.
    Import {
        /// The workbook (.xlsx; see docs/forms.md for what is supported).
        file: PathBuf,
        /// Publish the converted form (otherwise only check it).
        #[arg(long)]
        publish: bool,
        /// Also write the converted definition (JSON) to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Write a published or shipped form as a workbook to edit and import
    /// again (or as JSON).
    Export {
        /// The form id.
        form: String,
        /// The version (default: the newest).
        #[arg(long)]
        version: Option<u32>,
        #[arg(long, value_enum, default_value = "xlsx")]
        format: commands::FormFormat,
        /// Where to write it.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// List published forms.
    List,
}

#[derive(Subcommand)]
enum StationsAction {
    /// Import the registry from CSV (columns station, name, region,
    /// district, address, registered_voters, and optionally latitude,
    /// longitude) as its next version; a file with any bad line is
    /// refused whole, each bad line named.
    Import {
        /// The CSV file (UTF-8; comma- or semicolon-separated).
        file: PathBuf,
        /// Check the file and list the changes without importing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the stations of the newest version (or of --version).
    List {
        /// An earlier version.
        #[arg(long)]
        version: Option<u32>,
        /// Only this region's.
        #[arg(long)]
        region: Option<String>,
        /// Only this district's.
        #[arg(long)]
        district: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every imported version with its digest and changes.
    Versions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Add an account; without --password-file a random password is
    /// printed once.
    Add {
        /// The account name (letters, digits, '.', '-', '_').
        name: String,
        /// admin (everything), coordinator (an admin of one region),
        /// supervisor (codes, assignments), verifier (review), analyst
        /// (read, export).
        #[arg(long)]
        role: observer_server::accounts::Role,
        /// The registry region the account works on (required for a
        /// coordinator, refused for an admin, optional for the others;
        /// without it: the whole country).
        #[arg(long)]
        region: Option<String>,
        /// A file whose first line is the password (at least 12 characters).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (its sessions end at once).
    Disable { name: String },
    /// Enable a disabled account.
    Enable { name: String },
    /// Set a new password (its sessions end; without --password-file a
    /// random one is printed once).
    Passwd {
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Give the account a TOTP second factor (a key for an authenticator
    /// app, shown once), or remove it with --remove.
    Totp {
        name: String,
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check every entry's link and the coordinator's signature; exits 1
    /// naming each fault.
    Verify,
}

#[derive(Subcommand)]
enum EvidenceAction {
    /// Write the records, their devices' keys and audit entries, a signed
    /// checkpoint with an inclusion proof for each, the witnessed
    /// checkpoint, the forms and the media, to one file.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["record", "station", "device", "all"])))]
    Export {
        /// One record, by id.
        #[arg(long)]
        record: Option<String>,
        /// A station's records.
        #[arg(long)]
        station: Option<String>,
        /// A device's records.
        #[arg(long)]
        device: Option<String>,
        /// Every record.
        #[arg(long)]
        all: bool,
        /// Put records that arrived sealed in opened (their content shown).
        #[arg(long)]
        open_sealed: bool,
        /// Leave media files out (their hashes stay).
        #[arg(long)]
        no_media: bool,
        /// The package to write (a ZIP archive).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum SmsAction {
    /// Set the gateways SMS reports arrive through: what is given
    /// replaces that gateway's settings, the rest are kept (--remove drops
    /// one); secrets are read from files and kept sealed.
    Gateways {
        /// A file holding the Twilio account's auth token.
        #[arg(long)]
        twilio_token_file: Option<PathBuf>,
        /// The exact URL configured at Twilio for incoming messages
        /// (its signature covers it), e.g. https://coordinator.example/v1/sms/twilio.
        #[arg(long)]
        twilio_url: Option<String>,
        /// A file holding the webhook signing key of "SMS Gateway for Android".
        #[arg(long)]
        android_key_file: Option<PathBuf>,
        /// That gateway's API for sending, so receipts are texted back
        /// (Twilio's are, through its answer), e.g.
        /// http://192.168.1.20:8080/message or
        /// https://api.sms-gate.app/3rdparty/v1/message.
        #[arg(long)]
        android_send_url: Option<String>,
        /// The user of that API.
        #[arg(long)]
        android_send_user: Option<String>,
        /// A file holding the password of that API.
        #[arg(long)]
        android_send_password_file: Option<PathBuf>,
        /// The number observers text their reports to (phones learn it at
        /// their next sync), e.g. +77010000000.
        #[arg(long)]
        number: Option<String>,
        /// Hours an incomplete message's parts are kept (48 when never set).
        #[arg(long)]
        expiry_hours: Option<u32>,
        /// Drop a setting: twilio, android (with its send API),
        /// android-send, number. May be given more than once.
        #[arg(long, value_enum)]
        remove: Vec<observer_server::commands::sms::Removable>,
    },
    /// Messages waiting for parts, and the newest texts received with
    /// what each came to and the number it came from.
    Status {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WitnessesAction {
    /// Ask a witness (its key as its operator printed it, and its URL).
    Add {
        #[arg(long)]
        key: String,
        #[arg(long)]
        url: String,
    },
    /// The witnesses asked and what each cosigned last.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop asking a witness.
    Remove { name: String },
}

#[derive(Subcommand)]
enum WitnessAction {
    /// Make a witness in --data (a directory of its own) with a fresh key,
    /// wrapped by --key-file or a passphrase; prints its key.
    Init {
        /// Its name, a URL without scheme (example.org/witness).
        #[arg(long)]
        name: String,
    },
    /// Follow a coordinator's log, by the key its `init` printed.
    Follow {
        // A key's text may begin with '-'.
        #[arg(long, allow_hyphen_values = true)]
        log_key: String,
    },
    /// The witness's key and the logs it follows.
    Show,
    /// Answer POST /add-checkpoint until interrupted.
    Serve {
        /// Address to listen on (plain HTTP; put TLS in front if wanted).
        #[arg(long, default_value = "0.0.0.0:8444")]
        listen: String,
    },
}

#[derive(Subcommand)]
enum MediaAction {
    /// Re-hash every stored media file; exits 1 if any was altered.
    Verify,
}

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ConfigAction {
    /// Print a commented configuration file holding every default.
    Default,
    /// Print the configuration in force: flags and variables over the
    /// file over the defaults (`serve` runs with exactly this).
    Show {
        #[command(flatten)]
        settings: ServeSettings,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if commands::closed_output(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("observer-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    // Printing the default configuration reads none.
    if let Command::Config {
        action: ConfigAction::Default,
    } = cli.command
    {
        return commands::config_default(out);
    }
    let filter = match cli.command {
        Command::Serve { .. }
        | Command::Witness {
            action: WitnessAction::Serve { .. },
        } => observer_server::config::DEFAULT_LOG_FILTER,
        // The demo's narrative is its output; its simulated phones' own
        // warnings (the seized one's gap) would only repeat it.
        #[cfg(feature = "demo")]
        Command::Demo { .. } => "error",
        _ => "warn",
    };
    let at = cli.access.resolve(filter)?;
    match cli.command {
        Command::Init {
            url,
            org,
            media_dir,
            media_store,
        } => commands::init(&at, &url, &org, media_dir.as_deref(), media_store, out),
        Command::Serve { settings } => commands::serve(&at, settings, out),
        Command::Enroll {
            stations,
            name,
            valid_hours,
            text,
        } => commands::enroll(&at, &stations, name.as_deref(), valid_hours, text, out),
        Command::Devices { json } => commands::devices(&at, json, out),
        Command::Records {
            station,
            device,
            json,
        } => commands::records(&at, station, device, json, out),
        Command::Export { format } => commands::export(&at, format, out),
        Command::Rekey {
            new_key_file,
            new_passphrase_file,
        } => commands::rekey(&at, new_key_file, new_passphrase_file, out),
        Command::Verify => commands::verify(&at, out),
        Command::Forms {
            action: FormsAction::Publish { file },
        } => commands::forms_publish(&at, &file, out),
        Command::Forms {
            action:
                FormsAction::Import {
                    file,
                    publish,
                    json,
                },
        } => commands::forms_import(&at, &file, publish, json.as_deref(), out),
        Command::Forms {
            action:
                FormsAction::Export {
                    form,
                    version,
                    format,
                    output,
                },
        } => commands::forms_export(&at, &form, version, format, &output, out),
        Command::Forms {
            action: FormsAction::List,
        } => commands::forms_list(&at, out),
        Command::Stations {
            action: StationsAction::Import { file, dry_run },
        } => commands::stations_import(&at, &file, dry_run, out),
        Command::Stations {
            action:
                StationsAction::List {
                    version,
                    region,
                    district,
                    json,
                },
        } => commands::stations_list(&at, version, region, district, json, out),
        Command::Stations {
            action: StationsAction::Versions { json },
        } => commands::stations_versions(&at, json, out),
        Command::Users { action } => match action {
            UsersAction::Add {
                name,
                role,
                region,
                password_file,
            } => commands::users_add(
                &at,
                &name,
                role,
                region.as_deref(),
                password_file.as_deref(),
                out,
            ),
            UsersAction::List { json } => commands::users_list(&at, json, out),
            UsersAction::Disable { name } => commands::users_set_disabled(&at, &name, true, out),
            UsersAction::Enable { name } => commands::users_set_disabled(&at, &name, false, out),
            UsersAction::Passwd {
                name,
                password_file,
            } => commands::users_passwd(&at, &name, password_file.as_deref(), out),
            UsersAction::Totp { name, remove } => commands::users_totp(&at, &name, remove, out),
        },
        Command::Audit {
            action: None,
            after,
            json,
        } => commands::audit(&at, after, json, out),
        Command::Audit {
            action: Some(AuditAction::Verify),
            ..
        } => commands::audit_verify(&at, out),
        Command::Media {
            action: MediaAction::Verify,
        } => commands::media_verify(&at, out),
        Command::Config {
            action: ConfigAction::Default,
        } => commands::config_default(out),
        Command::Config {
            action: ConfigAction::Show { settings },
        } => commands::config_show(&at, settings, out),
        Command::Evidence {
            action:
                EvidenceAction::Export {
                    record,
                    station,
                    device,
                    all: _,
                    open_sealed,
                    no_media,
                    out: file,
                },
        } => {
            use observer_server::evidence::{Options, Selection};
            let selection = match (record, station, device) {
                (Some(r), _, _) => Selection::Record(
                    r.parse()
                        .map_err(|_| format!("--record {r}: not a record id"))?,
                ),
                (_, Some(s), _) => Selection::Station(s),
                (_, _, Some(d)) => Selection::Device(
                    observer_core::identity::DeviceId::try_from(d)
                        .map_err(|e| format!("--device: {e}"))?,
                ),
                _ => Selection::All,
            };
            let options = Options {
                open_sealed,
                media: !no_media,
            };
            commands::evidence::export(&at, selection, options, &file, out)
        }
        Command::Sms { action } => match action {
            SmsAction::Gateways {
                twilio_token_file,
                twilio_url,
                android_key_file,
                android_send_url,
                android_send_user,
                android_send_password_file,
                number,
                expiry_hours,
                remove,
            } => commands::sms::gateways(
                &at,
                &commands::sms::GatewayOptions {
                    twilio_token_file: twilio_token_file.as_deref(),
                    twilio_url: twilio_url.as_deref(),
                    android_key_file: android_key_file.as_deref(),
                    android_send_url: android_send_url.as_deref(),
                    android_send_user: android_send_user.as_deref(),
                    android_send_password_file: android_send_password_file.as_deref(),
                    number: number.as_deref(),
                    expiry_hours,
                    remove: &remove,
                },
                out,
            ),
            SmsAction::Status { limit, json } => commands::sms::status(&at, limit, json, out),
        },
        Command::Witnesses { action } => match action {
            WitnessesAction::Add { key, url } => commands::witnesses::add(&at, &key, &url, out),
            WitnessesAction::List { json } => commands::witnesses::list(&at, json, out),
            WitnessesAction::Remove { name } => commands::witnesses::remove(&at, &name, out),
        },
        Command::Witness { action } => match action {
            WitnessAction::Init { name } => commands::witness::init(&at, &name, out),
            WitnessAction::Follow { log_key } => commands::witness::follow(&at, &log_key, out),
            WitnessAction::Show => commands::witness::show(&at, out),
            WitnessAction::Serve { listen } => commands::witness::serve(&at, &listen, out),
        },
        Command::ImportOfficial { file, dry_run } => {
            commands::import_official(&at, &file, dry_run, out)
        }
        Command::OfficialVersions { json } => commands::official_versions(&at, json, out),
        Command::Results { by, json } => commands::results(&at, by, json, out),
        Command::Compare { json } => commands::compare(&at, json, out),
        Command::Pvt { action } => commands::pvt::run(&at, action, out),
        Command::Assign { device, stations } => commands::assign(&at, device, &stations, out),
        Command::Revoke { device } => commands::revoke(&at, device, out),
        #[cfg(feature = "demo")]
        Command::Demo {
            observers,
            records,
            once,
        } => commands::demo(&at, observers, records, once, out),
    }?;
    std::io::Write::flush(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn a_key_whose_text_begins_with_a_hyphen_is_a_value_not_a_flag() {
        use clap::Parser as _;
        let cli = super::Cli::try_parse_from([
            "observer-server",
            "witness",
            "follow",
            "--log-key",
            "-uzY7mVNqhjotDvIkfnQanVXObO1r_knGuHc0RUQfhU",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            super::Command::Witness {
                action: super::WitnessAction::Follow { log_key }
            } if log_key.starts_with("-uzY")
        ));
    }
}
