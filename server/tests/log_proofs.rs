//! The log's checkpoint and proofs, asked of a real server over HTTPS as a
//! phone asks them, and checked the way a phone, a witness or a court
//! checks them: the checkpoint under the coordinator's pinned key and the
//! log's name, every proof against a signed root.

mod support;

use observer_core::merkle::{
    Checkpoint, leaf_hash, origin_of, tree_hash, verify_consistency, verify_inclusion,
};
use observer_core::protocol::{ConsistencyProof, InclusionProof};
use observer_core::record::Sha256Digest;
use observer_core::sync::{SyncOptions, sync};
use support::*;

/// The log's leaves, read from the server's database.
fn leaves(server: &Server) -> Vec<Sha256Digest> {
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT id FROM records ORDER BY log_index")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|id| leaf_hash(&id.unwrap()))
        .collect()
}

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
