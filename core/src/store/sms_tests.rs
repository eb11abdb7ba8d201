//! A stored record and the heartbeat as SMS texts, and the "sent by SMS"
//! mark that leaves the record pending.

use super::*;
use crate::sms::{self, Forms, Unpacked};

#[test]
fn a_stored_record_goes_as_sms_and_stays_pending_until_a_receipt() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    enroll_with_seal_key(&store);
    let saved = store
        .save(
            NewRecord::builder("KZ-WIPE-STATION", "access", 1, "access")
                .payload(serde_json::json!({"event": "denied_entry", "time": "07:40",
                    "reason_given": "аккредитация жоқ деді"}))
                .build()
                .unwrap(),
        )
        .unwrap();
    let texts = store.sms_parts(&saved.id).unwrap();
    assert!(texts.len() <= 2 && texts.iter().all(|t| sms::is_gsm7(t)));
    let parts: Vec<_> = texts.iter().map(|t| sms::parse(t).unwrap()).collect();
    let back = sms::unpack(&sms::join(&parts).unwrap(), &Forms::shipped(Some("org"))).unwrap();
    let held = store.get(&saved.id).unwrap().unwrap();
    assert_eq!(back, Unpacked::Record(held.envelope));

    assert_eq!(store.sent_by_sms_at(&saved.id).unwrap(), None);
    store.mark_sent_by_sms(&saved.id).unwrap();
    assert!(store.sent_by_sms_at(&saved.id).unwrap().is_some());
    assert_eq!(store.counts().unwrap().pending, 1);

    let hb = store.heartbeat_sms_parts().unwrap();
    assert_eq!(hb.len(), 1);
    match sms::unpack(
        &sms::join(&[sms::parse(&hb[0]).unwrap()]).unwrap(),
        &Forms::default(),
    ) {
        Ok(Unpacked::Heartbeat(s)) => {
            let h: crate::protocol::Heartbeat = s
                .open(
                    "heartbeat",
                    crate::protocol::HEARTBEAT_DOMAIN,
                    &store.public_key(),
                )
                .unwrap();
            assert_eq!((h.seq, h.head), (1, Some(saved.id)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.sms_parts(&RecordId::from_bytes([1; 32])),
        Err(StoreError::Sms(_))
    ));
    // A sealed form's record never goes by SMS: the operator would read it.
    let sealed = store.save(incident("seen by Aigerim")).unwrap();
    match store.sms_parts(&sealed.id) {
        Err(StoreError::Sms(e)) => assert!(e.to_string().contains("seals"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// The coordinator's receipt for `ids` (seq, index), signed with `key`.
fn receipt_for(
    store: &Store,
    key: &SigningKey,
    accepted: &[(RecordId, u64, u64)],
    already: &[(RecordId, u64, u64)],
) -> crate::protocol::Signed {
    let ack = |(id, seq, index): &(RecordId, u64, u64)| crate::protocol::Ack {
        id: *id,
        seq: *seq,
        index: *index,
    };
    crate::protocol::Signed::sign(
        crate::protocol::RECEIPT_DOMAIN,
        &crate::protocol::Receipt {
            org: "org".into(),
            device: store.device_id().clone(),
            server_time_ms: 1_780_000_000_123,
            accepted: accepted.iter().map(ack).collect(),
            already: already.iter().map(ack).collect(),
            rejected: Vec::new(),
            tree: crate::merkle::TreeHead {
                size: 48_211,
                root: crate::record::Sha256Digest::of(b"root"),
            },
        },
        key,
    )
}

fn enroll_with_coordinator(store: &Store) -> SigningKey {
    enroll_with_seal_key(store);
    let coordinator = SigningKey::generate().unwrap();
    let mut e = store.enrollment().unwrap();
    e.coordinator = coordinator.public_key();
    store.set_enrollment(&e).unwrap();
    coordinator
}

#[test]
fn a_receipt_texted_back_by_the_gateway_marks_the_record_delivered() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let coordinator = enroll_with_coordinator(&store);
    let first = store.save(incident_plain("07:40")).unwrap();
    let second = store.save(incident_plain("08:15")).unwrap();

    let signed = receipt_for(&store, &coordinator, &[(second.id, 2, 48_210)], &[]);
    let texts = sms::receipt_parts(&signed).unwrap();
    assert_eq!(texts.len(), 1, "a report's receipt is one segment");
    assert!(sms::is_gsm7(&texts[0]) && texts[0].chars().count() <= 160);

    let got = store.accept_sms_receipt(&texts).unwrap();
    assert_eq!((got.delivered, got.newly_delivered), (vec![second.id], 1));
    assert!(matches!(
        store.get(&second.id).unwrap().unwrap().state,
        DeliveryState::Delivered { .. }
    ));
    assert_eq!(
        store.get(&first.id).unwrap().unwrap().state,
        DeliveryState::Pending
    );
    // The receipt is kept as evidence, exactly as signed.
    let kept = store.receipts().unwrap();
    assert_eq!(kept.len(), 1);
    // The same text again settles nothing new, and is not kept twice.
    assert_eq!(store.accept_sms_receipt(&texts).unwrap().newly_delivered, 0);
    assert_eq!(store.receipts().unwrap().len(), 1);

    // `already` settles too.
    let again = receipt_for(&store, &coordinator, &[], &[(first.id, 1, 17)]);
    let got = store
        .accept_sms_receipt(&sms::receipt_parts(&again).unwrap())
        .unwrap();
    assert_eq!((got.delivered, got.newly_delivered), (vec![first.id], 1));
}

#[test]
fn a_receipt_by_sms_not_signed_by_the_pinned_coordinator_changes_nothing() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let coordinator = enroll_with_coordinator(&store);
    let saved = store.save(incident_plain("07:40")).unwrap();
    let pending = || store.get(&saved.id).unwrap().unwrap().state == DeliveryState::Pending;

    // Someone else's key: the rebuild succeeds, the signature does not.
    let forger = SigningKey::generate().unwrap();
    let forged = receipt_for(&store, &forger, &[(saved.id, 1, 3)], &[]);
    match store.accept_sms_receipt(&sms::receipt_parts(&forged).unwrap()) {
        Err(StoreError::Sms(sms::SmsError::NotFromCoordinator)) => {}
        other => panic!("{other:?}"),
    }
    assert!(pending());

    // The coordinator's receipt with its log index changed in the text:
    // the check character or the signature catches it.
    let signed = receipt_for(&store, &coordinator, &[(saved.id, 1, 3)], &[]);
    let mut bytes = sms::pack_receipt(&signed).unwrap();
    bytes[8] ^= 1;
    let altered = sms::split(&bytes).unwrap();
    match store.accept_sms_receipt(&altered) {
        Err(StoreError::Sms(sms::SmsError::NotFromCoordinator)) => {}
        other => panic!("{other:?}"),
    }
    // A character changed on the way: the check character names the part
    // (or, one time in 111 when it collides, the rebuilt signature fails).
    let mut chars: Vec<char> = sms::receipt_parts(&signed).unwrap()[0].chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'a' { 'b' } else { 'a' };
    match store.accept_sms_receipt(&[chars.into_iter().collect::<String>()]) {
        Err(StoreError::Sms(
            sms::SmsError::AlteredPart { index: 1, total: 1 }
            | sms::SmsError::NotFromCoordinator
            | sms::SmsError::Malformed(_),
        )) => {}
        other => panic!("{other:?}"),
    }
    // A receipt for a record this phone does not hold.
    let stranger = receipt_for(&store, &coordinator, &[(saved.id, 9, 3)], &[]);
    match store.accept_sms_receipt(&sms::receipt_parts(&stranger).unwrap()) {
        Err(StoreError::Sms(sms::SmsError::Malformed(m))) => assert!(m.contains("record 9"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A report is not a receipt.
    match store.accept_sms_receipt(&store.heartbeat_sms_parts().unwrap()) {
        Err(StoreError::Sms(sms::SmsError::Malformed(_))) => {}
        other => panic!("{other:?}"),
    }
    assert!(pending());
    assert!(store.receipts().unwrap().is_empty());
}

#[test]
fn a_receipt_that_refuses_a_record_is_not_sent_by_sms() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    let coordinator = enroll_with_coordinator(&store);
    let saved = store.save(incident_plain("07:40")).unwrap();
    let mut receipt: crate::protocol::Receipt =
        serde_json::from_slice(&receipt_for(&store, &coordinator, &[(saved.id, 1, 3)], &[]).body)
            .unwrap();
    receipt.rejected.push(crate::protocol::Rejection {
        position: 1,
        id: RecordId::from_bytes([7; 32]),
        reason: crate::protocol::RejectReason::Conflict,
        detail: "another record holds seq 2".into(),
    });
    let signed =
        crate::protocol::Signed::sign(crate::protocol::RECEIPT_DOMAIN, &receipt, &coordinator);
    assert!(matches!(
        sms::receipt_parts(&signed),
        Err(sms::SmsError::NotPackable(_))
    ));
}

fn incident_plain(time: &str) -> NewRecord {
    NewRecord::builder("KZ-WIPE-STATION", "access", 1, "access")
        .payload(serde_json::json!({"event": "expelled", "time": time}))
        .build()
        .unwrap()
}
