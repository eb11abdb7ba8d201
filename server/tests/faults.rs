//! Fault injection: a server killed mid-ingest, links cut mid-stream, hostile
//! requests, and TLS interception. The final state must be exact every time.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use observer_core::identity::SigningKey;
use observer_core::protocol::{Batch, HEARTBEAT_DOMAIN, Heartbeat, Signed, WireRecord};
use observer_core::seal::SealedRecord;
use observer_core::store::{Query, Store};
use observer_core::sync::{Backoff, SyncError, SyncOptions, sync, sync_with_retry};
use support::*;

fn opts(batch: u32) -> SyncOptions {
    SyncOptions {
        batch_records: batch,
        timeout: Duration::from_secs(5),
        ..SyncOptions::default()
    }
}

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(10), Duration::from_millis(150))
}

fn assert_all_delivered_exactly(server: &Server, phones: &[Store], per_phone: u64) {
    let n = phones.len() as u64 * per_phone;
    assert_eq!(
        server.record_count(),
        (n, n),
        "server holds each record exactly once"
    );
    for p in phones {
        let c = p.counts().unwrap();
        assert_eq!((c.pending, c.in_flight, c.delivered), (0, 0, per_phone));
    }
    for d in server.devices().as_array().unwrap() {
        assert_eq!(d["records"], per_phone);
        assert_eq!(d["faults"], serde_json::json!([]), "{d}");
    }
}

#[test]
fn a_server_killed_mid_ingest_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let phones: Vec<Store> = (0..8)
        .map(|i| {
            let station = format!("S-{i}");
            let p = enrolled_phone(&dir.path().join(format!("p{i}")), &server, &station);
            p.save_all(&(0..400).map(|n| record(&station, n)).collect::<Vec<_>>())
                .unwrap();
            p
        })
        .collect();
    let mut seen_mid_ingest = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = phones
            .iter()
            .map(|p| s.spawn(|| sync_with_retry(p, &opts(10), &fast_backoff(), 10_000)))
            .collect();
        for round in 0..4 {
            std::thread::sleep(Duration::from_millis(60 + round * 40));
            server.kill();
            seen_mid_ingest.push(server.record_count().0);
            std::thread::sleep(Duration::from_millis(50));
            server.restart();
        }
        for h in handles {
            let summary = h
                .join()
                .unwrap()
                .expect("sync completes once the server is back");
            assert_eq!(summary.remaining, 0);
        }
    });
    assert!(
        seen_mid_ingest.iter().any(|&n| n > 0 && n < 3200),
        "at least one kill must land mid-ingest: {seen_mid_ingest:?}"
    );
    assert_all_delivered_exactly(&server, &phones, 400);
}

#[test]
fn connections_cut_mid_stream_in_both_directions_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let proxy = FaultProxy::start(server.port, 200, 6_000, 0x5eed);
    let phones: Vec<Store> = (0..5)
        .map(|i| {
            let station = format!("S-{i}");
            let p = enrolled_phone(&dir.path().join(format!("p{i}")), &server, &station);
            let mut e = p.enrollment().unwrap();
            e.url = format!("https://127.0.0.1:{}", proxy.port);
            p.set_enrollment(&e).unwrap();
            p.save_all(&(0..200).map(|n| record(&station, n)).collect::<Vec<_>>())
                .unwrap();
            p
        })
        .collect();
    std::thread::scope(|s| {
        for p in &phones {
            s.spawn(|| sync_with_retry(p, &opts(25), &fast_backoff(), 10_000).unwrap());
        }
    });
    let (cuts, conns) = (
        proxy.cuts.load(Ordering::Relaxed),
        proxy.connections.load(Ordering::Relaxed),
    );
    eprintln!("{conns} connections, {cuts} cut mid-stream");
    assert!(cuts >= 10, "the proxy must really cut ({cuts} of {conns})");
    assert_all_delivered_exactly(&server, &phones, 200);
}

fn post(
    server: &Server,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = raw_client()
        .post(format!("{}{path}", server.url()))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().unwrap()).unwrap_or_default(),
    )
}

