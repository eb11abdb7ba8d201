//! SMS reports end to end, against a real server process and its gateway
//! webhooks: parts in any order, duplicated, missing until later (across a
//! server kill), altered; a report replayed from another number; a
//! revoked device; a forged signature; the same record by SMS and by the
//! internet, stored once.

mod support;

use observer_core::record::NewRecord;
use observer_core::sync::{SyncOptions, sync};
use support::sms::{set_up_gateways, status, via_android, via_twilio};
use support::*;

fn access(note: &str) -> NewRecord {
    NewRecord::builder("KZ-0001", "access", 1, "access")
        .payload(serde_json::json!({"event": "expelled", "time": "14:20",
            "reason_given": note, "by_whom": "председатель УИК", "credentials_disputed": true}))
        .build()
        .unwrap()
}

fn outcomes(server: &Server) -> Vec<String> {
    status(server)["log"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn parts_in_any_order_duplicated_or_late_make_one_record_held_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let first = p.save(access("нет направления от партии")).unwrap();
    let texts = p.sms_parts(&first.id).unwrap();
    assert_eq!(texts.len(), 2);

    // The second part first, then again, then the first: one record.
    assert_eq!(via_android(&server, "+77011112233", &texts[1]), "waiting");
    assert_eq!(via_android(&server, "+77011112233", &texts[1]), "waiting");
    assert_eq!(via_android(&server, "+77011112233", &texts[0]), "accepted");
    assert_eq!(server.record_count(), (1, 1));

    // A part missing while the server is killed and restarted: kept, and
    // shown as waiting, until it arrives.
    let second = p.save(access("аккредитация жоқ")).unwrap();
    let texts = p.sms_parts(&second.id).unwrap();
    assert_eq!(via_android(&server, "+77011112233", &texts[0]), "waiting");
    server.kill();
    server.restart();
    let waiting = &status(&server)["waiting"];
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(
        (waiting[0]["held"].as_u64(), waiting[0]["parts"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(waiting[0]["sender"], "+77011112233");
    assert_eq!(via_android(&server, "+77011112233", &texts[1]), "accepted");
    assert!(status(&server)["waiting"].as_array().unwrap().is_empty());

    // The whole report again from another number, by another gateway:
    // already held, nothing stored twice.
    for t in &texts {
        via_twilio(&server, "+77770000000", t);
    }
    assert_eq!(outcomes(&server).last().unwrap(), "already");
    assert_eq!(server.record_count(), (2, 2));

    // The phone's own sync later: both are `already`; a third record sent
    // only by the internet, then by SMS, is `already` too.
    let third = p.save(access("кіргізбеді")).unwrap();
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!((s.accepted, s.already), (1, 2), "{s:?}");
    for t in p.sms_parts(&third.id).unwrap() {
        via_android(&server, "+77011112233", &t);
    }
    assert_eq!(outcomes(&server).last().unwrap(), "already");
    assert_eq!(server.record_count(), (3, 3));
    assert!(server.cli(&["verify"]).contains("3 records intact"));

    // Every text is in the log with the number it came from.
    let log = status(&server)["log"].as_array().unwrap().clone();
    assert!(
        log.iter()
            .any(|e| e["sender"] == "+77770000000" && e["gateway"] == "twilio")
    );
    assert!(
        log.iter()
            .all(|e| e["sender"].as_str().unwrap().starts_with("+77"))
    );
}

#[test]
fn altered_forged_and_revoked_reports_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "KZ-0001");
    let saved = p.save(access("нет направления")).unwrap();
    let texts = p.sms_parts(&saved.id).unwrap();

    // A part altered on the way: refused and named; the true part later
    // completes the report.
    let mut altered: Vec<char> = texts[0].chars().collect();
    let i = altered.len() - 4;
    altered[i] = if altered[i] == 'a' { 'b' } else { 'a' };
    let altered: String = altered.into_iter().collect();
    assert_eq!(via_android(&server, "+77011112233", &altered), "altered");
    let log = status(&server)["log"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(log.contains("part 1 of 2"), "{log}");
    assert_eq!(via_android(&server, "+77011112233", &texts[1]), "waiting");
    assert_eq!(via_android(&server, "+77011112233", &texts[0]), "accepted");

    // A report whose signature is not the device's: nothing stored.
    let mut forged = p.get(&saved.id).unwrap().unwrap().envelope;
    forged.sig[0] ^= 1;
    let forms = observer_core::sms::Forms::shipped(Some(&p.enrollment().unwrap().org));
    for t in observer_core::sms::record_parts(&forged, &forms, None).unwrap() {
        via_android(&server, "+77019999999", &t);
    }
    assert_eq!(outcomes(&server).last().unwrap(), "bad_signature");

    // A device nobody enrolled: refused, the sender learns nothing more.
    let stranger = phone(&dir.path().join("stranger"));
    let mut e = p.enrollment().unwrap();
    e.device = stranger.device_id().clone();
    stranger.set_enrollment(&e).unwrap();
    let s = stranger.save(access("fake")).unwrap();
    for t in stranger.sms_parts(&s.id).unwrap() {
        via_android(&server, "+77019999999", &t);
    }
    assert_eq!(outcomes(&server).last().unwrap(), "unknown_device");

    // A revoked device: what it signs afterwards is quarantined.
    server.cli(&["revoke", p.device_id().as_str()]);
    let late = p.save(access("после отзыва")).unwrap();
    for t in p.sms_parts(&late.id).unwrap() {
        via_android(&server, "+77011112233", &t);
    }
    let last = &status(&server)["log"][0];
    assert_eq!(last["outcome"], "rejected", "{last}");
    assert!(
        last["detail"].as_str().unwrap().contains("quarantined"),
        "{last}"
    );
    assert_eq!(server.record_count().0, 1);

    // A revoked device's heartbeat by SMS is refused as well.
    assert_eq!(
        via_android(
            &server,
            "+77011112233",
            &p.heartbeat_sms_parts().unwrap()[0]
        ),
        "rejected",
        "a revoked device's heartbeat is refused"
    );
    // Ordinary texts are logged as such.
    assert_eq!(
        via_android(&server, "+77015550000", "Встречаемся у школы в 7"),
        "not_a_report"
    );
}

#[test]
fn a_heartbeat_by_sms_tells_the_coordinator_what_the_phone_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    for i in 0..3 {
        p.save(record("KZ-0001", i)).unwrap();
    }
    let hb = p.heartbeat_sms_parts().unwrap();
    assert_eq!(hb.len(), 1);
    assert_eq!(via_android(&server, "+77011112233", &hb[0]), "heartbeat");
    let devices: serde_json::Value =
        serde_json::from_str(&server.cli(&["devices", "--json"])).unwrap();
    let d = &devices[0];
    assert_eq!(d["heartbeat"]["seq"], 3, "{d}");
    assert_eq!(d["records"], 0);
    assert_eq!(d["faults"][0]["fault"], "missing");
    assert_eq!(
        d["faults"][0]["range"]["last"], 3,
        "named missing before any arrived"
    );
}

/// A number sending parts that never complete is held to a bound, and
/// every one is logged.
#[test]
fn a_number_flooding_incomplete_parts_is_held_to_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let bound = observer_server::sms::MAX_PARTS_PER_SENDER as usize;
    for i in 0..bound {
        let junk: Vec<u8> = (0..200).map(|j| (i * 7 + j) as u8 | 1).collect();
        let first = observer_core::sms::split(&junk).unwrap().remove(0);
        assert_eq!(via_android(&server, "+77010000001", &first), "waiting");
    }
    let one_more = observer_core::sms::split(&[3; 200]).unwrap().remove(0);
    assert_eq!(
        via_android(&server, "+77010000001", &one_more),
        "too_many_waiting"
    );
    // Another number is not held back by it.
    assert_eq!(via_android(&server, "+77010000002", &one_more), "waiting");
    assert_eq!(
        status(&server)["waiting"].as_array().unwrap().len(),
        bound + 1
    );
}

/// Phones learn the gateway number with their updates: one that synced
/// before it was set learns it at its next sync, and a changed number too.
#[test]
fn phones_learn_the_gateway_number_at_enrollment_and_at_their_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(p.enrollment().unwrap().sms_number, None);
    set_up_gateways(&server, dir.path(), 48);
    // The server reads the settings again after a few seconds.
    std::thread::sleep(std::time::Duration::from_secs(6));
    sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(
        p.enrollment().unwrap().sms_number.as_deref(),
        Some(support::sms::NUMBER)
    );
    let out = server.cli(&["sms", "gateways", "--number", "+77019998877"]);
    assert!(out.contains("+77019998877"), "{out}");
    std::thread::sleep(std::time::Duration::from_secs(6));
    sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(
        p.enrollment().unwrap().sms_number.as_deref(),
        Some("+77019998877")
    );
    // A phone enrolled now knows the number before its first sync, from
    // the code and from the enrollment answer (the newer of the two).
    let code = server.code("KZ-0001");
    let parsed = observer_core::protocol::EnrollmentCode::parse(&code.to_text()).unwrap();
    assert_eq!(parsed.sms.as_deref(), Some("+77019998877"));
    let fresh = phone(&dir.path().join("fresh"));
    observer_core::sync::enroll(&fresh, &parsed, None).unwrap();
    assert_eq!(
        fresh.enrollment().unwrap().sms_number.as_deref(),
        Some("+77019998877")
    );
    // Not a number: refused, nothing changed.
    let refused = support::command(&server.data)
        .args(["sms", "gateways", "--number", "call me"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn the_coordinators_receipt_comes_back_by_sms_and_settles_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let saved = p.save(access("бақылаушыны шығарып жіберді")).unwrap();
    let texts = p.sms_parts(&saved.id).unwrap();

    // Nothing comes back while the report is incomplete.
    assert!(via_twilio(&server, "+77011112233", &texts[1]).is_empty());
    let receipt = via_twilio(&server, "+77011112233", &texts[0]);
    assert_eq!(receipt.len(), 1, "one segment: {receipt:?}");
    assert!(observer_core::sms::is_gsm7(&receipt[0]));

    // The phone rebuilds it, checks it with the pinned key: delivered.
    let got = p.accept_sms_receipt(&receipt).unwrap();
    assert_eq!((got.delivered, got.newly_delivered), (vec![saved.id], 1));
    assert_eq!(p.counts().unwrap().pending, 0);
    // The phone keeps the coordinator's signed statement as evidence.
    let held = p.receipts().unwrap();
    let signed: observer_core::protocol::Signed = serde_json::from_slice(&held[0].bytes).unwrap();
    let r: observer_core::protocol::Receipt = serde_json::from_slice(&signed.body).unwrap();
    assert_eq!(r.accepted[0].id, saved.id);

    // A replay from another number is answered with an `already` receipt,
    // which settles nothing new; the next internet sync sends nothing.
    let mut replayed = Vec::new();
    for t in &texts {
        replayed = via_twilio(&server, "+77770000000", t);
    }
    assert_eq!(replayed.len(), 1);
    assert_eq!(p.accept_sms_receipt(&replayed).unwrap().newly_delivered, 0);
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!((s.accepted, s.already), (0, 0), "{s:?}");
    assert_eq!(server.record_count(), (1, 1));

    // A refused report brings no receipt; text that is not the
    // coordinator's receipt changes nothing on the phone.
    let revoked = enrolled_phone(&dir.path().join("revoked"), &server, "KZ-0001");
    let r2 = revoked.save(access("later")).unwrap();
    server.cli(&["revoke", revoked.device_id().as_str()]);
    let mut answer = Vec::new();
    for t in revoked.sms_parts(&r2.id).unwrap() {
        answer = via_twilio(&server, "+77011110000", &t);
    }
    assert!(answer.is_empty(), "{answer:?}");
    assert!(p.accept_sms_receipt(&texts).is_err());
}

/// Moves the received time of message `message`'s waiting parts back by
/// `hours`, in the server's database while the server is down: the wall
/// time a real hour would take.
fn age_parts(server: &Server, message: &str, hours: i64) {
    let db = rusqlite::Connection::open(server.data.join("server.db")).unwrap();
    let n = db
        .execute(
            "UPDATE sms_parts SET received_at = received_at - ?1 WHERE message = ?2",
            rusqlite::params![hours * 3_600_000, message],
        )
        .unwrap();
    assert!(n > 0, "no parts of {message} wait");
}

#[test]
fn a_part_arriving_an_hour_later_completes_its_report_and_one_after_expiry_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 2);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let late = p
        .sms_parts(&p.save(access("бір сағаттан кейін")).unwrap().id)
        .unwrap();
    let lost = p
        .sms_parts(&p.save(access("екі сағаттан кейін")).unwrap().id)
        .unwrap();
    let message = |texts: &[String]| observer_core::sms::parse(&texts[0]).unwrap().message;
    assert_eq!(via_android(&server, "+77011112233", &late[0]), "waiting");
    assert_eq!(via_android(&server, "+77011112233", &lost[0]), "waiting");

    // An hour passes for one (inside the 2-hour expiry), three for the other.
    server.kill();
    age_parts(&server, &message(&late), 1);
    age_parts(&server, &message(&lost), 3);
    server.restart();

    assert_eq!(via_android(&server, "+77011112233", &late[1]), "accepted");
    // The other's first part expired (logged with its number); its second
    // part starts the message again, and the phone's resend completes it.
    assert_eq!(via_android(&server, "+77011112233", &lost[1]), "waiting");
    let log = status(&server)["log"].as_array().unwrap().clone();
    let expired: Vec<_> = log.iter().filter(|e| e["outcome"] == "expired").collect();
    assert_eq!(expired.len(), 1, "{log:?}");
    assert!(
        expired[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&message(&lost))
    );
    assert_eq!(expired[0]["sender"], "+77011112233");
    assert_eq!(server.record_count(), (1, 1));
    assert_eq!(via_android(&server, "+77011112233", &lost[0]), "accepted");
    assert_eq!(server.record_count(), (2, 2));
}

