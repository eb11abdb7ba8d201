//! SMS gateways as they post to the coordinator: Twilio's signed form and
//! SMS Gateway for Android's signed JSON, built here with the gateways'
//! documented signatures, and a server set up to take both.

use std::path::Path;

use base64::Engine as _;
use ring::hmac;

use super::Server;

pub const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
pub const ANDROID_KEY: &str = "android-gateway-signing-key";
pub const NUMBER: &str = "+77010000000";

/// Sets `server` up to take both gateways (secrets in files under `dir`).
pub fn set_up_gateways(server: &Server, dir: &Path, expiry_hours: u32) {
    let token = dir.join("twilio-token");
    let key = dir.join("android-key");
    std::fs::write(&token, TWILIO_TOKEN).unwrap();
    std::fs::write(&key, ANDROID_KEY).unwrap();
    server.cli(&[
        "sms",
        "gateways",
        "--twilio-token-file",
        token.to_str().unwrap(),
        "--twilio-url",
        &twilio_url(server),
        "--android-key-file",
        key.to_str().unwrap(),
        "--number",
        NUMBER,
        "--expiry-hours",
        &expiry_hours.to_string(),
    ]);
}

pub fn twilio_url(server: &Server) -> String {
    format!("{}/v1/sms/twilio", server.url())
}

/// Twilio's form body for a text from `from`, and its X-Twilio-Signature
/// under `token`.
pub fn twilio(url: &str, token: &str, from: &str, text: &str) -> (Vec<u8>, String) {
    let params = [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("Body", text),
        ("From", from),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("To", "+77010000000"),
    ];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes();
    let mut data = url.to_string();
    let mut sorted = params.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, data.as_bytes()));
    (body, sig)
}

/// SMS Gateway for Android's webhook JSON for a text from `from`, and its
/// (X-Signature, X-Timestamp) under `key` at Unix time `at`.
pub fn android(key: &str, from: &str, text: &str, at: i64) -> (Vec<u8>, String, String) {
    let body = serde_json::to_vec(&serde_json::json!({
        "deviceId": "ffffffffceb0b1db00000193991c27e5",
        "event": "sms:received",
        "id": "Ey6ECgOkVVFjz3CL48B8C",
        "payload": {
            "message": text,
            "receivedAt": "2024-10-06T14:20:31.000+05:00",
            "messageId": "abc",
            "phoneNumber": from,
            "simNumber": 1
        },
        "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }))
    .unwrap();
    let ts = at.to_string();
    let mut signed = body.clone();
    signed.extend_from_slice(ts.as_bytes());
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    (body, hex::encode(hmac::sign(&key, &signed)), ts)
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Posts one text through SMS Gateway for Android, returning its outcome.
pub fn via_android(server: &Server, from: &str, text: &str) -> String {
    let (body, sig, ts) = android(ANDROID_KEY, from, text, now_secs());
    let resp = super::raw_client()
        .post(format!("{}/v1/sms/android", server.url()))
        .header("content-type", "application/json")
        .header("x-signature", sig)
        .header("x-timestamp", ts)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
    v["outcome"].as_str().unwrap().to_string()
}

/// Posts one text through Twilio, returning the texts its TwiML answer
/// has Twilio send back to the sender (the receipt, when a record settled).
pub fn via_twilio(server: &Server, from: &str, text: &str) -> Vec<String> {
    let (body, sig) = twilio(&twilio_url(server), TWILIO_TOKEN, from, text);
    let resp = super::raw_client()
        .post(twilio_url(server))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/xml");
    twiml_messages(&resp.text().unwrap())
}

/// The texts of a TwiML answer's `<Message>` verbs, read by an XML parser.
pub fn twiml_messages(xml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut out, mut inside) = (Vec::new(), false);
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.name().as_ref() == b"Message" => {
                inside = true;
                out.push(String::new());
            }
            Event::End(e) if e.name().as_ref() == b"Message" => inside = false,
            Event::Text(t) if inside => {
                let raw = std::str::from_utf8(t.as_ref()).unwrap().to_string();
                out.last_mut()
                    .unwrap()
                    .push_str(&quick_xml::escape::unescape(&raw).unwrap());
            }
            Event::GeneralRef(r) if inside => {
                let name = std::str::from_utf8(r.as_ref()).unwrap();
                out.last_mut()
                    .unwrap()
                    .push_str(&quick_xml::escape::unescape(&format!("&{name};")).unwrap());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// `sms status --json`.
pub fn status(server: &Server) -> serde_json::Value {
    serde_json::from_str(&server.cli(&["sms", "status", "--json"])).unwrap()
}
