//! The audit log through the real binary: each coordinator command appends
//! who did what, the enrollment code itself never appears, `audit verify`
//! checks the chain, and an entry edited or removed in the database is
//! named.

mod support;

use serde_json::Value;
use support::*;

fn entries(server: &Server) -> Vec<Value> {
    server
        .cli(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_command_is_audited_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    assert!(
        server
            .cli(&["audit", "verify"])
            .contains("the audit log is empty")
    );

    let code = observer_core::protocol::EnrollmentCode::parse(
        server
            .cli(&[
                "enroll",
                "--station",
                "KZ-0001",
                "--name",
                "Айгерим",
                "--text",
            ])
            .trim(),
    )
    .unwrap();
    let phone = enrolled_phone(&dir.path().join("p"), &server, "KZ-0001");
    let device = phone.device_id().to_string();
    server.cli(&["assign", &device, "--station", "KZ-0002"]);
    let official = dir.path().join("official.csv");
    std::fs::write(&official, "station,ballots_cast\nKZ-0001,10\n").unwrap();
    server.cli(&["import-official", official.to_str().unwrap()]);
    let registry = dir.path().join("stations.csv");
    std::fs::write(
        &registry,
        "station,name,region,district,address,registered_voters\nKZ-0001,A,R,D,Addr,10\nKZ-0002,B,R,D,Addr,20\n",
    )
    .unwrap();
    server.cli(&["stations", "import", registry.to_str().unwrap()]);
    server.cli(&["export", "--format", "ndjson"]);
    server.cli(&["revoke", &device]);

    let log = entries(&server);
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "code.issued",
            "code.issued",
            "device.enrolled",
            "device.assigned",
            "official.imported",
            "registry.imported",
            "export",
            "device.revoked"
        ]
    );
    // The phone enrolled itself with its code; everything else was a
    // command run by someone on the server.
    assert!(log.iter().all(|e| {
        let actor = e["actor"].as_str().unwrap();
        actor.starts_with("cli:") || (actor == "enrollment code" && e["subject"] == device.as_str())
    }));
    assert_eq!(log[2]["subject"], device.as_str());
    assert_eq!(
        log[0]["detail"],
        r#"{"name":"Айгерим","stations":["KZ-0001"],"valid_hours":72}"#
    );
    let registry_detail: Value = serde_json::from_str(log[5]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(registry_detail["version"], 1);
    // The code enrolls a phone: it is not for everyone who reads the log.
    let text = server.cli(&["audit", "--json"]);
    assert!(!text.contains(&code.token), "{text}");
    let said = server.cli(&["audit", "verify"]);
    assert!(said.contains("the audit log checks: 8 entries"), "{said}");
    let later: Vec<Value> = server
        .cli(&["audit", "--json", "--after", "6"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(later.len(), 2);

    // Someone with the database but not the key edits an entry...
    let db = server.db();
    db.execute(
        "UPDATE audit_log SET subject = 'someone else' WHERE seq = 3",
        [],
    )
    .unwrap();
    let out = command(&server.data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("entry 3: its hash does not match its contents"),
        "{said}"
    );
    // ... and removes another.
    db.execute("DELETE FROM audit_log WHERE seq = 5", [])
        .unwrap();
    let out = command(&server.data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("entry 6: expected seq 5"), "{said}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the audit log was altered: 2 faults"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
