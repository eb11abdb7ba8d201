//! One conformance suite for the `Storage` trait: the stories every backend
//! must tell the same way, through the trait alone. A backend is done when
//! every story passes on it: the embedded SQLite file, and a real
//! PostgreSQL server (a private cluster this test starts on loopback).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use observer_core::identity::SigningKey;
use observer_core::merkle::{
    Frontier, NodeId, ProofPlan, consistency_proof, inclusion_proof, leaf_hash,
};
use observer_core::protocol::Heartbeat;
use observer_core::record::{
    ChainPosition, NewRecord, RecordId, Sha256Digest, VerifiedRecord, sign_record, verify_envelope,
};
use observer_server::storage::postgres::{DatabaseUrl, PostgresStorage};
use observer_server::storage::sqlite::SqliteStorage;
use observer_server::storage::{
    FormCheck, Incoming, IngestBatch, NewToken, OfficialResult, OfficialVersion, Outcome,
    PublishedForm, RecordFilter, Storage, StorageError, TokenProblem,
};

/// A backend under test: a fresh, empty store, and the same store opened
/// again (what a restart or another node sees).
trait Backend {
    fn fresh(&self) -> Arc<dyn Storage>;
    fn reopen(&self) -> Arc<dyn Storage> {
        self.open().unwrap()
    }
    /// The same store opened again, its refusal returned.
    fn open(&self) -> Result<Arc<dyn Storage>, StorageError>;
    /// Whether SQL for it is PostgreSQL's (else SQLite's).
    fn postgres(&self) -> bool;
    /// Runs SQL on the store behind the storage's back (what an upgrade
    /// from an older version, or someone with the disk, leaves).
    fn sql(&self, statement: &str);
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        Self { _dir: dir, path }
    }
}

impl Backend for Sqlite {
    fn fresh(&self) -> Arc<dyn Storage> {
        let _ = std::fs::remove_file(&self.path);
        Arc::new(SqliteStorage::open(&self.path).unwrap())
    }
    fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        Ok(Arc::new(SqliteStorage::open(&self.path)?))
    }
    fn postgres(&self) -> bool {
        false
    }
    fn sql(&self, statement: &str) {
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .execute_batch(statement)
            .unwrap();
    }
}

/// A fresh database on a private cluster for each story.
struct Postgres {
    cluster: observer_testkit::PgCluster,
    url: std::sync::Mutex<Option<(DatabaseUrl, String)>>,
}

impl Postgres {
    fn new() -> Self {
        Self {
            cluster: observer_testkit::PgCluster::start(),
            url: Default::default(),
        }
    }
}

impl Backend for Postgres {
    fn fresh(&self) -> Arc<dyn Storage> {
        let name = self.cluster.create_database();
        let url = DatabaseUrl::parse(&self.cluster.url(&name)).unwrap();
        *self.url.lock().unwrap() = Some((url.clone(), name));
        Arc::new(PostgresStorage::open(&url).unwrap())
    }
    fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        let (url, _) = self.url.lock().unwrap().clone().unwrap();
        Ok(Arc::new(PostgresStorage::open(&url)?))
    }
    fn postgres(&self) -> bool {
        true
    }
    fn sql(&self, statement: &str) {
        let (_, name) = self.url.lock().unwrap().clone().unwrap();
        self.cluster.psql(&name, statement);
    }
}

const NOW: i64 = 1_780_000_000_000;

fn token(s: &dyn Storage, text: &str, stations: &[&str], expires_at_ms: i64) -> Sha256Digest {
    let hash = Sha256Digest::of(text.as_bytes());
    s.add_token(
        &NewToken {
            hash,
            stations: stations.iter().map(|x| x.to_string()).collect(),
            name: Some("Aigerim".into()),
            expires_at_ms,
        },
        NOW,
    )
    .unwrap();
    hash
}

/// An enrolled phone's key.
fn enrolled(s: &dyn Storage, text: &str) -> SigningKey {
    let key = SigningKey::generate().unwrap();
    let t = token(s, text, &["S-1"], NOW + 1000);
    s.enroll(&t, &key.public_key(), None, NOW).unwrap().unwrap();
    key
}

/// Records 1..=n of `key`'s chain.
fn chain(key: &SigningKey, n: u64, note: &str) -> Vec<VerifiedRecord> {
    let mut pos = ChainPosition::first(key);
    let mut out = Vec::new();
    for i in 0..n {
        let new = NewRecord::builder("S-1", "voting", 1, "checklist")
            .payload(serde_json::json!({ "n": i, "note": note }))
            .build()
            .unwrap();
        let env = sign_record(&new, &pos, key).unwrap();
        pos = pos.after(env.id());
        out.push(verify_envelope(&env, &key.public_key()).unwrap());
    }
    out
}

fn incoming(records: &[VerifiedRecord]) -> Vec<Incoming> {
    records
        .iter()
        .map(|r| Incoming {
            record: r.clone(),
            check: FormCheck {
                clean: true,
                json: "{}".into(),
            },
            sealed: None,
        })
        .collect()
}

fn heartbeat(key: &SigningKey, seq: u64, head: Option<RecordId>) -> Heartbeat {
    Heartbeat {
        device: key.public_key().device_id(),
        seq,
        head,
        at_ms: NOW,
    }
}

fn ingest(s: &dyn Storage, key: &SigningKey, records: &[VerifiedRecord]) -> Vec<Outcome> {
    let hb = heartbeat(key, records.last().map_or(0, |r| r.body.seq), None);
    s.ingest(
        &key.public_key().device_id(),
        Some(&hb),
        &incoming(records),
        NOW,
    )
    .unwrap()
    .outcomes
}