fn batch(key: &SigningKey, store: &Store, records: Vec<WireRecord>) -> Vec<u8> {
    sealed_batch(key, store, records, Vec::new())
}

fn sealed_batch(
    key: &SigningKey,
    store: &Store,
    records: Vec<WireRecord>,
    sealed: Vec<SealedRecord>,
) -> Vec<u8> {
    let head = store.head().unwrap().unwrap();
    let hb = Heartbeat {
        device: key.public_key().device_id(),
        seq: head.seq,
        head: Some(head.id),
        at_ms: 0,
    };
    serde_json::to_vec(&Batch {
        heartbeat: Signed::sign(HEARTBEAT_DOMAIN, &hb, key),
        records,
        sealed,
    })
    .unwrap()
}

#[test]
fn hostile_requests_get_a_json_4xx_naming_the_problem_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    p.save_all(&(0..3).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    let key = phone_key(&pdir);
    let wire: Vec<WireRecord> = p
        .list(&Query::new())
        .unwrap()
        .iter()
        .map(|r| WireRecord::from(&r.envelope))
        .collect();
    let json = "application/json";
    let check = |(status, body): (u16, serde_json::Value), want_status: u16, want_code: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"], want_code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            server.record_count().0,
            0,
            "nothing stored after {want_code}"
        );
    };

    // Sealed records altered in transit, or relabelled as another position,
    // do not open: refused, and nothing stored.
    let org = p
        .enrollment()
        .unwrap()
        .seal_key
        .expect("the server sends its sealing key");
    let first = p.list(&Query::new()).unwrap().remove(0);
    let good_seal = SealedRecord::seal(&org, p.device_id(), first.seq, &first.envelope).unwrap();
    let mut flipped = good_seal.clone();
    flipped.ct[10] ^= 1;
    let mut relabelled = good_seal.clone();
    relabelled.seq = 2;
    for bad in [flipped, relabelled] {
        let (status, body) = post(
            &server,
            "/v1/records",
            json,
            None,
            sealed_batch(&key, &p, Vec::new(), vec![bad]),
        );
        check((status, body.clone()), 422, "records_rejected");
        let signed: Signed = serde_json::from_value(body["receipt"].clone()).unwrap();
        let receipt: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(receipt["rejected"][0]["reason"], "unopenable", "{receipt}");
    }

    let mut forged = wire.clone();
    for w in &mut forged {
        w.sig[0] ^= 1;
    }
    let (status, body) = post(&server, "/v1/records", json, None, batch(&key, &p, forged));
    assert!(
        body["receipt"]["body"].is_string(),
        "the refusal carries a signed receipt"
    );
    check((status, body), 422, "records_rejected");

    let other = SigningKey::generate().unwrap();
    let mut by_other = wire.clone();
    for w in &mut by_other {
        let mut m = observer_core::record::SIGNING_DOMAIN.to_vec();
        m.extend_from_slice(&w.body);
        w.sig = other.sign(&m).to_vec();
    }
    check(
        post(
            &server,
            "/v1/records",
            json,
            None,
            batch(&key, &p, by_other),
        ),
        422,
        "records_rejected",
    );

    let many = std::iter::repeat_n(wire[0].clone(), 501).collect();
    check(
        post(&server, "/v1/records", json, None, batch(&key, &p, many)),
        413,
        "too_many_records",
    );
    // The server answers 413 from the Content-Length alone and closes the
    // connection; the client may still be writing and see the close first
    // (EPIPE / reset). Either way nothing is read or stored.
    match raw_client()
        .post(format!("{}/v1/records", server.url()))
        .header("content-type", json)
        .body(vec![b' '; 5 * 1024 * 1024])
        .send()
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&resp.bytes().unwrap()).unwrap_or_default();
            check((status, body), 413, "request_too_large");
        }
        Err(e) => {
            let detail = format!("{e:?}");
            assert!(
                e.is_request()
                    && (detail.contains("BrokenPipe") || detail.contains("ConnectionReset")),
                "{detail}"
            );
        }
    }
    let bomb = zstd::encode_all(vec![b' '; 9 * 1024 * 1024].as_slice(), 19).unwrap();
    check(
        post(&server, "/v1/records", json, Some("zstd"), bomb),
        413,
        "request_too_large",
    );
    let good = batch(&key, &p, wire.clone());
    check(
        post(
            &server,
            "/v1/records",
            json,
            None,
            good[..good.len() / 2].to_vec(),
        ),
        400,
        "malformed_json",
    );
    check(
        post(&server, "/v1/records", "text/plain", None, good.clone()),
        415,
        "unsupported_media_type",
    );
    check(
        post(&server, "/v1/records", json, Some("gzip"), good.clone()),
        415,
        "unsupported_encoding",
    );
    check(
        post(
            &server,
            "/v1/records",
            json,
            Some("zstd"),
            b"not zstd".to_vec(),
        ),
        400,
        "bad_compression",
    );
    let stranger = SigningKey::generate().unwrap();
    let mut b: Batch = serde_json::from_slice(&good).unwrap();
    b.heartbeat = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: stranger.public_key().device_id(),
            seq: 0,
            head: None,
            at_ms: 0,
        },
        &stranger,
    );
    check(
        post(
            &server,
            "/v1/records",
            json,
            None,
            serde_json::to_vec(&b).unwrap(),
        ),
        403,
        "unknown_device",
    );
    let mut b: Batch = serde_json::from_slice(&good).unwrap();
    b.heartbeat.sig[3] ^= 1;
    check(
        post(
            &server,
            "/v1/records",
            json,
            None,
            serde_json::to_vec(&b).unwrap(),
        ),
        401,
        "bad_heartbeat",
    );

    // Enrollment refusals.
    let enroll_req = |token: &str, key: &SigningKey| {
        serde_json::to_vec(&observer_core::protocol::EnrollRequest {
            token: token.into(),
            public_key: key.public_key(),
            name: None,
            proof: key
                .sign(&observer_core::protocol::EnrollRequest::proof_message(
                    token,
                ))
                .to_vec(),
        })
        .unwrap()
    };
    let k = SigningKey::generate().unwrap();
    check(
        post(
            &server,
            "/v1/enroll",
            json,
            None,
            enroll_req("no-such-token-0000000000", &k),
        ),
        401,
        "token_unknown",
    );
    let used = server.code("S-9").token;
    assert_eq!(
        post(&server, "/v1/enroll", json, None, enroll_req(&used, &k)).0,
        200
    );
    check(
        post(
            &server,
            "/v1/enroll",
            json,
            None,
            enroll_req(&used, &SigningKey::generate().unwrap()),
        ),
        409,
        "token_used",
    );
    let expired = EnrollmentToken::expired(&server);
    check(
        post(&server, "/v1/enroll", json, None, enroll_req(&expired, &k)),
        410,
        "token_expired",
    );
    let mut bad_proof: serde_json::Value =
        serde_json::from_slice(&enroll_req(&server.code("S-9").token, &k)).unwrap();
    bad_proof["proof"] = serde_json::Value::String("AAAA".into());
    check(
        post(
            &server,
            "/v1/enroll",
            json,
            None,
            serde_json::to_vec(&bad_proof).unwrap(),
        ),
        400,
        "bad_proof",
    );

    // The genuine batch is accepted (so the refusals above were not luck),
    // then the device is revoked and even genuine records are refused.
    let (status, _) = post(&server, "/v1/records", json, None, good.clone());
    assert_eq!(status, 200);
    assert_eq!(server.record_count().0, 3);
    server.cli(&["revoke", p.device_id().as_str()]);
    p.save(record("S-1", 99)).unwrap();
    let (status, body) = post(&server, "/v1/records", json, None, batch(&key, &p, wire));
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("device_revoked"))
    );
    assert!(
        body["receipt"]["body"].is_string(),
        "the refusal says what was kept"
    );
    assert!(matches!(sync(&p, &opts(50)), Err(SyncError::Revoked)));
    assert_eq!(
        server.record_count().0,
        3,
        "records from before revocation are kept"
    );
    let c = p.counts().unwrap();
    assert_eq!(
        (c.delivered, c.rejected, c.pending),
        (3, 1, 0),
        "record 4 is quarantined"
    );
    assert!(matches!(
        p.save(record("S-1", 100)),
        Err(observer_core::store::StoreError::Revoked)
    ));
    assert_eq!(server.devices()[0]["quarantined"], 1);
}

