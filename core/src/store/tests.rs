use std::sync::Arc;

use rusqlite::Connection;

use super::*;
use crate::identity::FileKeyStore;
use crate::protocol::RejectReason;
use crate::record::{ChainFault, SeqRange, VerifyError};

struct Fixture {
    dir: tempfile::TempDir,
    keys: FileKeyStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = FileKeyStore::open_or_create(dir.path().join("device.kek")).unwrap();
        Self { dir, keys }
    }
    fn open(&self) -> Result<Store, StoreError> {
        Store::open(self.dir.path(), &self.keys)
    }
    fn raw(&self) -> Connection {
        Connection::open(self.dir.path().join(DB_FILE)).unwrap()
    }
}

fn rec(station: &str, kind: &str) -> NewRecord {
    NewRecord::builder(station, "opening", 1, kind)
        .payload_json(r#"{"q1": true, "note": "seals intact"}"#)
        .build()
        .unwrap()
}

fn fill(store: &Store, n: usize) -> Vec<SavedRecord> {
    (0..n)
        .map(|i| {
            store
                .save(rec(&format!("S{}", i % 3), "checklist"))
                .unwrap()
        })
        .collect()
}

#[test]
fn saves_form_a_chain_that_survives_reopening() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let saved = fill(&store, 10);
    assert_eq!(
        saved.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let device = store.device_id().clone();
    drop(store);
    let store = fx.open().unwrap();
    assert_eq!(store.device_id(), &device, "the identity persists");
    let next = store.save(rec("S1", "incident")).unwrap();
    assert_eq!(next.seq, 11);
    let all = store.list(&Query::new()).unwrap();
    let body: crate::record::Body = serde_json::from_slice(&all[10].envelope.body).unwrap();
    assert_eq!(body.prev, Some(saved[9].id));
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checked, 11);
}

#[test]
fn queries_filter_by_state_station_kind_time_and_page() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let t0 = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    fill(&store, 9);
    store.save(rec("S9", "incident")).unwrap();
    assert_eq!(store.count(&Query::new().station("S0")).unwrap(), 3);
    assert_eq!(store.count(&Query::new().kind("incident")).unwrap(), 1);
    assert_eq!(store.count(&Query::new().captured_from(t0)).unwrap(), 10);
    assert_eq!(store.count(&Query::new().captured_before(t0)).unwrap(), 0);
    let mut seen = Vec::new();
    let mut q = Query::new().state(StateFilter::Pending).limit(4);
    loop {
        let page = store.list(&q).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        seen.extend(page.iter().map(|r| r.seq));
        q = q.after_seq(page.last().unwrap().seq);
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    let one = store
        .list(&Query::new().kind("incident"))
        .unwrap()
        .remove(0);
    assert_eq!(store.get(&one.id).unwrap().unwrap(), one);
    assert_eq!(one.station, "S9");
}

#[test]
fn outbox_moves_pending_in_flight_delivered_and_requeues_after_a_crash() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    fill(&store, 5);
    let batch = store.take_for_delivery(3, usize::MAX).unwrap();
    assert_eq!(batch.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(store.counts().unwrap().in_flight, 3);
    let ids: Vec<_> = batch.iter().map(|r| r.id).collect();
    assert_eq!(
        store.apply_receipt(b"receipt-1", &ids[..2], &[]).unwrap(),
        2
    );
    assert_eq!(
        store
            .apply_receipt(
                b"receipt-again",
                &ids[..2],
                &[refusal(ids[0], RejectReason::Conflict, "held already")]
            )
            .unwrap(),
        0,
        "a delivered record stays delivered"
    );
    let c = store.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.delivered), (2, 1, 2));
    let delivered = store
        .list(&Query::new().state(StateFilter::Delivered))
        .unwrap();
    assert!(matches!(
        delivered[0].state,
        DeliveryState::Delivered { .. }
    ));
    // The process dies with record 3 in flight: reopening makes it pending.
    drop(store);
    let store = fx.open().unwrap();
    let c = store.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.delivered), (3, 0, 2));
    let batch = store.take_for_delivery(10, 1).unwrap();
    assert_eq!(
        batch.len(),
        1,
        "the byte budget still lets one record through"
    );
    assert_eq!(store.return_to_pending(&[batch[0].id]).unwrap(), 1);
    assert_eq!(store.counts().unwrap().pending, 3);
    let rejected = store.take_for_delivery(1, usize::MAX).unwrap().remove(0);
    store
        .apply_receipt(
            b"receipt-2",
            &[],
            &[refusal(
                rejected.id,
                RejectReason::Malformed,
                "not a record",
            )],
        )
        .unwrap();
    let r = store.get(&rejected.id).unwrap().unwrap();
    assert!(
        matches!(r.state, DeliveryState::Rejected { reason: RejectReason::Malformed, ref detail, .. } if detail == "not a record")
    );
    assert_eq!(store.counts().unwrap().rejected, 1);
    let rest = store.take_for_delivery(10, usize::MAX).unwrap();
    assert!(rest.iter().all(|x| x.id != rejected.id));
}

