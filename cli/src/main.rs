//! `observer`: the desktop field client.
//!
//! The same core the phones run, driven from a terminal: for trainers who
//! demonstrate it, testers who script it, and load generation.
//!
//! This file only parses and dispatches; each command is a function in
//! `commands`.

mod commands;

use std::io::{self, BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{Ctx, RecordArgs, Result, StateArg};
use observer_core::store::OnTampering;

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
    Record(RecordArgs),
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
    /// Carry records for a phone without a link: export its undelivered
    /// records as a file, import another phone's file for the next sync.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Deliver pending records to the coordinator, retrying with backoff.
    Sync {
        /// Attempts before giving up (each after a randomised, growing wait).
        #[arg(long, default_value_t = 5)]
        attempts: u32,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prove every delivered record still in the coordinator's log (and
    /// the log extending the head this phone holds). Exits non-zero, keeping
    /// the evidence, if the coordinator rewrote it.
    AuditLog {
        /// Print the result as JSON.
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

#[derive(Subcommand)]
enum RelayCommand {
    /// Write this device's undelivered records, sealed to the organisation
    /// and signed, to a file another phone can carry.
    Export {
        /// The bundle file to write.
        #[arg(long)]
        output: PathBuf,
        /// Largest bundle in bytes (the oldest records that fit go first).
        #[arg(long, default_value_t = observer_core::relay::MAX_BUNDLE_BYTES)]
        max_bytes: usize,
    },
    /// Take another phone's bundle into this phone's relay outbox; its
    /// records are delivered at the next sync.
    Import {
        /// The bundle file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("observer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx {
        data: cli.data,
        policy: if cli.accept_tampering {
            OnTampering::Continue
        } else {
            OnTampering::Refuse
        },
    };
    let mut stdout = BufWriter::new(io::stdout().lock());
    let out = &mut stdout;
    let code = match cli.command {
        Command::Init { json } => commands::init(&ctx, json, out),
        Command::Record(args) => commands::record(&ctx, args, out),
        Command::Media { json } => commands::media(&ctx, json, out),
        Command::List {
            state,
            station,
            kind,
            limit,
            json,
        } => commands::list(&ctx, state, station, kind, limit, json, out),
        Command::Verify { json } => commands::verify(&ctx, json, out),
        Command::Status { json } => commands::status(&ctx, json, out),
        Command::Enroll { code, name } => commands::enroll(&ctx, code, name, out),
        Command::Wipe { keep_sealed, yes } => commands::wipe(&ctx, keep_sealed, yes, out),
        Command::DeliverSealed { json } => commands::deliver_sealed(&ctx, json, out),
        Command::StartOver { discard_sealed } => commands::start_over(&ctx, discard_sealed, out),
        Command::Relay(RelayCommand::Export { output, max_bytes }) => {
            commands::relay::export(&ctx, &output, max_bytes, out)
        }
        Command::Relay(RelayCommand::Import { file, json }) => {
            commands::relay::import(&ctx, &file, json, out)
        }
        Command::Sync { attempts, json } => commands::sync(&ctx, attempts, json, out),
        Command::AuditLog { json } => commands::audit_log(&ctx, json, out),
        Command::Forms { lang, json } => commands::forms(&ctx, lang, json, out),
        Command::Validate {
            form,
            form_version,
            payload,
            lang,
            json,
        } => commands::validate(&ctx, form, form_version, payload, lang, json, out),
        Command::Demo => commands::demo(&ctx, out),
        Command::Load { count, station } => commands::load(&ctx, count, station, out),
    }?;
    out.flush()?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
