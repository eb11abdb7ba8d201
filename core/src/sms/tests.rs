//! Reports through SMS and back: exact bytes, segment targets, and every
//! way the network mangles parts.

use super::*;
use crate::identity::SigningKey;
use crate::protocol::{HEARTBEAT_DOMAIN, Heartbeat};
use crate::record::{ChainPosition, Clock, NewRecord, RecordId, Sha256Digest, sign_record};

const ORG: &str = "Адал сайлау";

/// A record well into a day: a chain link, a clock anchor and offset, the
/// organisation, as a phone that has synced before signs it.
fn signed(form: &str, payload: serde_json::Value) -> (SigningKey, Envelope) {
    let key = SigningKey::generate().unwrap();
    let mut pos = ChainPosition::first(&key);
    pos.seq = 57;
    pos.prev = Some(RecordId::from_bytes([7; 32]));
    pos.org = Some(ORG.into());
    pos.clock = Clock {
        offset_ms: Some(-1834),
        after: Some(Sha256Digest::from_bytes([9; 32])),
    };
    let new = NewRecord::builder("KZ-ALA-0042", form, 1, form)
        .payload(payload)
        .build()
        .unwrap();
    let env = sign_record(&new, &pos, &key).unwrap();
    (key, env)
}

fn ctx() -> Forms {
    Forms::shipped(Some(ORG))
}

fn round_trip(env: &Envelope) -> Vec<String> {
    let texts = record_parts(env, &ctx(), None).unwrap();
    for t in &texts {
        assert!(t.chars().count() <= SEGMENT_CHARS, "{t}");
        assert!(is_gsm7(t), "not GSM 7-bit: {t}");
    }
    let mut parts: Vec<Part> = texts.iter().map(|t| parse(t).unwrap()).collect();
    parts.reverse();
    let bytes = join(&parts).unwrap();
    assert_eq!(
        unpack(&bytes, &ctx()).unwrap(),
        Unpacked::Record(env.clone())
    );
    texts
}

fn access_incident() -> serde_json::Value {
    serde_json::json!({
        "event": "expelled",
        "time": "14:20",
        "reason_given": "нет направления от партии",
        "by_whom": "председатель УИК",
        "credentials_disputed": true,
    })
}

fn results_protocol() -> serde_json::Value {
    serde_json::json!({
        "registered_voters": 2314, "ballots_received": 2300, "ballots_issued": 1630,
        "ballots_spoiled": 4, "ballots_unused": 666, "ballots_cast": 1627,
        "ballots_invalid": 31, "party_1": 802, "party_2": 377, "party_3": 214,
        "party_4": 129, "party_5": 74, "count_announced": true, "copy_received": false,
    })
}

#[test]
fn the_critical_reports_fit_their_segment_targets_and_rebuild_byte_for_byte() {
    let (_, access) = signed("access", access_incident());
    assert!(
        round_trip(&access).len() <= 2,
        "an access incident in at most two"
    );
    let (_, results) = signed("counting", results_protocol());
    assert!(
        round_trip(&results).len() <= 4,
        "a 5-party protocol in at most four"
    );
    let (_, opening) = signed(
        "opening",
        serde_json::json!({"arrival_time": "07:30", "admitted_on_time": true,
            "boxes_empty_shown": true, "boxes_sealed": true, "ballots_received": 2300,
            "voter_list_available": true, "opened_on_time": true}),
    );
    round_trip(&opening);

    let key = SigningKey::generate().unwrap();
    let hb = Heartbeat {
        device: key.public_key().device_id(),
        seq: 57,
        head: Some(RecordId::from_bytes([3; 32])),
        at_ms: 1_728_200_000_123,
    };
    let signed_hb = Signed::sign(HEARTBEAT_DOMAIN, &hb, &key);
    let texts = heartbeat_parts(&signed_hb).unwrap();
    assert_eq!(texts.len(), 1, "a heartbeat in one segment");
    let bytes = join(&[parse(&texts[0]).unwrap()]).unwrap();
    assert_eq!(
        unpack(&bytes, &ctx()).unwrap(),
        Unpacked::Heartbeat(signed_hb)
    );
}