#[test]
fn a_priority_stations_results_protocol_is_delivered_before_older_records() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    store
        .set_enrollment(&Enrollment {
            url: "https://127.0.0.1:8443".into(),
            tls_sha256: crate::record::Sha256Digest::of(b"cert"),
            coordinator: SigningKey::generate().unwrap().public_key(),
            org: "org".into(),
            device: store.device_id().clone(),
            stations: vec!["S1".into(), "S2".into()],
            priority_stations: vec!["S2".into()],
            seal_key: None,
            witnesses: Vec::new(),
            sms_number: None,
        })
        .unwrap();
    for station in ["S1", "S2", "S1"] {
        store.save(rec(station, "checklist")).unwrap();
    }
    let other = store.save(rec("S1", "results")).unwrap();
    let first = store.save(rec("S2", "results")).unwrap();
    store.save(rec("S2", "incident")).unwrap();

    let batch = store.take_for_delivery(3, usize::MAX).unwrap();
    let seqs: Vec<u64> = batch.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        [first.seq, 1, 2],
        "the sampled station's protocol, then the oldest"
    );
    store
        .return_to_pending(&batch.iter().map(|r| r.id).collect::<Vec<_>>())
        .unwrap();
    // Every record still goes, each once.
    let all = store.take_for_delivery(100, usize::MAX).unwrap();
    let mut seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs[0], first.seq);
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert!(all.iter().any(|r| r.id == other.id));
    // The byte budget holds as before: one record at least, no more.
    store
        .return_to_pending(&all.iter().map(|r| r.id).collect::<Vec<_>>())
        .unwrap();
    let one = store.take_for_delivery(10, 1).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, first.id);
}

#[test]
fn bad_input_writes_nothing() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    fill(&store, 2);
    let head = store.head().unwrap();
    let unknown = crate::record::RecordId::of(b"nope");
    let bad = NewRecord::builder("S1", "opening", 1, "checklist")
        .supersedes(unknown)
        .build()
        .unwrap();
    assert!(matches!(
        store.save(bad.clone()),
        Err(StoreError::UnknownSupersedes(id)) if id == unknown
    ));
    // All or nothing: a batch with one bad record stores none of them.
    assert!(store.save_all(&[rec("S1", "k"), bad]).is_err());
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.counts().unwrap().total(), 2);
    let good = NewRecord::builder("S1", "opening", 1, "checklist")
        .supersedes(head.unwrap().id)
        .build()
        .unwrap();
    assert_eq!(store.save(good).unwrap().seq, 3);
}