struct EnrollmentToken;
impl EnrollmentToken {
    fn expired(server: &Server) -> String {
        let code = server.cli(&["enroll", "--station", "S-0", "--valid-hours", "0", "--text"]);
        observer_core::protocol::EnrollmentCode::parse(code.trim())
            .unwrap()
            .token
    }
}

/// Headers are a boundary too: one huge header, or hundreds of them, are
/// refused by the HTTP layer (431) before any handler runs, and the server
/// goes on serving.
#[test]
fn oversized_headers_are_refused_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let client = raw_client();
    let huge = client
        .post(format!("{}/v1/records", server.url()))
        .header("x-filler", "a".repeat(1024 * 1024))
        .body("{}")
        .send();
    match huge {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect(), "{e:?}"),
    }
    let mut many = client.post(format!("{}/v1/records", server.url()));
    for i in 0..500 {
        many = many.header(format!("x-h{i}"), "v");
    }
    match many.body("{}").send() {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect(), "{e:?}"),
    }
    let ok = client
        .get(format!("{}/healthz", server.url()))
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(server.record_count().0, 0);
}

/// Re-signs `w` after `edit` changed its body text, as a phone's owner
/// (or someone holding its key) could.
fn edited(key: &SigningKey, w: &WireRecord, edit: impl Fn(&str) -> String) -> WireRecord {
    let body = edit(std::str::from_utf8(&w.body).unwrap()).into_bytes();
    let mut m = observer_core::record::SIGNING_DOMAIN.to_vec();
    m.extend_from_slice(&body);
    WireRecord {
        sig: key.sign(&m).to_vec(),
        body,
    }
}

