//! Verification and coverage as coordinators use them, against a real
//! server process on loopback with real phones (the core on their own
//! directories): the queue puts critical reports first, one verifier's
//! claim holds off another, decisions are stored with who and why and
//! audited, a second observer's matching report corroborates the first,
//! corrections read as one chain, protocols are compared field by field,
//! and coverage counts the registry's stations per phase against the
//! deadlines coordinators set.

mod support;

use observer_core::record::NewRecord;
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, sync};
use serde_json::{Value, json};
use support::web::Browser;
use support::*;

const STATIONS: &str = "station,name,region,district,address,registered_voters
S-1,School 1,North,Lake,Main St 1,1000
S-2,School 2,North,Hill,Main St 2,1000
S-3,School 3,South,River,Main St 3,1000
";

fn json_of(b: &mut Browser, path: &str) -> Value {
    let page = b.get(path);
    assert_eq!(page.status, 200, "{path}: {}", page.text);
    serde_json::from_str(&page.text).unwrap()
}

fn save(p: &Store, form: &str, kind: &str, payload: Value) -> observer_core::record::RecordId {
    let r = p
        .save(
            NewRecord::builder("S-1", form, 1, kind)
                .payload(payload)
                .build()
                .unwrap(),
        )
        .unwrap();
    sync(p, &SyncOptions::default()).unwrap();
    r.id
}