fn tokens_work_once_and_say_why_not(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = SigningKey::generate().unwrap();
    let t = token(s, "one", &["S-1", "S-2"], NOW + 1000);
    let info = s.enroll(&t, &key.public_key(), None, NOW).unwrap().unwrap();
    assert_eq!(info.id, key.public_key().device_id());
    assert_eq!(info.stations, vec!["S-1", "S-2"]);
    assert_eq!(info.name.as_deref(), Some("Aigerim"));
    let other = SigningKey::generate().unwrap();
    let again = s.enroll(&t, &other.public_key(), None, NOW).unwrap();
    assert_eq!(again.unwrap_err(), TokenProblem::Used);
    let unknown = Sha256Digest::of(b"never issued");
    assert_eq!(
        s.enroll(&unknown, &other.public_key(), None, NOW)
            .unwrap()
            .unwrap_err(),
        TokenProblem::Unknown
    );
    let old = token(s, "old", &["S-1"], NOW - 1);
    assert_eq!(
        s.enroll(&old, &other.public_key(), None, NOW)
            .unwrap()
            .unwrap_err(),
        TokenProblem::Expired
    );
    // The codes are listed (never their text): who used which, which expired.
    let codes = s.codes(10).unwrap();
    assert_eq!(codes.len(), 2);
    let used = codes.iter().find(|c| c.used_at_ms.is_some()).unwrap();
    assert_eq!(used.device.as_deref(), Some(info.id.as_str()));
    assert_eq!(used.stations, vec!["S-1", "S-2"]);
    assert_eq!(used.name.as_deref(), Some("Aigerim"));
    let old_code = codes.iter().find(|c| c.used_at_ms.is_none()).unwrap();
    assert_eq!(old_code.expires_at_ms, NOW - 1);
    assert_eq!(s.codes(1).unwrap().len(), 1);
    // The same key with a new code: its stations are the new code's.
    let t2 = token(s, "two", &["S-9"], NOW + 1000);
    let re = s
        .enroll(&t2, &key.public_key(), None, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(re.stations, vec!["S-9"]);
    // A revoked key is refused and the code stays unused for someone else.
    assert!(s.revoke(&info.id, NOW).unwrap());
    let t3 = token(s, "three", &["S-1"], NOW + 1000);
    assert_eq!(
        s.enroll(&t3, &key.public_key(), None, NOW)
            .unwrap()
            .unwrap_err(),
        TokenProblem::DeviceRevoked
    );
    assert!(
        s.enroll(&t3, &other.public_key(), None, NOW)
            .unwrap()
            .is_ok()
    );
    assert!(!s.revoke(&stranger(), NOW).unwrap());
}

/// A device id that nobody enrolled.
fn stranger() -> observer_core::identity::DeviceId {
    SigningKey::generate().unwrap().public_key().device_id()
}

fn records_are_stored_once_and_forks_kept_aside(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "t");
    let records = chain(&key, 5, "first");
    let first = ingest(s, &key, &records);
    let indexes: Vec<u64> = first
        .iter()
        .map(|o| match o {
            Outcome::Accepted { index } => *index,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4], "gap-free leaf indexes");
    // A retry: the same records are already held at the same indexes.
    let again = ingest(s, &key, &records);
    assert_eq!(
        again,
        indexes
            .iter()
            .map(|&index| Outcome::Already { index })
            .collect::<Vec<_>>()
    );
    // Another record at a held seq (the phone forked): kept aside, named.
    let fork = chain(&key, 2, "other");
    let forked = ingest(s, &key, &fork[1..]);
    assert_eq!(
        forked,
        vec![Outcome::Conflict {
            existing: records[1].id
        }]
    );
    let view = &s.devices().unwrap()[0];
    assert_eq!((view.records, view.contiguous, view.conflicts), (5, 5, 1));
    assert_eq!(s.totals().unwrap().records, 5);
}

fn the_log_is_the_records_and_survives_a_reopen(b: &dyn Backend) {
    let s = b.fresh();
    let key = enrolled(s.as_ref(), "t");
    let records = chain(&key, 7, "log");
    ingest(s.as_ref(), &key, &records[..3]);
    ingest(s.as_ref(), &key, &records[3..]);
    let mut frontier = Frontier::new();
    for r in &records {
        frontier.push(leaf_hash(r.id.as_bytes()));
    }
    let head = s.tree_head().unwrap();
    assert_eq!((head.size, head.root), (7, frontier.root()));
    drop(s);
    let s = b.reopen();
    assert_eq!(s.tree_head().unwrap(), head);
    let mut leaves = Vec::new();
    s.log_leaves(&mut |i, id| {
        leaves.push((i, id));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        leaves,
        records
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64, r.id))
            .collect::<Vec<_>>()
    );
    let mut rows = Vec::new();
    s.records(&RecordFilter::default(), &mut |r| {
        rows.push((r.index, r.seq, r.body.clone()));
        Ok(())
    })
    .unwrap();
    assert_eq!(rows.len(), 7);
    assert!(
        rows.iter()
            .zip(&records)
            .all(|((i, seq, body), r)| *seq == r.body.seq
                && *body == r.envelope.body
                && *i == seq - 1)
    );
}

fn heartbeats_name_what_is_missing(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "t");
    let records = chain(&key, 8, "gaps");
    // Records 6 and 7 never arrive; the heartbeat says 10 exist.
    let held: Vec<_> = records[..5].iter().chain(&records[7..]).cloned().collect();
    let device = key.public_key().device_id();
    s.ingest(
        &device,
        Some(&heartbeat(
            &key,
            10,
            Some(RecordId::of(b"the tenth record")),
        )),
        &incoming(&held),
        NOW,
    )
    .unwrap();
    let view = &s.devices().unwrap()[0];
    assert_eq!(view.records, 6);
    assert_eq!(view.contiguous, 5);
    let missing: Vec<(u64, u64)> = view.missing().map(|r| (r.first, r.last)).collect();
    assert_eq!(missing, vec![(6, 7), (9, 10)]);
    assert_eq!(view.missing_count(), 4);
    assert_eq!(view.info.last_contact_ms, Some(NOW));
}

fn revocation_keeps_what_came_before_and_quarantines_the_rest(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "t");
    let records = chain(&key, 4, "rev");
    ingest(s, &key, &records[..2]);
    let device = key.public_key().device_id();
    assert!(s.revoke(&device, NOW).unwrap());
    let after = ingest(s, &key, &records);
    assert!(matches!(after[0], Outcome::Already { .. }));
    assert!(matches!(after[1], Outcome::Already { .. }));
    assert_eq!(after[2..], [Outcome::Quarantined, Outcome::Quarantined]);
    let info = s.device(&device).unwrap().unwrap();
    assert_eq!(info.revoked_at_ms, Some(NOW));
    let view = &s.devices().unwrap()[0];
    assert_eq!((view.records, view.quarantined), (2, 2));
    assert_eq!(s.totals().unwrap().revoked, 1);
}

