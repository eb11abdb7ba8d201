//! Known-answer SMS reports shared with the Kotlin (and later Swift)
//! tests: `tests/vectors/sms-v1.json` holds signed records and a heartbeat
//! with the exact texts every implementation must write for them, and
//! damaged texts with the error each must give. Packing is deterministic,
//! so the texts are checked both ways. Regenerate only on a deliberate
//! format change:
//! `OBSERVER_WRITE_VECTORS=1 cargo test -p observer-core --test sms_vectors`.

use std::path::PathBuf;

use observer_core::identity::SigningKey;
use observer_core::protocol::{HEARTBEAT_DOMAIN, Heartbeat, Signed};
use observer_core::record::{
    ChainPosition, Clock, Envelope, NewRecord, RecordId, Sha256Digest, sign_record,
};
use observer_core::sms::{self, Forms, SmsError, Unpacked};
use serde_json::{Value, json};

const ORG: &str = "Адал сайлау";

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sms-v1.json")
}

fn generate() -> Value {
    let key = SigningKey::generate().unwrap();
    let mut pos = ChainPosition::first(&key);
    pos.org = Some(ORG.into());
    pos.seq = 41;
    pos.prev = Some(RecordId::from_bytes([0x5a; 32]));
    pos.captured_at = "2024-10-06T08:20:00.000Z".parse().unwrap();
    pos.clock = Clock {
        offset_ms: Some(-2150),
        after: Some(Sha256Digest::from_bytes([0x3c; 32])),
    };
    let mut records = Vec::new();
    for (form, payload) in [
        (
            "access",
            json!({"event": "expelled", "time": "14:20", "reason_given": "нет направления от партии",
                   "by_whom": "председатель УИК", "credentials_disputed": true}),
        ),
        (
            "counting",
            json!({"registered_voters": 2314, "ballots_received": 2300, "ballots_issued": 1630,
                   "ballots_spoiled": 4, "ballots_unused": 666, "ballots_cast": 1627,
                   "ballots_invalid": 31, "party_1": 802, "party_2": 377, "party_3": 214,
                   "party_4": 129, "party_5": 74, "count_announced": true, "copy_received": false,
                   "note": "Хаттаманың көшірмесін бермеді"}),
        ),
    ] {
        let new = NewRecord::builder("KZ-ALA-0042", form, 1, form)
            .payload(payload)
            .build()
            .unwrap();
        let env = sign_record(&new, &pos, &key).unwrap();
        let texts = sms::record_parts(&env, &Forms::shipped(Some(ORG)), None).unwrap();
        records.push(json!({
            "body": String::from_utf8(env.body.clone()).unwrap(),
            "sig": hex::encode(env.sig),
            "id": env.id().to_string(),
            "texts": texts,
        }));
        pos = pos.after(env.id());
    }
    let hb = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: key.public_key().device_id(),
            seq: 42,
            head: Some(pos.prev.unwrap()),
            at_ms: 1_728_224_000_000,
        },
        &key,
    );
    let hb_texts = sms::heartbeat_parts(&hb).unwrap();
    let mut altered: Vec<char> = records[0]["texts"][1].as_str().unwrap().chars().collect();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == 'x' { 'y' } else { 'x' };
    json!({
        "description": "Observer SMS reports v1 (docs/protocol.md, SMS reports): each record's texts in order; any order must join to the same signed bytes",
        "org": ORG,
        "public_key": key.public_key().to_string(),
        "records": records,
        "heartbeat": {"body": String::from_utf8(hb.body.clone()).unwrap(), "sig": hex::encode(&hb.sig), "texts": hb_texts},
        "damaged": [
            {"texts": [altered.into_iter().collect::<String>()], "error": "altered_part"},
            {"texts": [records[0]["texts"][0].clone()], "error": "incomplete"},
            {"texts": ["Встречаемся в 7 у школы"], "error": "not_a_part"},
        ],
    })
}

fn code(e: &SmsError) -> &'static str {
    match e {
        SmsError::AlteredPart { .. } => "altered_part",
        SmsError::Incomplete { .. } => "incomplete",
        SmsError::NotAPart => "not_a_part",
        _ => "other",
    }
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shared_reports_pack_to_the_same_texts_and_back() {
    if std::env::var_os("OBSERVER_WRITE_VECTORS").is_some() {
        std::fs::write(
            path(),
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let ctx = Forms::shipped(Some(v["org"].as_str().unwrap()));
    let key: observer_core::identity::PublicKey =
        v["public_key"].as_str().unwrap().parse().unwrap();
    for r in v["records"].as_array().unwrap() {
        let env = Envelope {
            body: r["body"].as_str().unwrap().as_bytes().to_vec(),
            sig: hex::decode(r["sig"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        };
        observer_core::record::verify_envelope(&env, &key).unwrap();
        let want = texts(&r["texts"]);
        assert_eq!(sms::record_parts(&env, &ctx, None).unwrap(), want);
        let mut parts: Vec<_> = want.iter().map(|t| sms::parse(t).unwrap()).collect();
        parts.reverse();
        let back = sms::unpack(&sms::join(&parts).unwrap(), &ctx).unwrap();
        assert_eq!(back, Unpacked::Record(env.clone()));
        assert_eq!(env.id().to_string(), r["id"]);
    }
    let hb = &v["heartbeat"];
    let signed = Signed {
        body: hb["body"].as_str().unwrap().as_bytes().to_vec(),
        sig: hex::decode(hb["sig"].as_str().unwrap()).unwrap(),
    };
    assert_eq!(sms::heartbeat_parts(&signed).unwrap(), texts(&hb["texts"]));
    for d in v["damaged"].as_array().unwrap() {
        let got = texts(&d["texts"])
            .iter()
            .map(|t| sms::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|p| sms::join(&p));
        assert_eq!(code(&got.unwrap_err()), d["error"], "{d}");
    }
}
