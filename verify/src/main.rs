//! `observer-verify FILE`: checks an evidence package offline and prints
//! what held and what did not; exits 1 if anything failed, 2 if the file
//! is not a package at all.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use observer_core::evidence::{Trust, verify};
use observer_core::merkle::TrustedWitness;

/// Checks an Observer evidence package without trusting the coordinator:
/// each record's signature by its enrolled device and its id, each
/// device's chain, each record's inclusion in the signed log checkpoint,
/// the witnesses' cosignatures, and the media hashes.
#[derive(Parser)]
#[command(name = "observer-verify", version)]
struct Cli {
    /// The package (a ZIP archive written by `observer-server evidence export`).
    file: PathBuf,
    /// The coordinator's key as the organisation publishes it (without
    /// it, the key the package states is used, and the report says so).
    #[arg(long, allow_hyphen_values = true)]
    coordinator_key: Option<String>,
    /// A witness you trust, by its published key (repeatable; without
    /// any, the witnesses the package names are checked).
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut trust = Trust::default();
    if let Some(k) = &cli.coordinator_key {
        match k.parse() {
            Ok(key) => trust.coordinator = Some(key),
            Err(e) => {
                eprintln!("observer-verify: --coordinator-key {k}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if !cli.witnesses.is_empty() {
        let mut list = Vec::new();
        for v in &cli.witnesses {
            match TrustedWitness::from_vkey(v) {
                Ok(w) => list.push(w),
                Err(e) => {
                    eprintln!("observer-verify: --witness {v}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        trust.witnesses = Some(list);
    }
    let package = match observer_verify::read_package(&cli.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("observer-verify: {}: {e}", cli.file.display());
            return ExitCode::from(2);
        }
    };
    let report = verify(&package, &trust);
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialises")
        );
    } else {
        for f in &report.findings {
            let mark = if f.ok { "ok  " } else { "FAIL" };
            println!("{mark} {}: {}", f.subject, f.detail);
        }
        println!(
            "{}",
            if report.passed() {
                "PASSED: everything checked held"
            } else {
                "FAILED: see the lines marked FAIL"
            }
        );
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
