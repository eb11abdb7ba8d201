//! Issue 19's figures: how many SMS segments each shipped form's record
//! takes with realistic answers in Kazakh, Russian and English, and the
//! heartbeat and the coordinator's receipt texted back; beside the floor (the bytes any signed, chained record must
//! carry) and the time to write and read a report.

use std::time::Instant;

use observer_core::identity::SigningKey;
use observer_core::protocol::{Ack, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed};
use observer_core::record::{
    ChainPosition, Clock, Envelope, NewRecord, RecordId, Sha256Digest, sign_record,
};
use observer_core::sms::{self, Context as _, Forms, Unpacked};
use serde_json::{Value, json};

use crate::report::{Samples, machine, us};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ORG: &str = "Адал сайлау";

/// Realistic answers: what an observer types on a phone keyboard.
fn answers(form: &str, lang: &str) -> Value {
    let t = |kk: &str, ru: &str, en: &str| match lang {
        "kk" => kk.to_string(),
        "ru" => ru.to_string(),
        _ => en.to_string(),
    };
    match form {
        "access" => json!({"event": "expelled", "time": "14:20",
            "reason_given": t("партиядан жолдама жоқ", "нет направления от партии", "no letter from the party"),
            "by_whom": t("УСК төрағасы", "председатель УИК", "the PEC chair"),
            "credentials_disputed": true}),
        "opening" => json!({"arrival_time": "07:30", "admitted_on_time": true,
            "boxes_empty_shown": true, "boxes_sealed": true, "ballots_received": 2300,
            "voter_list_available": true, "opened_on_time": false,
            "note": t("8:10-да ашылды", "открыли в 8:10", "opened at 8:10")}),
        "voting" => json!({"time": "11:40", "voters_in_queue": 14, "secrecy_respected": false,
            "unauthorised_persons": true, "supplementary_list_used": true, "supplementary_count": 37,
            "recording_allowed": true,
            "note": t("кабинада екі адам", "в кабине по двое", "two people per booth")}),
        "closing" => json!({"closing_time": "20:00", "voters_in_line_allowed": true,
            "unused_ballots_cancelled": false, "seals_intact": true, "observers_could_see": false,
            "note": t("бюллетеньдер жойылмады", "бюллетени не погасили", "ballots not cancelled")}),
        "counting" => {
            json!({"registered_voters": 2314, "ballots_received": 2300, "ballots_issued": 1630,
            "ballots_spoiled": 4, "ballots_unused": 666, "ballots_cast": 1627,
            "ballots_invalid": 31, "party_1": 802, "party_2": 377, "party_3": 214,
            "party_4": 129, "party_5": 74, "count_announced": true, "copy_received": false,
            "note": t("көшірме бермеді", "копию не выдали", "no copy given")})
        }
        _ => json!({}),
    }
}

/// A record as a phone that synced before signs it: chain link, clock
/// anchor and offset, organisation.
fn signed(key: &SigningKey, form: &str, payload: Value) -> Result<Envelope> {
    let mut pos = ChainPosition::first(key);
    pos.seq = 57;
    pos.prev = Some(RecordId::from_bytes([7; 32]));
    pos.org = Some(ORG.into());
    pos.clock = Clock {
        offset_ms: Some(-1834),
        after: Some(Sha256Digest::from_bytes([9; 32])),
    };
    let new = NewRecord::builder("KZ-ALA-0042", form, 1, form)
        .payload(payload)
        .build()?;
    Ok(sign_record(&new, &pos, key)?)
}