#[test]
fn saves_from_many_threads_form_one_chain() {
    let fx = Fixture::new();
    let store = Arc::new(fx.open().unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    store.save(rec(&format!("T{t}"), "checklist")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checked, 200);
}

#[test]
fn unusable_locations_and_files_get_typed_errors() {
    let fx = Fixture::new();
    let file = fx.dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Store::open(&file.join("sub"), &fx.keys),
        Err(StoreError::NotWritable { .. })
    ));
    let garbage = fx.dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join(DB_FILE), vec![0x5a; 8192]).unwrap();
    match Store::open(&garbage, &fx.keys) {
        Err(StoreError::Corrupt { path, .. }) => assert!(path.ends_with(DB_FILE)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let fx = Fixture::new();
    drop(fx.open().unwrap());
    fx.raw()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(
        fx.open(),
        Err(StoreError::TooNew { found, supported })
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
    ));
    let v: u32 = fx
        .raw()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

/// Builds a database at each earlier schema version (with data where that
/// version can hold some), then opens it with the current code.
#[test]
fn migrates_from_every_earlier_version() {
    for from in 0..SCHEMA_VERSION {
        let fx = Fixture::new();
        let mut conn = fx.raw();
        schema::migrate_to(&mut conn, schema::MIGRATIONS, from).unwrap();
        drop(conn);
        let store = fx.open().unwrap();
        assert_eq!(
            schema::user_version(&store.conn().unwrap()).unwrap(),
            SCHEMA_VERSION
        );
        fill(&store, 3);
        assert!(store.verify().unwrap().is_intact(), "from v{from}");
    }
}

#[test]
fn another_key_store_cannot_open_the_identity() {
    let fx = Fixture::new();
    drop(fx.open().unwrap());
    let other = FileKeyStore::open_or_create(fx.dir.path().join("other.kek")).unwrap();
    assert!(matches!(
        Store::open(fx.dir.path(), &other),
        Err(StoreError::KeyUnavailable(_))
    ));
}

#[test]
fn records_without_a_key_are_refused_rather_than_forked() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 2);
    fx.raw()
        .execute("DELETE FROM meta WHERE key = 'device_key'", [])
        .unwrap();
    assert!(matches!(fx.open(), Err(StoreError::KeyMissing)));
}

fn tampered(fx: &Fixture) -> TamperReport {
    match fx.open() {
        Err(StoreError::Tampered(r)) => r,
        Ok(_) => panic!("tampering went unnoticed at open"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn full_report(fx: &Fixture) -> TamperReport {
    let store = Store::open_with(fx.dir.path(), &fx.keys, OnTampering::Continue).unwrap();
    store.verify().unwrap()
}

fn flip(fx: &Fixture, seq: u64, column: &str, at: usize) {
    let conn = fx.raw();
    let mut v: Vec<u8> = conn
        .query_row(
            &format!("SELECT {column} FROM records WHERE seq = ?1"),
            [seq],
            |r| r.get(0),
        )
        .unwrap();
    v[at] ^= 0x01;
    conn.execute(
        &format!("UPDATE records SET {column} = ?1 WHERE seq = ?2"),
        rusqlite::params![v, seq],
    )
    .unwrap();
}

/// What someone holding the data key (and so able to forge the sealing,
/// but not the device's signature) could write: the sealed content of the
/// record at `seq`, opened.
fn read_content(store: &Store, seq: u64) -> encrypted::Content {
    let blob: Vec<u8> = store
        .conn()
        .unwrap()
        .query_row("SELECT content FROM records WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .unwrap();
    encrypted::decrypt_record(&store.vault, seq, &blob).unwrap()
}

/// Seals `c` into the row at `at`, with a matching lookup tag.
fn write_content(store: &Store, at: u64, c: &encrypted::Content) {
    let blob = encrypted::encrypt_record(&store.vault, at, &c.id, &c.kind, &c.envelope).unwrap();
    store
        .conn()
        .unwrap()
        .execute(
            "UPDATE records SET content = ?1, tag = ?2 WHERE seq = ?3",
            rusqlite::params![blob, store.vault.tag(c.id.as_bytes()), at],
        )
        .unwrap();
}

fn key_holder(fx: &Fixture) -> Store {
    Store::open_with(fx.dir.path(), &fx.keys, OnTampering::Continue).unwrap()
}

#[test]
fn a_flipped_byte_in_sealed_content_is_found_at_open_and_by_verify() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    flip(&fx, 8, "content", 30);
    assert!(
        tampered(&fx)
            .faults
            .contains(&StoreFault::Unreadable { seq: 8 })
    );
    let full = full_report(&fx);
    assert_eq!(full.faults, vec![StoreFault::Unreadable { seq: 8 }]);
    let store = key_holder(&fx);
    assert!(matches!(
        store.list(&Query::new()),
        Err(StoreError::Unreadable { what }) if what.contains("record 8")
    ));
}

#[test]
fn a_body_altered_by_someone_holding_the_data_key_is_found() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    {
        let store = key_holder(&fx);
        let mut c = read_content(&store, 8);
        c.envelope.body[30] ^= 0x01;
        write_content(&store, 8, &c);
    }
    assert!(
        tampered(&fx)
            .faults
            .contains(&StoreFault::IdMismatch { seq: 8 })
    );
    assert!(
        full_report(&fx)
            .faults
            .contains(&StoreFault::IdMismatch { seq: 8 })
    );
}

#[test]
fn a_flipped_signature_byte_is_found() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    {
        let store = key_holder(&fx);
        let mut c = read_content(&store, 9);
        c.envelope.sig[5] ^= 0x01;
        write_content(&store, 9, &c);
    }
    assert!(tampered(&fx).faults.contains(&StoreFault::Invalid {
        seq: 9,
        error: VerifyError::BadSignature
    }));
}

#[test]
fn a_deleted_row_is_reported_with_its_seq() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    fx.raw()
        .execute("DELETE FROM records WHERE seq = 5", [])
        .unwrap();
    assert!(tampered(&fx).faults.contains(&StoreFault::RowsMissing {
        expected: 10,
        found: 9
    }));
    assert!(
        full_report(&fx)
            .faults
            .contains(&StoreFault::Chain(ChainFault::Missing {
                range: SeqRange { first: 5, last: 5 }
            }))
    );
}

