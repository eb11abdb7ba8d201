//! Databases written by earlier releases open with today's code. Each
//! fixture under `core/tests/fixtures/store-vN` was written by the code of
//! schema version N (`observer demo`) and is never regenerated.

use observer_core::identity::FileKeyStore;
use observer_core::store::{Query, SCHEMA_VERSION, Store};

fn open_fixture(name: &str) -> (tempfile::TempDir, Store) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    for f in ["observer.db", "device.kek"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let keys = FileKeyStore::open_or_create(dir.path().join("device.kek")).unwrap();
    let store = Store::open(dir.path(), &keys).unwrap();
    (dir, store)
}

#[test]
fn a_version_1_store_with_records_migrates_and_keeps_its_chain() {
    let (dir, store) = open_fixture("store-v1");
    let version: u32 = rusqlite::Connection::open(dir.path().join("observer.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checked, 7);
    let results = store.list(&Query::new().kind("results")).unwrap();
    assert_eq!(results.len(), 2, "the demo's protocol and its correction");
    // What version 2 added works on the migrated store.
    assert!(store.forms().unwrap().iter().any(|f| f.id == "counting"));
    let saved = store
        .save(
            observer_core::record::NewRecord::builder("KZ-ALA-0042", "voting", 1, "checklist")
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(saved.seq, 8, "the chain continues from the old head");
    drop(store);
    // Version 3 sealed what version 1 kept readable, and left no readable
    // copy in the database, its write-ahead log or freed pages.
    for marker in [&b"ballot_stuffing"[..], b"ballots_received", b"\"payload\""] {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{} still readable in {}",
                String::from_utf8_lossy(marker),
                path.display()
            );
        }
    }
}
