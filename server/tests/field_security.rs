//! Field security end to end, against a real server process: records of
//! sealed forms leave the phone sealed to the organisation, and only the
//! coordinator reads them.

mod support;

use observer_core::record::NewRecord;
use observer_core::store::{Query, StateFilter};
use observer_core::sync::{SyncOptions, sync};
use support::*;

const MARKER: &str = "SEALED-MARKER-4d1c-ballot-stuffing-seen";

fn incident() -> NewRecord {
    NewRecord::builder("KZ-0001", "incident", 1, "incident")
        .payload(serde_json::json!({"type": "ballot_stuffing", "time": "11:40", "note": MARKER}))
        .build()
        .unwrap()
}

#[test]
fn sealed_forms_travel_sealed_and_only_the_coordinator_opens_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    assert!(p.enrollment().unwrap().seal_key.is_some());
    let sealed = p.save(incident()).unwrap();
    let plain = p.save(record("KZ-0001", 1)).unwrap();

    let held = p.list(&Query::new()).unwrap();
    let org_copy = held[0]
        .for_org
        .as_ref()
        .expect("the incident form is sealed");
    assert_eq!(
        (&org_copy.device, org_copy.seq),
        (p.device_id(), sealed.seq)
    );
    for part in [&org_copy.ct, &org_copy.enc] {
        assert!(!part.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    }
    assert!(
        held[1].for_org.is_none(),
        "the voting checklist is not sealed"
    );

    let summary = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(summary.accepted, 2, "{summary:?}");
    assert_eq!(
        p.count(&Query::new().state(StateFilter::Delivered))
            .unwrap(),
        2
    );

    // The coordinator opened it, verified the signature inside, and holds
    // the record under its usual id.
    let export = server.cli(&["export", "--format", "ndjson"]);
    let line = export
        .lines()
        .find(|l| l.contains(&format!("\"id\":\"{}\"", sealed.id)))
        .expect("the sealed record is held under its id");
    assert!(line.contains(MARKER), "{line}");
    assert!(line.contains("\"sealed\":true"), "{line}");
    assert!(export.contains(&plain.id.to_string()));

    // At rest it stays sealed: the marker is nowhere in the server's files
    // (the database, its WAL), only inside the sealed record.
    let mut server = server;
    server.kill();
    for name in ["server.db", "server.db-wal"] {
        if let Ok(bytes) = std::fs::read(server.data.join(name)) {
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                "{name} holds the sealed record in the clear"
            );
        }
    }
    let (body, sealed_json): (Vec<u8>, Option<String>) = server
        .db()
        .query_row(
            "SELECT body, sealed FROM records WHERE id = ?1",
            [sealed.id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(body.is_empty() && sealed_json.is_some());
    // The web view and verification open it in memory.
    server.restart();
    assert!(server.view().contains("ballot_stuffing"));
    assert!(server.cli(&["verify"]).contains("2 records intact"));
}

/// Police take the phone before it synced: the observer wipes it, keeping
/// the sealed outbox; later (from the same app data, or a backup of just
/// that file) the sealed records still reach the coordinator, proved by
/// the device's signature inside them.
#[test]
fn a_wiped_phone_still_delivers_its_sealed_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "KZ-0001");
    let sealed: Vec<_> = (0..3).map(|_| p.save(incident()).unwrap()).collect();
    p.save(record("KZ-0001", 1)).unwrap();
    let keys =
        observer_core::identity::FileKeyStore::open_or_create(pdir.join("device.kek")).unwrap();
    let wiped = p.wipe(&keys, true).unwrap();
    assert_eq!(wiped.sealed_waiting, 3);
    drop(p);

    let s = observer_core::sync::deliver_sealed(&pdir, &SyncOptions::default()).unwrap();
    assert_eq!((s.accepted, s.remaining), (3, 0), "{s:?}");
    let export = server.cli(&["export", "--format", "ndjson"]);
    for saved in &sealed {
        assert!(export.contains(&format!("\"id\":\"{}\"", saved.id)));
    }
    assert_eq!(
        export.lines().count(),
        3,
        "the unsealed checklist was wiped, not sent"
    );
    let again = observer_core::sync::deliver_sealed(&pdir, &SyncOptions::default()).unwrap();
    assert_eq!(again.sent, 0, "delivered records left the outbox");
    observer_core::store::Store::start_over(&pdir, false).unwrap();
}