#[test]
fn deleting_the_newest_records_leaves_a_gap_not_a_reused_seq() {
    let fx = Fixture::new();
    let saved = fill(&fx.open().unwrap(), 10);
    fx.raw()
        .execute("DELETE FROM records WHERE seq >= 9", [])
        .unwrap();
    let report = tampered(&fx);
    assert!(report.faults.iter().any(|f| matches!(
        f,
        StoreFault::HeadMismatch { expected, .. } if expected.id == saved[9].id
    )));
    let store = Store::open_with(fx.dir.path(), &fx.keys, OnTampering::Continue).unwrap();
    assert!(store.tampering().is_some());
    assert_eq!(store.save(rec("S1", "k")).unwrap().seq, 11);
    assert!(
        store
            .verify()
            .unwrap()
            .faults
            .contains(&StoreFault::Chain(ChainFault::Missing {
                range: SeqRange { first: 9, last: 10 }
            }))
    );
}

#[test]
fn rows_moved_to_other_positions_do_not_decrypt() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    fx.raw()
        .execute_batch(
            "UPDATE records SET seq = -1 WHERE seq = 6;
             UPDATE records SET seq = 6 WHERE seq = 7;
             UPDATE records SET seq = 7 WHERE seq = -1;",
        )
        .unwrap();
    let faults = tampered(&fx).faults;
    assert!(faults.contains(&StoreFault::Unreadable { seq: 6 }));
    assert!(faults.contains(&StoreFault::Unreadable { seq: 7 }));
}

#[test]
fn a_pair_reordered_by_someone_holding_the_data_key_is_found() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 10);
    {
        let store = key_holder(&fx);
        let (six, seven) = (read_content(&store, 6), read_content(&store, 7));
        store
            .conn()
            .unwrap()
            .execute("UPDATE records SET tag = zeroblob(32) WHERE seq = 6", [])
            .unwrap();
        write_content(&store, 7, &six);
        write_content(&store, 6, &seven);
    }
    let faults = tampered(&fx).faults;
    assert!(faults.contains(&StoreFault::SeqMismatch { row: 6, body: 7 }));
    assert!(faults.contains(&StoreFault::Chain(ChainFault::OutOfOrder {
        seq: 6,
        after: 7
    })));
}