/// The queue's open items as (index, category).
fn open(b: &mut Browser) -> Vec<(u64, Option<String>)> {
    json_of(b, "/api/v1/queue")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["category"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn verifiers_decide_once_each_and_independent_reports_corroborate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let csv = dir.path().join("stations.csv");
    std::fs::write(&csv, STATIONS).unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let a = enrolled_phone(&dir.path().join("a"), &server, "S-1");
    let opening = save(&a, "opening", "checklist", json!({"opened_on_time": true}));
    let stuffing = save(
        &a,
        "incident",
        "incident",
        json!({"type": "ballot_stuffing"}),
    );
    let _ = opening;

    let mut vera = server.signed_in("vera", "verifier");
    let mut victor = server.signed_in("victor", "verifier");
    // The ballot stuffing report comes first although it arrived second.
    let queue = open(&mut vera);
    assert_eq!(
        queue,
        vec![(1, Some("ballot_stuffing".into())), (0, None)],
        "{queue:?}"
    );
    let html = vera.get("/queue?category=ballot_stuffing");
    assert!(html.text.contains("/records/1") && !html.text.contains("/records/0\""));

    // Vera takes it; Victor can neither take it nor decide it.
    let csrf_vera = vera.csrf();
    let csrf_victor = victor.csrf();
    assert_eq!(
        vera.post("/records/1/claim", &[("csrf", &csrf_vera)])
            .status,
        303
    );
    let refused = victor.post("/records/1/claim", &[("csrf", &csrf_victor)]);
    assert_eq!(refused.status, 409);
    assert!(refused.text.contains("vera"), "{}", refused.text);
    let decide = |b: &mut Browser, csrf: &str, index: u64, verdict: &str, note: &str| {
        b.post(
            &format!("/records/{index}/review"),
            &[("csrf", csrf), ("verdict", verdict), ("note", note)],
        )
        .status
    };
    assert_eq!(
        decide(&mut victor, &csrf_victor, 1, "rejected", "fake"),
        409
    );
    assert!(victor.get("/records/1").text.contains("vera"));
    // Without the CSRF token, and for an analyst: refused, nothing stored.
    assert_eq!(decide(&mut vera, "forged", 1, "confirmed", ""), 403);
    let mut ana = server.signed_in("ana", "analyst");
    let csrf_ana = ana.csrf();
    assert_eq!(decide(&mut ana, &csrf_ana, 1, "confirmed", ""), 403);
    assert_eq!(
        ana.post("/records/1/claim", &[("csrf", &csrf_ana)]).status,
        403
    );
    let record = json_of(&mut vera, "/api/v1/records/1");
    assert_eq!(record["review"], "unreviewed");
    assert!(record["decisions"].as_array().unwrap().is_empty());
    // A rejection needs a reason; an unknown verdict is refused.
    assert_eq!(decide(&mut vera, &csrf_vera, 1, "rejected", "  "), 400);
    assert_eq!(decide(&mut vera, &csrf_vera, 1, "unreviewed", ""), 400);

    assert_eq!(
        decide(
            &mut vera,
            &csrf_vera,
            1,
            "needs_corroboration",
            "one phone so far"
        ),
        303
    );
    let record = json_of(&mut vera, "/api/v1/records/1");
    assert_eq!(record["review"], "needs_corroboration");
    assert!(record["claim"].is_null(), "the decision released the claim");
    assert_eq!(record["decisions"][0]["reviewer"], "vera");
    assert_eq!(record["decisions"][0]["note"], "one phone so far");
    assert_eq!(record["corroboration"]["observers"], 1);
    assert_eq!(record["corroboration"]["corroborated"], false);
    assert!(record["signature_problem"].is_null());
    assert_eq!(record["sealed"], true, "incidents travel sealed");
    // Still open: it needs corroboration.
    assert!(open(&mut vera).iter().any(|(i, _)| *i == 1));

    // A second observer at the same station reports the same.
    let b = enrolled_phone(&dir.path().join("b"), &server, "S-1");
    save(
        &b,
        "incident",
        "incident",
        json!({"type": "ballot_stuffing"}),
    );
    let record = json_of(&mut vera, "/api/v1/records/1");
    assert_eq!(record["corroboration"]["observers"], 2);
    assert_eq!(record["corroboration"]["corroborated"], true);
    assert_eq!(record["corroboration"]["matches"][0]["index"], 2);
    let page = vera.get("/records/1");
    assert!(
        page.text.contains("reported by 2 independent observers"),
        "{}",
        page.text
    );
    // The same phone twice is not independent.
    save(
        &a,
        "incident",
        "incident",
        json!({"type": "carousel_voting"}),
    );
    save(
        &a,
        "incident",
        "incident",
        json!({"type": "carousel_voting"}),
    );
    let alone = json_of(&mut vera, "/api/v1/records/4");
    assert_eq!(alone["corroboration"]["observers"], 1);

    // Confirmed leaves the open queue; what was decided is audited.
    assert_eq!(
        decide(&mut victor, &csrf_victor, 0, "confirmed", "seen on video"),
        303
    );
    assert!(!open(&mut vera).iter().any(|(i, _)| *i == 0));
    let confirmed = json_of(&mut vera, "/api/v1/queue?state=confirmed");
    assert_eq!(confirmed["items"][0]["index"], 0);
    let audit = server.cli(&["audit", "--json"]);
    let reviewed: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "record.reviewed")
        .collect();
    assert_eq!(reviewed.len(), 2, "{audit}");
    assert_eq!(reviewed[0]["actor"], "account:vera");
    assert_eq!(reviewed[1]["actor"], "account:victor");
    assert!(
        reviewed[1]["detail"]
            .as_str()
            .unwrap()
            .contains("seen on video")
    );
    assert!(server.cli(&["audit", "verify"]).contains("entries"));

    // A correction reads as one chain, latest first, from either end.
    a.save(
        NewRecord::builder("S-1", "incident", 1, "incident")
            .payload(json!({"type": "ballot_stuffing", "description": "two bundles"}))
            .supersedes(stuffing)
            .build()
            .unwrap(),
    )
    .unwrap();
    sync(&a, &SyncOptions::default()).unwrap();
    for index in [1, 5] {
        let chain: Vec<u64> = json_of(&mut vera, &format!("/api/v1/records/{index}"))["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["index"].as_u64().unwrap())
            .collect();
        assert_eq!(chain, vec![5, 1], "from {index}");
    }
    assert_eq!(
        json_of(&mut vera, "/api/v1/records/5")["supersedes"],
        stuffing.to_string()
    );

    // Two observers' protocols of one station, compared field by field.
    let figures = |party_1: i64| json!({"registered_voters": 1000, "ballots_cast": 600, "party_1": party_1, "count_announced": true});
    save(&a, "counting", "results", figures(300));
    save(&b, "counting", "results", figures(280));
    let p = json_of(&mut vera, "/api/v1/records/6")["protocols"].clone();
    assert_eq!(p["agree"], false);
    let rows = p["rows"].as_array().unwrap();
    let row = |f: &str| rows.iter().find(|r| r["field"] == f).unwrap().clone();
    assert_eq!(row("party_1")["agree"], false);
    let mut values: Vec<String> = row("party_1")["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    values.sort();
    assert_eq!(values, vec!["280", "300"]);
    assert_eq!(row("ballots_cast")["agree"], true);
}

#[test]
fn coverage_counts_the_registry_against_the_deadlines_and_names_the_silent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let csv = dir.path().join("stations.csv");
    std::fs::write(&csv, STATIONS).unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let mut sam = server.signed_in("sam", "supervisor");
    let c = json_of(&mut sam, "/api/v1/coverage");
    assert_eq!(c["phases"][0]["phase"], "opening");
    assert_eq!(
        (
            c["phases"][0]["reported"].as_u64(),
            c["phases"][0]["stations"].as_u64()
        ),
        (Some(0), Some(3))
    );

    let a = enrolled_phone(&dir.path().join("a"), &server, "S-1");
    save(&a, "opening", "checklist", json!({"opened_on_time": true}));
    // A phone that enrolled and then never came back.
    let _quiet = enrolled_phone(&dir.path().join("quiet"), &server, "S-3");
    let c = json_of(&mut sam, "/api/v1/coverage");
    assert_eq!(c["phases"][0]["reported"], 1);
    assert_eq!(c["late_total"], 0, "no deadline yet");
    let north = c["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "North")
        .unwrap()
        .clone();
    assert_eq!(
        (north["stations"].as_u64(), north["reported"][0].as_u64()),
        (Some(2), Some(1))
    );

    // The supervisor sets an opening deadline that has passed.
    let csrf = sam.csrf();
    let past = "2026-01-01T08:00";
    let set = sam.post(
        "/coverage/plan",
        &[
            ("csrf", &csrf),
            ("opening", past),
            ("silent_after_minutes", "30"),
        ],
    );
    assert_eq!(set.status, 303, "{}", set.text);
    let c = json_of(&mut sam, "/api/v1/coverage");
    assert_eq!(c["phases"][0]["late"], 2);
    let late: Vec<&str> = c["late"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["station"].as_str().unwrap())
        .collect();
    assert_eq!(late, vec!["S-2", "S-3"]);
    // The phone that never synced is silent; the one that did is not.
    let silent: Vec<&str> = c["silent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["stations"].as_str().unwrap())
        .collect();
    assert_eq!(silent, vec!["S-3"]);
    // One region: its districts, its stations only.
    let south = json_of(&mut sam, "/api/v1/coverage?region=South");
    assert_eq!(south["phases"][0]["stations"], 1);
    assert_eq!(south["areas"][0]["name"], "River");
    let page = sam.get("/coverage?region=South");
    assert!(page.text.contains("data-live") && page.text.contains("/static/live.js"));
    assert_eq!(sam.get("/static/live.js").status, 200);

    // Bad plans are refused; verifiers and analysts may not set one.
    for (field, value) in [("opening", "tomorrow"), ("silent_after_minutes", "0")] {
        let mut form = vec![("csrf", csrf.as_str()), ("silent_after_minutes", "30")];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        assert_eq!(
            sam.post("/coverage/plan", &form).status,
            400,
            "{field}={value}"
        );
    }
    let mut vera = server.signed_in("vera", "verifier");
    let csrf_v = vera.csrf();
    let refused = vera.post(
        "/coverage/plan",
        &[("csrf", &csrf_v), ("silent_after_minutes", "5")],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        json_of(&mut vera, "/api/v1/coverage")["silent_after_minutes"],
        30
    );
    assert!(server.cli(&["audit"]).contains("plan.set"));

    // The centre's time zone: deadlines are entered in it, times shown in it.
    let set = sam.post(
        "/coverage/plan",
        &[
            ("csrf", &csrf),
            ("time_zone", "Asia/Almaty"),
            ("opening", "2026-01-01T13:00"),
            ("silent_after_minutes", "30"),
        ],
    );
    assert_eq!(set.status, 303, "{}", set.text);
    let c = json_of(&mut sam, "/api/v1/coverage");
    assert_eq!(
        c["phases"][0]["deadline_ms"], 1_767_254_400_000i64,
        "13:00 in Almaty is 08:00 UTC"
    );
    let page = sam.get("/coverage");
    assert!(
        page.text.contains("2026-01-01 13:00:00 +05"),
        "{}",
        page.text
    );
    assert!(page.text.contains("value=\"2026-01-01T13:00\""));
    assert!(
        sam.get("/").text.contains(" +05</td>"),
        "the overview's times too"
    );
    let refused = sam.post(
        "/coverage/plan",
        &[
            ("csrf", &csrf),
            ("time_zone", "Mars/Olympus"),
            ("silent_after_minutes", "30"),
        ],
    );
    assert_eq!(refused.status, 400);
}

#[test]
fn the_coverage_map_places_areas_by_their_stations_and_colours_them_by_what_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let csv = dir.path().join("stations.csv");
    std::fs::write(&csv, STATIONS).unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let mut sam = server.signed_in("sam", "supervisor");
    assert!(
        json_of(&mut sam, "/api/v1/coverage")["map"].is_null(),
        "no coordinates, no map"
    );
    std::fs::write(
        &csv,
        "station,name,region,district,address,registered_voters,latitude,longitude
S-1,School 1,North,Lake,Main St 1,1000,53.28,69.39
S-2,School 2,North,Hill,Main St 2,1000,53.30,69.45
S-3,School 3,South,River,Main St 3,1000,42.32,69.59
",
    )
    .unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let a = enrolled_phone(&dir.path().join("a"), &server, "S-1");
    save(&a, "opening", "checklist", json!({"opened_on_time": true}));
    let c = json_of(&mut sam, "/api/v1/coverage");
    let map = &c["map"];
    assert_eq!(map["phase"], "opening");
    let point = |name: &str| {
        map["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let (north, south) = (point("North"), point("South"));
    assert_eq!(
        (north["reported"].as_u64(), north["share"].as_u64()),
        (Some(1), Some(50))
    );
    assert_eq!(south["share"], 0);
    assert!(north["y"].as_u64() < south["y"].as_u64(), "north is up");
    for p in [&north, &south] {
        assert!(p["x"].as_u64().unwrap() <= map["width"].as_u64().unwrap());
        assert!(p["y"].as_u64().unwrap() <= map["height"].as_u64().unwrap());
    }
    assert!(
        north["r"].as_u64() > south["r"].as_u64(),
        "two stations against one"
    );
    let page = sam.get("/coverage");
    assert!(page.text.contains("<svg id=\"coverage-map\""));
    assert!(
        page.text.contains("class=\"mid\" data-area=\"North\""),
        "half reported"
    );
    assert!(page.text.contains("class=\"gap\" data-area=\"South\""));
    assert!(page.text.contains("<a href=\"/coverage?region=South\">"));
    // One region: its districts on the map.
    let north_only = json_of(&mut sam, "/api/v1/coverage?region=North");
    let names: Vec<&str> = north_only["map"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Hill", "Lake"]);
}
