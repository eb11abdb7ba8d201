//! Someone with the server's disk edits its database while it is stopped.
//! `observer-server verify` finds every altered record, `export` refuses
//! to hand one out as evidence, and `serve` refuses to start on a database
//! whose newest records or log root do not match what the phones signed.

mod support;

use observer_core::sync::{SyncOptions, sync};
use support::*;

fn run(server: &Server, args: &[&str]) -> (bool, String) {
    let out = command(&server.data).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts `serve` and reports whether it refused (exited by itself).
fn serve_refuses(server: &Server) -> (bool, String) {
    let port = free_port().to_string();
    let mut child = command(&server.data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                !status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    (false, String::new())
}

/// Flips one payload digit of the record at `index`, keeping its id.
fn alter_body(server: &Server, index: i64) {
    let db = server.db();
    let body: Vec<u8> = db
        .query_row(
            "SELECT body FROM records WHERE log_index = ?1",
            [index],
            |r| r.get(0),
        )
        .unwrap();
    let text = String::from_utf8(body).unwrap();
    let altered = text.replacen("\"queue\":", "\"queue\":9", 1);
    assert_ne!(text, altered);
    db.execute(
        "UPDATE records SET body = ?1 WHERE log_index = ?2",
        rusqlite::params![altered.into_bytes(), index],
    )
    .unwrap();
}

#[test]
fn a_byte_changed_in_a_stored_record_is_found_by_verify_export_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    for i in 0..2 {
        let p = enrolled_phone(&dir.path().join(format!("p{i}")), &server, "S-1");
        p.save_all(&(0..300).map(|n| record("S-1", n)).collect::<Vec<_>>())
            .unwrap();
        sync(&p, &SyncOptions::default()).unwrap();
    }
    server.kill();
    let (ok, text) = run(&server, &["verify"]);
    assert!(ok, "{text}");
    assert!(text.contains("600 records intact"), "{text}");

    // An old record (beyond the newest checked at start): verify and
    // export find it; serve still starts (its quick check covers the
    // newest records and the log root), and export will not hand it out.
    alter_body(&server, 10);
    let (ok, text) = run(&server, &["verify"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("ALTERED record") && text.contains("log index 10"),
        "{text}"
    );
    let (ok, text) = run(&server, &["export"]);
    assert!(!ok, "{text}");
    assert!(text.contains("log index 10 was altered"), "{text}");

    // The newest record altered: serve refuses to start.
    alter_body(&server, 599);
    let (refused, stderr) = serve_refuses(&server);
    assert!(refused, "serve must refuse an altered database");
    assert!(
        stderr.contains("altered") && stderr.contains("log index 599"),
        "{stderr}"
    );

    // A record replaced with another id: the log root no longer matches.
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = Server::start(&dir2.path().join("server"));
    let p = enrolled_phone(&dir2.path().join("p"), &other, "S-1");
    p.save_all(&(0..300).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    other.kill();
    other
        .db()
        .execute(
            "UPDATE records SET id = zeroblob(32) WHERE log_index = 3",
            [],
        )
        .unwrap();
    let (refused, stderr) = serve_refuses(&other);
    assert!(refused);
    assert!(stderr.contains("log root does not match"), "{stderr}");
    let (ok, text) = run(&other, &["verify"]);
    assert!(!ok && text.contains("ALTERED log"), "{text}");
}

/// The log's stored nodes are what its proofs are made of: one altered
/// node would make an honest coordinator's proofs fail on the phones, so
/// `serve` refuses it and `verify` names it.
#[test]
fn an_altered_log_node_is_found_by_verify_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("p"), &server, "S-1");
    p.save_all(&(0..100).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    server.kill();
    let (ok, text) = run(&server, &["verify"]);
    assert!(ok && text.contains("log root and nodes match"), "{text}");
    let altered = server
        .db()
        .execute(
            "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 2",
            [],
        )
        .unwrap();
    assert_eq!(altered, 1);
    let (refused, stderr) = serve_refuses(&server);
    assert!(refused);
    assert!(stderr.contains("stored nodes"), "{stderr}");
    let (ok, text) = run(&server, &["verify"]);
    assert!(
        !ok && text.contains("ALTERED log: its stored nodes"),
        "{text}"
    );
}