/// Signed bodies that a reader could take two ways are refused with a
/// reason: a seq beyond 2^53 (stored as a negative number, it wrapped the
/// "missing" headline) and a repeated JSON key (parsers disagree on which
/// value counts). A heartbeat beyond 2^53 is refused too.
#[test]
fn ambiguous_signed_bodies_are_refused_and_the_counts_stay_true() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    p.save_all(&(0..2).map(|n| record("S-1", n)).collect::<Vec<_>>())
        .unwrap();
    let key = phone_key(&pdir);
    let mut wire: Vec<WireRecord> = p
        .list(&Query::new())
        .unwrap()
        .iter()
        .map(|r| WireRecord::from(&r.envelope))
        .collect();
    let second = wire.pop().unwrap();
    let huge = edited(&key, &second, |b| {
        b.replace("\"seq\":2", &format!("\"seq\":{}", 1u64 << 63))
    });
    let twice = edited(&key, &second, |b| {
        b.replace("\"payload\":{", "\"payload\":{\"n\":9000,")
    });
    assert_ne!(huge.body, second.body);
    assert_ne!(twice.body, second.body);
    for (bad, why) in [(huge, "2^53"), (twice, "appears twice")] {
        let (status, body) = post(
            &server,
            "/v1/records",
            "application/json",
            None,
            batch(&key, &p, vec![bad]),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("records_rejected")),
            "{body}"
        );
        let signed: Signed = serde_json::from_value(body["receipt"].clone()).unwrap();
        let receipt: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(receipt["rejected"][0]["reason"], "malformed", "{receipt}");
        assert!(
            receipt["rejected"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(why),
            "{receipt}"
        );
    }
    let mut b: Batch = serde_json::from_slice(&batch(&key, &p, Vec::new())).unwrap();
    b.heartbeat = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: p.device_id().clone(),
            seq: 1 << 63,
            head: None,
            at_ms: 0,
        },
        &key,
    );
    let (status, body) = post(
        &server,
        "/v1/records",
        "application/json",
        None,
        serde_json::to_vec(&b).unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_heartbeat")),
        "{body}"
    );
    assert_eq!(server.record_count().0, 0);
    // The real records still go, and nothing is counted missing.
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 2);
    let devices = server.devices();
    assert_eq!(devices[0]["faults"], serde_json::json!([]), "{devices}");
    assert!(
        server
            .view()
            .contains(">0 records known to exist but not received")
    );
}

