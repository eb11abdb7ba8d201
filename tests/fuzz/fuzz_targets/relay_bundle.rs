//! A relay bundle as a carrier's phone reads it at import: any bytes, and
//! any layout framed with a valid signature (so the fuzzer explores what
//! comes after the signature check too). Must never panic, and what reads
//! must hold the invariants the relay outbox relies on.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use observer_core::identity::SigningKey;
use observer_core::relay::{RELAY_DOMAIN, RELAY_MAGIC, RelayBundle};
use observer_core::seal::OrgSecretKey;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("a key"))
}

fn org() -> &'static OrgSecretKey {
    static ORG: OnceLock<OrgSecretKey> = OnceLock::new();
    ORG.get_or_init(|| OrgSecretKey::from_bytes(&[7u8; 32]).expect("valid X25519 key"))
}

fn check(bundle: &RelayBundle) {
    let mut last = 0;
    for r in bundle.records() {
        assert_eq!(&r.device, bundle.device());
        assert!(r.seq > last, "seqs ascend");
        last = r.seq;
        let _ = r.open(org());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = RelayBundle::read(data) {
        check(&b);
    }
    // MAGIC || key || data || signature: a bundle whose layout is the
    // fuzzer's and whose signature is valid.
    let mut framed = RELAY_MAGIC.to_vec();
    framed.extend_from_slice(key().public_key().as_bytes());
    framed.extend_from_slice(data);
    let sig = key().sign(&[RELAY_DOMAIN, &framed].concat());
    framed.extend_from_slice(&sig);
    if let Ok(b) = RelayBundle::read(&framed) {
        assert_eq!(b.device(), &key().public_key().device_id());
        check(&b);
    }
});
