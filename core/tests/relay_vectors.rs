//! Known-answer relay bundles shared with the Kotlin (and later Swift)
//! tests: `tests/vectors/relay-v1.json` describes the bundles under
//! `tests/vectors/relay/`, which every implementation must read alike (a
//! valid one, and damaged ones with the error each must give). HPKE's
//! ephemeral keys are random, so the files are kept rather than rebuilt.
//! Regenerate only on a deliberate format change:
//! `OBSERVER_WRITE_VECTORS=1 cargo test -p observer-core --test relay_vectors`.

use std::path::PathBuf;

use observer_core::identity::SigningKey;
use observer_core::record::{ChainPosition, Envelope, NewRecord, sign_record, verify_envelope};
use observer_core::relay::{RelayBundle, RelayError};
use observer_core::seal::{OrgSecretKey, SealedRecord};
use serde_json::{Value, json};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// The damaged copies and what each must be refused as.
const DAMAGED: &[(&str, &str)] = &[
    ("relay/altered.obsrelay", "altered"),
    ("relay/truncated.obsrelay", "truncated"),
    ("relay/not-a-bundle.obsrelay", "not_a_bundle"),
];

fn code(e: &RelayError) -> &'static str {
    match e {
        RelayError::NotABundle => "not_a_bundle",
        RelayError::Truncated => "truncated",
        RelayError::Altered => "altered",
        RelayError::Malformed(_) => "malformed",
        RelayError::TooLarge(_) => "too_large",
        _ => "other",
    }
}

fn generate() {
    let org = OrgSecretKey::generate();
    let key = SigningKey::generate().unwrap();
    let mut pos = ChainPosition::first(&key);
    pos.captured_at = "2024-10-06T09:15:00.000Z".parse().unwrap();
    let mut sealed = Vec::new();
    let mut records = Vec::new();
    for payload in [
        json!({"type": "observer_expelled", "time": "09:15", "note": "Бақылаушыны шығарып жіберді"}),
        json!({"type": "denied_entry", "time": "09:40", "note": "наблюдателя не пустили"}),
        json!({"type": "other", "time": "10:05", "note": "the seal on box 2 was broken"}),
    ] {
        let new = NewRecord::builder("KZ-ALA-0042", "incident", 1, "incident")
            .payload(payload)
            .build()
            .unwrap();
        let env = sign_record(&new, &pos, &key).unwrap();
        sealed.push(SealedRecord::seal(&org.public_key(), &pos.device, pos.seq, &env).unwrap());
        records.push(json!({
            "seq": pos.seq,
            "body": String::from_utf8(env.body.clone()).unwrap(),
            "sig": hex::encode(env.sig),
            "id": env.id().to_string(),
        }));
        pos = pos.after(env.id());
    }
    let bundle = RelayBundle::write(&key, &org.public_key(), &sealed).unwrap();
    std::fs::create_dir_all(dir().join("relay")).unwrap();
    std::fs::write(dir().join("relay/valid.obsrelay"), &bundle).unwrap();
    let mut altered = bundle.clone();
    // A byte of the second record's ciphertext.
    let at = bundle.len() / 2;
    altered[at] ^= 0x20;
    std::fs::write(dir().join("relay/altered.obsrelay"), &altered).unwrap();
    std::fs::write(
        dir().join("relay/truncated.obsrelay"),
        &bundle[..bundle.len() - 40],
    )
    .unwrap();
    std::fs::write(
        dir().join("relay/not-a-bundle.obsrelay"),
        b"observer-relay/v2\nfrom a future version",
    )
    .unwrap();
    let v = json!({
        "description": "Observer relay bundle v1 (docs/protocol.md, Relay bundles): records sealed to org_secret's public key (HPKE base mode, X25519-HKDF-SHA256, HKDF-SHA256, ChaCha20-Poly1305), the bundle signed by the device",
        "org_secret": hex::encode(&org.to_bytes()[..]),
        "org_key": hex::encode(org.public_key().as_bytes()),
        "public_key": key.public_key().to_string(),
        "device": key.public_key().device_id().to_string(),
        "valid": {"file": "relay/valid.obsrelay", "seqs": [1, 2, 3], "records": records},
        "damaged": DAMAGED.iter().map(|(f, e)| json!({"file": f, "error": e})).collect::<Vec<_>>(),
    });
    std::fs::write(
        dir().join("relay-v1.json"),
        serde_json::to_string_pretty(&v).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn the_shared_bundles_read_open_and_fail_alike() {
    if std::env::var_os("OBSERVER_WRITE_VECTORS").is_some() {
        generate();
    }
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("relay-v1.json")).unwrap())
            .unwrap();
    let org =
        OrgSecretKey::from_bytes(&hex::decode(v["org_secret"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(hex::encode(org.public_key().as_bytes()), v["org_key"]);
    let bytes = std::fs::read(dir().join(v["valid"]["file"].as_str().unwrap())).unwrap();
    let bundle = RelayBundle::read(&bytes).unwrap();
    assert_eq!(bundle.device().to_string(), v["device"]);
    assert_eq!(bundle.device_key().to_string(), v["public_key"]);
    assert_eq!(bundle.org(), &org.public_key());
    let seqs: Vec<u64> = bundle.records().iter().map(|r| r.seq).collect();
    assert_eq!(json!(seqs), v["valid"]["seqs"]);
    for (sealed, want) in bundle
        .records()
        .iter()
        .zip(v["valid"]["records"].as_array().unwrap())
    {
        let env: Envelope = sealed.open(&org).unwrap();
        assert_eq!(env.body, want["body"].as_str().unwrap().as_bytes());
        assert_eq!(hex::encode(env.sig), want["sig"]);
        let rec = verify_envelope(&env, bundle.device_key()).unwrap();
        assert_eq!(rec.id.to_string(), want["id"]);
        assert_eq!(rec.body.seq, sealed.seq);
    }
    for d in v["damaged"].as_array().unwrap() {
        let bytes = std::fs::read(dir().join(d["file"].as_str().unwrap())).unwrap();
        let e = RelayBundle::read(&bytes).unwrap_err();
        assert_eq!(code(&e), d["error"], "{}: {e}", d["file"]);
    }
}
