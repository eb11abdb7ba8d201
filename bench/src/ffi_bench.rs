//! Issue 4's figures: the release library's size, and a durable save called
//! from Kotlin (JNA) against the same save called from Rust, in one run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use observer_ffi::{KeyStoreFailure, ObserverCore, PlatformKeyStore};

use crate::report::{Samples, machine, median};

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

/// p50 of a call without I/O made from Rust through the same facade.
fn rust_call(dir: &Path, n: usize) -> Result<f64> {
    let core = ObserverCore::open(dir.display().to_string(), Arc::new(Plain))?;
    let mut calls = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        std::hint::black_box(core.device_id());
        calls.push(t0.elapsed());
    }
    Ok(Samples::new(calls).p50().as_secs_f64() * 1e6)
}

/// The steps of a generated Kotlin save, as `SaveBench` names and times
/// them, with what each one is.
const STEPS: [(&str, &str); 5] = [
    ("clone", "a JNA call clones the object's handle"),
    (
        "lower",
        "a JNA call allocates a Rust buffer for the argument; Kotlin writes it",
    ),
    ("status", "the call-status `Structure` is created"),
    (
        "invoke",
        "the save itself: buffers by value through JNA; Rust lifts, saves, lowers",
    ),
    (
        "lift",
        "Kotlin reads the result; a JNA call frees its buffer",
    ),
];

/// One JVM run's p50s, in µs, by the names `SaveBench` prints.
struct Round(Vec<(String, f64)>);

impl Round {
    fn get(&self, name: &str) -> Result<f64> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no {name}_p50_us in the Kotlin output").into())
    }
}

/// One JVM run: the Kotlin save, the same save timed in Rust (alternating),
/// a Kotlin call without I/O, and the steps of a dissected Kotlin save.
fn jvm_round(dir: &Path, n: usize, classpath: &str, library: &Path) -> Result<Round> {
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
    let mut fields = Vec::new();
    for w in text.split_whitespace() {
        let (name, value) = w
            .split_once("_p50_us=")
            .ok_or_else(|| format!("unexpected Kotlin output: {text}"))?;
        fields.push((name.to_string(), value.parse()?));
    }
    Ok(Round(fields))
}

/// `library` is the app build (measured for size); `bench_library` the
/// same crate built with `--features bench`, loaded by the JVM.
pub fn run(
    scratch: &Path,
    library: &Path,
    bench_library: &Path,
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
    let rounds = 9;
    let mut runs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        runs.push(jvm_round(
            &dir.path().join(format!("round-{round}")),
            saves,
            classpath,
            bench_library,
        )?);
    }
    let each = |name: &str| -> Result<Vec<f64>> { runs.iter().map(|r| r.get(name)).collect() };
    let (kotlin, rust, kotlin_call) = (each("kotlin")?, each("rust")?, each("call")?);
    let ratios: Vec<f64> = kotlin
        .iter()
        .zip(&rust)
        .map(|(k, r)| 100.0 * (k - r) / r)
        .collect();
    let rust_again = median(each("rust_again")?);
    let mut steps = String::new();
    let mut overhead_steps = 0.0;
    for (name, what) in STEPS {
        let mut us = median(each(name)?);
        let mut label = what.to_string();
        if name == "invoke" {
            us -= rust_again;
            label.push_str(&format!(
                " (its p50 minus the Rust save's, {rust_again:.1} µs)"
            ));
        }
        overhead_steps += us;
        steps.push_str(&format!("| `{name}`: {label} | {us:.1} µs |\n"));
    }
    let rust_call_us = rust_call(&dir.path().join("calls"), saves)?;
    let (kotlin_us, rust_us) = (median(kotlin.clone()), median(rust.clone()));
    let overhead = median(ratios.clone());
    let kc = median(kotlin_call);
    let boundary = kc - rust_call_us;
    Ok(format!(
        "## Mobile bindings: library size and FFI cost (issue 4)

Machine: {machine}.
Command: `{command}` (release library). In each of {rounds} JVM runs, after
2,000 warm-up saves per side, {saves} saves through the generated Kotlin API
(JNA) alternate, save by save, with {saves} of the same saves made by
`observer_ffi::ObserverCore::save` and timed inside Rust (a C hook built only
with `--features bench`), on two stores side by side: same process, same
disk, same moment. Median run reported.

| Measurement | Figure |
| --- | --- |
| `libobserver_ffi.so` (x86_64 Linux, release, app build) | {size_mb:.1} MB, **{stripped_mb:.1} MB stripped** |
| durable save timed in Rust, p50 (runs: {r:?} µs) | {rust_us:.1} µs |
| durable save called from Kotlin, p50 (runs: {k:?} µs) | {kotlin_us:.1} µs |
| **FFI overhead: Kotlin p50 over Rust p50** (runs: {o:?} %) | **{overhead:.1}%** of a durable save (target: under 20%) |
| a call without I/O (`deviceId()`), p50: Kotlin / Rust | {kc:.1} µs / {rust_call_us:.2} µs |
| the boundary's own cost per call (difference of the two) | {boundary:.1} µs = {bpct:.1}% of the Rust save |

Where a save's overhead goes: {saves} more saves made step by step exactly as
the generated `ObserverCore.save` makes them (`SaveBench.dissected`), each
step timed, alternating with Rust saves again; medians of the runs' p50s.
Four of the five steps are JNA crossings, each paying for by-value
`Structure`s; only the call is the one we asked for.

| Step | p50 |
| --- | --- |
{steps}| sum of the steps' overhead | {overhead_steps:.1} µs = {spct:.1}% of the Rust save |
",
        machine = machine(dir.path()),
        size_mb = size as f64 / 1e6,
        stripped_mb = stripped_size as f64 / 1e6,
        r = rust.iter().map(|v| v.round()).collect::<Vec<_>>(),
        k = kotlin.iter().map(|v| v.round()).collect::<Vec<_>>(),
        o = ratios.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
        bpct = 100.0 * boundary / rust_us,
        spct = 100.0 * overhead_steps / rust_again,
    ))
}