/// `/v1/sealed` has no heartbeat (a wiped phone has no key): until a record
/// opens and verifies, the sender is anonymous. Junk labelled with an
/// enrolled device and junk labelled with a stranger get the same answer,
/// no receipt, and the device's last contact does not move.
#[test]
fn junk_sealed_batches_learn_nothing_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    sync(&p, &SyncOptions::default()).unwrap();
    let contact = server.devices()[0]["last_contact_ms"].clone();
    assert!(contact.is_i64(), "{contact}");
    std::thread::sleep(Duration::from_millis(20));
    let stranger = SigningKey::generate().unwrap().public_key().device_id();
    let mut answers = Vec::new();
    for device in [p.device_id().clone(), stranger] {
        let junk = SealedRecord {
            device,
            seq: 1,
            enc: vec![7; 32],
            ct: vec![9; 200],
        };
        let body = serde_json::to_vec(&serde_json::json!({ "sealed": [junk] })).unwrap();
        answers.push(post(&server, "/v1/sealed", "application/json", None, body));
    }
    assert_eq!(
        answers[0], answers[1],
        "an enrolled device and a stranger answer alike"
    );
    let (status, body) = &answers[0];
    assert_eq!(
        (*status, body["error"].as_str()),
        (422, Some("nothing_verified")),
        "{body}"
    );
    assert!(
        body.get("receipt").is_none(),
        "no signed receipt for junk: {body}"
    );
    assert_eq!(
        server.devices()[0]["last_contact_ms"],
        contact,
        "last contact untouched"
    );
    assert_eq!(server.record_count().0, 0);
}

