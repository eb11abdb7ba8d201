//! A witness process, run the way another organisation runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::command;

/// `observer-server --data DIR ... witness ARGS`, successful, its output.
pub fn witness_cli(data: &Path, args: &[&str]) -> String {
    let out = command(data).arg("witness").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "witness {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct WitnessProcess {
    child: Child,
    pub addr: String,
}

impl WitnessProcess {
    pub fn start(data: &Path) -> Self {
        let mut child = command(data)
            .args(["witness", "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("the witness said {line:?}"))
            .to_owned();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self { child, addr }
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