#[test]
fn an_edited_index_column_is_found() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 3);
    fx.raw()
        .execute("UPDATE records SET station = 'ELSEWHERE' WHERE seq = 2", [])
        .unwrap();
    assert!(tampered(&fx).faults.contains(&StoreFault::ColumnMismatch {
        seq: 2,
        column: "station".into()
    }));
}

/// Opening checks only the newest records in full (so it stays fast on a
/// million); older alterations are found by `verify`.
#[test]
fn old_alterations_are_left_to_the_full_check() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let news: Vec<_> = (0..integrity::QUICK_WINDOW + 10)
        .map(|_| rec("S", "k"))
        .collect();
    store.save_all(&news).unwrap();
    drop(store);
    flip(&fx, 3, "content", 40);
    let store = fx.open().expect("quick check does not reach seq 3");
    assert_eq!(
        store.verify().unwrap().faults,
        vec![StoreFault::Unreadable { seq: 3 }],
        "one unreadable row, and no broken link reported after it"
    );
}

#[test]
fn records_carry_the_enrollment_org_and_the_server_clock_across_reopening() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let before = store.save(rec("S1", "k")).unwrap();
    let enrollment = Enrollment {
        url: "https://127.0.0.1:8443".into(),
        tls_sha256: crate::record::Sha256Digest::of(b"cert"),
        coordinator: crate::identity::SigningKey::generate()
            .unwrap()
            .public_key(),
        org: "org-kz".into(),
        device: store.device_id().clone(),
        stations: vec!["S1".into()],
        priority_stations: Vec::new(),
        seal_key: None,
        witnesses: Vec::new(),
        sms_number: None,
    };
    store.set_enrollment(&enrollment).unwrap();
    let after = crate::record::Sha256Digest::of(b"receipt");
    store.set_clock(-1500, Some(after)).unwrap();
    drop(store);
    let store = fx.open().unwrap();
    assert_eq!(store.enrollment(), Some(enrollment));
    let saved = store.save(rec("S1", "k")).unwrap();
    let body = |id| -> crate::record::Body {
        serde_json::from_slice(&store.get(&id).unwrap().unwrap().envelope.body).unwrap()
    };
    assert_eq!(body(before.id).org, None);
    let b = body(saved.id);
    assert_eq!(b.org.as_deref(), Some("org-kz"));
    assert_eq!(b.clock.offset_ms, Some(-1500));
    assert_eq!(b.clock.after, Some(after));
}

#[test]
fn published_forms_are_kept_by_version_and_bad_ones_store_nothing() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let shipped = include_str!("../../forms/access.json");
    let mut v2: serde_json::Value = serde_json::from_str(shipped).unwrap();
    v2["version"] = serde_json::json!(2);
    let v2 = v2.to_string();
    let bad = r#"{"format": 1, "id": "x"}"#.to_string();
    assert!(matches!(
        store.add_forms(&[v2.clone(), bad]),
        Err(StoreError::Form(_))
    ));
    assert_eq!(
        store.form("access", None).unwrap().unwrap().version,
        1,
        "nothing stored"
    );
    assert_eq!(store.add_forms(std::slice::from_ref(&v2)).unwrap(), 1);
    assert_eq!(
        store.add_forms(&[v2]).unwrap(),
        0,
        "a version is stored once"
    );
    assert_eq!(store.form("access", None).unwrap().unwrap().version, 2);
    assert_eq!(store.form("access", Some(1)).unwrap().unwrap().version, 1);
    assert!(store.form("access", Some(3)).unwrap().is_none());
    let versions: Vec<u32> = store
        .forms()
        .unwrap()
        .iter()
        .filter(|f| f.id == "access")
        .map(|f| f.version)
        .collect();
    assert_eq!(versions, [1, 2]);
}

