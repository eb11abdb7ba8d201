//! What an operator relies on through election day: metrics that move with
//! the phones' syncs, logs that carry no observer's words, station or
//! name, and a configuration file that refuses what it does not know.

mod support;

use std::time::Duration;

use observer_core::protocol::{Batch, HEARTBEAT_DOMAIN, Heartbeat, Signed, WireRecord};
use observer_core::store::Query;
use observer_core::sync::{SyncOptions, enroll, sync};
use support::*;

/// The value of the sample `name` (with its labels, as exposed), if any.
#[test]
fn the_metrics_endpoint_moves_with_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let server = Server::start_with(
        &dir.path().join("server"),
        &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")],
    );
    let before = scrape(metrics_port);
    assert_eq!(sample(&before, "observer_devices_enrolled"), Some(0.0));
    assert_eq!(
        sample(&before, r#"observer_records_total{outcome="accepted"}"#),
        None
    );

    let phone_dir = dir.path().join("phone");
    let p = enrolled_phone(&phone_dir, &server, "KZ-0001");
    let batch: Vec<_> = (0..10).map(|n| record("KZ-0001", n)).collect();
    p.save_all(&batch).unwrap();
    // Records 9 and 10 vanish from the phone before they leave it.
    delete_records(&phone_dir, "seq >= 9");
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 8);
    // A replay of three delivered records (a retry whose receipt was lost),
    // then a record whose signature was altered on the way.
    let held = p.list(&Query::new()).unwrap();
    let key = phone_key(&phone_dir);
    let post = |records: Vec<WireRecord>| {
        let hb = Heartbeat {
            device: p.device_id().clone(),
            seq: 10,
            head: None,
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let batch = Batch {
            heartbeat: Signed::sign(HEARTBEAT_DOMAIN, &hb, &key),
            records,
            sealed: vec![],
        };
        raw_client()
            .post(format!("{}/v1/records", server.url()))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&batch).unwrap())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let replay = held[..3]
        .iter()
        .map(|r| WireRecord::from(&r.envelope))
        .collect();
    assert_eq!(post(replay), 200);
    let mut sig = held[0].envelope.sig.to_vec();
    sig[0] ^= 1;
    let forged = WireRecord {
        body: held[0].envelope.body.clone(),
        sig,
    };
    assert_eq!(post(vec![forged]), 422);
    let after = scrape(metrics_port);
    let get = |name: &str| sample(&after, name).unwrap_or_else(|| panic!("{name} in\n{after}"));
    assert_eq!(get(r#"observer_records_total{outcome="accepted"}"#), 8.0);
    assert_eq!(get(r#"observer_records_total{outcome="already"}"#), 3.0);
    assert_eq!(
        get(r#"observer_records_rejected_total{reason="bad_signature"}"#),
        1.0
    );
    // The phone's sync is one exchange (protocol version 2); the replays
    // went to version 1's endpoint.
    assert_eq!(
        get(r#"observer_batch_duration_seconds_count{endpoint="sync"}"#),
        1.0
    );
    assert_eq!(
        get(r#"observer_batch_duration_seconds_count{endpoint="records"}"#),
        2.0
    );
    // Each batch was committed (the refused one for its heartbeat), none
    // failed; and every connection shook hands.
    assert_eq!(get(r#"observer_group_commits_total{result="ok"}"#), 3.0);
    assert_eq!(
        sample(&after, r#"observer_group_commits_total{result="failed"}"#),
        None
    );
    assert!(get(r#"observer_tls_handshakes_total{kind="full"}"#) >= 3.0);
    assert_eq!(get("observer_enrollments_total"), 1.0);
    // Every receipt sent was queued for the archive.
    assert_eq!(get("observer_receipts_unarchived_total"), 0.0);
    assert_eq!(get("observer_devices_enrolled"), 1.0);
    assert_eq!(get(r#"observer_devices_seen{within_minutes="15"}"#), 1.0);
    assert_eq!(get("observer_records_held"), 8.0);
    // Known from the heartbeat, never delivered.
    assert_eq!(get("observer_records_missing"), 2.0);
    assert!(get(r#"observer_http_responses_total{status="200"}"#) >= 3.0);
    assert_eq!(get(r#"observer_http_responses_total{status="422"}"#), 1.0);
    assert!(get("observer_open_connections") >= 0.0);
    // The API port does not serve metrics, and the metrics port no API.
    let r = raw_client()
        .get(format!("{}/metrics", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn a_syncs_logs_hold_no_payload_station_or_name() {
    const MARKER: &str = "Zq7MARKERq7Z";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_logged(
        &dir.path().join("server"),
        &["--log-format", "json"],
        Some(&log),
    );
    let station = format!("KZ-{MARKER}");
    let phone_dir = dir.path().join("phone");
    let p = phone(&phone_dir);
    enroll(
        &p,
        &server.code(&station),
        Some(&format!("Aigerim {MARKER}")),
    )
    .unwrap();
    let note = format!("the chair said {MARKER}");
    for n in 0..5u64 {
        p.save(
            observer_core::record::NewRecord::builder(&station, "voting", 1, "checklist")
                .payload(serde_json::json!({ "n": n, "note": note }))
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 5);
    let device = p.device_id().to_string();
    wait_until("the answer's log line", Duration::from_secs(5), || {
        std::fs::read_to_string(&log).unwrap().contains("/v2/sync")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(MARKER),
        "a marker leaked into the log:\n{text}"
    );
    // What the operator needs is there: one JSON event per line, the
    // request's route, device and counts.
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["span"]["route"] == "/v2/sync")
        .collect();
    let answered = records
        .iter()
        .find(|v| v["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no answer logged for /v2/sync:\n{text}"));
    assert_eq!(answered["fields"]["status"], 200);
    assert_eq!(answered["span"]["device"], device);
    assert_eq!(answered["span"]["accepted"], 5);
    assert!(text.contains("device enrolled"), "{text}");
}

#[test]
fn the_configuration_file_is_used_and_unknown_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let key = key_file(&data);
    let out = support::command(&data)
        .args(["init", "--url", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(out.status.success());

    // `config default` prints a file the server takes as it is.
    let default = support::command(&data)
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(default.status.success());
    let default = String::from_utf8(default.stdout).unwrap();
    let file = dir.path().join("observer-server.toml");
    std::fs::write(
        &file,
        default
            .replace(
                "data = \"observer-server-data\"",
                &format!("data = {:?}", data.display().to_string()),
            )
            .replace(
                "# key_file = \"/media/usb/observer.key\"",
                &format!("key_file = {:?}", key.display().to_string()),
            ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_observer-server"))
            .arg("--config")
            .arg(&file)
            .args(args)
            .env_remove("OBSERVER_SERVER_DATA")
            .env_remove("OBSERVER_SERVER_KEY_FILE")
            .output()
            .unwrap()
    };
    let out = run(&["devices"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What serve would run with: a variable over the file over defaults.
    let show = std::process::Command::new(env!("CARGO_BIN_EXE_observer-server"))
        .arg("--config")
        .arg(&file)
        .args(["config", "show", "--rate-per-device", "7"])
        .env_remove("OBSERVER_SERVER_DATA")
        .env_remove("OBSERVER_SERVER_KEY_FILE")
        .env("OBSERVER_SERVER_MAX_CONNECTIONS", "77")
        .output()
        .unwrap();
    assert!(show.status.success());
    let shown =
        observer_server::config::ConfigFile::parse(&String::from_utf8(show.stdout).unwrap())
            .expect("config show prints a valid file");
    assert_eq!(shown.data.as_deref(), Some(data.as_path()));
    assert_eq!(shown.key_file.as_deref(), Some(key.as_path()));
    let limits = shown.serve.limits.limits();
    assert_eq!((limits.max_connections, limits.rate_per_device), (77, 7));
    assert_eq!(
        limits.rate_per_address,
        observer_server::limits::ServeLimits::default().rate_per_address
    );

    // A misspelt limit stops the server with its name and line.
    std::fs::write(
        &file,
        format!(
            "data = {:?}\nkey_file = {:?}\n[serve.limits]\nmax_conections = 10\n",
            data.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`max_conections`"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}
