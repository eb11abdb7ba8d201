//! Forms end to end: the coordinator publishes a new version of the counting
//! form, phones pull it at sync, fill it offline, sync back; the server
//! re-validates, flags the arithmetic, tabulates and compares with the
//! official results.

mod support;

use observer_core::record::NewRecord;
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, sync};
use serde_json::{Value, json};
use support::*;

/// The shipped counting form as version 2, with a sixth party.
fn counting_v2() -> String {
    let mut v: Value =
        serde_json::from_str(include_str!("../../core/forms/counting.json")).unwrap();
    v["version"] = json!(2);
    let fields = v["fields"].as_array_mut().unwrap();
    let at = fields.iter().position(|f| f["id"] == "party_5").unwrap() + 1;
    fields.insert(at, json!({"id": "party_6", "type": "integer", "min": 0, "max": 100000, "required": true,
        "label": {"en": "Votes for party 6", "ru": "Голосов за партию 6", "kk": "6-партияға берілген дауыстар"}}));
    for r in v["rules"].as_array_mut().unwrap() {
        if r["id"] == "votes_add_up" {
            r["check"]["eq"][1]["sum"]
                .as_array_mut()
                .unwrap()
                .push(json!({"field": "party_6"}));
        }
    }
    v.to_string()
}

fn protocol(issued: i64, cast: i64, votes: [i64; 6]) -> Value {
    json!({
        "registered_voters": 2000, "ballots_received": 1500, "ballots_issued": issued,
        "ballots_spoiled": 0, "ballots_unused": 1500 - issued, "ballots_cast": cast,
        "ballots_invalid": cast - votes.iter().sum::<i64>(),
        "party_1": votes[0], "party_2": votes[1], "party_3": votes[2],
        "party_4": votes[3], "party_5": votes[4], "party_6": votes[5],
        "count_announced": true, "copy_received": true,
    })
}

fn report(p: &Store, station: &str, answers: Value) {
    let form = p.form("counting", None).unwrap().unwrap();
    assert_eq!(
        form.version, 2,
        "the phone fills the newest version, offline"
    );
    p.save(
        NewRecord::builder(station, "counting", form.version, "results")
            .payload(answers)
            .build()
            .unwrap(),
    )
    .unwrap();
}

