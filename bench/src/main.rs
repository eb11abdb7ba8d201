//! `observer-bench`: measures Observer against the physical limits of the
//! machine it runs on, in the same run, and writes the figures to
//! `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p observer-bench -- core
//! ```

mod abuse_bench;
mod burst_bench;
mod burst_ceiling;
mod burst_store;
mod core_bench;
mod evidence_bench;
mod ffi_bench;
mod forms_bench;
mod local;
mod media_bench;
mod proofs_bench;
mod pvt_bench;
mod report;
mod sample;
mod scale_bench;
mod server_bench;
mod sms_bench;
mod wipe_bench;
mod workspace_bench;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "observer-bench", about)]
struct Cli {
    /// Where to write the figures.
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
    /// Scratch directory for databases; must be on the disk being measured
    /// (not tmpfs, where fsync costs nothing).
    #[arg(long, default_value = "target/bench-scratch")]
    scratch: PathBuf,
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Args)]
struct FfiArgs {
    /// The release cdylib to measure (the app build).
    #[arg(long)]
    library: PathBuf,
    /// The same library built with `--features bench`, which the JVM loads.
    #[arg(long)]
    bench_library: PathBuf,
    /// Classpath holding the compiled Kotlin bindings and SaveBench.
    #[arg(long)]
    java_classpath: String,
    /// Timed saves per round and side.
    #[arg(long, default_value_t = 2000)]
    saves: usize,
    /// The command to record in the document.
    #[arg(long, default_value = "bench/ffi.sh")]
    command: String,
}

