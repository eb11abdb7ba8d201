//! End to end: real server process on loopback, phones on the real core.

mod support;

use std::collections::HashSet;

use observer_core::merkle::{Frontier, leaf_hash};
use observer_core::protocol::{RECEIPT_DOMAIN, Receipt, Signed};
use observer_core::record::RecordId;
use observer_core::store::{Query, StateFilter};
use observer_core::sync::{SyncOptions, sync};
use support::*;

/// After a blackout, 50 phones with 200 records each sync at once.
#[test]
fn fifty_phones_deliver_ten_thousand_records_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let coordinator = server.coordinator_key();
    let phones: Vec<_> = (0..50)
        .map(|i| {
            let station = format!("KZ-{i:04}");
            let p = enrolled_phone(&dir.path().join(format!("phone-{i}")), &server, &station);
            let batch: Vec<_> = (0..200).map(|n| record(&station, n)).collect();
            p.save_all(&batch).unwrap();
            p
        })
        .collect();
    std::thread::scope(|s| {
        for p in &phones {
            s.spawn(|| {
                let summary = sync(p, &SyncOptions::default()).unwrap();
                assert_eq!(summary.accepted, 200);
                assert_eq!(summary.remaining, 0);
            });
        }
    });
    assert_eq!(server.record_count(), (10_000, 10_000));

    let mut newest_tree = None;
    for p in &phones {
        assert_eq!(p.counts().unwrap().pending, 0);
        assert_eq!(p.counts().unwrap().delivered, 200);
        // Every stored receipt verifies with the coordinator key, and
        // together they cover exactly this phone's records.
        let mut covered = HashSet::new();
        for stored in p.receipts().unwrap() {
            let signed: Signed = serde_json::from_slice(&stored.bytes).unwrap();
            let receipt: Receipt = signed
                .open("receipt", RECEIPT_DOMAIN, &coordinator)
                .unwrap();
            assert_eq!(&receipt.device, p.device_id());
            covered.extend(
                receipt
                    .accepted
                    .iter()
                    .chain(&receipt.already)
                    .map(|a| a.id),
            );
            if newest_tree
                .is_none_or(|t: observer_core::merkle::TreeHead| receipt.tree.size > t.size)
            {
                newest_tree = Some(receipt.tree);
            }
        }
        let mine: HashSet<RecordId> = p
            .list(&Query::new())
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(covered, mine);
    }
    // The newest signed tree head is the RFC 6962 root over the server's
    // records in log order.
    let tree = newest_tree.unwrap();
    assert_eq!(tree.size, 10_000);
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT id FROM records ORDER BY log_index")
        .unwrap();
    let mut f = Frontier::new();
    for id in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        f.push(leaf_hash(&id.unwrap()));
    }
    assert_eq!(f.root(), tree.root);
    let devices = server.devices();
    assert_eq!(devices.as_array().unwrap().len(), 50);
    for d in devices.as_array().unwrap() {
        assert_eq!(d["records"], 200);
        assert_eq!(d["faults"].as_array().unwrap().len(), 0, "{d}");
    }
}

/// Sending the same records again stores nothing twice.
#[test]
fn a_replayed_batch_is_already_stored_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save_all(&(0..30).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 30);
    // Forget the deliveries (as if every receipt had been lost) and send again.
    rusqlite::Connection::open(p.path())
        .unwrap()
        .execute("UPDATE records SET state = 0, receipt = NULL", [])
        .unwrap();
    let again = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!((again.accepted, again.already), (0, 30));
    assert_eq!(server.record_count(), (30, 30));
    assert_eq!(p.counts().unwrap().delivered, 30);
}

/// Records deleted from a phone before it synced are named missing.
#[test]
fn records_deleted_before_sync_are_reported_missing_by_seq() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    p.save_all(&(0..10).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    drop(p);
    delete_records(&pdir, "seq BETWEEN 5 AND 7");
    let p = phone(&pdir);
    assert!(p.tampering().is_some(), "the phone notices too");
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 7);
    let d = &server.devices()[0];
    assert_eq!(
        d["faults"],
        serde_json::json!([{"fault": "missing", "range": {"first": 5, "last": 7}}])
    );
    assert_eq!(d["contiguous"], 4);
    let text = server.cli(&["devices"]);
    assert!(text.contains("5 to 7"), "{text}");
}

