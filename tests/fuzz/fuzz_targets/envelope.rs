//! A record as it arrives from another device: wire JSON, then the
//! envelope checked against a key. Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_core::identity::PublicKey;
use observer_core::protocol::WireRecord;
use observer_core::record::{verify_envelope, Envelope};

fuzz_target!(|data: &[u8]| {
    let key: PublicKey = "Xr4m7Xf9d0y2cQn8hB3kz1wq5tV6uJ0pL9sA2eR4iY8"
        .parse()
        .expect("a 32-byte key");
    if let Ok(wire) = serde_json::from_slice::<WireRecord>(data) {
        if let Some(env) = wire.envelope() {
            let _ = verify_envelope(&env, &key);
        }
    }
    // The raw bytes as a body with a zero signature: the body parser runs
    // before the signature check is decisive.
    if data.len() >= 64 {
        let (sig, body) = data.split_at(64);
        let env = Envelope {
            body: body.to_vec(),
            sig: sig.try_into().expect("64 bytes"),
        };
        let _ = verify_envelope(&env, &key);
        let _ = env.id();
    }
});
