//! The desktop client as trainers and scripts use it.

use std::path::Path;
use std::process::Command;

mod common;
use common::{observer, ok};

fn record(data: &Path, station: &str, kind: &str) -> String {
    ok(observer(
        data,
        &[
            "record",
            "--station",
            station,
            "--form",
            "opening",
            "--kind",
            kind,
            "--payload",
            r#"{"opened_on_time": false, "note": "kept out until 7:00"}"#,
        ],
    ))
    .trim()
    .to_string()
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "init", "record", "list", "verify", "status", "enroll", "sync", "demo", "load",
    ] {
        let text = ok(observer(dir.path(), &[cmd, "--help"]));
        assert!(text.contains("Usage:"), "{cmd}: {text}");
    }
}

#[test]
fn record_list_status_and_verify_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let init: serde_json::Value =
        serde_json::from_str(&ok(observer(data, &["init", "--json"]))).unwrap();
    let id1 = record(data, "KZ-ALA-0042", "checklist");
    assert_eq!(id1.len(), 64);
    record(data, "KZ-ALA-0043", "incident");
    let json = ok(observer(
        data,
        &[
            "record",
            "--station",
            "KZ-ALA-0042",
            "--form",
            "incident",
            "--kind",
            "incident",
            "--payload",
            r#"{"type":"observer_expelled"}"#,
            "--supersedes",
            &id1,
            "--json",
        ],
    ));
    let saved: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(saved["seq"], 3);

    let lines: Vec<serde_json::Value> = ok(observer(
        data,
        &["list", "--json", "--station", "KZ-ALA-0042"],
    ))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], id1.as_str());
    assert_eq!(lines[1]["body"]["supersedes"], id1.as_str());
    assert_eq!(lines[1]["body"]["device"], init["device"]);
    assert_eq!(
        ok(observer(data, &["list", "--state", "pending", "--json"]))
            .lines()
            .count(),
        3
    );
    assert_eq!(
        ok(observer(data, &["list", "--state", "delivered", "--json"]))
            .lines()
            .count(),
        0
    );
    assert_eq!(
        ok(observer(data, &["list", "--json", "--limit", "1"]))
            .lines()
            .count(),
        1
    );

    let status: serde_json::Value =
        serde_json::from_str(&ok(observer(data, &["status", "--json"]))).unwrap();
    assert_eq!(status["counts"]["pending"], 3);
    assert_eq!(status["head"]["seq"], 3);
    assert!(ok(observer(data, &["verify"])).starts_with("ok: 3 records"));
}