fn assignments_forms_official_results_and_meta(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "t");
    let device = key.public_key().device_id();
    assert!(s.assign(&device, &["S-7".into(), "S-8".into()]).unwrap());
    assert_eq!(
        s.device(&device).unwrap().unwrap().stations,
        vec!["S-7", "S-8"]
    );
    assert!(!s.assign(&stranger(), &["S-1".into()]).unwrap());

    let form = |id: &str, version: u32| PublishedForm {
        id: id.into(),
        version,
        definition: format!("{{\"id\":\"{id}\",\"version\":{version}}}"),
    };
    assert!(s.publish_form(&form("b", 2), NOW).unwrap());
    assert!(s.publish_form(&form("a", 1), NOW).unwrap());
    assert!(s.publish_form(&form("b", 1), NOW).unwrap());
    assert!(
        !s.publish_form(&form("b", 2), NOW).unwrap(),
        "never changed"
    );
    let ids: Vec<(String, u32)> = s
        .forms()
        .unwrap()
        .into_iter()
        .map(|f| (f.id, f.version))
        .collect();
    assert_eq!(ids, vec![("a".into(), 1), ("b".into(), 1), ("b".into(), 2)]);
    assert_eq!(s.form("b", 1).unwrap(), Some(form("b", 1)));
    assert_eq!(s.form("b", 3).unwrap(), None);

    let result = |station: &str, cast: i64| OfficialResult {
        station: station.into(),
        region: Some("Almaty".into()),
        figures: BTreeMap::from([("ballots_cast".to_string(), cast)]),
    };
    assert!(s.official().unwrap().is_empty());
    assert!(s.official_versions().unwrap().is_empty());
    let version = |n: u32, digest: Option<Sha256Digest>| OfficialVersion {
        version: n,
        imported_at_ms: NOW + i64::from(n),
        imported_by: format!("cli:user{n}"),
        source: format!("результаты-{n}.csv"),
        digest,
        stations: 2,
        added: 1,
        changed: 2,
        removed: 3,
    };
    let v1 = version(1, Some(Sha256Digest::of(b"first file")));
    let v2 = version(2, None);
    let first = [result("S-2", 10), result("S-1", 20)];
    let second = [result("S-3", 30), result("S-1", 21)];
    assert!(s.import_official(None, &v1, &first).unwrap());
    // An import that read an older newest version stores nothing.
    assert!(!s.import_official(None, &v2, &second).unwrap());
    assert!(s.import_official(Some(1), &v2, &second).unwrap());
    assert!(
        !s.import_official(Some(1), &version(3, None), &first)
            .unwrap()
    );
    let s = b.reopen();
    assert_eq!(
        s.official().unwrap(),
        vec![result("S-1", 21), result("S-3", 30)],
        "the newest version is the official result"
    );
    assert_eq!(
        s.official_results(1).unwrap(),
        vec![result("S-1", 20), result("S-2", 10)],
        "and the one it replaced is kept whole"
    );
    assert!(s.official_results(3).unwrap().is_empty());
    assert_eq!(s.official_versions().unwrap(), vec![v1, v2]);

    s.set_metas(&[("k1", vec![1]), ("k2", vec![2, 2])]).unwrap();
    s.set_metas(&[("k1", vec![9])]).unwrap();
    assert_eq!(s.meta("k1").unwrap(), Some(vec![9]));
    assert_eq!(s.meta("k2").unwrap(), Some(vec![2, 2]));
    assert_eq!(s.meta("nope").unwrap(), None);
    s.ping().unwrap();
}

fn the_registry_keeps_every_version_whole(b: &dyn Backend) {
    use observer_server::registry::{Location, RegistryVersion, Station, digest};
    let s = b.fresh();
    assert!(s.registry_versions().unwrap().is_empty());
    let station = |id: &str, voters: u64, location: Option<Location>| Station {
        id: id.into(),
        name: format!("Школа {id}"),
        region: "Алматы".into(),
        district: "Медеу".into(),
        address: "Абая 1, \"корпус\" 2".into(),
        registered_voters: voters,
        location,
    };
    let v1_stations = vec![
        station("S-1", 1500, None),
        station(
            "S-2",
            900,
            Some(Location {
                latitude: 43.238949,
                longitude: 76.889709,
            }),
        ),
    ];
    let version = |n: u32, stations: &[Station]| RegistryVersion {
        version: n,
        imported_at_ms: NOW + i64::from(n),
        digest: digest(stations),
        stations: stations.len() as u64,
        added: 1,
        changed: 2,
        removed: 3,
    };
    let v1 = version(1, &v1_stations);
    assert!(s.import_registry(None, &v1, &v1_stations).unwrap());
    // An import that read an older newest version stores nothing.
    let v2_stations = vec![station("S-2", 950, None), station("S-3", 10, None)];
    let v2 = version(2, &v2_stations);
    assert!(!s.import_registry(None, &v2, &v2_stations).unwrap());
    assert!(s.import_registry(Some(1), &v2, &v2_stations).unwrap());
    assert!(
        !s.import_registry(Some(1), &version(3, &v1_stations), &v1_stations)
            .unwrap()
    );

    let s = b.reopen();
    assert_eq!(s.registry_versions().unwrap(), vec![v1, v2]);
    assert_eq!(s.registry_stations(1).unwrap(), v1_stations);
    assert_eq!(s.registry_stations(2).unwrap(), v2_stations);
    assert!(s.registry_stations(3).unwrap().is_empty());
}

fn the_audit_log_is_one_signed_chain_from_every_handle(b: &dyn Backend) {
    use observer_server::audit::{ChainCheck, Draft, append};
    let s = b.fresh();
    let key = SigningKey::generate().unwrap();
    let draft = |action: &'static str, subject: &str| Draft {
        actor: "cli:aigerim".into(),
        action,
        subject: subject.into(),
        detail: serde_json::json!({"stations": ["S-1"], "note": "Алматы"}),
    };
    let first = append(s.as_ref(), &key, draft("code.issued", "S-1"), NOW).unwrap();
    assert_eq!(first.seq, 1);
    // Several handles (nodes, consoles) append at once: one chain.
    std::thread::scope(|scope| {
        for h in 0..4 {
            let handle = b.reopen();
            let key = &key;
            scope.spawn(move || {
                for i in 0..10 {
                    append(
                        handle.as_ref(),
                        key,
                        draft("device.assigned", &format!("{h}-{i}")),
                        NOW + i,
                    )
                    .unwrap();
                }
            });
        }
    });
    let s = b.reopen();
    let page = s.audit_entries(0, 15).unwrap();
    assert_eq!(page.len(), 15);
    assert_eq!(page[0], first);
    let rest = s.audit_entries(15, 100).unwrap();
    assert_eq!(rest.len(), 26);
    assert_eq!(rest[0].seq, 16);
    let pk = key.public_key();
    let mut check = ChainCheck::new(&pk);
    for e in page.iter().chain(&rest) {
        check.check(e);
    }
    assert!(check.faults.is_empty(), "{:?}", check.faults);
    assert_eq!(check.head().unwrap().0, 41);
    assert_eq!(rest.last().unwrap().detail, first.detail);
    assert!(s.audit_entries(41, 10).unwrap().is_empty());
    // The workspace pages backwards from the newest.
    let newest: Vec<u64> = s
        .audit_before(u64::MAX, 5)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(newest, [41, 40, 39, 38, 37]);
    let older = s.audit_before(37, 100).unwrap();
    assert_eq!((older.len(), older[0].seq, older[35].seq), (36, 36, 1));
    assert_eq!(older[35], first);
}

