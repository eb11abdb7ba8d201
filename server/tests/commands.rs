//! The coordinator's commands as a newcomer runs them: what the demo
//! prints works as printed, `devices` shows last contact, and an export
//! piped into `head` ends quietly, a database from a newer server is refused.

mod support;

use std::process::Command;

use observer_core::sync::{SyncOptions, sync};
use support::*;

#[test]
fn the_demo_records_what_it_is_told_and_its_printed_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["demo", "--observers", "2", "--records", "9", "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("records 9 observations offline"), "{text}");
    assert!(
        !text.contains("coordinator view"),
        "--once does not offer the view of a server that has exited: {text}"
    );
    let mut ran = 0;
    for line in text.lines() {
        let Some(cmd) = ["devices and gaps", "all records", "check everything"]
            .iter()
            .find_map(|label| line.trim().strip_prefix(label))
        else {
            continue;
        };
        let out = Command::new("sh")
            .current_dir(dir.path())
            .args(["-c", cmd.trim()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert_eq!(ran, 3, "{text}");
    let refused = Command::new(BIN)
        .current_dir(dir.path())
        .args(["demo", "--records", "5", "--once"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--records"));
}

#[test]
fn devices_show_last_contact_and_an_export_into_head_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save_all(&(0..500).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    let devices = server.cli(&["devices"]);
    assert!(devices.contains("last contact"), "{devices}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(devices.contains(&today), "{devices}");
    let data = server.data.display().to_string();
    let key = key_file(&server.data).display().to_string();
    for format in ["ndjson", "csv"] {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("\"{BIN}\" --data \"{data}\" --key-file \"{key}\" export --format {format} | head -n 1"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "a closed pipe is not an error"
        );
    }
}

/// A database written by a newer observer-server is refused with a
/// sentence that says so, and left exactly as it was.
#[test]
fn a_database_from_a_newer_server_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let init = command(&data)
        .args(["init", "--url", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(init.status.success());
    let db = data.join("server.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    for args in [&["devices"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let out = command(&data).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("schema version 99") && err.contains("update observer-server"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "left untouched");
}