#[test]
fn bad_input_is_refused_with_a_message_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    record(data, "S1", "checklist");
    for (args, expect) in [
        (
            vec!["--station", "", "--form", "f", "--kind", "k"],
            "station id is invalid",
        ),
        (
            vec![
                "--station",
                "S",
                "--form",
                "f",
                "--kind",
                "k",
                "--payload",
                "[1]",
            ],
            "must be a JSON object",
        ),
        (
            vec![
                "--station",
                "S",
                "--form",
                "f",
                "--kind",
                "k",
                "--payload",
                "{",
            ],
            "not valid JSON",
        ),
        (
            vec![
                "--station",
                "S",
                "--form",
                "f",
                "--kind",
                "k",
                "--attachment",
                "zz:1:image/jpeg",
            ],
            "attachment 0 is invalid",
        ),
        (
            vec![
                "--station",
                "S",
                "--form",
                "f",
                "--kind",
                "k",
                "--supersedes",
                &"a".repeat(64),
            ],
            "not in this store",
        ),
    ] {
        let mut full = vec!["record"];
        full.extend(args);
        let out = observer(data, &full);
        assert_eq!(out.status.code(), Some(1), "{full:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{full:?}: {err}");
    }
    let big = format!(r#"{{"t":"{}"}}"#, "x".repeat(70 * 1024));
    let out = observer(
        data,
        &[
            "record",
            "--station",
            "S",
            "--form",
            "f",
            "--kind",
            "k",
            "--payload",
            &big,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the limit"));
    assert_eq!(ok(observer(data, &["list", "--json"])).lines().count(), 1);
}

#[test]
fn verify_exits_non_zero_and_names_the_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for _ in 0..6 {
        record(data, "S1", "checklist");
    }
    let conn = rusqlite::Connection::open(data.join("observer.db")).unwrap();
    conn.execute("DELETE FROM records WHERE seq IN (3, 4)", [])
        .unwrap();
    drop(conn);
    let out = observer(data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TAMPERING FOUND"), "{err}");
    assert!(err.contains("records 3 to 4 are missing"), "{err}");
    // Other commands refuse, explaining why, unless told to go on.
    let out = observer(
        data,
        &["record", "--station", "S1", "--form", "f", "--kind", "k"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tampered"));
    let out = observer(
        data,
        &[
            "--accept-tampering",
            "record",
            "--station",
            "S1",
            "--form",
            "f",
            "--kind",
            "k",
            "--json",
        ],
    );
    let saved: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(saved["seq"], 7);
}

#[test]
fn an_unwritable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let out = observer(&file.join("data"), &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create the data directory"));
}

#[test]
fn the_demo_records_a_verified_election_day() {
    let dir = tempfile::tempdir().unwrap();
    let text = ok(observer(dir.path(), &["demo"]));
    assert!(text.contains("no tampering found in 7 records"), "{text}");
    let lines: Vec<serde_json::Value> = ok(observer(
        dir.path(),
        &["list", "--json", "--kind", "results"],
    ))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(lines[1]["body"]["supersedes"], lines[0]["id"]);
}

#[test]
fn forms_are_listed_and_answers_validated_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let list = ok(observer(data, &["forms", "--lang", "ru"]));
    assert!(
        list.contains("counting") && list.contains("Протокол итогов"),
        "{list}"
    );
    let good = r#"{"event": "admitted", "time": "07:00"}"#;
    assert!(
        ok(observer(
            data,
            &["validate", "--form", "access", "--payload", good]
        ))
        .starts_with("ok")
    );
    let bad = r#"{"registered_voters": 100, "ballots_received": 100, "ballots_issued": 90, "ballots_spoiled": 0,
        "ballots_unused": 10, "ballots_cast": 95, "ballots_invalid": 0, "party_1": 95, "party_2": 0, "party_3": 0,
        "party_4": 0, "party_5": 0, "count_announced": true, "copy_received": true}"#;
    let out = observer(
        data,
        &["validate", "--form", "counting", "--payload", bad, "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "a failed error rule exits 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "cast_not_above_issued");
    let out = observer(data, &["validate", "--form", "nope", "--payload", "{}"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no form \"nope\""));
    // Every message in the observer's language, not only the labels.
    let wrong = r#"{"event": 7, "time": "7 o'clock", "extra": 1}"#;
    for (lang, words) in [
        ("ru", ["ожидается", "нет такого вопроса"]),
        ("kk", ["күтіледі", "мұндай сұрақ жоқ"]),
        ("en", ["expected", "is not a question"]),
    ] {
        let out = observer(
            data,
            &[
                "validate",
                "--form",
                "access",
                "--payload",
                wrong,
                "--lang",
                lang,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(text.contains(w), "{lang}: {text}");
        }
        if lang != "en" {
            assert!(
                !text.contains("expected"),
                "{lang}: no English left: {text}"
            );
        }
    }
}

#[test]
fn attached_files_are_imported_once_listed_and_referenced_by_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let photo = dir.path().join("IMG_0042.JPG");
    // SOI, an APP0 segment, start of scan, "image data", EOI.
    std::fs::write(
        &photo,
        b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda\x00\x04xyscan data\xff\xd9",
    )
    .unwrap();
    let attach = format!("{}", photo.display());
    let record = |attach: &str| {
        observer(
            &data,
            &[
                "record",
                "--station",
                "KZ-1",
                "--form",
                "incident",
                "--kind",
                "incident",
                "--payload",
                r#"{"type": "ballot_stuffing", "time": "10:00"}"#,
                "--attach",
                attach,
            ],
        )
    };
    ok(record(&attach));
    ok(record(&format!("{attach}=image/jpeg")));
    std::fs::remove_file(&photo).unwrap();
    let media = ok(observer(&data, &["media", "--json"]));
    let lines: Vec<serde_json::Value> = media
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "the same file is stored once: {media}");
    assert_eq!(lines[0]["mime"], "image/jpeg");
    assert_eq!(lines[0]["delivered"], false);
    let listed = ok(observer(&data, &["list", "--json"]));
    let sha = lines[0]["sha256"].as_str().unwrap();
    assert_eq!(
        listed.lines().filter(|l| l.contains(sha)).count(),
        2,
        "both records reference it"
    );
    let missing = record("/no/such/file.mp4");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

/// A disk that fills during an import: the whole data directory sits on a
/// 1 MiB tmpfs (in a private user and mount namespace, so no root is
/// needed); importing a 4 MiB clip fails with the disk-full message, leaves
/// no partial copy, and saves no record.
#[test]
fn a_disk_that_fills_during_import_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("small-disk");
    std::fs::create_dir(&disk).unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, vec![0x5a; 4 * 1024 * 1024]).unwrap();
    let err = dir.path().join("stderr");
    let bin = env!("CARGO_BIN_EXE_observer");
    let (disk, clip, err) = (disk.display(), clip.display(), err.display());
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=1m none "{disk}"
"{bin}" --data "{disk}/data" init >/dev/null
if "{bin}" --data "{disk}/data" record --station KZ-1 --form incident --kind incident \
    --payload '{{"type": "ballot_stuffing", "time": "10:00"}}' --attach "{clip}" 2>"{err}"; then
    echo IMPORTED
fi
echo "MEDIA: $(ls -A "{disk}/data/media" | wc -l)"
echo "RECORDS: $("{bin}" --data "{disk}/data" list --json | wc -l)"
"#
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = std::fs::read_to_string(err.to_string()).unwrap();
    assert!(!text.contains("IMPORTED"), "{text}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(text.contains("MEDIA: 0"), "no partial copy left: {text}");
    assert!(text.contains("RECORDS: 0"), "no record saved: {text}");
}

/// A record of a form this device does not know is saved (an observer is
/// never blocked) and flagged.
#[test]
fn a_misfiled_record_is_saved_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let out = observer(
        dir.path(),
        &[
            "record",
            "--station",
            "KZ-1",
            "--form",
            "nosuch",
            "--kind",
            "checklist",
            "--payload",
            "{}",
            "--json",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("saved, but flagged") && stderr.contains("not known here"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flags"][0]["flag"], "unknown_form", "{v}");
}
