//! Issue 4's figures: the release library's size, and a durable save called
//! from Kotlin (JNA) against the same save called from Rust, in one run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use observer_ffi::{KeyStoreFailure, NewObservation, ObserverCore, PlatformKeyStore};

use crate::report::{machine, us, Samples};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A trivial wrap, like the Kotlin side's in-memory AES: the benchmark
/// measures the save, not a key store (which is used only at open).
struct Plain;
impl PlatformKeyStore for Plain {
    fn wrap(&self, s: Vec<u8>) -> std::result::Result<Vec<u8>, KeyStoreFailure> {
        Ok(s)
    }
    fn unwrap(&self, w: Vec<u8>) -> std::result::Result<Vec<u8>, KeyStoreFailure> {
        Ok(w)
    }
    fn destroy_key(&self) -> std::result::Result<(), KeyStoreFailure> {
        Ok(())
    }
}

fn observation() -> NewObservation {
    NewObservation {
        station: "KZ-ALA-0042".into(),
        form_id: "voting".into(),
        form_version: 3,
        kind: "checklist".into(),
        payload_json: r#"{"ballot_box_sealed":true,"note":"voters photographed their ballots; commission chair warned twice","queue_length":14,"unauthorised_persons":false}"#.into(),
        attachments: vec![],
        supersedes: None,
    }
}

fn rust_saves(dir: &Path, n: usize) -> Result<(Samples, Samples)> {
    let core = ObserverCore::open(dir.display().to_string(), Arc::new(Plain))?;
    for _ in 0..2000 {
        core.save(observation())?;
    }
    let mut calls = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        std::hint::black_box(core.device_id());
        calls.push(t0.elapsed());
    }
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let obs = observation();
        let t0 = Instant::now();
        core.save(obs)?;
        t.push(t0.elapsed());
    }
    Ok((Samples::new(t), Samples::new(calls)))
}

/// p50 of a save and of a call without I/O, in µs, from the Kotlin side.
fn kotlin_saves(dir: &Path, n: usize, classpath: &str, library: &Path) -> Result<(f64, f64)> {
    let out = Command::new("java")
        .arg(format!(
            "-Djna.library.path={}",
            library.parent().unwrap_or(Path::new(".")).display()
        ))
        .args(["-cp", classpath, "org.observer.core.SaveBench"])
        .arg(dir)
        .arg(n.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "Kotlin bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> Result<f64> {
        Ok(text
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .ok_or_else(|| format!("no {name} in the Kotlin output: {text}"))?
            .parse()?)
    };
    Ok((field("p50_us=")?, field("call_p50_us=")?))
}

pub fn run(
    scratch: &Path,
    library: &Path,
    classpath: &str,
    saves: usize,
    command: &str,
) -> Result<String> {
    let dir = tempfile::tempdir_in(scratch)?;
    let size = std::fs::metadata(library)?.len();
    let stripped = dir.path().join("stripped.so");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(library)
        .status()?;
    if !status.success() {
        return Err("strip failed".into());
    }
    let stripped_size = std::fs::metadata(&stripped)?.len();
    // Interleaved rounds, so drift in the disk's fsync cost hits both sides.
    let mut rust = Vec::new();
    let mut rust_call = Vec::new();
    let mut kotlin = Vec::new();
    let mut kotlin_call = Vec::new();
    for round in 0..3 {
        let (save, call) = rust_saves(&dir.path().join(format!("rust-{round}")), saves)?;
        rust.push(save.p50());
        rust_call.push(call.p50().as_secs_f64() * 1e6);
        let (save, call) = kotlin_saves(
            &dir.path().join(format!("kotlin-{round}")),
            saves,
            classpath,
            library,
        )?;
        kotlin.push(save);
        kotlin_call.push(call);
    }
    rust.sort();
    for v in [&mut kotlin, &mut kotlin_call, &mut rust_call] {
        v.sort_by(f64::total_cmp);
    }
    let rust_us = rust[1].as_secs_f64() * 1e6;
    let kotlin_us = kotlin[1];
    let overhead = 100.0 * (kotlin_us - rust_us) / rust_us;
    let boundary = kotlin_call[1] - rust_call[1];
    Ok(format!(
        "## Mobile bindings: library size and FFI cost (issue 4)

Machine: {machine}.
Command: `{command}` (release library; Kotlin {saves} timed saves per round
after 300 warm-up saves on the JVM through JNA, Rust the same through
`observer_ffi::ObserverCore::save`; three interleaved rounds, median round
reported).

| Measurement | Figure |
| --- | --- |
| `libobserver_ffi.so` (x86_64 Linux, release) | {size_mb:.1} MB, **{stripped_mb:.1} MB stripped** |
| durable save called from Rust, p50 (median of rounds {r:?}) | {rust} |
| durable save called from Kotlin, p50 (median of rounds {k:?} µs) | {kotlin_us:.1} µs |
| **FFI overhead: Kotlin save p50 over Rust save p50** | **{overhead:.1}%** of a durable save (target: under 20%) |
| a call without I/O (`deviceId()`), p50: Kotlin / Rust | {kc:.1} µs / {rc:.2} µs |
| the boundary's own cost per call (difference of the two) | {boundary:.1} µs = {bpct:.1}% of the Rust save |
",
        machine = machine(dir.path()),
        size_mb = size as f64 / 1e6,
        stripped_mb = stripped_size as f64 / 1e6,
        rust = us(rust[1]),
        r = rust
            .iter()
            .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
            .collect::<Vec<_>>(),
        k = kotlin.iter().map(|k| k.round()).collect::<Vec<_>>(),
        kc = kotlin_call[1],
        rc = rust_call[1],
        bpct = 100.0 * boundary / rust_us,
    ))
}