/// The heartbeat goes first: records the device declared but that were
/// lost before they were sent are known to the coordinator.
#[test]
fn records_declared_by_heartbeat_but_lost_are_known_missing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    p.save_all(&(0..7).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    p.save_all(&(7..10).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    // Records 8-10 are held back (in flight elsewhere) while a sync sends
    // its heartbeat, which declares seq 10.
    let held = p.take_for_delivery(10, usize::MAX).unwrap();
    assert_eq!(held.len(), 3);
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(s.sent, 0);
    drop(p);
    // Then the phone is seized and records 8-10 are deleted.
    delete_records(&pdir, "seq >= 8");
    let d = &server.devices()[0];
    assert_eq!(d["heartbeat"]["seq"], 10);
    assert_eq!(
        d["faults"],
        serde_json::json!([{"fault": "missing", "range": {"first": 8, "last": 10}}])
    );
    // The phone itself still works and keeps the gap visible.
    let p = phone(&pdir);
    assert_eq!(p.counts().unwrap().total(), 7);
    assert_eq!(
        p.list(&Query::new().state(StateFilter::Delivered))
            .unwrap()
            .len(),
        7
    );
}

/// The coordinator's view needs a session, and shows devices and their gaps.
#[test]
fn the_coordinator_view_requires_a_session_and_shows_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "KZ-<b>-1");
    p.save_all(&(0..6).map(|n| record("KZ-<b>-1", n)).collect::<Vec<_>>())
        .unwrap();
    drop(p);
    delete_records(&pdir, "seq = 2");
    let p = phone(&pdir);
    sync(&p, &SyncOptions::default()).unwrap();
    // Without a session: to the sign-in page, with nothing of the
    // overview; an old `?token=` link is no key.
    let mut stranger = web::Browser::new(&server.url());
    for path in ["/", "/?token=guess", "/api/v1/overview"] {
        let denied = stranger.get(path);
        assert_eq!(denied.status, 303, "{path}");
        assert_eq!(denied.location(), Some("/login"));
        assert!(!denied.text.contains(p.device_id().as_str()));
    }
    let html = server.view();
    assert!(
        html.contains(p.device_id().as_str()),
        "the device is listed"
    );
    assert!(
        html.contains("<td class=\"gap\">2</td>"),
        "its gap is shown: {html}"
    );
    assert!(
        html.contains("KZ-&#60;b&#62;-1") && !html.contains("KZ-<b>-1"),
        "text is escaped: {html}"
    );
    install_crypto();
    let client = reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let spec: serde_json::Value = client
        .get(format!("{}/openapi.json", server.url()))
        .send()
        .unwrap()
        .json_value();
    for (path, method) in [
        ("/v1/enroll", "post"),
        ("/v1/records", "post"),
        ("/v1/updates", "post"),
        ("/v1/sealed", "post"),
        ("/v1/media/{sha256}", "get"),
        ("/v1/media/{sha256}", "put"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
}

trait JsonValue {
    fn json_value(self) -> serde_json::Value;
}
impl JsonValue for reqwest::blocking::Response {
    fn json_value(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().unwrap()).unwrap()
    }
}

/// A record signed for another organisation is refused with that reason,
/// and the phone keeps it as rejected instead of resending it forever.
#[test]
fn records_signed_for_another_organisation_are_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save(record("S-1", 0)).unwrap();
    let mut e = p.enrollment().unwrap();
    let ours = e.org.clone();
    e.org = "another-org".into();
    p.set_enrollment(&e).unwrap();
    p.save(record("S-1", 1)).unwrap();
    e.org = ours;
    p.set_enrollment(&e).unwrap();
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(s.accepted, 1);
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(
        s.rejected[0].reason,
        observer_core::protocol::RejectReason::WrongOrg,
        "{:?}",
        s.rejected
    );
    let c = p.counts().unwrap();
    assert_eq!((c.delivered, c.rejected, c.pending), (1, 1, 0));
    assert_eq!(server.record_count().0, 1);
}

