//! An upload as the server parses it: a batch (or a wiped phone's sealed
//! batch), each record's envelope, each sealed record opened with an
//! organisation key. Must never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use observer_core::protocol::{Batch, SealedBatch};
use observer_core::seal::OrgSecretKey;

fn org() -> &'static OrgSecretKey {
    static ORG: OnceLock<OrgSecretKey> = OnceLock::new();
    ORG.get_or_init(|| OrgSecretKey::from_bytes(&[7u8; 32]).expect("valid X25519 key"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<Batch>(data) {
        let _ = serde_json::from_slice::<serde_json::Value>(&batch.heartbeat.body);
        for w in &batch.records {
            let _ = w.envelope();
        }
        for s in &batch.sealed {
            let _ = s.open(org());
        }
    }
    if let Ok(sealed) = serde_json::from_slice::<SealedBatch>(data) {
        for s in &sealed.sealed {
            let _ = s.open(org());
        }
    }
});
