//! Evidence media end to end: a real server process on loopback, a phone on
//! the real core, a proxy that cuts the link.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use observer_core::media::PhotoTags;
use observer_core::record::{Consent, MediaMeta, NewRecord};
use observer_core::store::Store;
use observer_core::sync::{Backoff, SyncOptions, sync, sync_with_retry};
use support::*;

const HEARTBEAT: &str = observer_core::protocol::HEARTBEAT_HEADER;
const MIB: usize = 1024 * 1024;

/// Deterministic, incompressible-looking bytes.
fn clip(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Imports `data` as a video and saves an incident record that references it.
fn record_with_clip(
    p: &Store,
    dir: &std::path::Path,
    data: &[u8],
) -> observer_core::store::ImportedMedia {
    let path = dir.join("clip.mp4");
    std::fs::write(&path, data).unwrap();
    let m = p
        .import_media(&path, "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    p.save(
        NewRecord::builder("KZ-0001", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing", "time": "11:40"}))
            .attachment_with(
                m.sha256.to_string(),
                m.bytes,
                m.mime.clone(),
                MediaMeta {
                    consent: Consent::NotAsked,
                    faces_visible: true,
                    ballots_visible: false,
                    voter_list_visible: false,
                    taken_from: Some("the observers' bench by the door".into()),
                    note: Some("the same man put in a stack of ballots".into()),
                    location_kept: false,
                },
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    m
}

fn json(r: reqwest::blocking::Response) -> serde_json::Value {
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

fn export_line(server: &Server) -> serde_json::Value {
    let export = server.cli(&["export", "--format", "ndjson"]);
    serde_json::from_str(export.lines().next().expect("one record")).unwrap()
}

#[test]
fn a_200_mib_clip_survives_a_link_cut_again_and_again_and_arrives_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let proxy = FaultProxy::upstream(server.port, 2 * MIB as u64, 20 * MIB as u64, 0xc11f);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let mut e = p.enrollment().unwrap();
    e.url = format!("https://127.0.0.1:{}", proxy.port);
    p.set_enrollment(&e).unwrap();
    let data = clip(200 * MIB, 7);
    let m = record_with_clip(&p, dir.path(), &data);

    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5));
    let opts = SyncOptions {
        timeout: Duration::from_secs(60),
        ..SyncOptions::default()
    };
    let mut attempts = 0;
    let mut sent = 0;
    loop {
        attempts += 1;
        assert!(attempts < 200, "the upload never completed");
        match sync(&p, &opts) {
            Ok(s) => {
                sent += s.media_bytes_sent;
                if s.media_delivered == 1 {
                    break;
                }
            }
            Err(e) => {
                assert_ne!(e.retry_kind(), observer_core::sync::RetryKind::Never, "{e}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let cuts = proxy.cuts.load(Ordering::Relaxed);
    let up = proxy.bytes_up.load(Ordering::Relaxed);
    eprintln!(
        "{attempts} syncs, {cuts} cuts, {up} bytes up for a {} byte clip (acknowledged: {sent})",
        data.len()
    );
    assert!(
        cuts >= 10,
        "the link must really be cut at least ten times ({cuts})"
    );
    assert!(
        (up as f64) <= 1.2 * data.len() as f64,
        "each resume starts where the server stopped: {up} bytes went up for {}",
        data.len()
    );
    let stored = dir
        .path()
        .join("server/media")
        .join(&m.sha256.to_string()[..2])
        .join(m.sha256.to_string());
    let held = std::fs::read(&stored).unwrap();
    assert!(held == data, "the server holds exactly the clip");
    assert_eq!(observer_core::record::Sha256Digest::of(&held), m.sha256);
    assert!(p.media().unwrap()[0].delivered);
    assert_eq!(export_line(&server)["media_missing"], 0);
    // Nothing left to send.
    let again = sync_with_retry(&p, &opts, &backoff, 50).unwrap();
    assert_eq!((again.media_bytes_sent, again.media_delivered), (0, 0));
}

#[test]
fn a_damaged_copy_on_the_phone_is_reported_and_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let m = record_with_clip(&p, dir.path(), &clip(3 * MIB, 1));
    let media_dir = dir.path().join("phone/media");
    let file = std::fs::read_dir(&media_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[2 * MIB] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();

    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(s.accepted, 1, "the record itself is delivered");
    assert_eq!(s.media_delivered, 0);
    assert_eq!(s.media_failed.len(), 1);
    assert_eq!(s.media_failed[0].0, m.sha256);
    assert!(
        s.media_failed[0].1.contains("damaged"),
        "{}",
        s.media_failed[0].1
    );
    assert!(!p.media().unwrap()[0].delivered);
    let line = export_line(&server);
    assert_eq!(
        line["media_missing"], 1,
        "the coordinator sees the media never arrived"
    );
    assert!(
        server.view().contains("1 of 1 not arrived"),
        "the view shows it"
    );
    let meta = &line["body"]["attachments"][0]["meta"];
    assert_eq!(meta["consent"], "not_asked");
    assert_eq!(meta["faces_visible"], true);
    assert_eq!(meta["taken_from"], "the observers' bench by the door");
    assert!(
        !dir.path()
            .join("server/media")
            .join(&m.sha256.to_string()[..2])
            .join(m.sha256.to_string())
            .exists()
    );
}

#[test]
fn a_flipped_byte_on_the_server_is_found_by_verification() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "KZ-0001");
    let m = record_with_clip(&p, dir.path(), &clip(MIB + 17, 2));
    let s = sync(&p, &SyncOptions::default()).unwrap();
    assert_eq!(s.media_delivered, 1);
    assert!(
        server
            .cli(&["media", "verify"])
            .contains("1 media files intact")
    );

    let stored = dir
        .path()
        .join("server/media")
        .join(&m.sha256.to_string()[..2])
        .join(m.sha256.to_string());
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&stored, &bytes).unwrap();
    let out = command(&dir.path().join("server"))
        .args(["media", "verify"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "verification fails on an altered file"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&m.sha256.to_string()) && text.contains("ALTERED"),
        "{text}"
    );
}

#[test]
fn media_uploads_refuse_what_no_record_names_and_bytes_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let client = raw_client();
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "KZ-0001");
    let me = heartbeat_header(&phone_key(&pdir), &p);
    let sha = observer_core::record::Sha256Digest::of(b"nobody named me");
    let url = format!("{}/v1/media/{sha}", server.url());
    let r = client.get(&url).header(HEARTBEAT, &me).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .put(format!("{url}?offset=0"))
        .header(HEARTBEAT, &me)
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .get(format!("{}/v1/media/not-a-hash", server.url()))
        .header(HEARTBEAT, &me)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A record names 10 bytes (the phone does not hold them: only the
    // reference travels); a wrong offset, too many bytes and the wrong bytes
    // are each refused, and the right bytes, in two pieces, complete it.
    let data = b"0123456789";
    let sha = observer_core::record::Sha256Digest::of(data);
    p.save(
        NewRecord::builder("KZ-0001", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing", "time": "11:40"}))
            .attachment(sha.to_string(), 10, "image/jpeg")
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().accepted, 1);
    assert_eq!(export_line(&server)["media_missing"], 1);
    let url = format!("{}/v1/media/{sha}", server.url());
    let put = |offset: u64, body: &[u8]| {
        let r = client
            .put(format!("{url}?offset={offset}"))
            .header(HEARTBEAT, &me)
            .body(body.to_vec())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, json(r))
    };
    let (status, body) = put(5, b"56789");
    assert_eq!((status, &body["error"]), (409, &"offset_mismatch".into()));
    assert_eq!(body["received"], 0);
    assert_eq!(
        put(0, b"0123456789X").0,
        400,
        "more than the record declares"
    );
    let (status, body) = put(0, b"9876543210");
    assert_eq!((status, &body["error"]), (422, &"hash_mismatch".into()));
    let state = json(client.get(&url).header(HEARTBEAT, &me).send().unwrap());
    assert_eq!(state["received"], 0, "wrong bytes are discarded");
    assert_eq!(put(0, b"0123").1["received"], 4);
    let (status, body) = put(4, b"456789");
    assert_eq!((status, &body["complete"]), (200, &true.into()));
    assert_eq!(export_line(&server)["media_missing"], 0);
    // A bad offset is a JSON 400 too.
    let r = client
        .put(format!("{url}?offset=minus-one"))
        .header(HEARTBEAT, &me)
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(json(r)["error"], "bad_query");
}

/// The tester's attack: another enrolled device signs a record naming the
/// victim's photo with a wrong size, before the victim syncs. The victim
/// must still deliver that photo, its other media and its updates.
#[test]
fn another_device_cannot_poison_or_block_a_victims_media() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let vdir = dir.path().join("victim");
    let victim = enrolled_phone(&vdir, &server, "KZ-0001");
    let photo = record_with_clip(&victim, &vdir, &clip(300_000, 7));
    record_with_clip(&victim, &vdir, &clip(200_000, 8));
    let adir = dir.path().join("attacker");
    let attacker = enrolled_phone(&adir, &server, "KZ-0002");
    attacker
        .save(
            NewRecord::builder("KZ-0002", "incident", 1, "incident")
                .payload(serde_json::json!({"type": "other", "time": "09:00"}))
                .attachment(photo.sha256.to_string(), 5, "image/jpeg")
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        sync(&attacker, &SyncOptions::default()).unwrap().accepted,
        1
    );
    // The attacker fills the 5 bytes it declared, and they do not hash to
    // the photo: only its own upload is discarded.
    let client = raw_client();
    let r = client
        .put(format!(
            "{}/v1/media/{}?offset=0",
            server.url(),
            photo.sha256
        ))
        .header(HEARTBEAT, heartbeat_header(&phone_key(&adir), &attacker))
        .body("12345")
        .send()
        .unwrap();
    assert_eq!(json(r)["error"], "hash_mismatch");
    victim.save(record("KZ-0001", 1)).unwrap();
    let s = sync(&victim, &SyncOptions::default()).unwrap();
    assert_eq!(s.media_failed, vec![], "{s:?}");
    assert_eq!(s.media_delivered, 2, "{s:?}");
    assert_eq!(s.accepted, 3);
    let export = server.cli(&["export", "--format", "ndjson"]);
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["device"] == victim.device_id().as_str() {
            assert_eq!(v["media_missing"], 0, "{v}");
        }
    }
    assert!(
        server
            .cli(&["media", "verify"])
            .contains("2 media files intact")
    );
}