fn accounts_and_sessions_are_kept_alike(b: &dyn Backend) {
    use observer_server::accounts::{Account, Role, SESSION_LIFETIME, Session, SessionToken};
    let s = b.fresh();
    let a = s.account_store();
    let account = |name: &str, role| Account {
        name: name.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        disabled: false,
        created_at_ms: NOW,
        failed_logins: 0,
        last_failed_ms: None,
        last_login_ms: None,
        region: None,
        totp_sealed: None,
        totp_last_step: None,
    };
    assert!(
        a.add_account(&account("bauyrzhan", Role::Verifier))
            .unwrap()
    );
    assert!(a.add_account(&account("aigerim", Role::Admin)).unwrap());
    assert!(
        !a.add_account(&account("aigerim", Role::Analyst)).unwrap(),
        "a name is taken once"
    );
    assert_eq!(
        a.account("aigerim").unwrap().unwrap(),
        account("aigerim", Role::Admin)
    );
    assert_eq!(a.account("nobody").unwrap(), None);
    let names: Vec<String> = a.accounts().unwrap().into_iter().map(|x| x.name).collect();
    assert_eq!(names, ["aigerim", "bauyrzhan"]);

    // Failed sign-ins add up whichever node counts them.
    let other = b.reopen();
    for h in [&s, &other] {
        h.account_store()
            .note_login("aigerim", false, NOW + 1)
            .unwrap();
    }
    let got = a.account("aigerim").unwrap().unwrap();
    assert_eq!((got.failed_logins, got.last_failed_ms), (2, Some(NOW + 1)));
    a.note_login("aigerim", true, NOW + 2).unwrap();
    let got = a.account("aigerim").unwrap().unwrap();
    assert_eq!((got.failed_logins, got.last_login_ms), (0, Some(NOW + 2)));

    // A session made on one node is seen on another, used, and ended.
    let session = |account: &str, at: i64| {
        let t = SessionToken::generate().unwrap();
        let s = Session {
            digest: t.digest(),
            account: account.into(),
            created_at_ms: at,
            last_seen_ms: at,
        };
        (t, s)
    };
    let (t1, s1) = session("aigerim", NOW);
    a.create_session(&s1, NOW).unwrap();
    assert_eq!(
        other.account_store().session(&t1.digest()).unwrap(),
        Some(s1.clone())
    );
    other
        .account_store()
        .touch_session(&t1.digest(), NOW + 10)
        .unwrap();
    a.touch_session(&t1.digest(), NOW + 5).unwrap();
    assert_eq!(
        a.session(&t1.digest()).unwrap().unwrap().last_seen_ms,
        NOW + 10,
        "never back"
    );
    // An expired session is dropped when the next one is made.
    let long_ago = NOW - SESSION_LIFETIME.as_millis() as i64 - 1;
    let (t_old, s_old) = session("bauyrzhan", long_ago);
    a.create_session(&s_old, long_ago).unwrap();
    let (t2, s2) = session("bauyrzhan", NOW);
    a.create_session(&s2, NOW).unwrap();
    assert_eq!(a.session(&t_old.digest()).unwrap(), None);
    assert!(a.session(&t2.digest()).unwrap().is_some());
    // A new password ends the account's sessions; disabling does too.
    assert!(
        a.set_password(
            "aigerim",
            "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA"
        )
        .unwrap()
    );
    assert_eq!(a.session(&t1.digest()).unwrap(), None);
    assert!(
        a.account("aigerim")
            .unwrap()
            .unwrap()
            .password_hash
            .contains("bmV3aGFzaA")
    );
    assert!(a.set_disabled("bauyrzhan", true).unwrap());
    assert_eq!(a.session(&t2.digest()).unwrap(), None);
    assert!(a.account("bauyrzhan").unwrap().unwrap().disabled);
    assert!(a.set_disabled("bauyrzhan", false).unwrap());
    assert!(!a.account("bauyrzhan").unwrap().unwrap().disabled);
    assert!(!a.set_password("ghost", "x").unwrap());
    assert!(!a.set_disabled("ghost", true).unwrap());
    // Logout.
    let (t3, s3) = session("aigerim", NOW);
    a.create_session(&s3, NOW).unwrap();
    other.account_store().end_session(&t3.digest()).unwrap();
    assert_eq!(a.session(&t3.digest()).unwrap(), None);

    // A regional coordinator keeps its region.
    let coordinator = Account {
        region: Some("Алматы".into()),
        ..account("daniyar", Role::Coordinator)
    };
    assert!(a.add_account(&coordinator).unwrap());
    assert_eq!(a.account("daniyar").unwrap().unwrap(), coordinator);

    // A second factor: set, each step used once across nodes, removed.
    assert!(a.set_totp("aigerim", Some(b"sealed key")).unwrap());
    let got = a.account("aigerim").unwrap().unwrap();
    assert_eq!(
        (got.totp_sealed.as_deref(), got.totp_last_step),
        (Some(&b"sealed key"[..]), None)
    );
    assert!(a.use_totp_step("aigerim", 100).unwrap());
    assert!(
        !other.account_store().use_totp_step("aigerim", 100).unwrap(),
        "a replay"
    );
    assert!(!a.use_totp_step("aigerim", 99).unwrap(), "an older step");
    assert!(other.account_store().use_totp_step("aigerim", 101).unwrap());
    assert_eq!(
        a.account("aigerim").unwrap().unwrap().totp_last_step,
        Some(101)
    );
    assert!(a.set_totp("aigerim", None).unwrap());
    let got = a.account("aigerim").unwrap().unwrap();
    assert_eq!((got.totp_sealed, got.totp_last_step), (None, None));
    assert!(!a.set_totp("ghost", None).unwrap());
}

fn media_are_answered_only_to_the_device_whose_records_name_them(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "a");
    let other = enrolled(s, "b");
    let sha = Sha256Digest::of(b"the video");
    let new = NewRecord::builder("S-1", "incident", 1, "incident")
        .attachment(sha.to_string(), 9, "video/mp4")
        .build()
        .unwrap();
    let env = sign_record(&new, &ChainPosition::first(&key), &key).unwrap();
    let rec = verify_envelope(&env, &key.public_key()).unwrap();
    ingest(s, &key, std::slice::from_ref(&rec));
    let device = key.public_key().device_id();
    assert_eq!(s.expected_media(&device, &sha).unwrap(), Some(9));
    assert!(!s.media_held(&sha).unwrap());
    assert_eq!(
        s.expected_media(&other.public_key().device_id(), &sha)
            .unwrap(),
        None
    );
    let missing = |s: &dyn Storage| {
        let mut m = 0;
        s.records(&RecordFilter::default(), &mut |r| {
            m += r.media_missing;
            Ok(())
        })
        .unwrap();
        m
    };
    assert_eq!(missing(s), 1);
    s.media_complete(&sha, 9, NOW).unwrap();
    assert_eq!(missing(s), 0);
    assert!(s.media_held(&sha).unwrap());
    assert!(!s.media_held(&Sha256Digest::of(b"another")).unwrap());
    let keys = s.device_keys().unwrap();
    assert_eq!(keys.len(), 2);
}

fn a_batch_is_decided_in_order_as_one_record_at_a_time_would_be(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let key = enrolled(s, "t");
    let records = chain(&key, 3, "order");
    let fork = chain(&key, 2, "fork");
    // The same record twice, and a second record at seq 2, in one batch.
    let batch = [
        records[0].clone(),
        records[1].clone(),
        records[1].clone(),
        fork[1].clone(),
        records[2].clone(),
    ];
    assert_eq!(
        ingest(s, &key, &batch),
        vec![
            Outcome::Accepted { index: 0 },
            Outcome::Accepted { index: 1 },
            Outcome::Already { index: 1 },
            Outcome::Conflict {
                existing: records[1].id
            },
            Outcome::Accepted { index: 2 },
        ]
    );
    assert_eq!(s.tree_head().unwrap().size, 3);
    let view = &s.devices().unwrap()[0];
    assert_eq!((view.records, view.conflicts), (3, 1));
}

/// The proof `plan` made from the hashes `s` stores.
fn stored_proof(s: &dyn Storage, plan: &ProofPlan) -> Vec<Sha256Digest> {
    let read = s.log_hashes(&plan.needs()).unwrap();
    plan.assemble(&read.hashes).unwrap()
}