/// SMS Gateway for Android's own API as the coordinator calls it to send a
/// text: an HTTP server on loopback that keeps every request's Basic
/// credentials and JSON, and answers `status` (202 as the app does).
struct FakeGatewayApi {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl FakeGatewayApi {
    fn start(status: u16) -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/message", listener.local_addr().unwrap());
        let kept = got.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/message",
                    axum::routing::post(move |headers: HeaderMap, body: String| async move {
                        let auth = headers["authorization"].to_str().unwrap().to_string();
                        kept.lock()
                            .unwrap()
                            .push((auth, serde_json::from_str(&body).unwrap()));
                        StatusCode::from_u16(status).unwrap()
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, got }
    }

    /// Waits up to 10 s for `n` requests.
    fn requests(&self, n: usize) -> Vec<(String, serde_json::Value)> {
        for _ in 0..100 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.got.lock().unwrap().clone()
    }
}

fn set_up_android_send(server: &Server, dir: &std::path::Path, url: &str) {
    let key = dir.join("android-key");
    let password = dir.join("android-api-password");
    std::fs::write(&key, support::sms::ANDROID_KEY).unwrap();
    std::fs::write(&password, "gateway-api-password\n").unwrap();
    let out = server.cli(&[
        "sms",
        "gateways",
        "--android-key-file",
        key.to_str().unwrap(),
        "--android-send-url",
        url,
        "--android-send-user",
        "sms",
        "--android-send-password-file",
        password.to_str().unwrap(),
    ]);
    assert!(out.contains("receipts texted back through"), "{out}");
}

#[test]
fn the_android_gateway_texts_the_receipt_back_through_its_own_api() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let api = FakeGatewayApi::start(202);
    set_up_android_send(&server, dir.path(), &api.url);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let saved = p.save(access("шығарып жіберді")).unwrap();
    for t in p.sms_parts(&saved.id).unwrap() {
        via_android(&server, "+77011112233", &t);
    }
    let sent = api.requests(1);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (auth, body) = &sent[0];
    assert_eq!(
        auth,
        &format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("sms:gateway-api-password")
        )
    );
    assert_eq!(body["phoneNumbers"], serde_json::json!(["+77011112233"]));
    let text = body["textMessage"]["text"].as_str().unwrap().to_string();
    let got = p.accept_sms_receipt(&[text]).unwrap();
    assert_eq!(got.delivered, vec![saved.id]);
    assert_eq!(p.counts().unwrap().pending, 0);
}