#[test]
fn answers_outside_the_forms_compact_types_still_travel_as_json() {
    // A field the form lacks, and a note on the results form.
    let (_, env) = signed(
        "counting",
        serde_json::json!({"party_1": 10, "extra": [1, 2], "note": "Қайта санау талап етілді"}),
    );
    round_trip(&env);
    // A form the receiver does not hold is named, not guessed.
    let texts = record_parts(&env, &ctx(), None).unwrap();
    let parts: Vec<Part> = texts.iter().map(|t| parse(t).unwrap()).collect();
    assert!(unpack(&join(&parts).unwrap(), &Forms::default()).is_err());
}

#[test]
fn parts_duplicated_missing_altered_or_mixed_are_handled_by_name() {
    let (_, env) = signed("access", access_incident());
    let texts = record_parts(&env, &ctx(), None).unwrap();
    assert_eq!(texts.len(), 2);
    let parts: Vec<Part> = texts.iter().map(|t| parse(t).unwrap()).collect();
    // A duplicate counts once.
    let dup = vec![parts[1].clone(), parts[0].clone(), parts[1].clone()];
    assert!(join(&dup).is_ok());
    // A missing part is named.
    assert_eq!(
        join(&parts[..1]),
        Err(SmsError::Incomplete { missing: vec![2] })
    );
    // An altered part is refused, whichever character was changed: by its
    // check character, naming the part; one alteration in 111 gets past a
    // single check character (the signed content decides which), and the
    // message it makes then no longer matches its id.
    let chars: Vec<char> = texts[1].chars().collect();
    let mut named = 0;
    for i in 8..chars.len() {
        let mut altered = chars.clone();
        altered[i] = if altered[i] == 'a' { 'b' } else { 'a' };
        match parse(&altered.into_iter().collect::<String>()) {
            Err(e) => {
                assert_eq!(e, SmsError::AlteredPart { index: 2, total: 2 });
                named += 1;
            }
            Ok(past_the_check) => assert_eq!(
                join(&[parts[0].clone(), past_the_check]),
                Err(SmsError::Malformed(
                    "the parts do not make the message they name".into()
                ))
            ),
        }
    }
    assert!(named * 10 >= (chars.len() - 8) * 9, "{named} named");
    // Parts of another message are not mixed in.
    let (_, other) = signed("access", access_incident());
    let theirs: Vec<Part> = record_parts(&other, &ctx(), None)
        .unwrap()
        .iter()
        .map(|t| parse(t).unwrap())
        .collect();
    assert!(join(&[parts[0].clone(), theirs[1].clone()]).is_err());
    // Ordinary texts are not reports; a gateway's padding is ignored.
    assert_eq!(parse("Привет, как дела?"), Err(SmsError::NotAPart));
    assert_eq!(parse(&format!("  {}\n", texts[0])).unwrap(), parts[0]);
}

#[test]
fn a_body_that_would_not_rebuild_exactly_is_refused_before_it_is_sent() {
    let (key, env) = signed("access", access_incident());
    // The same body with a space after a comma: valid JSON, signed, but
    // not what serialising its values gives.
    let text = String::from_utf8(env.body.clone()).unwrap();
    let body = text.replacen(",\"", ", \"", 1).into_bytes();
    let sig = key.sign(&[crate::record::SIGNING_DOMAIN, &body].concat());
    let odd = Envelope { body, sig };
    assert!(matches!(
        record_parts(&odd, &ctx(), None),
        Err(SmsError::NotPackable(_))
    ));
    // Signed for another organisation than the receiver's.
    assert!(matches!(
        record_parts(&env, &Forms::shipped(Some("another")), None),
        Err(SmsError::NotPackable(_))
    ));
}