fn proofs_come_from_stored_hashes_and_survive_losing_them(b: &dyn Backend) {
    let s = b.fresh();
    let phones: Vec<SigningKey> = (0..3)
        .map(|i| enrolled(s.as_ref(), &format!("p{i}")))
        .collect();
    let chains: Vec<Vec<VerifiedRecord>> = phones.iter().map(|k| chain(k, 70, "proofs")).collect();
    // In batches of various sizes, interleaved, the last ones grouped:
    // nodes written by single ingests and by a group commit alike.
    for round in 0..7 {
        for (key, records) in phones.iter().zip(&chains) {
            ingest(s.as_ref(), key, &records[round * 9..(round + 1) * 9]);
        }
    }
    let tails: Vec<IngestBatch> = phones
        .iter()
        .zip(&chains)
        .map(|(key, records)| IngestBatch {
            device: key.public_key().device_id(),
            heartbeat: None,
            records: incoming(&records[63..]),
        })
        .collect();
    s.ingest_group(&tails.iter().collect::<Vec<_>>(), NOW)
        .unwrap();
    let mut leaves = Vec::new();
    s.log_leaves(&mut |_, id| {
        leaves.push(leaf_hash(id.as_bytes()));
        Ok(())
    })
    .unwrap();
    assert_eq!(leaves.len(), 210);
    let check = |s: &dyn Storage| {
        for size in [1u64, 16, 17, 64, 100, 199, 210] {
            let prefix = &leaves[..size as usize];
            for index in (0..size).step_by(13).chain([size - 1]) {
                let plan = ProofPlan::inclusion(index, size).unwrap();
                assert_eq!(
                    stored_proof(s, &plan),
                    inclusion_proof(prefix, index).unwrap(),
                    "inclusion of {index} at {size}"
                );
            }
            for from in [1u64, 15, 16, 33, 128].into_iter().filter(|&f| f <= size) {
                let plan = ProofPlan::consistency(from, size).unwrap();
                assert_eq!(
                    stored_proof(s, &plan),
                    consistency_proof(prefix, from).unwrap(),
                    "consistency {from} to {size}"
                );
            }
        }
        // Nothing beyond the log is made up.
        let beyond = [
            NodeId {
                level: 0,
                index: 210,
            },
            NodeId {
                level: 4,
                index: 13,
            },
        ];
        let read = s.log_hashes(&beyond).unwrap();
        assert!(read.hashes.is_empty());
        assert_eq!(read.size, 210);
    };
    check(s.as_ref());
    // A database from before nodes were kept has none: they are written
    // from the records when it is opened.
    drop(s);
    b.sql("DELETE FROM log_nodes");
    let s = b.reopen();
    check(s.as_ref());
    drop(s);
    b.sql("DELETE FROM log_nodes WHERE level = 4 AND idx = 3");
    check(b.reopen().as_ref());
    // Records that do not give the log's root are refused, not papered
    // over with new nodes.
    b.sql(if b.postgres() {
        "UPDATE records SET id = sha256(id) WHERE log_index = 5; DELETE FROM log_nodes"
    } else {
        "UPDATE records SET id = randomblob(32) WHERE log_index = 5; DELETE FROM log_nodes"
    });
    let refused = b.open().err().expect("refused");
    assert!(matches!(refused, StorageError::Corrupt(_)), "{refused:?}");
}

fn writers_on_several_handles_append_one_gap_free_log(b: &dyn Backend) {
    let first = b.fresh();
    // Four handles on one database: four server nodes (or, on SQLite, a
    // server and the commands run beside it).
    let handles: Vec<Arc<dyn Storage>> = (0..4)
        .map(|i| if i == 0 { first.clone() } else { b.reopen() })
        .collect();
    let phones: Vec<SigningKey> = (0..8)
        .map(|i| enrolled(first.as_ref(), &format!("phone {i}")))
        .collect();
    std::thread::scope(|scope| {
        for (i, key) in phones.iter().enumerate() {
            let records = chain(key, 30, "concurrent");
            let handles = &handles;
            scope.spawn(move || {
                for (j, part) in records.chunks(5).enumerate() {
                    // Each batch through another node, each sent twice (a
                    // retry after a lost answer).
                    for attempt in 0..2 {
                        let s = &handles[(i + j + attempt) % handles.len()];
                        let out = ingest(s.as_ref(), key, part);
                        assert_eq!(out.len(), part.len());
                    }
                }
            });
        }
    });
    let head = first.tree_head().unwrap();
    assert_eq!(head.size, 8 * 30);
    let mut frontier = Frontier::new();
    let mut indexes = Vec::new();
    first
        .log_leaves(&mut |i, id| {
            indexes.push(i);
            frontier.push(leaf_hash(id.as_bytes()));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        indexes,
        (0..240).collect::<Vec<u64>>(),
        "unique and gap-free"
    );
    assert_eq!(frontier.root(), head.root, "one tree");
    for h in &handles {
        assert_eq!(h.tree_head().unwrap(), head, "every node answers the same");
    }
    assert!(
        first
            .devices()
            .unwrap()
            .iter()
            .all(|d| d.records == 30 && d.conflicts == 0)
    );
}

fn a_group_commit_decides_its_batches_in_order_and_stores_all_or_none(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let (a, c) = (enrolled(s, "a"), enrolled(s, "c"));
    let (ra, rc) = (chain(&a, 3, "group"), chain(&c, 2, "group"));
    let fork = chain(&a, 2, "fork");
    let batch = |key: &SigningKey, records: &[VerifiedRecord]| IngestBatch {
        device: key.public_key().device_id(),
        heartbeat: Some(heartbeat(
            key,
            records.last().map_or(0, |r| r.body.seq),
            records.last().map(|r| r.id),
        )),
        records: incoming(records),
    };
    // Two phones, and one of them twice (a retry racing its first try):
    // the second of its batches sees the first one's records.
    let group = [
        batch(&a, &ra[..2]),
        batch(&c, &rc),
        batch(&a, &[ra[1].clone(), fork[1].clone(), ra[2].clone()]),
    ];
    let refs: Vec<&IngestBatch> = group.iter().collect();
    let results = s.ingest_group(&refs, NOW).unwrap();
    let outcomes: Vec<Vec<Outcome>> = results.iter().map(|r| r.outcomes.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            vec![
                Outcome::Accepted { index: 0 },
                Outcome::Accepted { index: 1 }
            ],
            vec![
                Outcome::Accepted { index: 2 },
                Outcome::Accepted { index: 3 }
            ],
            vec![
                Outcome::Already { index: 1 },
                Outcome::Conflict { existing: ra[1].id },
                Outcome::Accepted { index: 4 },
            ],
        ]
    );
    let head = s.tree_head().unwrap();
    assert_eq!(head.size, 5);
    assert!(
        results.iter().all(|r| r.tree == head),
        "one tree head for the group"
    );
    let views = s.devices().unwrap();
    let view = |key: &SigningKey| {
        views
            .iter()
            .find(|v| v.info.id == key.public_key().device_id())
            .unwrap()
            .clone()
    };
    assert_eq!((view(&a).records, view(&a).conflicts), (3, 1));
    assert_eq!(
        view(&a).heartbeat.map(|h| h.seq),
        Some(3),
        "the newest heartbeat of the two"
    );
    assert_eq!(view(&c).records, 2);

    // A group naming a device that is not enrolled is refused whole:
    // nothing of the enrolled phone's batch in it is stored either.
    let more = chain(&c, 3, "group");
    let stranger = SigningKey::generate().unwrap();
    let bad = [
        batch(&c, &more[2..]),
        batch(&stranger, &chain(&stranger, 1, "x")),
    ];
    let refs: Vec<&IngestBatch> = bad.iter().collect();
    assert!(s.ingest_group(&refs, NOW).is_err());
    assert_eq!(
        s.tree_head().unwrap(),
        head,
        "nothing of a failed group is stored"
    );
    assert_eq!(
        s.ingest_group(&refs[..1], NOW).unwrap()[0].outcomes,
        vec![Outcome::Accepted { index: 5 }],
        "alone, the good batch commits"
    );
}

