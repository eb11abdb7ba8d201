//! A signed note from another party: a coordinator's checkpoint as a
//! witness or a verifier receives it, with any signature lines. Reading it
//! must give a typed answer, never a panic; and a note a witness cosigns
//! must read back as cosigned, at the time it was cosigned.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use observer_core::identity::SigningKey;
use observer_core::merkle::{Checkpoint, TrustedWitness, Witness};

fn keys() -> &'static (SigningKey, SigningKey) {
    static KEYS: OnceLock<(SigningKey, SigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| (SigningKey::generate().unwrap(), SigningKey::generate().unwrap()))
}

fuzz_target!(|data: &[u8]| {
    let (log, witness) = keys();
    let origin = Checkpoint::claimed_origin(data);
    if let Ok(origin) = &origin {
        let _ = Checkpoint::open(data, origin, &log.public_key());
    }
    let trusted = TrustedWitness {
        name: "witness.example/w1".into(),
        key: witness.public_key(),
    };
    let _ = trusted.cosigned_at(data);
    let w = Witness {
        name: "witness.example/w1",
        key: witness,
    };
    if let Ok(line) = w.cosign(data, 1_700_000_000) {
        // The witness's line goes after the note's own lines (a note ends
        // with its last line's newline).
        let cosigned = [data, line.as_slice()].concat();
        if trusted.cosigned_at(data).ok() == Some(None) {
            assert_eq!(
                trusted.cosigned_at(&cosigned).ok(),
                Some(Some(1_700_000_000)),
                "a note the witness cosigned reads back as cosigned"
            );
        }
    }
});