/// Revocation: what the coordinator had before is kept; what the device
/// signed after its last record received before revocation is quarantined
/// (kept, shown, never counted); the phone learns it and stops signing.
#[test]
fn revocation_keeps_earlier_records_and_quarantines_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save_all(&(0..5).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 5);
    p.save_all(&(5..10).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    assert!(
        server
            .cli(&["revoke", p.device_id().as_str()])
            .contains("revoked")
    );

    let anchor = p.log_anchor().unwrap().expect("the first sync's head");
    let err = sync(&p, &SyncOptions::default()).unwrap_err();
    assert!(
        matches!(err, observer_core::sync::SyncError::Revoked),
        "{err:?}"
    );
    // The revocation's receipt came with its log proofs, checked: the
    // phone now holds its head.
    assert_ne!(p.log_anchor().unwrap(), Some(anchor));
    assert!(p.log_faults().unwrap().is_empty());
    assert_eq!(server.record_count(), (5, 5), "records 1-5 stay");
    let quarantined: Vec<i64> = server
        .db()
        .prepare("SELECT seq FROM quarantine ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(quarantined, [6, 7, 8, 9, 10]);
    let d = &server.devices()[0];
    assert_eq!(
        (d["quarantined"].as_u64(), d["revoked_at_ms"].is_i64()),
        (Some(5), true)
    );

    let c = p.counts().unwrap();
    assert_eq!((c.delivered, c.rejected, c.pending), (5, 5, 0));
    assert!(p.revoked_at_ms().is_some());
    assert!(matches!(
        p.save(record("S-1", 11)),
        Err(observer_core::store::StoreError::Revoked)
    ));
    // A replay of the quarantined records changes nothing.
    rusqlite::Connection::open(p.path())
        .unwrap()
        .execute(
            "UPDATE records SET state = 0, receipt = NULL, rejection = NULL WHERE seq > 5",
            [],
        )
        .unwrap();
    assert!(sync(&p, &SyncOptions::default()).is_err());
    assert_eq!(server.record_count(), (5, 5));
    assert_eq!(server.devices()[0]["quarantined"], 5);
}

/// A record signed after enrollment but before the first receipt carries
/// the clock offset learnt from the enrollment answer.
#[test]
fn records_before_the_first_receipt_carry_the_enrollment_clock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save(record("S-1", 0)).unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    let export = server.cli(&["export"]);
    let line: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    let clock = &line["body"]["clock"];
    assert!(clock["offset_ms"].is_i64(), "{line}");
    assert!(clock["after"].is_null(), "no tree head seen yet: {line}");
}

/// Enrolling again with a new code keeps the observer's name when none is
/// given; a revoked phone is refused and the code it tried stays unused.
#[test]
fn re_enrolling_keeps_the_name_and_a_revoked_phone_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = phone(&dir.path().join("phone"));
    observer_core::sync::enroll(&p, &server.code("S-1"), Some("Aigerim")).unwrap();
    observer_core::sync::enroll(&p, &server.code("S-2"), None).unwrap();
    let d = &server.devices()[0];
    assert_eq!(d["name"], "Aigerim", "{d}");
    assert_eq!(d["stations"], serde_json::json!(["S-2"]), "{d}");
    server.cli(&["revoke", p.device_id().as_str()]);
    let code = server.code("S-3");
    let err = observer_core::sync::enroll(&p, &code, None).unwrap_err();
    assert!(
        matches!(err, observer_core::sync::SyncError::Revoked),
        "{err:?}"
    );
    assert_eq!(server.devices()[0]["name"], "Aigerim");
    let other = phone(&dir.path().join("other"));
    observer_core::sync::enroll(&other, &code, None).expect("the code was not used up");
}

