//! The relay outbox: what an export carries, what an import refuses, and
//! that neither touches this phone's own chain.

use super::*;
use crate::relay::{MAX_BUNDLE_BYTES, RelayBundle, RelayError};

#[test]
fn an_export_carries_every_undelivered_record_sealed_and_changes_nothing() {
    let a_fx = Fixture::new();
    let a = a_fx.open().unwrap();
    let org = enroll_with_seal_key(&a);
    let saved: Vec<_> = (0..5)
        .map(|i| a.save(incident(&format!("note {i}"))).unwrap())
        .collect();
    let before = a.counts().unwrap();
    let export = a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap();
    assert_eq!((export.records, export.left_out), (5, 0));
    assert_eq!(a.counts().unwrap(), before, "an export changes no state");
    let bundle = RelayBundle::read(&export.bytes).unwrap();
    let ids: Vec<_> = bundle
        .records()
        .iter()
        .map(|s| s.open(&org).unwrap().id())
        .collect();
    assert_eq!(ids, saved.iter().map(|s| s.id).collect::<Vec<_>>());

    // A size that holds two records carries the two oldest.
    let one = export.bytes.len() / 5;
    let small = a.export_relay_bundle(2 * one + one / 2).unwrap();
    assert_eq!((small.records, small.left_out), (2, 3));
    let seqs: Vec<u64> = RelayBundle::read(&small.bytes)
        .unwrap()
        .records()
        .iter()
        .map(|s| s.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn an_import_is_idempotent_and_kept_apart_from_the_relays_own_chain() {
    let a_fx = Fixture::new();
    let a = a_fx.open().unwrap();
    let org = enroll_with_seal_key(&a);
    for i in 0..3 {
        a.save(incident(&format!("a {i}"))).unwrap();
    }
    let bundle = a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes;

    let b_fx = Fixture::new();
    let b = b_fx.open().unwrap();
    enroll_with_org(&b, &org);
    b.save(incident("b's own")).unwrap();
    let own_before = b.list(&Query::new()).unwrap();

    let first = b.import_relay_bundle(&bundle).unwrap();
    assert_eq!(
        (first.device.clone(), first.records, first.added),
        (a.device_id().clone(), 3, 3)
    );
    let again = b.import_relay_bundle(&bundle).unwrap();
    assert_eq!((again.records, again.added), (3, 0));
    assert_eq!(b.relay_count().unwrap(), 3);
    assert_eq!(b.list(&Query::new()).unwrap(), own_before);
    assert_eq!(b.counts().unwrap().total(), 1);
    assert!(b.verify().unwrap().is_intact());

    // What the relay keeps opens only for the organisation, as A's records.
    let held = b.relay_pending().unwrap();
    for r in &held {
        let env = r.record.open(&org).unwrap();
        assert_eq!(r.record.device, *a.device_id());
        assert!(crate::record::verify_envelope(&env, &a.public_key()).is_ok());
    }
    // Settled records leave the relay outbox.
    assert_eq!(b.settle_relayed(&[held[0].row, held[1].row]).unwrap(), 2);
    assert_eq!(b.relay_count().unwrap(), 1);
}

#[test]
fn a_bad_bundle_is_refused_by_name_and_leaves_everything_untouched() {
    let a_fx = Fixture::new();
    let a = a_fx.open().unwrap();
    let org = enroll_with_seal_key(&a);
    for i in 0..3 {
        a.save(incident(&format!("a {i}"))).unwrap();
    }
    let bundle = a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes;
    let b_fx = Fixture::new();
    let b = b_fx.open().unwrap();
    enroll_with_org(&b, &org);
    b.save(incident("b's own")).unwrap();
    let own_before = b.list(&Query::new()).unwrap();

    let refused = |bytes: &[u8]| match b.import_relay_bundle(bytes) {
        Err(StoreError::Relay(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mut altered = bundle.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x40;
    assert_eq!(refused(&altered), RelayError::Altered);
    assert_eq!(refused(&bundle[..bundle.len() - 10]), RelayError::Truncated);
    assert_eq!(refused(b"not a bundle"), RelayError::NotABundle);
    assert_eq!(
        refused(&a.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes[..0]),
        RelayError::NotABundle
    );
    // Another organisation's bundle.
    let c_fx = Fixture::new();
    let c = c_fx.open().unwrap();
    enroll_with_seal_key(&c);
    c.save(incident("c")).unwrap();
    let other_org = c.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes;
    assert_eq!(refused(&other_org), RelayError::OtherOrganisation);
    // Its own bundle.
    let own = b.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes;
    assert_eq!(refused(&own), RelayError::OwnBundle);

    assert_eq!(b.relay_count().unwrap(), 0);
    assert_eq!(b.list(&Query::new()).unwrap(), own_before);
    assert!(b.verify().unwrap().is_intact());
}

#[test]
fn a_phone_without_a_sealing_key_can_neither_export_nor_import() {
    let a_fx = Fixture::new();
    let a = a_fx.open().unwrap();
    a.save(incident("offline")).unwrap();
    assert!(matches!(
        a.export_relay_bundle(MAX_BUNDLE_BYTES),
        Err(StoreError::Relay(RelayError::NoSealKey))
    ));
    let b_fx = Fixture::new();
    let b = b_fx.open().unwrap();
    enroll_with_seal_key(&b);
    b.save(incident("b")).unwrap();
    let bundle = b.export_relay_bundle(MAX_BUNDLE_BYTES).unwrap().bytes;
    assert!(matches!(
        a.import_relay_bundle(&bundle),
        Err(StoreError::Relay(RelayError::NoSealKey))
    ));
    assert_eq!(a.relay_count().unwrap(), 0);
}

/// Enrolls `store` with the same organisation key as another phone.
fn enroll_with_org(store: &Store, org: &crate::seal::OrgSecretKey) {
    enroll_with_seal_key(store);
    let mut enrollment = store.enrollment().unwrap();
    enrollment.seal_key = Some(org.public_key());
    store.set_enrollment(&enrollment).unwrap();
}