/// Media requests without the device's signature learn nothing (the same
/// answer for a held photo and an unknown hash) and write nothing.
#[test]
fn anonymous_media_requests_learn_nothing_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "KZ-0001");
    let held = record_with_clip(&p, &pdir, &clip(50_000, 3));
    assert_eq!(
        sync(&p, &SyncOptions::default()).unwrap().media_delivered,
        1
    );
    let unknown = observer_core::record::Sha256Digest::of(b"never held");
    let client = raw_client();
    let mut answers = Vec::new();
    for sha in [held.sha256, unknown] {
        let url = format!("{}/v1/media/{sha}", server.url());
        for header in [None, Some("garbage"), Some("AAAA.BBBB")] {
            let mut get = client.get(&url);
            let mut put = client.put(format!("{url}?offset=0")).body("x");
            if let Some(h) = header {
                get = get.header(HEARTBEAT, h);
                put = put.header(HEARTBEAT, h);
            }
            for r in [get.send().unwrap(), put.send().unwrap()] {
                let status = r.status().as_u16();
                answers.push((header, status, json(r)));
            }
        }
    }
    let (first, rest) = answers.split_at(answers.len() / 2);
    assert_eq!(first, rest, "a held photo and an unknown hash answer alike");
    assert!(
        first
            .iter()
            .all(|(_, status, _)| [400, 401].contains(status)),
        "{first:?}"
    );
    let partial = std::fs::read_dir(server.data.join("media/partial"))
        .unwrap()
        .count();
    assert_eq!(partial, 0, "nothing written");
}