#[test]
fn a_receipt_the_android_gateway_would_not_send_is_logged_unsent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let api = FakeGatewayApi::start(500);
    set_up_android_send(&server, dir.path(), &api.url);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let saved = p.save(access("шығарып жіберді")).unwrap();
    for t in p.sms_parts(&saved.id).unwrap() {
        assert_ne!(via_android(&server, "+77011112233", &t), "malformed");
    }
    // Three tries, then the log says so with the number.
    assert_eq!(api.requests(3).len(), 3);
    let mut unsent = None;
    for _ in 0..50 {
        unsent = status(&server)["log"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["outcome"] == "receipt_unsent")
            .cloned();
        if unsent.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let unsent = unsent.expect("receipt_unsent logged");
    assert_eq!(unsent["sender"], "+77011112233");
    assert!(
        unsent["detail"].as_str().unwrap().contains("500"),
        "{unsent}"
    );
    // The report itself is held; the phone hears of it at its next sync.
    assert_eq!(server.record_count(), (1, 1));
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(s.already, 1, "{s:?}");
}

#[test]
fn changing_one_gateway_setting_keeps_the_others_and_remove_drops_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    // Election morning: a new number, nothing else given.
    let out = server.cli(&["sms", "gateways", "--number", "+77019998877"]);
    assert!(
        out.contains("Twilio at") && out.contains("SMS Gateway for Android"),
        "{out}"
    );
    assert_eq!(
        via_android(&server, "+77011112233", "hello"),
        "not_a_report"
    );
    assert!(via_twilio(&server, "+77011112233", "hello").is_empty());
    assert_eq!(server.code("KZ-0001").sms.as_deref(), Some("+77019998877"));

    // Twilio dropped: its webhook is not found; Android still answers.
    let out = server.cli(&["sms", "gateways", "--remove", "twilio"]);
    assert!(out.contains("no Twilio"), "{out}");
    let url = support::sms::twilio_url(&server);
    let (body, sig) = support::sms::twilio(&url, support::sms::TWILIO_TOKEN, "+7701", "hello");
    let resp = raw_client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        via_android(&server, "+77011112233", "hello"),
        "not_a_report"
    );

    // A send API needs the Android gateway it sends through.
    server.cli(&[
        "sms", "gateways", "--remove", "android", "--remove", "number",
    ]);
    let password = dir.path().join("pw");
    std::fs::write(&password, "pw").unwrap();
    let refused = support::command(&server.data)
        .args([
            "sms",
            "gateways",
            "--android-send-url",
            "http://127.0.0.1:9/message",
            "--android-send-user",
            "sms",
            "--android-send-password-file",
            password.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--android-key-file"));
    assert_eq!(server.code("KZ-0001").sms, None);
}

#[test]
fn national_supervisors_see_the_sms_reports_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    set_up_gateways(&server, dir.path(), 48);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let texts = p
        .sms_parts(&p.save(access("кіргізбеді")).unwrap().id)
        .unwrap();
    via_android(&server, "+77011112233", &texts[0]);
    let late = p.sms_parts(&p.save(access("кейін")).unwrap().id).unwrap();
    via_android(&server, "+77015556677", &late[1]);
    via_android(&server, "+77011112233", &texts[1]);

    let mut supervisor = server.signed_in("dana", "supervisor");
    let page = supervisor.get("/sms");
    assert_eq!(page.status, 200, "{}", page.text);
    for shown in [
        "+77011112233",
        "+77015556677",
        support::sms::NUMBER,
        "data-outcome=\"accepted\">stored",
        "data-outcome=\"waiting\">waiting for parts",
        "1 of 2",
    ] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    assert!(page.text.contains("href=\"/sms\""), "the menu links it");
    let json: serde_json::Value =
        serde_json::from_str(&supervisor.get("/api/v1/sms").text).unwrap();
    assert_eq!(json["gateways"]["number"], support::sms::NUMBER);
    assert_eq!(json["gateways"]["android"], true);
    assert_eq!(json["waiting"][0]["sender"], "+77015556677");
    assert_eq!(json["log"][0]["outcome"], "accepted");
    // No secret of a gateway is on the page or in the JSON.
    for secret in [support::sms::TWILIO_TOKEN, support::sms::ANDROID_KEY] {
        assert!(!page.text.contains(secret) && !json.to_string().contains(secret));
    }

    // In Russian, the outcome has its Russian name.
    let ru = supervisor.get("/language?lang=ru&back=/sms");
    assert!(ru.status == 303 || ru.status == 200, "{}", ru.status);
    assert!(supervisor.get("/sms").text.contains("сохранён"));

    // A verifier reviews records; the senders' numbers are not theirs to read.
    let mut verifier = server.signed_in("aigerim", "verifier");
    assert_eq!(verifier.get("/sms").status, 403);
    assert_eq!(verifier.get("/api/v1/sms").status, 403);
    assert!(!verifier.get("/queue").text.contains("href=\"/sms\""));
}
