//! A witness run as its own process, the way another organisation runs
//! it: it follows a real coordinator's log, the coordinator pushes its
//! checkpoints to it over HTTP, and what comes back is checked the way a
//! phone or a court checks it: the coordinator's signature under its key,
//! the witness's cosignature under the witness's published key. When the
//! coordinator's database is rewritten, the witness refuses and keeps the
//! two signed checkpoints that show it.

mod support;

use std::time::Duration;

use observer_core::merkle::{Checkpoint, TreeHead, TrustedWitness, origin_of};
use observer_core::sync::{SyncOptions, sync};
use support::witness::{WitnessProcess, witness_cli};
use support::*;

#[test]
fn a_witness_cosigns_a_growing_log_and_refuses_a_rewritten_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(
        &dir.path().join("server"),
        &["--witness-interval-secs", "1"],
    );
    let coordinator = server.coordinator_key();

    // The witness's operator makes it, follows the coordinator's key, and
    // publishes its own key; the coordinator is told where it listens.
    let wdata = dir.path().join("witness");
    let made = witness_cli(&wdata, &["init", "--name", "witness.example/w1"]);
    let vkey = made
        .lines()
        .find_map(|l| l.strip_prefix("witness key  "))
        .expect("init prints the witness's key")
        .to_owned();
    let trusted = TrustedWitness::from_vkey(&vkey).unwrap();
    witness_cli(&wdata, &["follow", "--log-key", &coordinator.to_string()]);
    let w = WitnessProcess::start(&wdata);
    let added = server.cli(&[
        "witnesses",
        "add",
        "--key",
        &vkey,
        "--url",
        &format!("http://{}/", w.addr),
    ]);
    assert!(added.contains("asking witness.example/w1"), "{added}");

    let pdir = dir.path().join("p");
    let phone = enrolled_phone(&pdir, &server, "S-1");
    let key = phone_key(&pdir);
    let client = raw_client();
    let url = server.url();
    let witnessed = |client: &reqwest::blocking::Client| -> Option<(TreeHead, Vec<u8>)> {
        let answer = client
            .get(format!("{url}/v1/log/witnessed"))
            .header("observer-heartbeat", heartbeat_header(&key, &phone))
            .send()
            .unwrap();
        if answer.status() == 404 {
            return None;
        }
        assert!(answer.status().is_success(), "{}", answer.status());
        let note = answer.bytes().unwrap().to_vec();
        let head = Checkpoint::open(&note, &origin_of(&coordinator), &coordinator)
            .expect("signed by the coordinator")
            .head;
        Some((head, note))
    };
    let wait_witnessed = |size: u64| -> Vec<u8> {
        let mut got = None;
        wait_until(
            &format!("a checkpoint of {size} witnessed"),
            Duration::from_secs(30),
            || {
                got = witnessed(&client).filter(|(h, _)| h.size == size);
                got.is_some()
            },
        );
        got.unwrap().1
    };

    for (from, n) in [(0u64, 30u64), (30, 7)] {
        phone
            .save_all(
                &(from..from + n)
                    .map(|i| record("S-1", i))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        sync(&phone, &SyncOptions::default()).unwrap();
        let note = wait_witnessed(from + n);
        // The phone, told of the witness by its first sync's updates, asks
        // for the witnessed checkpoint at each sync, checks it and keeps it
        // (the server re-reads it every two seconds).
        wait_until(
            "the phone holds the witnessed checkpoint",
            Duration::from_secs(30),
            || {
                let s = sync(&phone, &SyncOptions::default()).unwrap();
                s.witnessed_size == Some(from + n)
            },
        );
        let kept = phone.log_witnessed().unwrap().expect("kept");
        assert_eq!(kept.as_bytes(), note.as_slice());
        let when = trusted
            .cosigned_at(&note)
            .unwrap()
            .expect("cosigned by the configured witness");
        let now = chrono::Utc::now().timestamp() as u64;
        assert!(
            when <= now && now - when < 60,
            "cosigned at {when}, now {now}"
        );
    }
    let listed = server.cli(&["witnesses", "list"]);
    assert!(listed.contains("cosigned size 37"), "{listed}");
    let shown = witness_cli(&wdata, &["show"]);
    assert!(shown.contains("cosigned size 37"), "{shown}");
    assert!(!shown.contains("REFUSED"), "{shown}");
    let before = witnessed(&client).unwrap().1;

    // The coordinator's database rewritten while it is stopped: a record
    // the phone delivered is gone. Another phone's records then grow the
    // log past the witnessed size, and the coordinator asks again.
    server.kill();
    rewrite_history(&server, 2);
    server.restart();
    let other = enrolled_phone(&dir.path().join("q"), &server, "S-1");
    other
        .save_all(&(0..3).map(|i| record("S-1", i)).collect::<Vec<_>>())
        .unwrap();
    // Its first sync trusts the head it gets: nothing to compare with yet.
    sync(&other, &SyncOptions::default()).unwrap();
    wait_until(
        "the witness refuses the rewritten log",
        Duration::from_secs(30),
        || witness_cli(&wdata, &["show"]).contains("REFUSED 1"),
    );
    // Nothing new was cosigned: the witnessed checkpoint is still the one
    // from before, which the rewritten log does not extend.
    let after = witnessed(&client).unwrap();
    assert_eq!(after.0.size, 37);
    assert_eq!(after.1, before);
    let witness_db = rusqlite::Connection::open(wdata.join("witness.db")).unwrap();
    let (held, offered): (Vec<u8>, Vec<u8>) = witness_db
        .query_row("SELECT held, offered FROM refusals", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // Both kept checkpoints are the coordinator's own signed ones.
    let held = Checkpoint::open(&held, &origin_of(&coordinator), &coordinator).unwrap();
    let offered = Checkpoint::open(&offered, &origin_of(&coordinator), &coordinator).unwrap();
    assert_eq!(held.head.size, 37);
    assert_eq!(offered.head.size, 39);
    // Its next sync gets the witnessed checkpoint, which the rewritten
    // log does not extend: the coordinator shows it another history than
    // the one it showed the witness, and it stops.
    let err = sync(&other, &SyncOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            observer_core::sync::SyncError::LogRewritten(
                observer_core::sync::LogProblem::Unwitnessed { witnessed: 37, .. }
            )
        ),
        "{err:?}"
    );
    assert_eq!(other.log_faults().unwrap().len(), 1);
    assert!(other.log_witnessed().unwrap().is_none());
    drop(w);
}