pub fn run(scratch: &std::path::Path, rounds: usize, command: &str) -> Result<String> {
    let key = SigningKey::generate()?;
    let forms = Forms::shipped(Some(ORG));
    let mut out = String::new();
    out.push_str(&format!(
        "Machine: {}. Command: `{command}`.\n\n",
        machine(scratch)
    ));
    out.push_str(
        "Each part is one 160-character GSM 7-bit segment (8 characters of header, 152 of \
         base-111 text, about 129 bytes). The floor is what any signed, chained record carries \
         whatever its answers: signature (64 bytes), device (16), previous record (32) and clock \
         anchor (32), 144 bytes, 1.1 segments. Sealed forms (`incident`) never go by SMS.\n\n",
    );
    out.push_str("| Report | Language | Signed body (JSON) | Packed | Segments | Target |\n|---|---|---|---|---|---|\n");
    let mut envelopes = Vec::new();
    for form in ["access", "opening", "voting", "closing", "counting"] {
        for lang in ["kk", "ru", "en"] {
            let env = signed(&key, form, answers(form, lang))?;
            let packed = sms::pack_record(&env, &forms, forms.form(form, 1).as_ref())?;
            let texts = sms::record_parts(&env, &forms, None)?;
            let target = match form {
                "access" => "≤ 2",
                "counting" => "≤ 4",
                _ => "",
            };
            out.push_str(&format!(
                "| {form} | {lang} | {} B | {} B | {} | {target} |\n",
                env.body.len(),
                packed.len(),
                texts.len()
            ));
            envelopes.push(env);
        }
    }
    let hb = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: key.public_key().device_id(),
            seq: 57,
            head: Some(RecordId::from_bytes([7; 32])),
            at_ms: 1_728_200_000_000,
        },
        &key,
    );
    out.push_str(&format!(
        "| heartbeat | | {} B | {} B | {} | 1 |\n",
        hb.body.len(),
        sms::pack_heartbeat(&hb)?.len(),
        sms::heartbeat_parts(&hb)?.len()
    ));
    // The coordinator's receipt for one report, as a national election's
    // log would have it (seq and index in the millions).
    let coordinator = SigningKey::generate()?;
    let receipt = Signed::sign(
        RECEIPT_DOMAIN,
        &Receipt {
            org: ORG.into(),
            device: key.public_key().device_id(),
            server_time_ms: 1_728_200_000_000,
            accepted: vec![Ack {
                id: RecordId::from_bytes([8; 32]),
                seq: 57,
                index: 4_812_733,
            }],
            already: Vec::new(),
            rejected: Vec::new(),
            tree: observer_core::merkle::TreeHead {
                size: 4_812_901,
                root: Sha256Digest::from_bytes([3; 32]),
            },
        },
        &coordinator,
    );
    out.push_str(&format!(
        "| receipt (coordinator to phone) | | {} B | {} B | {} | 1 |\n\n",
        receipt.body.len(),
        sms::pack_receipt(&receipt)?.len(),
        sms::receipt_parts(&receipt)?.len()
    ));
    // Time to write a report's texts, and to read them back (parse, join,
    // rebuild), per report, over every report above.
    let mut write = Vec::new();
    let mut read = Vec::new();
    for _ in 0..rounds {
        for env in &envelopes {
            let t = Instant::now();
            let texts = sms::record_parts(env, &forms, None)?;
            write.push(t.elapsed());
            let t = Instant::now();
            let parts = texts
                .iter()
                .map(|x| sms::parse(x))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let back = sms::unpack(&sms::join(&parts)?, &forms)?;
            read.push(t.elapsed());
            assert_eq!(back, Unpacked::Record(env.clone()));
        }
    }
    let (write, read) = (Samples::new(write), Samples::new(read));
    out.push_str(&format!(
        "Writing a report's texts (pack, check it rebuilds, encode): p50 {}, p99 {}; reading them \
         (parse, join, rebuild the signed bytes): p50 {}, p99 {}; {} reports × {rounds} rounds. \
         The signature check the server then makes is one Ed25519 verification (~50 µs).\n",
        us(write.p50()),
        us(write.p99()),
        us(read.p50()),
        us(read.p99()),
        envelopes.len()
    ));
    Ok(out)
}