/// Every file SQLite may keep beside the database (main, WAL, shared
/// memory, rollback journal), read raw, with a found marker's file named.
pub(crate) fn files_containing(dir: &std::path::Path, marker: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(marker.len()).any(|w| w == marker) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn what_was_observed_is_not_readable_in_the_database_files() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let marker = "MARKER-b1e55ed-ballot-stuffing";
    let new = NewRecord::builder("KZ-ALA-0042", "incident", 1, "incident-marker-kind")
        .payload_json(format!(r#"{{"note": "{marker}"}}"#))
        .build()
        .unwrap();
    let saved = store.save(new).unwrap();
    store
        .apply_receipt(
            format!("receipt naming {marker}").as_bytes(),
            &[],
            &[refusal(
                saved.id,
                RejectReason::WrongOrg,
                &format!("rejected because {marker}"),
            )],
        )
        .unwrap();
    let coordinator = SigningKey::generate().unwrap().public_key();
    store
        .set_enrollment(&Enrollment {
            url: "https://coordinator-marker.example:8443".into(),
            tls_sha256: crate::record::Sha256Digest::of(b"cert"),
            coordinator,
            org: "org-marker-golos".into(),
            device: store.device_id().clone(),
            stations: vec!["KZ-ALA-0042".into()],
            priority_stations: Vec::new(),
            seal_key: None,
            witnesses: Vec::new(),
            sms_number: None,
        })
        .unwrap();
    let id_text = saved.id.to_string();
    let markers: [&[u8]; 5] = [
        marker.as_bytes(),
        b"incident-marker-kind",
        b"coordinator-marker",
        b"org-marker-golos",
        id_text.as_bytes(),
    ];
    let check = |when: &str| {
        for m in markers {
            let m = m.to_vec();
            assert_eq!(
                files_containing(fx.dir.path(), &m),
                Vec::<String>::new(),
                "{} readable {when}",
                String::from_utf8_lossy(&m)
            );
        }
        assert!(
            files_containing(fx.dir.path(), saved.id.as_bytes()).is_empty(),
            "the raw record id is readable {when}"
        );
    };
    check("while the store is open (write-ahead log)");
    // The sealed copy still reads back in full through the store.
    let back = store.get(&saved.id).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&back.envelope.body).contains(marker));
    assert_eq!(back.kind, "incident-marker-kind");
    assert!(
        matches!(back.state, DeliveryState::Rejected { ref detail, .. } if detail.contains(marker))
    );
    drop(store);
    check("after closing");
    let store = fx.open().unwrap();
    assert_eq!(store.enrollment().unwrap().org, "org-marker-golos");
    assert!(
        !files_containing(fx.dir.path(), b"KZ-ALA-0042").is_empty(),
        "the station stays readable, by design"
    );
}

#[test]
fn a_lost_data_key_is_refused_and_the_records_are_left_alone() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 3);
    let before = std::fs::read(fx.dir.path().join(DB_FILE)).unwrap().len();
    fx.raw()
        .execute("DELETE FROM meta WHERE key = 'data_key'", [])
        .unwrap();
    assert!(matches!(fx.open(), Err(StoreError::KeyMissing)));
    let rows: i64 = fx
        .raw()
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "nothing was deleted or replaced");
    assert!(std::fs::read(fx.dir.path().join(DB_FILE)).unwrap().len() >= before);
}

