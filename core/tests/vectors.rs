//! Known-answer vectors shared with the Kotlin (and later Swift) tests: the
//! same key and body bytes must give the same signature and id everywhere.
//! Regenerate only on a deliberate format change:
//! `OBSERVER_WRITE_VECTORS=1 cargo test -p observer-core --test vectors`.

use std::path::PathBuf;

use observer_core::identity::{KeyStore, KeyStoreError, SigningKey};
use observer_core::record::{
    ChainPosition, Clock, Envelope, NewRecord, RecordId, sign_record, verify_envelope,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// A key store that "unwraps" to a fixed key: how a known key is loaded.
struct Fixed(Vec<u8>);
impl KeyStore for Fixed {
    fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        Ok(secret.to_vec())
    }
    fn unwrap(&self, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        Ok(Zeroizing::new(self.0.clone()))
    }
    fn destroy(&self) -> Result<(), KeyStoreError> {
        Ok(())
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/record-v1.json")
}

fn generate() -> Value {
    let key = SigningKey::generate().unwrap();
    let pkcs8 = key.wrap(&Fixed(vec![])).unwrap();
    let mut pos = ChainPosition::first(&key);
    pos.captured_at = "2021-01-10T06:00:00.000Z".parse().unwrap();
    pos.clock = Clock {
        offset_ms: Some(-1200),
        after: None,
    };
    let mut records = Vec::new();
    for (i, payload) in [
        json!({"observer_admitted": false, "note": "kept out until 7:00"}),
        json!({"type": "ballot_stuffing", "ballots": 12, "note": "Қазақша, русский, English"}),
    ]
    .into_iter()
    .enumerate()
    {
        let new = NewRecord::builder("KZ-ALA-0042", "incident", 1, "incident")
            .payload(payload)
            .build()
            .unwrap();
        let env = sign_record(&new, &pos, &key).unwrap();
        records.push(json!({
            "seq": i + 1,
            "body": String::from_utf8(env.body.clone()).unwrap(),
            "sig": hex::encode(env.sig),
            "id": env.id().to_string(),
        }));
        pos = pos.after(env.id());
        pos.captured_at = "2021-01-10T07:15:30.250Z".parse().unwrap();
    }
    json!({
        "description": "Observer record v1: sig = Ed25519(pkcs8, \"observer/record/v1\\0\" || body), id = SHA-256(body)",
        "pkcs8": hex::encode(&pkcs8),
        "public_key": key.public_key().to_string(),
        "device": key.public_key().device_id().to_string(),
        "records": records,
    })
}

#[test]
fn signatures_and_ids_match_the_shared_vectors() {
    if std::env::var_os("OBSERVER_WRITE_VECTORS").is_some() {
        std::fs::write(
            path(),
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let pkcs8 = hex::decode(v["pkcs8"].as_str().unwrap()).unwrap();
    let key = SigningKey::unwrap(b"", &Fixed(pkcs8)).unwrap();
    assert_eq!(key.public_key().to_string(), v["public_key"]);
    assert_eq!(key.public_key().device_id().to_string(), v["device"]);
    let mut prev: Option<RecordId> = None;
    for r in v["records"].as_array().unwrap() {
        let body = r["body"].as_str().unwrap().as_bytes().to_vec();
        let mut signed = observer_core::record::SIGNING_DOMAIN.to_vec();
        signed.extend_from_slice(&body);
        // Ed25519 is deterministic: the same key and bytes give the same signature.
        assert_eq!(hex::encode(key.sign(&signed)), r["sig"]);
        let env = Envelope {
            body,
            sig: hex::decode(r["sig"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        };
        assert_eq!(env.id().to_string(), r["id"]);
        let rec = verify_envelope(&env, &key.public_key()).unwrap();
        assert_eq!(rec.body.prev, prev);
        prev = Some(rec.id);
    }
}
