//! The log's checkpoint and proofs, asked of a real server over HTTPS as a
//! phone asks them, and checked the way a phone, a witness or a court
//! checks them: the checkpoint under the coordinator's pinned key and the
//! log's name, every proof against a signed root.

mod support;

use observer_core::merkle::{
    Checkpoint, origin_of, tree_hash, verify_consistency, verify_inclusion,
};
use observer_core::protocol::{ConsistencyProof, InclusionProof};
use observer_core::sync::{SyncOptions, audit_log, sync};
use support::*;

#[test]
fn a_phone_checks_the_checkpoint_and_every_proof_against_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("p");
    let phone = enrolled_phone(&pdir, &server, "S-1");
    let key = phone_key(&pdir);
    let client = raw_client();
    let get = |path: &str| {
        let answer = client
            .get(format!("{}{path}", server.url()))
            .header("observer-heartbeat", heartbeat_header(&key, &phone))
            .send()
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.bytes().unwrap()
    };
    fn json<T: serde::de::DeserializeOwned>(bytes: bytes::Bytes) -> T {
        serde_json::from_slice(&bytes).unwrap()
    }
    let coordinator = server.coordinator_key();
    let origin = origin_of(&coordinator);
    let mut held: Vec<Checkpoint> = Vec::new();
    for (round, n) in [(0u64, 40u64), (40, 57), (97, 1)] {
        phone
            .save_all(
                &(round..round + n)
                    .map(|i| record("S-1", i))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        sync(&phone, &SyncOptions::default()).unwrap();
        let note = get("/v1/log/checkpoint");
        let c = Checkpoint::open(&note, &origin, &coordinator).unwrap();
        let all = leaves(&server);
        assert_eq!(c.head.size, all.len() as u64);
        assert_eq!(
            c.head.root,
            tree_hash(&all),
            "the checkpoint signs the log's root"
        );
        held.push(c);
    }
    let all = leaves(&server);
    let newest = held.last().unwrap().head;
    // Every record's inclusion, at the newest size and at each older one.
    for c in &held {
        for index in 0..c.head.size {
            let p: InclusionProof = json(get(&format!(
                "/v1/log/inclusion?index={index}&size={}",
                c.head.size
            )));
            verify_inclusion(
                index,
                c.head.size,
                &all[index as usize],
                &p.proof,
                &c.head.root,
            )
            .unwrap_or_else(|e| panic!("leaf {index} at {}: {e}", c.head.size));
        }
    }
    // The log only grew: each held checkpoint to the newest, and from
    // every size to the newest.
    for from in 1..=newest.size {
        let p: ConsistencyProof = json(get(&format!(
            "/v1/log/consistency?from={from}&to={}",
            newest.size
        )));
        let from_root = tree_hash(&all[..from as usize]);
        verify_consistency(from, newest.size, &from_root, &newest.root, &p.proof)
            .unwrap_or_else(|e| panic!("{from} to {}: {e}", newest.size));
    }
    // A proof is no proof against another root.
    let p: InclusionProof = json(get(&format!(
        "/v1/log/inclusion?index=3&size={}",
        newest.size
    )));
    assert!(verify_inclusion(3, newest.size, &all[4], &p.proof, &newest.root).is_err());
}

#[test]
fn a_phone_that_finds_the_log_rewritten_stops_marks_nothing_delivered_and_keeps_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let phone = enrolled_phone(&dir.path().join("p"), &server, "S-1");
    let other = enrolled_phone(&dir.path().join("q"), &server, "S-1");
    // Several syncs of both phones: the phone holds a head and receipts.
    let mut verified = 0;
    for round in 0..4u64 {
        for p in [&phone, &other] {
            p.save_all(
                &(round * 10..round * 10 + 10)
                    .map(|i| record("S-1", i))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let s = sync(p, &SyncOptions::default()).unwrap();
            assert_eq!(s.delivered(), 10);
            if std::ptr::eq(p, &phone) {
                verified += s.log_proofs_verified;
            }
        }
    }
    // From its second sync on, the phone checked the consistency proof
    // and its sample each time.
    assert!(verified >= 3 + 3, "{verified} proofs verified");
    assert!(phone.log_faults().unwrap().is_empty());
    let anchor = phone.log_anchor().unwrap().expect("a head is held");

    // An honest restart changes nothing.
    server.restart();
    phone.save(record("S-1", 100)).unwrap();
    let s = sync(&phone, &SyncOptions::default()).unwrap();
    assert_eq!(s.delivered(), 1);
    assert!(s.log_proofs_verified >= 1);
    // On demand, every delivered record (more than one request's worth
    // of proofs for the other phone's 40 and this one's 41).
    let audit = audit_log(&phone, &SyncOptions::default()).unwrap();
    assert_eq!((audit.records_proved, audit.size), (41, 81));
    let many = enrolled_phone(&dir.path().join("r"), &server, "S-1");
    many.save_all(&(0..150).map(|i| record("S-1", i)).collect::<Vec<_>>())
        .unwrap();
    sync(&many, &SyncOptions::default()).unwrap();
    let audit = audit_log(&many, &SyncOptions::default()).unwrap();
    assert_eq!((audit.records_proved, audit.size), (150, 231));

    // The coordinator's database rewritten: the phone's third record gone.
    server.kill();
    rewrite_history(&server, 2);
    server.restart();
    phone.save(record("S-1", 101)).unwrap();
    let held = phone.log_anchor().unwrap().unwrap();
    assert_ne!(held, anchor, "the anchor moved with each verified sync");
    let err = sync(&phone, &SyncOptions::default()).unwrap_err();
    assert!(
        matches!(err, observer_core::sync::SyncError::LogRewritten(_)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the coordinator's log was rewritten"),
        "{err}"
    );
    assert_eq!(
        err.retry_kind(),
        observer_core::sync::RetryKind::Never,
        "retrying cannot help"
    );
    // Nothing marked delivered, the held head unchanged, the evidence kept.
    let counts = phone.counts().unwrap();
    assert_eq!(counts.pending, 1, "{counts:?}");
    assert_eq!(phone.log_anchor().unwrap().unwrap(), held);
    let faults = phone.log_faults().unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].held.as_ref(), Some(&held));
    let coordinator = server.coordinator_key();
    let answered: observer_core::protocol::Receipt = faults[0]
        .answered
        .open(
            "receipt",
            observer_core::protocol::RECEIPT_DOMAIN,
            &coordinator,
        )
        .expect("the answered head is the coordinator's signed statement");
    let held_receipt: observer_core::protocol::Receipt = held
        .open(
            "receipt",
            observer_core::protocol::RECEIPT_DOMAIN,
            &coordinator,
        )
        .unwrap();
    assert!(
        answered.tree.size >= held_receipt.tree.size && answered.tree != held_receipt.tree,
        "two signed heads that no consistency proof joins"
    );
    // It stays stopped: the next sync fails the same way, and so does an
    // audit; each keeps its evidence.
    assert!(matches!(
        sync(&phone, &SyncOptions::default()),
        Err(observer_core::sync::SyncError::LogRewritten(_))
    ));
    assert!(matches!(
        audit_log(&phone, &SyncOptions::default()),
        Err(observer_core::sync::SyncError::LogRewritten(_))
    ));
    assert_eq!(phone.counts().unwrap().pending, 1);
    assert_eq!(phone.log_faults().unwrap().len(), 3);
}
