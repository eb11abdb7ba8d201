//! What the desktop client's test binaries share: running `observer`.

use std::path::Path;
use std::process::{Command, Output};

/// `observer --data DATA ARGS...`, run to completion.
pub fn observer(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_observer"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// The standard output of a command that must succeed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