#[test]
fn rekeying_reseals_everything_and_the_old_keys_open_nothing() {
    let fx = Fixture::new();
    let mut store = fx.open().unwrap();
    let saved = fill(&store, 5);
    store
        .apply_receipt(
            b"receipt",
            &[saved[0].id],
            &[refusal(saved[1].id, RejectReason::Quarantined, "late")],
        )
        .unwrap();
    let before: Vec<Vec<u8>> = fx
        .raw()
        .prepare("SELECT content FROM records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let listed = store.list(&Query::new()).unwrap();
    let new_keys = FileKeyStore::open_or_create(fx.dir.path().join("new.kek")).unwrap();
    store.rekey(&new_keys).unwrap();
    assert_eq!(store.list(&Query::new()).unwrap(), listed);
    assert_eq!(store.save(rec("S1", "k")).unwrap().seq, 6);
    drop(store);
    for old in &before {
        assert!(
            files_containing(fx.dir.path(), old).is_empty(),
            "an old ciphertext survived the rekey"
        );
    }
    assert!(matches!(fx.open(), Err(StoreError::KeyUnavailable(_))));
    let store = Store::open(fx.dir.path(), &new_keys).unwrap();
    assert!(store.verify().unwrap().is_intact());
    assert_eq!(store.receipts().unwrap()[0].bytes, b"receipt");
    assert_eq!(&store.list(&Query::new()).unwrap()[..5], &listed[..]);
}

fn enroll_with_seal_key(store: &Store) -> crate::seal::OrgSecretKey {
    let org = crate::seal::OrgSecretKey::generate();
    store
        .set_enrollment(&Enrollment {
            url: "https://127.0.0.1:8443".into(),
            tls_sha256: crate::record::Sha256Digest::of(b"cert"),
            coordinator: SigningKey::generate().unwrap().public_key(),
            org: "org".into(),
            device: store.device_id().clone(),
            stations: vec!["KZ-WIPE-STATION".into()],
            priority_stations: Vec::new(),
            seal_key: Some(org.public_key()),
            witnesses: Vec::new(),
            sms_number: None,
        })
        .unwrap();
    org
}

fn incident(note: &str) -> NewRecord {
    NewRecord::builder("KZ-WIPE-STATION", "incident", 1, "incident")
        .payload(serde_json::json!({"type": "ballot_stuffing", "time": "10:00", "note": note}))
        .build()
        .unwrap()
}

#[test]
fn a_wipe_leaves_nothing_readable_and_opening_says_so() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    enroll_with_seal_key(&store);
    let news: Vec<_> = (0..500)
        .map(|i| {
            NewRecord::builder("KZ-WIPE-STATION", "voting", 1, "checklist")
                .payload(serde_json::json!({"note": format!("WIPE-MARKER-{i}")}))
                .build()
                .unwrap()
        })
        .collect();
    store.save_all(&news).unwrap();
    store.save(incident("WIPE-MARKER-sealed")).unwrap();
    // Before: the station is readable by design.
    assert!(!files_containing(fx.dir.path(), b"KZ-WIPE-STATION").is_empty());

    let summary = store.wipe(&fx.keys, false).unwrap();
    assert_eq!(summary.sealed_waiting, 0);
    for marker in [
        &b"KZ-WIPE-STATION"[..],
        b"WIPE-MARKER",
        b"checklist",
        b"incident",
    ] {
        assert_eq!(
            files_containing(fx.dir.path(), marker),
            Vec::<String>::new(),
            "{} survived the wipe",
            String::from_utf8_lossy(marker)
        );
    }
    assert!(
        !fx.dir.path().join("device.kek").exists(),
        "the key is destroyed"
    );
    assert!(!fx.dir.path().join(DB_FILE).exists());
    assert!(matches!(store.counts(), Err(StoreError::Wiped { .. })));
    assert!(matches!(
        store.save(rec("S", "k")),
        Err(StoreError::Wiped { .. })
    ));
    drop(store);
    let keys = FileKeyStore::open_or_create(fx.dir.path().join("device.kek")).unwrap();
    match Store::open(fx.dir.path(), &keys) {
        Err(StoreError::Wiped {
            wiped_at_ms,
            sealed_waiting: 0,
        }) => assert_eq!(wiped_at_ms, summary.wiped_at_ms),
        other => panic!("expected Wiped, got {other:?}"),
    }
    Store::start_over(fx.dir.path(), false).unwrap();
    let fresh = Store::open(fx.dir.path(), &keys).unwrap();
    assert_eq!(fresh.counts().unwrap().total(), 0, "a new, empty store");
}