/// A published or shipped form version is never replaced by other content
/// under the same id and version, on the server or on a phone.
#[test]
fn a_shipped_form_version_cannot_be_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let shipped = include_str!("../../core/forms/opening.json");
    let path = dir.path().join("opening.json");
    std::fs::write(&path, shipped).unwrap();
    let out = server.cli(&["forms", "publish", path.to_str().unwrap()]);
    assert!(out.contains("ships with Observer already"), "{out}");
    let mut altered: serde_json::Value = serde_json::from_str(shipped).unwrap();
    altered["title"]["en"] = serde_json::json!("Opening (altered)");
    std::fs::write(&path, altered.to_string()).unwrap();
    let refused = command(&server.data)
        .args(["forms", "publish", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("already shipped with Observer"), "{stderr}");
    // A phone offered the altered version keeps the shipped one.
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    assert_eq!(p.add_forms(&[altered.to_string()]).unwrap(), 0);
    let opening = p.form("opening", Some(1)).unwrap().unwrap();
    assert_eq!(
        opening,
        observer_core::forms::default_forms()
            .iter()
            .find(|f| f.id == "opening")
            .unwrap()
            .clone()
    );
}

/// A misfiled record (unknown form, a kind that is not the form's, a
/// station the observer is not assigned to) is saved and delivered, and
/// flagged on the phone and on the coordinator.
#[test]
fn misfiled_records_are_kept_and_flagged_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    let opening = observer_core::forms::default_forms()
        .iter()
        .find(|f| f.id == "opening")
        .unwrap();
    let cases = [
        ("S-1", "nosuch", "checklist", "unknown_form"),
        ("S-1", "opening", "results", "kind_mismatch"),
        (
            "S-9",
            "opening",
            opening.kind.as_str(),
            "unassigned_station",
        ),
    ];
    for (station, form, kind, _) in cases {
        let r = observer_core::record::NewRecord::builder(station, form, 1, kind)
            .payload(serde_json::json!({}))
            .build()
            .unwrap();
        let flags = p.filing_flags(&r).unwrap();
        assert_eq!(flags.len(), 1, "{station} {form} {kind}: {flags:?}");
        p.save(r).unwrap();
    }
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 3);
    let lines = server.cli(&["records", "--json"]);
    let rows: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (row, (_, _, _, flag)) in rows.iter().zip(cases) {
        assert_eq!(row["form_check"]["clean"], false, "{row}");
        assert_eq!(
            row["form_check"]["result"]["flags"][0]["flag"], flag,
            "{row}"
        );
    }
    assert!(server.view().contains("unassigned_station"));
}

/// A sync stopped from another thread (an Android worker's `onStopped`)
/// leaves every record pending or delivered, never in flight, and the next
/// sync delivers the rest exactly once.
#[test]
fn a_cancelled_sync_leaves_every_record_pending_or_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0009");
    let batch: Vec<_> = (0..600).map(|n| record("KZ-0009", n)).collect();
    p.save_all(&batch).unwrap();
    let cancel = observer_core::sync::Cancel::default();
    let stopper = cancel.clone();
    let opts = SyncOptions {
        batch_records: 20,
        cancel: cancel.clone(),
        // Cancelled from the progress callback after the third batch, as a
        // worker stopped mid-sync would be.
        progress: Some(observer_core::sync::Progress(std::sync::Arc::new(
            move |s: &observer_core::sync::SyncSummary| {
                if s.batches == 3 {
                    stopper.cancel();
                }
            },
        ))),
        ..SyncOptions::default()
    };
    let err = sync(&p, &opts).unwrap_err();
    assert!(
        matches!(err, observer_core::sync::SyncError::Cancelled),
        "{err}"
    );
    let c = p.counts().unwrap();
    assert_eq!(c.in_flight, 0);
    assert_eq!(c.delivered, 60, "three batches of 20 settled");
    assert_eq!(c.pending + c.delivered, 600);
    assert_eq!(server.record_count().0, 60);
    let rest = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!((rest.accepted, rest.already), (540, 0));
    assert_eq!(server.record_count(), (600, 600));
}