/// SIGTERM while phones are syncing: the server stops taking connections,
/// answers what it is storing, and exits cleanly; nothing a receipt covered
/// is lost, and after a restart everything arrives exactly once.
#[test]
fn sigterm_mid_sync_finishes_in_flight_batches_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let phones: Vec<Store> = (0..4)
        .map(|i| {
            let p = enrolled_phone(&dir.path().join(format!("p{i}")), &server, "S-1");
            p.save_all(&(0..1000).map(|n| record("S-1", n)).collect::<Vec<_>>())
                .unwrap();
            p
        })
        .collect();
    let pid = server.pid() as i32;
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let terminate_once = move || {
        if !signalled.swap(true, Ordering::SeqCst) {
            let pid = rustix::process::Pid::from_raw(pid).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        }
    };
    let outcomes: Vec<Result<_, SyncError>> = std::thread::scope(|s| {
        let handles: Vec<_> = phones
            .iter()
            .map(|p| {
                let terminate_once = terminate_once.clone();
                s.spawn(move || {
                    let mut o = opts(50);
                    o.progress = Some(observer_core::sync::Progress(std::sync::Arc::new(
                        move |summary| {
                            if summary.batches >= 3 {
                                terminate_once();
                            }
                        },
                    )));
                    sync(p, &o)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let status = server.terminate();
    assert!(status.success(), "a clean exit after SIGTERM: {status:?}");
    assert!(
        outcomes.iter().any(|o| o.is_err()),
        "SIGTERM came mid-sync: {outcomes:?}"
    );
    for o in &outcomes {
        if let Err(e) = o {
            assert_ne!(
                e.retry_kind(),
                observer_core::sync::RetryKind::Never,
                "a phone sees a retryable failure: {e}"
            );
        }
    }
    // Every record a phone holds a receipt for is on the server.
    let held = server.record_count().0;
    let receipted: u64 = phones.iter().map(|p| p.counts().unwrap().delivered).sum();
    assert!(held >= receipted, "{held} held, {receipted} receipted");
    server.restart();
    for p in &phones {
        sync_with_retry(p, &opts(200), &fast_backoff(), 50).unwrap();
    }
    assert_all_delivered_exactly(&server, &phones, 1000);
}

/// Every answer is JSON with a stable code, including the ones the router
/// and the header limits give, and every answer is kept out of caches and
/// referrers.
#[test]
fn every_error_is_json_and_no_answer_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let client = raw_client();
    let url = server.url();
    let expect = |r: reqwest::blocking::Response, status: u16, code: &str| {
        assert_eq!(r.status().as_u16(), status, "{code}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        assert_eq!(v["error"], code, "{v}");
    };
    expect(
        client.get(format!("{url}/nowhere")).send().unwrap(),
        404,
        "not_found",
    );
    expect(
        client.get(format!("{url}/v1/records")).send().unwrap(),
        405,
        "method_not_allowed",
    );
    expect(
        client
            .delete(format!("{url}/v1/media/{}", "0".repeat(64)))
            .send()
            .unwrap(),
        405,
        "method_not_allowed",
    );
    let mut many = client.get(format!("{url}/healthz"));
    for i in 0..80 {
        many = many.header(format!("x-h{i}"), "v");
    }
    expect(many.send().unwrap(), 431, "headers_too_large");
    let big = client
        .get(format!("{url}/healthz"))
        .header("x-big", "a".repeat(20_000));
    expect(big.send().unwrap(), 431, "headers_too_large");
    for path in ["/v1/updates", "/v1/sealed", "/v1/enroll", "/v1/records"] {
        let r = client
            .post(format!("{url}{path}"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap();
        expect(r, 415, "unsupported_media_type");
        let r = client
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .header("content-encoding", "br")
            .body("{}")
            .send()
            .unwrap();
        expect(r, 415, "unsupported_encoding");
    }
    // The workspace's pages, signed in or not, are never cached either.
    let mut b = web::Browser::new(&url);
    let login = b.get("/login");
    assert_eq!(login.status, 200);
    let overview = server.signed_in("a", "analyst").get("/");
    for page in [&login, &overview] {
        assert_eq!(page.headers["cache-control"], "no-store");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert!(page.headers.contains_key("content-security-policy"));
    }
}

/// `/healthz` tells a load balancer the truth: with the data directory's
/// disk nearly full it answers 503 `disk_full` (a receipt must not be
/// signed on a disk that may not hold the batch). The directory sits on a
/// small tmpfs in a private user and mount namespace.
#[test]
fn healthz_reports_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let port = free_port();
    let (d, o) = (disk.display(), dir.path().display());
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=300m none "{d}"
"{BIN}" --data "{d}/data" --key-file "{o}/key" init --url https://127.0.0.1:{port} >/dev/null
"{BIN}" --data "{d}/data" --key-file "{o}/key" serve --listen 127.0.0.1:{port} >/dev/null &
while [ ! -e "{o}/fill" ]; do sleep 0.05; done
head -c 120M /dev/zero > "{d}/filler"
touch "{o}/filled"
while [ ! -e "{o}/stop" ]; do sleep 0.05; done
kill $!
"#
    );
    let mut ns = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let client = raw_client();
    let health = || {
        client
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .ok()
            .map(|r| {
                let status = r.status().as_u16();
                (
                    status,
                    serde_json::from_slice::<serde_json::Value>(&r.bytes().unwrap()).unwrap(),
                )
            })
    };
    wait_until("the server to answer", Duration::from_secs(30), || {
        health().is_some()
    });
    assert_eq!(health().unwrap().0, 200);
    std::fs::write(dir.path().join("fill"), "").unwrap();
    wait_until("the disk to fill", Duration::from_secs(30), || {
        dir.path().join("filled").exists()
    });
    let (status, body) = health().unwrap();
    std::fs::write(dir.path().join("stop"), "").unwrap();
    assert!(ns.wait().unwrap().success());
    assert_eq!(
        (status, &body["status"]),
        (503, &"disk_full".into()),
        "{body}"
    );
}