#[derive(Subcommand)]
enum Which {
    /// SMS segments per shipped form in kk/ru/en, and the time to write
    /// and read a report.
    Sms {
        /// Rounds over every report, for the timings.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// Durable save latency against raw SQLite + raw Ed25519; opening and
    /// paging through a large store.
    Core {
        /// Durable saves to time, one by one.
        #[arg(long, default_value_t = 3000)]
        saves: usize,
        /// Records in the large store used for open and paging.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
    },
    /// Library size and one save from Kotlin against the same from Rust
    /// (run through bench/ffi.sh, which compiles the Kotlin side).
    Ffi(FfiArgs),
    /// Importing and uploading evidence media: throughput against raw
    /// SHA-256 + ChaCha20-Poly1305, the phone's peak memory, goodput with
    /// and without a link that drops.
    Media {
        /// Size of the file, MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// The phone side of `media`, run as a child process.
    #[command(hide = true)]
    MediaPhone {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        code: String,
        #[arg(long)]
        via_port: Option<u16>,
    },
    /// A panic wipe of a large store against removing the same files.
    Wipe {
        /// Records in the store.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Rounds (each on a freshly filled store).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Validating a counting form with many parties.
    Forms {
        /// Parties on the protocol.
        #[arg(long, default_value_t = 30)]
        parties: usize,
        /// Protocols to validate.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
    },
    /// Checking an evidence package of many records with observer-verify's
    /// reader and verifier, its size per record, beside the hashing and
    /// signature checks alone.
    Evidence {
        /// Records in the package.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Phones they come from.
        #[arg(long, default_value_t = 200)]
        devices: usize,
    },
    /// The log's inclusion and consistency proofs at ten million leaves
    /// on SQLite and PostgreSQL, beside one indexed read and the hashing
    /// alone; the nodes' first fill. Needs PostgreSQL.
    Proofs {
        /// Leaves in the log.
        #[arg(long, default_value_t = 10_000_000)]
        leaves: u64,
        /// Proofs of each kind timed.
        #[arg(long, default_value_t = 1000)]
        rounds: usize,
    },
    /// A full quick-count estimate over a large sample, beside reading
    /// its figures once per area; the draw of the sample.
    Pvt {
        /// Stations in the registry.
        #[arg(long, default_value_t = 100_000)]
        population: usize,
        /// Stations in the sample.
        #[arg(long, default_value_t = 10_000)]
        size: u64,
        /// Timed estimates.
        #[arg(long, default_value_t = 100)]
        rounds: usize,
    },
    /// The server under abusive clients (idle connections, a slowloris,
    /// unfinished bodies): its memory and a phone's sync during each.
    /// Needs the release `observer-server` built beside this binary.
    Abuse {
        /// Records the phone syncs during each attack.
        #[arg(long, default_value_t = 500)]
        records: usize,
    },
    /// Server ingest over loopback HTTPS against the signature-verification
    /// limit; a burst of many devices syncing at once; bytes per record.
    Server {
        /// Phones in the ingest run.
        #[arg(long, default_value_t = 16)]
        phones: usize,
        /// Records per phone in the ingest run (enough for several seconds
        /// of ingest, so one scheduling hiccup does not move the figure).
        #[arg(long, default_value_t = 5000)]
        records: usize,
        /// Simulated devices in the burst.
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Records per device in the burst.
        #[arg(long, default_value_t = 20)]
        burst_records: usize,
        /// Concurrent connections in the burst.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Log as `serve` does (JSON at info, a line per request) into this
        /// file; without it the server logs nothing.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Ingest on PostgreSQL with one node and three beside SQLite and the
    /// verification limit; the log append's serialised cost; the burst
    /// through HAProxy onto three PostgreSQL nodes. Needs the release
    /// `observer-server` built beside this binary, PostgreSQL and HAProxy.
    Scale {
        /// Phones in each ingest run.
        #[arg(long, default_value_t = 16)]
        phones: usize,
        /// Records per phone in each ingest run.
        #[arg(long, default_value_t = 2500)]
        records: usize,
        /// Devices in each burst (repeatable).
        #[arg(long = "burst", default_values_t = [10_000, 100_000])]
        bursts: Vec<usize>,
        /// Records per device in the bursts.
        #[arg(long, default_value_t = 20)]
        burst_records: usize,
        /// Concurrent connections in the bursts.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The coordinator workspace at a national election's size: the
    /// coverage view and the review queue, p50 and p99, beside the floor;
    /// the cost of one live refresh per watching coordinator.
    Workspace {
        /// Stations in the registry.
        #[arg(long, default_value_t = 10_000)]
        stations: usize,
        /// Devices, each at its own station.
        #[arg(long, default_value_t = 1_000)]
        devices: usize,
        /// Records in all.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Requests timed per view.
        #[arg(long, default_value_t = 100)]
        requests: usize,
    },
    /// Election night: bursts of devices each making one sync of one
    /// record or twenty, on SQLite and PostgreSQL, beside the per-sync
    /// cryptographic floor; commits per second with and without group
    /// commit. Needs the release `observer-server` built beside this
    /// binary, and PostgreSQL.
    Burst {
        /// Devices in each burst.
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Syncs in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Only these bursts (repeatable: sqlite-1, sqlite-1-resumed,
        /// sqlite-20, postgres-1, postgres-20, sqlite-1-single,
        /// postgres-1-single), printed and not written to the document:
        /// for profiling one of them.
        #[arg(long)]
        only: Vec<String>,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.scratch)?;
    let args: Vec<_> = std::env::args().skip(1).collect();
    let command = format!(
        "cargo run --release -p observer-bench -- {}",
        args.join(" ")
    );
    match cli.which {
        Which::Core { saves, records } => {
            let text = core_bench::run(&cli.scratch, saves, records, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "core", &text)?;
        }
        Which::Media { mib } => {
            let text = media_bench::run(&cli.scratch, mib, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "media", &text)?;
        }
        Which::MediaPhone {
            dir,
            file,
            code,
            via_port,
        } => media_bench::phone(&dir, &file, &code, via_port)?,
        Which::Wipe { records, rounds } => {
            let text = wipe_bench::run(&cli.scratch, records, rounds, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "wipe", &text)?;
        }
        Which::Sms { rounds } => {
            let text = sms_bench::run(&cli.scratch, rounds, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "sms", &text)?;
        }
        Which::Forms { parties, records } => {
            let text = forms_bench::run(&cli.scratch, parties, records, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "forms", &text)?;
        }
        Which::Evidence { records, devices } => {
            let text = evidence_bench::run(&cli.scratch, records, devices, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "evidence", &text)?;
        }
        Which::Proofs { leaves, rounds } => {
            let text = proofs_bench::run(&cli.scratch, leaves, rounds, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "proofs", &text)?;
        }
        Which::Pvt {
            population,
            size,
            rounds,
        } => {
            let text = pvt_bench::run(&cli.scratch, population, size, rounds, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "pvt", &text)?;
        }
        Which::Ffi(a) => {
            let text = ffi_bench::run(
                &cli.scratch,
                &a.library,
                &a.bench_library,
                &a.java_classpath,
                a.saves,
                &a.command,
            )?;
            println!("{text}");
            report::write_section(&cli.doc, "ffi", &text)?;
        }
        Which::Abuse { records } => {
            let text = abuse_bench::run(&cli.scratch, records, &command)?;
            println!("{text}");
            report::write_section(&cli.doc, "abuse", &text)?;
        }
        Which::Burst {
            devices,
            concurrency,
            only,
        } => {
            let partial = !only.is_empty();
            let text = burst_bench::run(
                &cli.scratch,
                &burst_bench::BurstParams {
                    devices,
                    concurrency,
                    only,
                },
                &command,
            )?;
            println!("{text}");
            if !partial {
                report::write_section(&cli.doc, "burst", &text)?;
            }
        }
        Which::Workspace {
            stations,
            devices,
            records,
            requests,
        } => {
            let text = workspace_bench::run(
                &cli.scratch,
                &workspace_bench::Params {
                    stations,
                    devices,
                    records,
                    requests,
                },
                &command,
            )?;
            println!("{text}");
            report::write_section(&cli.doc, "workspace", &text)?;
        }
        Which::Scale {
            phones,
            records,
            bursts,
            burst_records,
            concurrency,
        } => {
            let text = scale_bench::run(
                &cli.scratch,
                &scale_bench::ScaleParams {
                    phones,
                    records,
                    bursts,
                    burst_records,
                    concurrency,
                },
                &command,
            )?;
            println!("{text}");
            report::write_section(&cli.doc, "scale", &text)?;
        }
        Which::Server {
            phones,
            records,
            devices,
            burst_records,
            concurrency,
            log_file,
        } => {
            if let Some(path) = &log_file {
                let file = std::fs::File::create(path)?;
                observer_server::telemetry::init_with_writer(
                    observer_server::telemetry::LogFormat::Json,
                    "info",
                    std::sync::Mutex::new(file),
                )?;
            }
            let text = server_bench::run(
                &cli.scratch,
                &server_bench::Params {
                    phones,
                    records,
                    devices,
                    burst_records,
                    concurrency,
                    logging: log_file.is_some(),
                },
                &command,
            )?;
            println!("{text}");
            report::write_section(&cli.doc, "server", &text)?;
        }
    }
    Ok(())
}
