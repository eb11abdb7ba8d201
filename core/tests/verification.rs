//! Property tests for record signing and chain verification: what the
//! coordinating server relies on to decide what is genuine and what is missing.

use chrono::Utc;
use observer_core::identity::SigningKey;
use observer_core::record::{
    ChainFault, ChainHead, ChainPosition, Clock, Envelope, NewRecord, RecordId, SeqRange,
    VerifiedRecord, VerifyError, limits, sign_record, verify_chain, verify_envelope,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn key() -> SigningKey {
    SigningKey::generate().unwrap()
}

fn payload() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::Null),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("\\PC{1,12}", value, 0..8).prop_map(|m| m.into_iter().collect())
}

fn new_record(p: Map<String, Value>) -> NewRecord {
    NewRecord::builder("KZ-ALA-0042", "counting", 2, "results")
        .payload(Value::Object(p))
        .attachment("0".repeat(64), 1234, "image/jpeg")
        .build()
        .unwrap()
}

/// Signs `n` chained records with `key`.
fn chain(key: &SigningKey, n: usize) -> Vec<VerifiedRecord> {
    let mut pos = ChainPosition::first(key);
    let mut out = Vec::new();
    for i in 0..n {
        let mut p = Map::new();
        p.insert("i".into(), i.into());
        let env = sign_record(&new_record(p), &pos, key).unwrap();
        let v = verify_envelope(&env, &key.public_key()).unwrap();
        pos = pos.after(v.id);
        out.push(v);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_payload_signs_and_verifies_with_id_over_the_body_bytes(p in payload()) {
        let k = key();
        let env = sign_record(&new_record(p.clone()), &ChainPosition::first(&k), &k).unwrap();
        let v = verify_envelope(&env, &k.public_key()).unwrap();
        prop_assert_eq!(v.id, RecordId::of(&env.body));
        prop_assert_eq!(v.body.payload, p);
        prop_assert_eq!(v.body.device, k.public_key().device_id());
    }

    #[test]
    fn any_flipped_body_or_signature_bit_is_refused(
        p in payload(), at in any::<prop::sample::Index>(), bit in 0u8..8, in_sig in any::<bool>()
    ) {
        let k = key();
        let mut env = sign_record(&new_record(p), &ChainPosition::first(&k), &k).unwrap();
        if in_sig {
            env.sig[at.index(64)] ^= 1 << bit;
        } else {
            let i = at.index(env.body.len());
            env.body[i] ^= 1 << bit;
        }
        prop_assert_eq!(verify_envelope(&env, &k.public_key()), Err(VerifyError::BadSignature));
    }

    #[test]
    fn a_deleted_record_is_named_exactly(n in 3usize..30, del in any::<prop::sample::Index>()) {
        let k = key();
        let mut c = chain(&k, n);
        let i = del.index(n);
        c.remove(i);
        let seq = i as u64 + 1;
        let report = verify_chain(&c, None);
        if i == n - 1 {
            // Without a heartbeat, a deleted newest record is invisible...
            prop_assert!(report.is_intact());
            // ...and with one it is named.
            let head = ChainHead { seq, id: RecordId::of(b"newest") };
            let r = verify_chain(&c, Some(head));
            prop_assert_eq!(r.faults, vec![ChainFault::Missing { range: SeqRange { first: seq, last: seq } }]);
        } else {
            prop_assert_eq!(report.faults, vec![ChainFault::Missing { range: SeqRange { first: seq, last: seq } }]);
        }
    }

    #[test]
    fn a_reordered_pair_is_named(n in 3usize..30, at in any::<prop::sample::Index>()) {
        let k = key();
        let mut c = chain(&k, n);
        let i = at.index(n - 1);
        c.swap(i, i + 1);
        let report = verify_chain(&c, None);
        prop_assert!(report.faults.contains(&ChainFault::OutOfOrder { seq: i as u64 + 1, after: i as u64 + 2 }),
            "{:?}", report.faults);
    }
}

#[test]
fn an_intact_chain_reports_its_head() {
    let k = key();
    let c = chain(&k, 5);
    let r = verify_chain(&c, None);
    assert!(r.is_intact());
    assert_eq!(r.records, 5);
    assert_eq!(
        r.head,
        Some(ChainHead {
            seq: 5,
            id: c[4].id
        })
    );
}

#[test]
fn a_link_to_the_wrong_prev_is_a_broken_link() {
    let k = key();
    let mut c = chain(&k, 4);
    // The device itself signs record 5 pointing at record 3 instead of 4.
    let pos = ChainPosition {
        seq: 5,
        prev: Some(c[2].id),
        ..ChainPosition::first(&k)
    };
    let env = sign_record(&new_record(Map::new()), &pos, &k).unwrap();
    c.push(verify_envelope(&env, &k.public_key()).unwrap());
    assert_eq!(
        verify_chain(&c, None).faults,
        vec![ChainFault::BrokenLink {
            seq: 5,
            expected: c[3].id,
            found: c[2].id
        }]
    );
}

#[test]
fn two_records_with_one_seq_are_a_fork() {
    let k = key();
    let mut c = chain(&k, 3);
    let pos = ChainPosition {
        seq: 3,
        prev: Some(c[1].id),
        ..ChainPosition::first(&k)
    };
    let env = sign_record(&new_record(Map::new()), &pos, &k).unwrap();
    let fork = verify_envelope(&env, &k.public_key()).unwrap();
    c.push(fork.clone());
    assert_eq!(
        verify_chain(&c, None).faults,
        vec![ChainFault::Fork {
            seq: 3,
            first: c[2].id,
            second: fork.id
        }]
    );
    // The same record twice is a duplicate, not a fork.
    let mut dup = chain(&k, 2);
    dup.push(dup[1].clone());
    assert!(verify_chain(&dup, None).is_intact());
}

#[test]
fn heartbeat_head_beyond_the_records_names_the_unreceived_ones() {
    let k = key();
    let c = chain(&k, 7);
    let head = ChainHead {
        seq: 10,
        id: RecordId::of(b"x"),
    };
    let r = verify_chain(&c, Some(head));
    assert_eq!(
        r.faults,
        vec![ChainFault::Missing {
            range: SeqRange { first: 8, last: 10 }
        }]
    );
    assert_eq!(r.head, Some(head));
}

#[test]
fn another_devices_key_or_a_false_device_claim_is_refused() {
    let (a, b) = (key(), key());
    let env = sign_record(&new_record(Map::new()), &ChainPosition::first(&a), &a).unwrap();
    assert_eq!(
        verify_envelope(&env, &b.public_key()),
        Err(VerifyError::BadSignature)
    );
    let lying = ChainPosition {
        device: b.public_key().device_id(),
        ..ChainPosition::first(&a)
    };
    let env = sign_record(&new_record(Map::new()), &lying, &a).unwrap();
    assert!(matches!(
        verify_envelope(&env, &a.public_key()),
        Err(VerifyError::WrongDevice { .. })
    ));
}

fn signed_raw(k: &SigningKey, body: &[u8]) -> Envelope {
    let mut m = observer_core::record::SIGNING_DOMAIN.to_vec();
    m.extend_from_slice(body);
    Envelope {
        body: body.to_vec(),
        sig: k.sign(&m),
    }
}

#[test]
fn signed_but_malformed_bodies_get_specific_errors() {
    let k = key();
    let pk = k.public_key();
    assert!(matches!(
        verify_envelope(&signed_raw(&k, b"not json"), &pk),
        Err(VerifyError::Malformed { .. })
    ));
    assert_eq!(
        verify_envelope(&signed_raw(&k, br#"{"v":2}"#), &pk),
        Err(VerifyError::UnsupportedVersion { version: 2 })
    );
    let big = vec![b' '; limits::MAX_BODY_BYTES + 1];
    assert!(matches!(
        verify_envelope(&signed_raw(&k, &big), &pk),
        Err(VerifyError::TooLarge { .. })
    ));
    // A valid body with an impossible position: seq 2 without prev.
    let env = sign_record(
        &new_record(Map::new()),
        &ChainPosition {
            seq: 2,
            ..ChainPosition::first(&k)
        },
        &k,
    )
    .unwrap();
    assert!(matches!(
        verify_envelope(&env, &pk),
        Err(VerifyError::BadPosition { .. })
    ));
    // Unknown fields are refused, not ignored: the signature covers them.
    let mut v: Value = serde_json::from_slice(
        &sign_record(&new_record(Map::new()), &ChainPosition::first(&k), &k)
            .unwrap()
            .body,
    )
    .unwrap();
    v["extra"] = Value::Bool(true);
    assert!(matches!(
        verify_envelope(&signed_raw(&k, &serde_json::to_vec(&v).unwrap()), &pk),
        Err(VerifyError::Malformed { .. })
    ));
}

#[test]
fn the_body_carries_the_clock_section_and_utc_millisecond_time() {
    let k = key();
    let pos = ChainPosition {
        clock: Clock {
            offset_ms: Some(-1500),
            after: None,
        },
        ..ChainPosition::first(&k)
    };
    let env = sign_record(&new_record(Map::new()), &pos, &k).unwrap();
    let text: Value = serde_json::from_slice(&env.body).unwrap();
    assert_eq!(text["clock"]["offset_ms"], -1500);
    let t = text["captured_at"].as_str().unwrap();
    assert!(
        t.ends_with('Z') && t.len() == "2026-01-10T06:00:00.000Z".len(),
        "{t}"
    );
    let v = verify_envelope(&env, &k.public_key()).unwrap();
    assert_eq!(v.body.captured_at, pos.captured_at);
    assert!(v.body.captured_at <= Utc::now());
}