/// Imports `data` as `mime` and saves an incident at `station` naming it.
fn record_with(
    p: &Store,
    dir: &std::path::Path,
    data: &[u8],
    mime: &str,
    station: &str,
    consent: Consent,
) -> String {
    let path = dir.join("evidence.bin");
    std::fs::write(&path, data).unwrap();
    let m = p.import_media(&path, mime, PhotoTags::Keep, None).unwrap();
    std::fs::remove_file(&path).unwrap();
    p.save(
        NewRecord::builder(station, "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing"}))
            .attachment_with(
                m.sha256.to_string(),
                m.bytes,
                m.mime.clone(),
                MediaMeta {
                    consent,
                    faces_visible: true,
                    ballots_visible: false,
                    voter_list_visible: false,
                    taken_from: Some("<b>by the door</b>".into()),
                    note: None,
                    location_kept: false,
                },
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    m.sha256.to_string()
}

#[test]
fn evidence_is_shown_beside_its_record_with_its_consent_flags_and_only_to_those_who_may_read_it() {
    use support::web::{Browser, PASSWORD};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let csv = dir.path().join("stations.csv");
    std::fs::write(
        &csv,
        "station,name,region,district,address,registered_voters\nS-1,School 1,North,Lake,Main St 1,1000\nS-3,School 3,South,River,Main St 3,1000\n",
    )
    .unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    let photo = clip(50_000, 7);
    let png = record_with(&p, dir.path(), &photo, "image/png", "S-1", Consent::Refused);
    let svg = record_with(
        &p,
        dir.path(),
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "image/svg+xml",
        "S-1",
        Consent::Given,
    );
    sync(&p, &SyncOptions::default()).unwrap();
    let held: Vec<String> = server
        .db()
        .prepare("SELECT sha256 FROM media")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        held.contains(&png) && held.contains(&svg),
        "both files arrived"
    );

    let mut ana = server.signed_in("ana", "analyst");
    let queue: serde_json::Value = serde_json::from_str(&ana.get("/api/v1/queue").text).unwrap();
    let index = |i: usize| queue["items"][i]["index"].as_u64().unwrap();
    let (png_at, svg_at) = (index(1).min(index(0)), index(1).max(index(0)));
    let page = ana.get(&format!("/records/{png_at}"));
    assert_eq!(page.status, 200);
    let src = format!("/records/{png_at}/media/{png}");
    assert!(
        page.text.contains(&format!("<img src=\"{src}\"")),
        "shown inline"
    );
    assert!(page.text.contains("The people shown refused consent"));
    assert!(
        page.text.contains("voters&#39; faces can be recognised")
            || page.text.contains("voters' faces can be recognised")
    );
    let at = page
        .text
        .find("by the door")
        .expect("where it was taken from");
    let around = &page.text[at - 30..at + 30];
    assert!(
        !page.text.contains("<b>by the door"),
        "the observer's text is inert: {around}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ana.get(&format!("/api/v1/records/{png_at}")).text).unwrap();
    assert_eq!(json["evidence"][0]["meta"]["consent"], "refused");
    assert_eq!(json["evidence"][0]["held"], true);

    let got = ana.get(&src);
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "image/png");
    assert_eq!(got.headers["content-disposition"], "inline");
    assert_eq!(got.headers["cache-control"], "no-store");
    assert_eq!(got.headers["x-content-type-options"], "nosniff");
    // The body is read as text by the test browser: compare its length and hash.
    let bytes = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("{}{src}", server.url()))
        .header(
            "cookie",
            ana.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&bytes[..], &photo[..], "the file as the phone signed it");

    // An SVG is never rendered in the workspace's origin: a download.
    let page = ana.get(&format!("/records/{svg_at}"));
    assert!(
        !page
            .text
            .contains(&format!("<img src=\"/records/{svg_at}/media/{svg}\""))
    );
    let got = ana.get(&format!("/records/{svg_at}/media/{svg}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "application/octet-stream");
    assert!(
        got.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // Only a file the record names, only to those signed in, only in their region.
    assert_eq!(
        ana.get(&format!("/records/{svg_at}/media/{png}")).status,
        404
    );
    assert_eq!(
        ana.get(&format!("/records/{png_at}/media/not-a-hash"))
            .status,
        404
    );
    assert_eq!(
        Browser::new(&server.url()).get(&src).status,
        303,
        "to the sign-in page"
    );
    server.add_user_with("sam", "verifier", &["--region", "South"]);
    let mut sam = Browser::new(&server.url());
    assert_eq!(sam.login("sam", PASSWORD).status, 303);
    assert_eq!(sam.get(&src).status, 403);
}