/// A phone's resend in a group is answered `already`, and stays so when the
/// device's row understates what is stored (a database edited by hand):
/// the group then either decides it all the same or fails whole on a
/// constraint, and its batches alone are decided right (what the
/// committing thread does with a group refused by a constraint). Nothing
/// is stored twice either way.
fn a_resend_in_a_group_is_held_once_even_if_the_device_row_is_wrong(b: &dyn Backend) {
    let s = b.fresh();
    let s = s.as_ref();
    let (a, c) = (enrolled(s, "a"), enrolled(s, "c"));
    let ra = chain(&a, 3, "resent");
    assert_eq!(ingest(s, &a, &ra).len(), 3);
    let batch = |key: &SigningKey, records: &[VerifiedRecord]| IngestBatch {
        device: key.public_key().device_id(),
        heartbeat: Some(heartbeat(
            key,
            records.last().map_or(0, |r| r.body.seq),
            None,
        )),
        records: incoming(records),
    };
    let rc = chain(&c, 1, "new");
    let group = [batch(&a, &ra), batch(&c, &rc)];
    let refs: Vec<&IngestBatch> = group.iter().collect();
    let held = |index| Outcome::Already { index };
    let outcomes: Vec<Vec<Outcome>> = s
        .ingest_group(&refs, NOW)
        .unwrap()
        .into_iter()
        .map(|r| r.outcomes)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            vec![held(0), held(1), held(2)],
            vec![Outcome::Accepted { index: 3 }]
        ]
    );

    b.sql("UPDATE devices SET max_seq = 0");
    let rc2 = chain(&c, 2, "new");
    let group = [batch(&a, &ra), batch(&c, &rc2[1..])];
    let refs: Vec<&IngestBatch> = group.iter().collect();
    let outcomes: Vec<Vec<Outcome>> = match s.ingest_group(&refs, NOW) {
        Ok(results) => results.into_iter().map(|r| r.outcomes).collect(),
        Err(StorageError::Constraint(_)) => {
            assert_eq!(s.tree_head().unwrap().size, 4, "nothing of it stored");
            refs.iter()
                .map(|one| s.ingest_group(&[*one], NOW).unwrap().remove(0).outcomes)
                .collect()
        }
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(
        outcomes,
        vec![
            vec![held(0), held(1), held(2)],
            vec![Outcome::Accepted { index: 4 }]
        ]
    );
    assert_eq!(s.tree_head().unwrap().size, 5);
}

/// A key's next records, each of `(station, form, kind, payload,
/// supersedes)`, after `pos`.
fn signed(
    key: &SigningKey,
    pos: &mut ChainPosition,
    specs: &[(&str, &str, &str, serde_json::Value, Option<RecordId>)],
) -> Vec<VerifiedRecord> {
    specs
        .iter()
        .map(|(station, form, kind, payload, supersedes)| {
            let mut b = NewRecord::builder(*station, *form, 1, *kind).payload(payload.clone());
            if let Some(s) = supersedes {
                b = b.supersedes(*s);
            }
            let env = sign_record(&b.build().unwrap(), pos, key).unwrap();
            *pos = pos.after(env.id());
            verify_envelope(&env, &key.public_key()).unwrap()
        })
        .collect()
}

fn ingest_checked(s: &dyn Storage, key: &SigningKey, records: &[VerifiedRecord], clean: &[bool]) {
    let mut incoming = incoming(records);
    for (i, c) in incoming.iter_mut().zip(clean) {
        i.check.clean = *c;
    }
    let hb = heartbeat(key, records.last().map_or(0, |r| r.body.seq), None);
    let r = s
        .ingest(&key.public_key().device_id(), Some(&hb), &incoming, NOW)
        .unwrap();
    assert!(
        r.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Accepted { .. }))
    );
}

