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