#[test]
fn the_witness_answers_the_protocols_statuses_and_bounds_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let wdata = dir.path().join("witness");
    witness_cli(&wdata, &["init", "--name", "witness.example/w2"]);
    let log = observer_core::identity::SigningKey::generate().unwrap();
    witness_cli(
        &wdata,
        &["follow", "--log-key", &log.public_key().to_string()],
    );
    let w = WitnessProcess::start(&wdata);
    install_crypto();
    let client = reqwest::blocking::Client::new();
    let post = |body: Vec<u8>| {
        let answer = client
            .post(format!("http://{}/add-checkpoint", w.addr))
            .body(body)
            .send()
            .unwrap();
        let media = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (answer.status().as_u16(), media, answer.text().unwrap())
    };
    let note = |size: u64, key: &observer_core::identity::SigningKey| {
        let leaves: Vec<_> = (0..size)
            .map(|i| observer_core::merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        Checkpoint {
            origin: origin_of(&key.public_key()),
            head: TreeHead {
                size,
                root: observer_core::merkle::tree_hash(&leaves),
            },
        }
        .sign(key)
        .unwrap()
    };
    let request = |old: u64, note: Vec<u8>| {
        observer_server::witness::AddCheckpoint {
            old,
            proof: vec![],
            note,
        }
        .to_bytes()
    };
    // Cosigned, then the same old size again is stale: 409 with the size.
    let (status, _, line) = post(request(0, note(5, &log)));
    assert_eq!(status, 200, "{line}");
    assert!(line.starts_with("\u{2014} witness.example/w2 "), "{line}");
    let (status, media, body) = post(request(0, note(6, &log)));
    assert_eq!(
        (status, media.as_deref(), body.as_str()),
        (409, Some("text/x.tlog.size"), "5\n")
    );
    // A log it does not follow; a forged signature; garbage; too large.
    let stranger = observer_core::identity::SigningKey::generate().unwrap();
    assert_eq!(post(request(0, note(5, &stranger))).0, 404);
    let mut forged = note(5, &stranger);
    let origin = origin_of(&stranger.public_key());
    let ours = origin_of(&log.public_key());
    forged = String::from_utf8(forged)
        .unwrap()
        .replacen(&origin, &ours, 1)
        .into_bytes();
    assert_eq!(post(request(5, forged)).0, 403);
    assert_eq!(post(b"old 0\n".to_vec()).0, 400);
    assert_eq!(post(vec![b'x'; 64 * 1024]).0, 413);
    // Still serving the log it follows.
    let shown = witness_cli(&wdata, &["show"]);
    assert!(shown.contains("cosigned size 5"), "{shown}");
}

#[test]
fn a_witness_is_never_made_inside_a_coordinators_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let out = command(&server.data)
        .args(["witness", "init", "--name", "witness.example/w3"])
        .env("OBSERVER_SERVER_KEY_FILE", dir.path().join("w3.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds a coordinator's data"), "{err}");
}