#[test]
fn a_wipe_can_keep_the_sealed_outbox_unreadable_but_deliverable() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let org = enroll_with_seal_key(&store);
    fill(&store, 3);
    let first = store.save(incident("SEALED-WIPE-MARKER one")).unwrap();
    let second = store.save(incident("SEALED-WIPE-MARKER two")).unwrap();
    let delivered = store.save(incident("SEALED-WIPE-MARKER three")).unwrap();
    store.apply_receipt(b"r", &[delivered.id], &[]).unwrap();
    let summary = store.wipe(&fx.keys, true).unwrap();
    assert_eq!(summary.sealed_waiting, 2, "only undelivered sealed records");
    assert!(files_containing(fx.dir.path(), b"SEALED-WIPE-MARKER").is_empty());
    assert!(files_containing(fx.dir.path(), b"KZ-WIPE-STATION").is_empty());

    let outbox = SealedOutbox::open(fx.dir.path()).unwrap().unwrap();
    let pending = outbox.pending().unwrap();
    assert_eq!(
        pending.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![first.seq, second.seq]
    );
    // Only the organisation can open them; what it opens is the signed record.
    let env = pending[0].open(&org).unwrap();
    assert_eq!(env.id(), first.id);
    assert!(String::from_utf8_lossy(&env.body).contains("SEALED-WIPE-MARKER one"));
    drop(outbox);

    assert!(matches!(
        Store::open(fx.dir.path(), &fx.keys),
        Err(StoreError::Wiped {
            sealed_waiting: 2,
            ..
        })
    ));
    assert!(
        matches!(
            Store::start_over(fx.dir.path(), false),
            Err(StoreError::Wiped { .. })
        ),
        "starting over would lose the sealed outbox"
    );
    SealedOutbox::open(fx.dir.path())
        .unwrap()
        .unwrap()
        .settle(&[first.seq, second.seq])
        .unwrap();
    Store::start_over(fx.dir.path(), false).unwrap();
}

#[test]
fn an_interrupted_wipe_is_finished_at_the_next_open() {
    let fx = Fixture::new();
    fill(&fx.open().unwrap(), 5);
    // The mark is written first; a crash before the files are removed
    // leaves both.
    wipe::tests_support::write_mark_only(fx.dir.path());
    assert!(fx.dir.path().join(DB_FILE).exists());
    assert!(matches!(fx.open(), Err(StoreError::Wiped { .. })));
    assert!(!fx.dir.path().join(DB_FILE).exists());
    assert!(!fx.dir.path().join("device.kek").exists());
}

fn refusal(id: RecordId, reason: RejectReason, detail: &str) -> Refusal {
    Refusal {
        id,
        reason,
        detail: detail.into(),
    }
}

#[test]
fn log_faults_keep_the_first_and_the_newest_sealed_across_reopening() {
    let dir = Fixture::new();
    let store = dir.open().unwrap();
    let key = crate::identity::SigningKey::generate().unwrap();
    let receipt = |n: u64| crate::protocol::Signed::sign(b"test\0", &n, &key);
    assert!(store.log_anchor().unwrap().is_none());
    store.set_log_anchor(&receipt(0)).unwrap();
    for n in 1..=40 {
        store
            .add_log_fault(LogFault {
                detected_at_ms: n as i64,
                held: Some(receipt(0)),
                answered: receipt(n),
                proofs: None,
                problem: format!("fault {n}"),
            })
            .unwrap();
    }
    drop(store);
    let store = dir.open().unwrap();
    assert_eq!(store.log_anchor().unwrap(), Some(receipt(0)));
    let kept: Vec<i64> = store
        .log_faults()
        .unwrap()
        .iter()
        .map(|f| f.detected_at_ms)
        .collect();
    let mut expected = vec![1];
    expected.extend(10..=40);
    assert_eq!(kept, expected);
    // Sealed: no problem text in the database or its write-ahead log.
    for file in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
        let raw = std::fs::read(dir.dir.path().join(file)).unwrap_or_default();
        assert!(!raw.windows(7).any(|w| w == b"fault 1"));
    }
}

#[path = "relay_tests.rs"]
mod relay;

#[path = "sms_tests.rs"]
mod sms;