/// Every sync's updates name the published forms, which a node re-reads
/// every few seconds rather than at each of thousands of syncs a second: a
/// version published on the command line (another process) while phones
/// sync still reaches a phone that synced just before, within seconds.
#[test]
fn a_form_published_on_the_command_line_reaches_a_syncing_phone_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("p"), &server, "KZ-0001");
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().forms_received, 0);
    let def = dir.path().join("counting-v2.json");
    std::fs::write(&def, counting_v2()).unwrap();
    assert!(
        server
            .cli(&["forms", "publish", def.to_str().unwrap()])
            .contains("published counting v2")
    );
    let published = std::time::Instant::now();
    while sync(&p, &SyncOptions::default()).unwrap().forms_received == 0 {
        assert!(
            published.elapsed() < std::time::Duration::from_secs(15),
            "the form was not offered within 15 s of its publication"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(p.form("counting", Some(2)).unwrap().is_some());
    assert_eq!(
        sync(&p, &SyncOptions::default()).unwrap().forms_received,
        0,
        "offered once: the phone's tag now matches"
    );
}

#[test]
fn a_published_counting_form_reaches_phones_and_results_are_checked_tabulated_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let def = dir.path().join("counting-v2.json");
    std::fs::write(&def, counting_v2()).unwrap();
    assert!(
        server
            .cli(&["forms", "publish", def.to_str().unwrap()])
            .contains("published counting v2")
    );
    let stations = ["KZ-0001", "KZ-0001", "KZ-0002", "KZ-0003", "KZ-0003"];
    let phones: Vec<Store> = stations
        .iter()
        .enumerate()
        .map(|(i, s)| enrolled_phone(&dir.path().join(format!("p{i}")), &server, s))
        .collect();
    for p in &phones {
        assert_eq!(sync(p, &SyncOptions::default()).unwrap().forms_received, 1);
    }

    // Offline: two observers at KZ-0001 agree; their protocol has more
    // ballots in the boxes than were issued. KZ-0002 is consistent. The two
    // observers at KZ-0003 disagree.
    let stuffed = protocol(1000, 1040, [500, 300, 100, 80, 40, 10]);
    let v = phones[0]
        .form("counting", Some(2))
        .unwrap()
        .unwrap()
        .validate(stuffed.as_object().unwrap(), "ru");
    assert!(
        v.findings.iter().any(|f| f.rule == "cast_not_above_issued"),
        "the phone warns before saving"
    );
    report(&phones[0], "KZ-0001", stuffed.clone());
    report(&phones[1], "KZ-0001", stuffed);
    report(
        &phones[2],
        "KZ-0002",
        protocol(800, 800, [400, 200, 100, 50, 30, 10]),
    );
    report(
        &phones[3],
        "KZ-0003",
        protocol(600, 600, [300, 100, 100, 50, 30, 10]),
    );
    report(
        &phones[4],
        "KZ-0003",
        protocol(600, 600, [100, 300, 100, 50, 30, 10]),
    );
    for p in &phones {
        assert_eq!(sync(p, &SyncOptions::default()).unwrap().accepted, 1);
    }

    // The server re-validated each record against the version it names.
    let records: Vec<Value> = server
        .cli(&["records", "--json", "--station", "KZ-0001"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["form"], json!({"id": "counting", "version": 2}));
        assert_eq!(r["form_check"]["clean"], false);
        let rules: Vec<&str> = r["form_check"]["result"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert_eq!(rules, ["cast_not_above_issued"]);
    }
    let kz2: Value = serde_json::from_str(
        server
            .cli(&["records", "--json", "--station", "KZ-0002"])
            .trim(),
    )
    .unwrap();
    assert_eq!(kz2["form_check"]["clean"], true);

    // The coordinator's view marks the flagged records.
    let html = server.view();
    assert_eq!(
        html.matches("flagged cast_not_above_issued").count(),
        2,
        "{html}"
    );

    // Official results: KZ-0001's official count gives party 1 sixty more votes.
    let csv = dir.path().join("official.csv");
    std::fs::write(
        &csv,
        "station,region,ballots_cast,party_1,party_2\nKZ-0001,Almaty,1040,560,300\nKZ-0002,Almaty,800,400,200\nKZ-0003,Astana,600,300,100\n",
    )
    .unwrap();
    assert!(
        server
            .cli(&["import-official", csv.to_str().unwrap()])
            .contains("3 stations")
    );

    let by_station: Vec<Value> =
        serde_json::from_str(&server.cli(&["results", "--by", "station", "--json"])).unwrap();
    let status = |s: &str| by_station.iter().find(|r| r["station"] == s).unwrap()["status"].clone();
    assert_eq!(status("KZ-0001"), "agreed");
    assert_eq!(status("KZ-0002"), "single");
    assert_eq!(status("KZ-0003"), "conflict");
    // The same in words, never Rust's debug text.
    let text = server.cli(&["results", "--by", "station"]);
    assert!(
        text.contains("2 observers DISAGREE") && text.contains("one observer"),
        "{text}"
    );
    assert!(
        !text.contains("Single") && !text.contains("Conflict {"),
        "{text}"
    );

    let country: Vec<Value> = serde_json::from_str(&server.cli(&["results", "--json"])).unwrap();
    assert_eq!(country[0]["stations"], 2);
    assert_eq!(country[0]["conflicts"], 1);
    assert_eq!(country[0]["figures"]["ballots_cast"], 1040 + 800);
    assert_eq!(country[0]["figures"]["party_1"], 500 + 400);
    let regions: Vec<Value> =
        serde_json::from_str(&server.cli(&["results", "--by", "region", "--json"])).unwrap();
    let almaty = regions.iter().find(|r| r["area"] == "Almaty").unwrap();
    assert_eq!(
        (
            almaty["stations"].as_u64(),
            almaty["figures"]["party_2"].as_i64()
        ),
        (Some(2), Some(500))
    );
    let astana = regions.iter().find(|r| r["area"] == "Astana").unwrap();
    assert_eq!(
        (astana["stations"].as_u64(), astana["conflicts"].as_u64()),
        (Some(0), Some(1))
    );

    // The coordinator moves an observer; the phone learns it at its next sync.
    server.cli(&[
        "assign",
        phones[2].device_id().as_str(),
        "--station",
        "KZ-0002",
        "--station",
        "KZ-0009",
    ]);
    sync(&phones[2], &SyncOptions::default()).unwrap();
    assert_eq!(
        phones[2].enrollment().unwrap().stations,
        ["KZ-0002", "KZ-0009"]
    );

    let cmp: Value = serde_json::from_str(&server.cli(&["compare", "--json"])).unwrap();
    assert_eq!(
        cmp["discrepancies"],
        json!([{"station": "KZ-0001", "figure": "party_1", "observed": 500, "official": 560}]),
        "only the doctored figure differs"
    );
    assert_eq!(cmp["compared"], 2, "KZ-0001 and KZ-0002: {cmp}");
    assert_eq!(cmp["observers_disagree"], json!(["KZ-0003"]));
    let text = server.cli(&["compare"]);
    assert!(text.contains("compared 2 stations: 1 differ"), "{text}");
}

#[test]
fn an_admin_publishes_a_form_in_the_workspace_and_phones_receive_it() {
    use support::web::Browser;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let mut admin = server.signed_in("aigerim", "admin");
    let mut sam = server.signed_in("sam", "supervisor");
    let csrf = admin.csrf();
    let sam_csrf = sam.csrf();
    let listed = |b: &mut Browser| -> Vec<(String, u64, String)> {
        let page = b.get("/api/v1/forms");
        assert_eq!(page.status, 200, "{}", page.text);
        serde_json::from_str::<Value>(&page.text)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["version"].as_u64().unwrap(),
                    f["source"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let before = listed(&mut sam);
    assert!(before.contains(&("counting".into(), 1, "shipped".into())));
    let publish = |b: &mut Browser, csrf: &str, definition: &str| {
        b.post("/forms", &[("csrf", csrf), ("definition", definition)])
    };
    let v2 = counting_v2();
    // Not a supervisor's to publish, nor without the session's token.
    assert_eq!(publish(&mut sam, &sam_csrf, &v2).status, 403);
    assert_eq!(publish(&mut admin, "forged", &v2).status, 403);
    assert!(
        !sam.get("/forms").text.contains("name=\"definition\""),
        "no publishing form for a supervisor"
    );
    // A definition that is not one is refused, and shown again to fix.
    let broken = publish(&mut admin, &csrf, "{\"id\": \"counting\"");
    assert_eq!(broken.status, 400);
    assert!(
        broken
            .text
            .contains("not a form definition Observer accepts"),
        "{}",
        broken.text
    );
    assert!(
        broken
            .text
            .contains("{&quot;id&quot;: &quot;counting&quot;")
            || broken.text.contains("{&#34;id&#34;")
    );
    // The shipped version with other content: a new version is needed.
    let mut changed: Value = serde_json::from_str(&v2).unwrap();
    changed["version"] = json!(1);
    let taken = publish(&mut admin, &csrf, &changed.to_string());
    assert_eq!(taken.status, 400);
    assert!(
        taken.text.contains("publish the change as a new version"),
        "{}",
        taken.text
    );
    // A phone that synced before the form was published...
    let p = enrolled_phone(&dir.path().join("p"), &server, "KZ-0001");
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().forms_received, 0);
    assert_eq!(publish(&mut admin, &csrf, &v2).status, 303);
    assert_eq!(
        publish(&mut admin, &csrf, &v2).status,
        303,
        "the same again changes nothing"
    );
    assert!(listed(&mut sam).contains(&("counting".into(), 2, "published".into())));
    let audit = server.cli(&["audit", "--json"]);
    assert_eq!(audit.matches("\"form.published\"").count(), 1, "{audit}");
    assert!(audit.contains("account:aigerim"));
    // ...receives it at its very next sync: publishing in the workspace
    // makes this node read the published forms afresh.
    assert_eq!(sync(&p, &SyncOptions::default()).unwrap().forms_received, 1);
    assert!(p.form("counting", Some(2)).unwrap().is_some());
    // A coordinator of one region may not: forms are national.
    let csv = dir.path().join("stations.csv");
    std::fs::write(&csv, "station,name,region,district,address,registered_voters\nKZ-0001,School 1,North,Lake,Main St 1,1000\n").unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    server.add_user_with("nora", "coordinator", &["--region", "North"]);
    let mut nora = Browser::new(&server.url());
    assert_eq!(nora.login("nora", support::web::PASSWORD).status, 303);
    let nora_csrf = nora.csrf();
    assert_eq!(publish(&mut nora, &nora_csrf, &v2).status, 403);
}
