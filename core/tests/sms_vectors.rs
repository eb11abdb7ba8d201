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

fn receipt_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sms-receipt-v1.json")
}

/// What the phone supplies, as the vector gives it.
struct Phone {
    org: String,
    device: observer_core::identity::DeviceId,
    records: Vec<(u64, RecordId)>,
}

impl sms::ReceiptContext for Phone {
    fn org(&self) -> &str {
        &self.org
    }
    fn device(&self) -> &observer_core::identity::DeviceId {
        &self.device
    }
    fn record_id(&self, seq: u64) -> Option<RecordId> {
        self.records
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, id)| *id)
    }
}

fn generate_receipt() -> Value {
    use observer_core::protocol::{Ack, RECEIPT_DOMAIN, Receipt};
    let coordinator = SigningKey::generate().unwrap();
    let device = SigningKey::generate().unwrap().public_key().device_id();
    let id = |b: u8| RecordId::from_bytes([b; 32]);
    let receipt = Receipt {
        org: ORG.into(),
        device: device.clone(),
        server_time_ms: 1_728_224_123_456,
        accepted: vec![Ack {
            id: id(0x41),
            seq: 41,
            index: 90_211,
        }],
        already: vec![Ack {
            id: id(0x40),
            seq: 40,
            index: 88_007,
        }],
        rejected: Vec::new(),
        tree: observer_core::merkle::TreeHead {
            size: 90_240,
            root: Sha256Digest::from_bytes([0x7e; 32]),
        },
    };
    let signed = Signed::sign(RECEIPT_DOMAIN, &receipt, &coordinator);
    json!({
        "description": "Observer receipts by SMS v1 (docs/protocol.md, Receipts by SMS): the coordinator's signed receipt, its texts, and what the phone supplies to rebuild it",
        "coordinator": coordinator.public_key().to_string(),
        "org": ORG,
        "device": device.to_string(),
        "records": [{"seq": 40, "id": id(0x40).to_string()}, {"seq": 41, "id": id(0x41).to_string()}],
        "body": String::from_utf8(signed.body.clone()).unwrap(),
        "sig": hex::encode(&signed.sig),
        "texts": sms::receipt_parts(&signed).unwrap(),
    })
}

#[test]
fn the_shared_receipt_writes_the_same_texts_and_reads_back_to_the_signed_bytes() {
    if std::env::var_os("OBSERVER_WRITE_VECTORS").is_some() {
        std::fs::write(
            receipt_path(),
            serde_json::to_string_pretty(&generate_receipt()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(receipt_path()).unwrap()).unwrap();
    let signed = Signed {
        body: v["body"].as_str().unwrap().as_bytes().to_vec(),
        sig: hex::decode(v["sig"].as_str().unwrap()).unwrap(),
    };
    let coordinator: observer_core::identity::PublicKey =
        v["coordinator"].as_str().unwrap().parse().unwrap();
    let _: observer_core::protocol::Receipt = signed
        .open(
            "receipt",
            observer_core::protocol::RECEIPT_DOMAIN,
            &coordinator,
        )
        .unwrap();
    let want = texts(&v["texts"]);
    assert_eq!(sms::receipt_parts(&signed).unwrap(), want);
    let phone = Phone {
        org: v["org"].as_str().unwrap().into(),
        device: v["device"]
            .as_str()
            .unwrap()
            .to_string()
            .try_into()
            .unwrap(),
        records: v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["id"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect(),
    };
    assert_eq!(sms::read_receipt(&want, &phone).unwrap(), signed);
    // A phone that does not hold a named record cannot rebuild it.
    let stranger = Phone {
        records: Vec::new(),
        ..phone
    };
    assert!(matches!(
        sms::read_receipt(&want, &stranger),
        Err(SmsError::Malformed(_))
    ));
}