fn reviews_claims_and_coverage_are_kept_alike(b: &dyn Backend) {
    use observer_server::review::{
        ClaimOutcome, DecideOutcome, QueueFilter, ReviewState, Verdict, queue,
    };
    use observer_server::triage::{Phase, Priority};
    let s = b.fresh();
    let (a, c) = (enrolled(s.as_ref(), "a"), enrolled(s.as_ref(), "c"));
    let mut pa = ChainPosition::first(&a);
    let first = signed(
        &a,
        &mut pa,
        &[
            ("S-1", "opening", "checklist", serde_json::json!({}), None),
            (
                "S-1",
                "voting",
                "checklist",
                serde_json::json!({"n": 1}),
                None,
            ),
            (
                "S-1",
                "incident",
                "incident",
                serde_json::json!({"type": "ballot_stuffing"}),
                None,
            ),
        ],
    );
    ingest_checked(s.as_ref(), &a, &first, &[true, false, true]);
    let fix = signed(
        &a,
        &mut pa,
        &[(
            "S-1",
            "incident",
            "incident",
            serde_json::json!({"type": "ballot_stuffing", "n": 2}),
            Some(first[2].id),
        )],
    );
    ingest_checked(s.as_ref(), &a, &fix, &[true]);
    let other = signed(
        &c,
        &mut ChainPosition::first(&c),
        &[(
            "S-1",
            "incident",
            "incident",
            serde_json::json!({"type": "ballot_stuffing"}),
            None,
        )],
    );
    ingest_checked(s.as_ref(), &c, &other, &[true]);
    let store = s.review_store();

    // Critical first, then flagged, then routine; by arrival within each.
    let all = QueueFilter {
        limit: 50,
        ..Default::default()
    };
    let q = queue(store, &all, NOW).unwrap();
    let order: Vec<(Priority, u64)> = q.iter().map(|i| (i.priority, i.index)).collect();
    assert_eq!(
        order,
        vec![
            (Priority::Critical, 2),
            (Priority::Critical, 3),
            (Priority::Critical, 4),
            (Priority::Flagged, 1),
            (Priority::Routine, 0),
        ]
    );
    assert_eq!(q[0].category.as_deref(), Some("ballot_stuffing"));
    assert_eq!(q[4].phase, Some(Phase::Opening));
    // Paged by cursor: the second page starts after the first.
    let page1 = queue(
        store,
        &QueueFilter {
            limit: 2,
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    let page2 = queue(
        store,
        &QueueFilter {
            limit: 2,
            after: Some(page1[1].cursor()),
            ..Default::default()
        },
        NOW,
    )
    .unwrap();
    assert_eq!(
        page2.iter().map(|i| i.index).collect::<Vec<_>>(),
        vec![4, 1]
    );
    let only = QueueFilter {
        category: Some("ballot_stuffing".into()),
        phase: None,
        limit: 50,
        ..Default::default()
    };
    assert_eq!(queue(store, &only, NOW).unwrap().len(), 3);

    // One claim at a time; an expired one may be taken.
    let until = NOW + 60_000;
    assert!(matches!(
        store.claim(2, "vera", NOW, until).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    match store.claim(2, "victor", NOW, until).unwrap() {
        ClaimOutcome::HeldBy(c) => assert_eq!((c.account.as_str(), c.until_ms), ("vera", until)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .decide(2, Verdict::Rejected, "victor", "no", NOW)
            .unwrap(),
        DecideOutcome::HeldBy(_)
    ));
    assert_eq!(
        store.item(2, NOW).unwrap().unwrap().claim.unwrap().account,
        "vera"
    );
    assert!(matches!(
        store.claim(2, "victor", until, until + 1).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    assert!(store.release(2, "victor").unwrap());
    assert_eq!(
        store.claim(99, "vera", NOW, until).unwrap(),
        ClaimOutcome::NoSuchRecord
    );

    // A decision is stored with who and why, and releases the claim.
    assert!(matches!(
        store.claim(2, "vera", NOW, until).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    assert_eq!(
        store
            .decide(
                2,
                Verdict::NeedsCorroboration,
                "vera",
                "one phone only",
                NOW
            )
            .unwrap(),
        DecideOutcome::Decided
    );
    assert_eq!(
        store
            .decide(0, Verdict::Confirmed, "vera", "", NOW + 1)
            .unwrap(),
        DecideOutcome::Decided
    );
    assert_eq!(
        store
            .decide(99, Verdict::Confirmed, "vera", "", NOW)
            .unwrap(),
        DecideOutcome::NoSuchRecord
    );
    let item = store.item(2, NOW).unwrap().unwrap();
    assert_eq!(
        (item.review, item.claim),
        (ReviewState::NeedsCorroboration, None)
    );
    let d = store.decisions(2).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].state, d[0].reviewer.as_str(), d[0].note.as_str()),
        (ReviewState::NeedsCorroboration, "vera", "one phone only")
    );
    // Open work keeps what needs corroboration and drops what is confirmed.
    let open: Vec<u64> = queue(store, &all, NOW)
        .unwrap()
        .iter()
        .map(|i| i.index)
        .collect();
    assert_eq!(open, vec![2, 3, 4, 1]);
    let confirmed = QueueFilter {
        state: Some(ReviewState::Confirmed),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        queue(store, &confirmed, NOW)
            .unwrap()
            .iter()
            .map(|i| i.index)
            .collect::<Vec<_>>(),
        vec![0]
    );

    // The same report from both devices; the correction chain.
    let reports = store
        .reports("S-1", "ballot_stuffing", 0, i64::MAX, NOW)
        .unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(
        store.item_by_id(&first[2].id, NOW).unwrap().unwrap().index,
        2
    );
    let fixes = store.corrections_of(&first[2].id, NOW).unwrap();
    assert_eq!(fixes.iter().map(|i| i.index).collect::<Vec<_>>(), vec![3]);
    assert_eq!(fixes[0].supersedes, Some(first[2].id));

    // Coverage: stations per phase, devices' counters.
    let mut phases = store.station_phases().unwrap();
    phases.sort_by_key(|p| p.phase);
    assert_eq!(
        phases
            .iter()
            .map(|p| (p.station.as_str(), p.phase, p.records))
            .collect::<Vec<_>>(),
        vec![("S-1", Phase::Opening, 1), ("S-1", Phase::Voting, 1)]
    );
    // A heartbeat declaring more than arrived: those are possible deletions.
    let hb = heartbeat(&a, 7, None);
    s.ingest(&a.public_key().device_id(), Some(&hb), &[], NOW)
        .unwrap();
    let devices = store.field_devices().unwrap();
    let da = devices
        .iter()
        .find(|d| d.id == a.public_key().device_id())
        .unwrap();
    assert_eq!(
        (da.held, da.max_seq, da.declared, da.missing()),
        (4, 4, 7, 3)
    );
    // Revoked: what it sends later is quarantined, never "missing".
    assert!(s.revoke(&a.public_key().device_id(), NOW).unwrap());
    let late = signed(
        &a,
        &mut pa,
        &[("S-1", "voting", "checklist", serde_json::json!({}), None)],
    );
    let hb = heartbeat(&a, 9, None);
    let out = s
        .ingest(
            &a.public_key().device_id(),
            Some(&hb),
            &incoming(&late),
            NOW,
        )
        .unwrap();
    assert_eq!(out.outcomes, vec![Outcome::Quarantined]);
    let s = b.reopen();
    let store = s.review_store();
    let devices = store.field_devices().unwrap();
    let da = devices
        .iter()
        .find(|d| d.id == a.public_key().device_id())
        .unwrap();
    assert_eq!((da.quarantined, da.missing()), (1, 0));
    assert!(store.item(2, NOW).unwrap().unwrap().device_revoked);
    assert_eq!(
        store.item(2, NOW).unwrap().unwrap().review,
        ReviewState::NeedsCorroboration
    );
}

/// A story the backend must tell.
type Story = fn(&dyn Backend);

/// Every story, by name, so a failure says which.
const STORIES: &[(&str, Story)] = &[
    (
        "tokens work once and say why not",
        tokens_work_once_and_say_why_not,
    ),
    (
        "records are stored once and forks kept aside",
        records_are_stored_once_and_forks_kept_aside,
    ),
    (
        "the log is the records and survives a reopen",
        the_log_is_the_records_and_survives_a_reopen,
    ),
    (
        "heartbeats name what is missing",
        heartbeats_name_what_is_missing,
    ),
    (
        "revocation keeps what came before and quarantines the rest",
        revocation_keeps_what_came_before_and_quarantines_the_rest,
    ),
    (
        "assignments, forms, official results and meta",
        assignments_forms_official_results_and_meta,
    ),
    (
        "the audit log is one signed chain from every handle",
        the_audit_log_is_one_signed_chain_from_every_handle,
    ),
    (
        "the registry keeps every version whole",
        the_registry_keeps_every_version_whole,
    ),
    (
        "media are answered only to the device whose records name them",
        media_are_answered_only_to_the_device_whose_records_name_them,
    ),
    (
        "a batch is decided in order as one record at a time would be",
        a_batch_is_decided_in_order_as_one_record_at_a_time_would_be,
    ),
    (
        "a group commit decides its batches in order and stores all or none",
        a_group_commit_decides_its_batches_in_order_and_stores_all_or_none,
    ),
    (
        "a resend in a group is held once even if the device row is wrong",
        a_resend_in_a_group_is_held_once_even_if_the_device_row_is_wrong,
    ),
    (
        "proofs come from stored hashes and survive losing them",
        proofs_come_from_stored_hashes_and_survive_losing_them,
    ),
    (
        "writers on several handles append one gap-free log",
        writers_on_several_handles_append_one_gap_free_log,
    ),
    (
        "accounts and sessions are kept alike",
        accounts_and_sessions_are_kept_alike,
    ),
    (
        "reviews, claims and coverage are kept alike",
        reviews_claims_and_coverage_are_kept_alike,
    ),
    (
        "receipts are kept in order, byte for byte, per device",
        receipts_are_kept_in_order_byte_for_byte_per_device,
    ),
    (
        "sms parts wait per sender and message, once each, until dropped or expired",
        sms_parts_wait_per_sender_and_message_once_each_until_dropped_or_expired,
    ),
];

fn sms_parts_wait_per_sender_and_message_once_each_until_dropped_or_expired(b: &dyn Backend) {
    use observer_core::sms::Part;
    use observer_server::storage::{SmsLogEntry, WaitingSms};
    let part = |message: &str, index: usize, data: &str| Part {
        message: message.into(),
        index,
        total: 3,
        data: data.into(),
    };
    let s = b.fresh();
    let sms = s.sms_store();
    assert_eq!(
        sms.hold_sms_part("+7701", &part("abc", 2, "c"), 1_000)
            .unwrap()
            .len(),
        1
    );
    // A copy already held changes nothing; another sender's parts are apart.
    assert_eq!(
        sms.hold_sms_part("+7701", &part("abc", 2, "c"), 1_100)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sms.hold_sms_part("+7702", &part("abc", 0, "a"), 1_200)
            .unwrap()
            .len(),
        1
    );
    sms.hold_sms_part("+7701", &part("xyz", 0, "x"), 5_000)
        .unwrap();
    let s = b.reopen();
    let sms = s.sms_store();
    let held = sms
        .hold_sms_part("+7701", &part("abc", 0, "a"), 2_000)
        .unwrap();
    assert_eq!(held, vec![part("abc", 0, "a"), part("abc", 2, "c")]);
    let waiting = |sender: &str, message: &str, held: usize, first_ms: i64| WaitingSms {
        sender: sender.into(),
        message: message.into(),
        total: 3,
        held,
        first_ms,
    };
    assert_eq!(
        sms.sms_waiting().unwrap(),
        vec![
            waiting("+7701", "abc", 2, 1_000),
            waiting("+7702", "abc", 1, 1_200),
            waiting("+7701", "xyz", 1, 5_000),
        ]
    );
    assert_eq!(sms.sms_parts_held("+7701").unwrap(), 3);
    assert_eq!(sms.sms_parts_held("+7709").unwrap(), 0);
    sms.drop_sms_message("+7701", "abc", 3).unwrap();
    assert_eq!(sms.sms_parts_held("+7701").unwrap(), 1);
    assert_eq!(
        sms.expire_sms(3_000).unwrap(),
        vec![waiting("+7702", "abc", 1, 1_200)]
    );
    assert_eq!(
        sms.sms_waiting().unwrap(),
        vec![waiting("+7701", "xyz", 1, 5_000)]
    );
    let entry = |at_ms: i64, outcome: &str| SmsLogEntry {
        at_ms,
        sender: "+7701".into(),
        gateway: "twilio".into(),
        outcome: outcome.into(),
        detail: format!("{outcome} детали"),
    };
    sms.log_sms(&entry(1, "waiting")).unwrap();
    sms.log_sms(&entry(2, "accepted")).unwrap();
    let s = b.reopen();
    assert_eq!(
        s.sms_store().sms_log(10).unwrap(),
        vec![entry(2, "accepted"), entry(1, "waiting")]
    );
    assert_eq!(s.sms_store().sms_log(1).unwrap().len(), 1);
}

fn receipts_are_kept_in_order_byte_for_byte_per_device(b: &dyn Backend) {
    use observer_core::protocol::Signed;
    use observer_server::storage::StoredReceipt;
    let s = b.fresh();
    let key = SigningKey::generate().unwrap();
    let (a, c) = (
        SigningKey::generate().unwrap().public_key().device_id(),
        SigningKey::generate().unwrap().public_key().device_id(),
    );
    let receipt = |device: &observer_core::identity::DeviceId, t: i64| StoredReceipt {
        device: device.clone(),
        server_time_ms: t,
        signed: Signed::sign(
            b"observer/test/v1\0",
            &serde_json::json!({ "device": device.as_str(), "t": t }),
            &key,
        ),
    };
    let (a1, a2, c1) = (receipt(&a, 2_000), receipt(&a, 1_000), receipt(&c, 1_500));
    s.put_receipts(&[a1.clone(), c1.clone()]).unwrap();
    s.put_receipts(std::slice::from_ref(&a2)).unwrap();
    s.put_receipts(&[]).unwrap();
    let s = b.reopen();
    let of = |devices: &[&observer_core::identity::DeviceId]| {
        s.receipts(&devices.iter().map(|d| (*d).clone()).collect())
            .unwrap()
    };
    // In the order kept (the order sent), whatever their times say.
    assert_eq!(of(&[&a]), vec![a1.clone(), a2.clone()]);
    assert_eq!(of(&[&c]), vec![c1.clone()]);
    assert_eq!(of(&[&a, &c]), vec![a1.clone(), c1, a2]);
    assert_eq!(a1.hash(), Sha256Digest::of(&a1.signed.body));
    assert!(of(&[&stranger()]).is_empty());
}

fn every_story(b: &dyn Backend) {
    for (name, story) in STORIES {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| story(b)));
        if let Err(e) = run {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("story {name:?} failed: {why}");
        }
    }
}

#[test]
fn sqlite_tells_every_story() {
    every_story(&Sqlite::new());
}

#[test]
fn postgres_tells_every_story() {
    every_story(&Postgres::new());
}

/// PostgreSQL's failures keep their kind too: a second token with the same
/// hash is a constraint, a stopped server is unavailable (the answer says
/// "retry"), and the pool recovers when it is back.
#[test]
fn postgres_failures_keep_their_kind() {
    let pg = Postgres::new();
    let s = pg.fresh();
    token(s.as_ref(), "once", &["S-1"], NOW + 1000);
    let again = s
        .add_token(
            &NewToken {
                hash: Sha256Digest::of(b"once"),
                stations: vec!["S-1".into()],
                name: None,
                expires_at_ms: NOW + 1000,
            },
            NOW,
        )
        .unwrap_err();
    assert!(matches!(again, StorageError::Constraint(_)), "{again:?}");
    pg.cluster.stop();
    let down = s.ping().unwrap_err();
    assert!(matches!(down, StorageError::Unavailable(_)), "{down:?}");
    assert_eq!(down.kind(), "unavailable");
    pg.cluster.start_again();
    s.ping()
        .expect("the pool reconnects once the server is back");
    assert_eq!(s.tree_head().unwrap().size, 0);
}
