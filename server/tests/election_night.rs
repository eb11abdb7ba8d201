//! Election night: many phones each sending one or two records at once.
//! Group commits killed at random points, phones of the previous protocol
//! version, one exchange per sync, TLS resumption under the pin, and
//! backpressure that sheds load without an error a user would see.

mod support;

use std::time::Duration;

use observer_core::protocol::{
    Batch, HEARTBEAT_DOMAIN, Heartbeat, RECEIPT_DOMAIN, Receipt, Signed, UPDATES_DOMAIN, WireRecord,
};
use observer_core::record::RecordId;
use observer_core::store::{DeliveryState, Query, Store};
use observer_core::sync::{Backoff, Link, SyncError, SyncOptions, sync, sync_with_retry};
use support::*;

fn opts() -> SyncOptions {
    SyncOptions {
        timeout: Duration::from_secs(5),
        ..SyncOptions::default()
    }
}

/// A small deterministic generator, so a failing round can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Whether the server's database holds the record with this id.
fn held(server: &Server, id: &RecordId) -> bool {
    server
        .db()
        .query_row(
            "SELECT count(*) FROM records WHERE id = ?1",
            [id.as_bytes().as_slice()],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[test]
fn a_group_commit_killed_at_random_points_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let phones: Vec<Store> = (0..16)
        .map(|i| {
            enrolled_phone(
                &dir.path().join(format!("p{i}")),
                &server,
                &format!("S-{i}"),
            )
        })
        .collect();
    let mut rng = Lcg(7);
    let mut saved = vec![0u64; phones.len()];
    let (mut settled_some, mut cut_some) = (0, 0);
    for round in 0..30 {
        for (i, p) in phones.iter().enumerate() {
            let n = 1 + rng.below(2);
            for _ in 0..n {
                p.save(record(&format!("S-{i}"), saved[i])).unwrap();
                saved[i] += 1;
            }
        }
        // Mostly early (mid-handshake, mid-verify, mid-commit); every third
        // round late enough that some syncs finish even on a loaded machine.
        let kill_after = Duration::from_millis(rng.below(if round % 3 == 0 { 600 } else { 40 }));
        let results: Vec<Result<_, SyncError>> = std::thread::scope(|s| {
            let handles: Vec<_> = phones
                .iter()
                .map(|p| s.spawn(|| sync(p, &opts())))
                .collect();
            std::thread::sleep(kill_after);
            server.kill();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Every record a phone holds as delivered is held by the server,
        // exactly once; everything else is pending, none left in flight.
        for p in &phones {
            let c = p.counts().unwrap();
            assert_eq!(c.in_flight, 0, "round {round}: nothing is left half sent");
            for r in p.list(&Query::new()).unwrap() {
                if matches!(r.state, DeliveryState::Delivered { .. }) {
                    assert!(
                        held(&server, &r.id),
                        "round {round}: a receipt for a record the server lost"
                    );
                }
            }
        }
        let (rows, distinct) = server.record_count();
        assert_eq!(rows, distinct, "round {round}: nothing stored twice");
        settled_some += results.iter().filter(|r| r.is_ok()).count();
        cut_some += results.iter().filter(|r| r.is_err()).count();
        server.restart();
    }
    assert!(
        settled_some > 0 && cut_some > 0,
        "the kills must land both before and after commits: {settled_some} synced, {cut_some} cut"
    );
    // Once the server stays up, everything arrives, once.
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
    for p in &phones {
        assert_eq!(
            sync_with_retry(p, &opts(), &backoff, 50).unwrap().remaining,
            0
        );
    }
    let total: u64 = saved.iter().sum();
    assert_eq!(server.record_count(), (total, total));
    for (p, n) in phones.iter().zip(&saved) {
        assert_eq!(p.counts().unwrap().delivered, *n);
    }
}

#[test]
fn a_phone_of_protocol_version_1_still_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let phone_dir = dir.path().join("phone");
    let p = enrolled_phone(&phone_dir, &server, "KZ-0001");
    p.save(record("KZ-0001", 0)).unwrap();
    let held_now = p.list(&Query::new()).unwrap();
    let key = phone_key(&phone_dir);
    let heartbeat = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: p.device_id().clone(),
            seq: 1,
            head: Some(held_now[0].id),
            at_ms: chrono::Utc::now().timestamp_millis(),
        },
        &key,
    );
    // Version 1: the batch to /v1/records, zstd as version 1 always sent it…
    let batch = Batch {
        heartbeat: heartbeat.clone(),
        records: vec![WireRecord::from(&held_now[0].envelope)],
        sealed: vec![],
    };
    let body = zstd::encode_all(serde_json::to_vec(&batch).unwrap().as_slice(), 3).unwrap();
    let r = raw_client()
        .post(format!("{}/v1/records", server.url()))
        .header("content-type", "application/json")
        .header("content-encoding", "zstd")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let signed: Signed = serde_json::from_value(answer["receipt"].clone()).unwrap();
    let receipt: Receipt = signed
        .open("receipt", RECEIPT_DOMAIN, &server.coordinator_key())
        .unwrap();
    assert_eq!(receipt.accepted.len(), 1);
    assert!(
        answer.get("updates").is_none(),
        "version 1 answers carry no updates"
    );
    assert!(held(&server, &held_now[0].id));

    // …then its updates from /v1/updates, read as version 1 reads them.
    #[derive(serde::Deserialize)]
    struct UpdatesV1 {
        org: String,
        stations: Vec<String>,
        forms: Vec<String>,
    }
    let r = raw_client()
        .post(format!("{}/v1/updates", server.url()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&serde_json::json!({ "heartbeat": heartbeat })).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    let signed: Signed = serde_json::from_value(answer["updates"].clone()).unwrap();
    let updates: UpdatesV1 = signed
        .open("updates", UPDATES_DOMAIN, &server.coordinator_key())
        .unwrap();
    assert_eq!(updates.org, "test-org");
    assert_eq!(updates.stations, vec!["KZ-0001".to_string()]);
    assert!(updates.forms.iter().all(|f| f.starts_with('{')));
}

#[test]
fn a_sync_is_one_exchange_and_updates_come_with_the_receipt_only_when_they_changed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_logged(
        &dir.path().join("server"),
        &["--log-format", "json"],
        Some(&log),
    );
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let o = opts();
    p.save(record("KZ-0001", 0)).unwrap();
    let first = sync(&p, &o).unwrap();
    assert_eq!((first.accepted, first.batches), (1, 1));
    assert!(
        p.updates_tag().is_some(),
        "the first answer brought the updates"
    );
    // Nothing changed: the next answer is the receipt alone.
    p.save(record("KZ-0001", 1)).unwrap();
    let second = sync(&p, &o).unwrap();
    assert_eq!((second.accepted, second.batches), (1, 1));
    assert_eq!(second.stations_assigned, None);
    // The coordinator reassigns the observer: it arrives with the receipt.
    let device = p.device_id().to_string();
    server.cli(&["assign", &device, "--station", "KZ-0002"]);
    let third = sync(&p, &o).unwrap();
    assert_eq!(
        third.batches, 1,
        "heartbeat, records and updates in one exchange"
    );
    assert_eq!(third.stations_assigned, Some(vec!["KZ-0002".to_string()]));
    assert_eq!(
        p.enrollment().unwrap().stations,
        vec!["KZ-0002".to_string()]
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let routes: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "answered")
        .map(|v| v["span"]["route"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        routes.iter().filter(|r| *r == "/v2/sync").count(),
        3,
        "{routes:?}"
    );
    assert!(
        !routes
            .iter()
            .any(|r| r == "/v1/updates" || r == "/v1/records"),
        "no second request: {routes:?}"
    );
}

#[test]
fn a_reconnecting_phone_resumes_its_tls_session_and_the_pin_still_refuses_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    // Idle connections close after a second, so the next sync reconnects.
    let mut a = Server::start_with(
        &dir.path().join("a"),
        &[
            "--header-timeout-secs",
            "1",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    let p = enrolled_phone(&dir.path().join("phone"), &a, "KZ-0001");
    let o = SyncOptions {
        link: Link::default(),
        ..opts()
    };
    p.save(record("KZ-0001", 0)).unwrap();
    sync(&p, &o).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    p.save(record("KZ-0001", 1)).unwrap();
    assert_eq!(sync(&p, &o).unwrap().accepted, 1);
    let m = scrape(metrics);
    assert!(
        sample(&m, r#"observer_tls_handshakes_total{kind="resumed"}"#).unwrap_or(0.0) >= 1.0,
        "the reconnecting phone resumed its session:\n{m}"
    );

    // Another server, another certificate, at the same address: the phone
    // offers its ticket, which that server cannot open, and the full
    // handshake it falls back to presents a certificate the pin refuses.
    let mut b = Server::start(&dir.path().join("b"));
    b.kill();
    a.kill();
    b.port = a.port;
    b.restart();
    p.save(record("KZ-0001", 2)).unwrap();
    match sync(&p, &o) {
        Err(SyncError::IdentityNotConfirmed { .. }) => {}
        other => panic!("expected the pin to refuse the other server, got {other:?}"),
    }
    assert_eq!(b.record_count(), (0, 0), "nothing was sent to it");
    assert_eq!(p.counts().unwrap().pending, 1);
}

#[test]
fn a_saturated_server_sheds_load_early_and_every_phone_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    // Room for two batches in flight: forty phones at once overflow it.
    let server = Server::start_with(
        &dir.path().join("server"),
        &[
            "--max-queued-batches",
            "2",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    let phones: Vec<Store> = (0..40)
        .map(|i| {
            let station = format!("S-{i}");
            let p = enrolled_phone(&dir.path().join(format!("p{i}")), &server, &station);
            p.save_all(&(0..20).map(|n| record(&station, n)).collect::<Vec<_>>())
                .unwrap();
            p
        })
        .collect();
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
    let summaries: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = phones
            .iter()
            .map(|p| s.spawn(|| sync_with_retry(p, &opts(), &backoff, 100)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in summaries {
        let s = s.expect("a shed batch is retried, never an error the observer sees");
        assert_eq!(s.remaining, 0);
    }
    assert_eq!(server.record_count(), (800, 800));
    let m = scrape(metrics);
    assert!(
        sample(&m, "observer_batches_shed_total").unwrap_or(0.0) > 0.0,
        "the burst overflowed the backlog and was shed:\n{m}"
    );
    assert!(
        sample(&m, r#"observer_http_responses_total{status="503"}"#).unwrap_or(0.0) > 0.0,
        "{m}"
    );
}
