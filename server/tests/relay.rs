//! Relay bundles end to end, against a real server process: a phone with
//! no link hands its records to another phone as a file; the coordinator
//! holds them once, as the first phone signed them; the carrier never held
//! them readable and could forge nothing.

mod support;

use observer_core::record::NewRecord;
use observer_core::relay::MAX_BUNDLE_BYTES;
use observer_core::store::{Query, StateFilter};
use observer_core::sync::{SyncOptions, sync};
use support::*;

const MARKER: &str = "RELAY-MARKER-expelled-at-0915";

fn checklist(i: u64) -> NewRecord {
    NewRecord::builder("KZ-0001", "voting", 1, "checklist")
        .payload(serde_json::json!({"n": i, "note": format!("{MARKER} {i}")}))
        .build()
        .unwrap()
}

fn incident() -> NewRecord {
    NewRecord::builder("KZ-0001", "incident", 1, "incident")
        .payload(serde_json::json!({"type": "observer_expelled", "time": "09:15", "note": MARKER}))
        .build()
        .unwrap()
}

/// The files of a phone's store, as whoever seizes it reads them.
fn files_hold(dir: &std::path::Path, text: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        path.is_file()
            && std::fs::read(&path)
                .unwrap()
                .windows(text.len())
                .any(|w| w == text.as_bytes())
    })
}

#[test]
fn a_relay_delivers_a_phones_records_once_with_their_own_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let a = enrolled_phone(&dir.path().join("a"), &server, "KZ-0001");
    let b_dir = dir.path().join("b");
    let b = enrolled_phone(&b_dir, &server, "KZ-0002");
    // A records offline all day.
    let mut ids: Vec<_> = (0..4).map(|i| a.save(checklist(i)).unwrap().id).collect();
    ids.push(a.save(incident()).unwrap().id);
    let bundle = a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap();
    assert_eq!(bundle.records, 5);
    assert!(
        !bundle
            .bytes
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes())
    );

    b.save(record("KZ-0002", 1)).unwrap();
    let took = b.import_relay_bundle(&bundle.bytes).unwrap();
    assert_eq!((took.records, took.added), (5, 5));
    assert!(
        !files_hold(&b_dir, MARKER),
        "the carrier's files hold A's records readable"
    );
    let s = sync(&b, &SyncOptions::default()).unwrap();
    assert_eq!(
        (s.accepted, s.relayed, s.relay_refused, s.relay_remaining),
        (1, 5, 0, 0),
        "{s:?}"
    );
    assert_eq!(b.relay_count().unwrap(), 0);
    assert_eq!(
        b.counts().unwrap().total(),
        1,
        "B's own chain holds only its own record"
    );

    // The coordinator holds A's records under A's device, once each, and
    // verifies them with A's enrolled key.
    let held: i64 = server
        .db()
        .query_row(
            "SELECT count(*) FROM records WHERE device = ?1",
            [a.device_id().as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 5);
    let export = server.cli(&["export", "--format", "ndjson"]);
    for id in &ids {
        assert_eq!(
            export.matches(&format!("\"id\":\"{id}\"")).count(),
            1,
            "{id} held once"
        );
    }
    assert!(export.contains(MARKER), "the coordinator opens them");
    assert!(server.cli(&["verify"]).contains("6 records intact"));

    // A's own sync finds them delivered; nothing is stored twice.
    let s = sync(&a, &SyncOptions::default()).unwrap();
    assert_eq!((s.accepted, s.already), (0, 5), "{s:?}");
    assert_eq!(
        a.count(&Query::new().state(StateFilter::Delivered))
            .unwrap(),
        5
    );

    // The same bundle carried again (by B or anyone) changes nothing.
    b.import_relay_bundle(&bundle.bytes).unwrap();
    let s = sync(&b, &SyncOptions::default()).unwrap();
    assert_eq!((s.relayed, s.relay_remaining), (5, 0), "{s:?}");
    assert_eq!(server.record_count().0, 6);
}

/// Someone makes a key of their own, labels a bundle with the
/// organisation's sealing key and hands it to an observer: the carrier
/// takes it (it cannot tell), the coordinator refuses every record, and the
/// carrier drops them instead of resending them forever. Its own records
/// are delivered as usual.
#[test]
fn records_of_a_device_the_coordinator_never_enrolled_are_refused_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let b = enrolled_phone(&dir.path().join("b"), &server, "KZ-0002");
    let fake = phone(&dir.path().join("fake"));
    let mut enrollment = b.enrollment().unwrap();
    enrollment.device = fake.device_id().clone();
    fake.set_enrollment(&enrollment).unwrap();
    for i in 0..3 {
        fake.save(checklist(i)).unwrap();
    }
    let forged = fake.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap();
    b.import_relay_bundle(&forged.bytes).unwrap();
    b.save(record("KZ-0002", 1)).unwrap();
    let s = sync(&b, &SyncOptions::default()).unwrap();
    assert_eq!(
        (s.accepted, s.relayed, s.relay_refused, s.relay_remaining),
        (1, 0, 3, 0),
        "{s:?}"
    );
    assert_eq!(server.record_count().0, 1);
}

/// A carrier that is itself an enrolled observer relabels another phone's
/// sealed records as its own and signs the bundle with its own key, so
/// that a third phone takes it: the seal binds each record to the device
/// that sealed it, so the coordinator cannot open them and refuses them,
/// and nothing enters its log.
#[test]
fn a_carrier_cannot_pass_off_another_phones_records_as_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let a = enrolled_phone(&dir.path().join("a"), &server, "KZ-0001");
    let b_dir = dir.path().join("b");
    let b = enrolled_phone(&b_dir, &server, "KZ-0002");
    let c = enrolled_phone(&dir.path().join("c"), &server, "KZ-0003");
    a.save(checklist(1)).unwrap();
    let real = observer_core::relay::RelayBundle::read(
        &a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes,
    )
    .unwrap();
    let b_key = phone_key(&b_dir);
    let mut records = real.into_records();
    for r in &mut records {
        r.device = b.device_id().clone();
    }
    let forged = observer_core::relay::RelayBundle::write(
        &b_key,
        &b.enrollment().unwrap().seal_key.unwrap(),
        &records,
    )
    .unwrap();
    assert_eq!(c.import_relay_bundle(&forged).unwrap().added, 1);
    let s = sync(&c, &SyncOptions::default()).unwrap();
    assert_eq!(
        (s.relayed, s.relay_refused, s.relay_remaining),
        (0, 1, 0),
        "{s:?}"
    );
    assert_eq!(server.record_count().0, 0);
}
