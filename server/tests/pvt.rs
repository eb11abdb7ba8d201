//! The quick count as a coordination centre runs it, against a real server
//! process on loopback with real phones: a sample drawn from the registry
//! and committed in the audit log before any protocol, phones at sampled
//! stations syncing their protocols, the estimate in the workspace with
//! what it left out and why, and an official result with one party moved
//! by five points flagged as outside the interval.

mod support;

use std::collections::BTreeMap;

use observer_core::record::{NewRecord, Sha256Digest};
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, sync};
use serde_json::{Value, json};
use support::*;

const REGIONS: [&str; 4] = ["Алматы", "Астана", "North", "South"];
const PER_REGION: usize = 50;

fn station_id(r: usize, i: usize) -> String {
    format!("KZ-{r}{i:02}")
}

fn registered(r: usize, i: usize) -> i64 {
    600 + (23 * (r * PER_REGION + i) as i64) % 1400
}

/// A station's own lean, between -0.05 and 0.05, spread evenly.
fn lean(r: usize, i: usize) -> f64 {
    ((r * PER_REGION + i) * 7919 % 101) as f64 / 1010.0 - 0.05
}

/// The true protocol of a station: party 1 stronger in later regions.
fn truth(r: usize, i: usize) -> BTreeMap<String, i64> {
    let reg = registered(r, i);
    let cast = reg * 6 / 10;
    let invalid = 10;
    let valid = cast - invalid;
    let l = lean(r, i);
    let shares = [
        0.30 + 0.05 * r as f64 + l,
        0.40 - 0.05 * r as f64 - l / 2.0,
        0.20 - l / 2.0,
        0.06,
    ];
    let mut f = BTreeMap::new();
    let mut given = 0;
    for (p, s) in shares.iter().enumerate() {
        let v = (valid as f64 * s).floor() as i64;
        given += v;
        f.insert(format!("party_{}", p + 1), v);
    }
    f.insert("party_5".into(), valid - given);
    f.insert("registered_voters".into(), reg);
    f.insert("ballots_received".into(), reg);
    f.insert("ballots_issued".into(), cast);
    f.insert("ballots_spoiled".into(), 0);
    f.insert("ballots_unused".into(), reg - cast);
    f.insert("ballots_cast".into(), cast);
    f.insert("ballots_invalid".into(), invalid);
    f
}

fn protocol(station: &str, figures: &BTreeMap<String, i64>) -> NewRecord {
    let mut payload = json!({ "count_announced": true, "copy_received": true });
    for (k, v) in figures {
        payload[k] = json!(v);
    }
    NewRecord::builder(station, "counting", 1, "results")
        .payload(payload)
        .build()
        .unwrap()
}

fn send(p: &Store, station: &str, figures: &BTreeMap<String, i64>) {
    p.save(protocol(station, figures)).unwrap();
    assert_eq!(sync(p, &SyncOptions::default()).unwrap().accepted, 1);
}

fn official_csv(shift_points: f64) -> String {
    let mut out = String::from(
        "station,registered_voters,ballots_cast,party_1,party_2,party_3,party_4,party_5\n",
    );
    for r in 0..REGIONS.len() {
        for i in 0..PER_REGION {
            let mut f = truth(r, i);
            let valid: i64 = (1..=5).map(|p| f[&format!("party_{p}")]).sum();
            let moved = (valid as f64 * shift_points / 100.0).round() as i64;
            *f.get_mut("party_1").unwrap() += moved;
            *f.get_mut("party_2").unwrap() -= moved;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                station_id(r, i),
                f["registered_voters"],
                f["ballots_cast"],
                f["party_1"],
                f["party_2"],
                f["party_3"],
                f["party_4"],
                f["party_5"]
            ));
        }
    }
    out
}

fn fails(server: &Server, args: &[&str]) -> String {
    let out = command(&server.data).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn country_figure<'a>(verdict: &'a Value, figure: &str) -> &'a Value {
    verdict["country"]["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["figure"] == figure)
        .unwrap_or_else(|| panic!("no {figure} in {verdict}"))
}

#[test]
fn a_committed_sample_its_estimate_and_a_verdict_on_a_shifted_official_result() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let mut registry = String::from("station,name,region,district,address,registered_voters\n");
    for (r, region) in REGIONS.iter().enumerate() {
        for i in 0..PER_REGION {
            registry.push_str(&format!(
                "{},School {i},{region},D{},Street {i},{}\n",
                station_id(r, i),
                i % 2,
                registered(r, i)
            ));
        }
    }

    // Before a registry and before a sample: clear refusals.
    assert!(fails(&server, &["pvt", "draw", "--size", "8"]).contains("stations import"));
    server.cli(&["stations", "import", &file("stations.csv", &registry)]);
    assert!(fails(&server, &["pvt", "estimate"]).contains("no sample drawn yet"));
    let mut ana = server.signed_in("ana", "analyst");
    assert!(
        ana.get("/pvt")
            .text
            .contains("No sample has been drawn yet")
    );
    assert_eq!(ana.get("/api/v1/pvt").text.trim(), "null");

    // The calculator answers from the registry.
    let size: Value =
        serde_json::from_str(&server.cli(&["pvt", "size", "--margin", "0.05", "--json"])).unwrap();
    assert!(size["stations"].as_u64().unwrap() >= 1, "{size}");
    assert!(fails(&server, &["pvt", "size", "--margin", "0.7"]).contains("margin of error"));

    // The draw: 80 stations, 20 per region, committed in the audit log.
    let said = server.cli(&[
        "pvt",
        "draw",
        "--size",
        "80",
        "--seed",
        "public dice 3 1 4 1 5",
    ]);
    assert!(
        said.contains("drew 80 stations in 4 strata from registry version 1"),
        "{said}"
    );
    assert!(fails(&server, &["pvt", "draw", "--size", "80"]).contains("--replace"));
    let text = server.cli(&["pvt", "sample"]);
    let sample: Value = serde_json::from_str(&server.cli(&["pvt", "sample", "--json"])).unwrap();
    let digest = Sha256Digest::of(text.as_bytes()).to_string();
    assert_eq!(sample["commitment"]["digest"], digest.as_str());
    assert!(said.contains(&digest), "{said}");
    let audit: Vec<Value> = server
        .cli(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let entry = audit
        .iter()
        .find(|e| e["action"] == "pvt.sample_drawn")
        .expect("the draw is audited");
    let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["digest"], digest.as_str());
    assert_eq!(detail["seed"], "public dice 3 1 4 1 5");
    assert_eq!(
        detail["results_held"], 0,
        "drawn before any protocol arrived"
    );
    assert_eq!(entry["seq"], sample["commitment"]["audit_seq"]);
    assert!(
        server
            .cli(&["audit", "verify"])
            .contains("the audit log checks")
    );
    let sampled: Vec<String> = sample["sample"]["stations"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(sampled.len(), 80);
    // The stations left out below: the first sampled one of each region.
    let odd: Vec<String> = (0..REGIONS.len())
        .map(|r| {
            sampled
                .iter()
                .find(|s| s[3..4] == r.to_string())
                .unwrap()
                .clone()
        })
        .collect();

    // Phones at the sampled stations send their protocols; at one station
    // two observers disagree, one protocol fails its arithmetic, one comes
    // from a phone that is then revoked, and one is rejected by a verifier.
    let mut phones = Vec::new();
    let at = |s: &str| -> (usize, usize) {
        let r = s[3..4].parse().unwrap();
        let i = s[4..].parse().unwrap();
        (r, i)
    };
    for (n, s) in sampled.iter().enumerate() {
        let (r, i) = at(s);
        let phone = enrolled_phone(&dir.path().join(format!("p{n}")), &server, s);
        let mut f = truth(r, i);
        if *s == odd[1] {
            // Votes that do not add up to the ballots cast.
            *f.get_mut("party_1").unwrap() += 100;
        }
        send(&phone, s, &f);
        phones.push(phone);
    }
    let second = enrolled_phone(&dir.path().join("second"), &server, &odd[0]);
    let (r0, i0) = at(&odd[0]);
    let mut other = truth(r0, i0);
    *other.get_mut("party_1").unwrap() -= 5;
    *other.get_mut("party_3").unwrap() += 5;
    send(&second, &odd[0], &other);
    // A station outside the sample counts for nothing here.
    let outside = (0..PER_REGION)
        .map(|i| station_id(2, i))
        .find(|s| !sampled.contains(s))
        .unwrap();
    let (ro, io) = at(&outside);
    let outsider = enrolled_phone(&dir.path().join("outside"), &server, &outside);
    send(&outsider, &outside, &truth(ro, io));
    // The signed updates told each phone whether its station is sampled,
    // so the app shows the results form first and a sync sends it first.
    let priority = |p: &Store| p.enrollment().unwrap().priority_stations;
    assert_eq!(priority(&phones[5]), vec![sampled[5].clone()]);
    assert_eq!(priority(&second), vec![odd[0].clone()]);
    assert!(priority(&outsider).is_empty());

    // An evidence package of the station with two observers carries the
    // commitment and the sample, and an outsider's verifier shows both.
    let out = dir.path().join("odd0.zip");
    server.cli(&[
        "evidence",
        "export",
        "--station",
        &odd[0],
        "--out",
        out.to_str().unwrap(),
    ]);
    let package = observer_verify::read_package(&out).unwrap();
    // The coordinator's key as a phone learns it (an enrollment code).
    let trust = observer_core::evidence::Trust {
        coordinator: Some(server.code(&odd[0]).coordinator),
        witnesses: None,
    };
    let report = observer_core::evidence::verify(&package, &trust);
    assert!(report.passed(), "{:?}", report.findings);
    let said = |subject: &str| -> String {
        report
            .findings
            .iter()
            .filter(|f| f.subject == subject)
            .map(|f| f.detail.clone())
            .collect()
    };
    let commitment = said("quick-count sample");
    assert!(
        commitment.contains(&digest)
            && commitment.contains("80 stations drawn with seed \"public dice 3 1 4 1 5\"")
            && commitment.contains("0 results protocols held then"),
        "{commitment}"
    );
    assert!(
        said("pvt/sample.txt").contains(
            "the committed sample of 80 stations; 2 results protocols in this package are from sampled stations, none received before"
        ),
        "{:?}",
        report.findings
    );
    let summary = String::from_utf8(package.files["summary.en.txt"].clone()).unwrap();
    assert!(
        summary.contains(&format!("Quick-count sample {digest} of 80 stations")),
        "{summary}"
    );
    // A station swapped into the sample afterwards: named.
    let mut forged = package.clone();
    let text = String::from_utf8(forged.files["pvt/sample.txt"].clone())
        .unwrap()
        .replacen(&format!("station \"{}\"", odd[0]), "station \"QQ-1\"", 1);
    let mut manifest: Value = serde_json::from_slice(&forged.files["manifest.json"]).unwrap();
    manifest["files"]["pvt/sample.txt"] = json!(Sha256Digest::of(text.as_bytes()).to_string());
    forged
        .files
        .insert("pvt/sample.txt".into(), text.into_bytes());
    forged.files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    let failed: Vec<String> = observer_core::evidence::verify(&forged, &trust)
        .failures()
        .map(|f| format!("{}: {}", f.subject, f.detail))
        .collect();
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("pvt/sample.txt") && l.contains("not the committed sample")),
        "{failed:?}"
    );

    let revoked = sampled.iter().position(|s| *s == odd[2]).unwrap();
    server.cli(&["revoke", &phones[revoked].device_id().to_string()]);
    let qc: Value = serde_json::from_str(&server.cli(&["pvt", "estimate", "--json"])).unwrap();
    assert_eq!(qc["estimate"]["country"]["reported"], 77, "{qc}");
    let rejected_station = &odd[3];
    let index = qc_index(&server, rejected_station);
    let mut vera = server.signed_in("vera", "verifier");
    let csrf = vera.csrf();
    assert_eq!(
        vera.post(&format!("/records/{index}/claim"), &[("csrf", &csrf)])
            .status,
        303
    );
    assert_eq!(
        vera.post(
            &format!("/records/{index}/review"),
            &[
                ("csrf", &csrf),
                ("verdict", "rejected"),
                ("note", "photo shows other figures")
            ],
        )
        .status,
        303
    );

    let qc: Value = serde_json::from_str(&server.cli(&["pvt", "estimate", "--json"])).unwrap();
    let country = &qc["estimate"]["country"];
    assert_eq!(country["sampled"], 80);
    assert_eq!(country["reported"], 76, "{qc}");
    let reasons: BTreeMap<String, String> = qc["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["station"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons[&odd[0]], "observers_disagree");
    assert_eq!(reasons[&odd[1]], "failed_rules");
    assert_eq!(reasons[&odd[2]], "device_revoked");
    assert_eq!(reasons[&odd[3]], "rejected_by_verifier");
    assert_eq!(reasons.len(), 4);
    for region in &qc["estimate"]["regions"].as_array().unwrap()[..] {
        assert_eq!(region["sampled"], 20, "{region}");
        assert_eq!(region["reported"], 19, "{region}");
    }
    let p1 = &country["parties"]["party_1"];
    let estimate = p1["estimate"].as_f64().unwrap();
    assert!((0.30..0.50).contains(&estimate), "{p1}");
    assert!(p1["margin99"].as_f64().unwrap() > p1["margin95"].as_f64().unwrap());
    assert!(qc["verdict"].is_null(), "no official result yet");

    // The workspace shows the same, in the analyst's language.
    let page = ana.get("/pvt");
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("76 of 80 sampled stations reported"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&digest));
    assert!(page.text.contains("rejected by a verifier"));
    assert!(
        page.text.contains("2 observers&#39; protocols disagree"),
        "{}",
        page.text
    );
    let api: Value = serde_json::from_str(&ana.get("/api/v1/pvt").text).unwrap();
    assert_eq!(api["estimate"], qc["estimate"]);
    // A regional coordinator's account is refused: the sample is national.
    server.add_user_with("reg", "coordinator", &["--region", "North"]);
    let mut reg = support::web::Browser::new(&server.url());
    assert_eq!(reg.login("reg", support::web::PASSWORD).status, 303);
    let refused = reg.get("/pvt");
    assert_eq!(refused.status, 403);

    // Nothing to compare yet, and said so; a damaged official file is
    // refused whole, each bad line named.
    assert!(
        server
            .cli(&["compare"])
            .contains("no official results imported yet")
    );
    let damaged = official_csv(0.0)
        .replace("KZ-001,", "KZ-001,-")
        .replace("\nKZ-002,", "\nKZ-002,,");
    let refused = fails(
        &server,
        &["import-official", &file("damaged.csv", &damaged)],
    );
    assert!(
        refused.contains("2 bad lines (nothing was imported)"),
        "{refused}"
    );
    assert!(
        refused.contains("line 3: registered_voters = \"-"),
        "{refused}"
    );
    assert!(refused.contains("is negative"), "{refused}");
    assert!(
        refused.contains("line 4: 9 cells where the header has 8"),
        "{refused}"
    );
    assert!(
        server
            .cli(&["compare"])
            .contains("no official results imported yet")
    );

    // The official result as counted: consistent everywhere.
    server.cli(&["import-official", &file("official.csv", &official_csv(0.0))]);
    let compared = server.cli(&["compare"]);
    assert!(
        compared.contains("compared 78 stations: 1 differ"),
        "the one protocol that fails its arithmetic; the revoked phone's and the rejected one are set aside: {compared}"
    );
    assert!(
        compared.contains("not compared, the observers disagree"),
        "{compared}"
    );
    assert!(
        compared.contains("official result without an observers' copy (121)"),
        "{compared}"
    );
    let qc: Value = serde_json::from_str(&server.cli(&["pvt", "estimate", "--json"])).unwrap();
    let v = &qc["verdict"];
    for figure in ["party_1", "party_2", "party_3", "turnout"] {
        assert_eq!(country_figure(v, figure)["within"], true, "{figure}: {v}");
    }
    assert_eq!(v["differing"].as_array().unwrap().len(), 0, "{v}");

    // The same file again is no new version.
    assert!(
        server
            .cli(&["import-official", &file("again.csv", &official_csv(0.0))])
            .contains("version 1 (200 stations) unchanged")
    );

    // One party moved by five points: outside, by more than 2.58 errors.
    // The commission's "correction" is a new version: the one it replaces
    // stays, and what changed is listed, audited and dry-runnable.
    let shifted = file("shifted.csv", &official_csv(5.0));
    let dry = server.cli(&["import-official", &shifted, "--dry-run"]);
    assert!(dry.contains("nothing imported"), "{dry}");
    assert_eq!(
        serde_json::from_str::<Value>(&server.cli(&["official-versions", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let said = server.cli(&["import-official", &shifted]);
    assert!(
        said.contains(
            "official results version 2 is 200 stations: 0 added, 200 changed, 0 removed"
        ),
        "{said}"
    );
    let digest = Sha256Digest::of(official_csv(5.0).as_bytes()).to_string();
    assert!(said.contains(&digest), "{said}");
    let first = &sampled[5];
    let line = said
        .lines()
        .find(|l| l.starts_with(&format!("  ~ {first}: ")))
        .unwrap_or_else(|| panic!("{first} listed as changed: {said}"));
    assert!(line.contains("party_1 ") && line.contains(" -> "), "{line}");
    let versions: Vec<Value> =
        serde_json::from_str(&server.cli(&["official-versions", "--json"])).unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["digest"], digest.as_str());
    assert_eq!(versions[1]["changed"], 200);
    assert!(
        versions[1]["imported_by"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
    let audit = server.cli(&["audit", "--json"]);
    let imported: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "official.imported")
        .collect();
    assert_eq!(imported.len(), 2, "{audit}");
    let detail: Value = serde_json::from_str(imported[1]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["version"], 2);
    assert_eq!(detail["changed"].as_array().unwrap().len(), 200);
    let qc: Value = serde_json::from_str(&server.cli(&["pvt", "estimate", "--json"])).unwrap();
    let v = &qc["verdict"];
    let p1 = country_figure(v, "party_1");
    assert_eq!(p1["within"], false, "{v}");
    let diff = p1["difference_points"].as_f64().unwrap();
    assert!(diff > 3.0 && diff < 7.0, "{p1}");
    assert!(p1["z"].as_f64().unwrap() > 2.58, "{p1}");
    assert_eq!(country_figure(v, "party_2")["within"], false);
    assert_eq!(country_figure(v, "party_3")["within"], true);
    // Every counted sampled station's party_1 and party_2 differ.
    let differing = v["differing"].as_array().unwrap();
    assert_eq!(differing.len(), 2 * 76, "{v}");
    let text = server.cli(&["pvt", "estimate"]);
    assert!(text.contains("NOT CONSISTENT"), "{text}");
    let page = ana.get("/pvt");
    assert!(
        page.text.contains("OUTSIDE the 99% interval"),
        "{}",
        page.text
    );
    assert!(page.text.contains("NOT consistent"));
    assert!(
        page.text
            .contains("official results version 2, imported on"),
        "the page names the version it judged: {}",
        page.text
    );
    let api: Value = serde_json::from_str(&ana.get("/api/v1/pvt").text).unwrap();
    assert_eq!(api["official_version"]["version"], 2);

    // Two observers disagree at odd[0]: a verifier, seeing the photo,
    // rejects the wrong copy. Nothing is edited; the copy left counts, in
    // the quick count and in the results, and the decision is audited.
    let status = |station: &str| -> Value {
        let all: Vec<Value> =
            serde_json::from_str(&server.cli(&["results", "--by", "station", "--json"])).unwrap();
        all.into_iter().find(|r| r["station"] == station).unwrap()["status"].clone()
    };
    assert_eq!(status(&odd[0]), "conflict");
    let listed = server.cli(&["records", "--json", "--station", &odd[0]]);
    let copies: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let wrong = copies
        .iter()
        .find(|r| r["device"] == second.device_id().to_string().as_str())
        .unwrap()["index"]
        .as_u64()
        .unwrap();
    let page = vera.get(&format!("/records/{wrong}")).text;
    assert!(page.contains("protocols that DISAGREE"), "{page}");
    assert!(page.contains("rejecting the copy that is wrong"), "{page}");
    assert_eq!(
        vera.post(&format!("/records/{wrong}/claim"), &[("csrf", &csrf)])
            .status,
        303
    );
    assert_eq!(
        vera.post(
            &format!("/records/{wrong}/review"),
            &[
                ("csrf", &csrf),
                ("verdict", "rejected"),
                (
                    "note",
                    "the photo of the protocol shows the other copy's figures"
                )
            ],
        )
        .status,
        303
    );
    assert_eq!(status(&odd[0]), "single");
    let page = vera.get(&format!("/records/{wrong}")).text;
    assert!(page.contains("(rejected by a verifier)"), "{page}");
    let qc: Value = serde_json::from_str(&server.cli(&["pvt", "estimate", "--json"])).unwrap();
    assert_eq!(qc["estimate"]["country"]["reported"], 77, "{qc}");
    let at_odd: Vec<&Value> = qc["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["station"] == odd[0].as_str())
        .collect();
    assert_eq!(at_odd.len(), 1, "{at_odd:?}");
    assert_eq!(at_odd[0]["reason"], "rejected_by_verifier");
    assert_eq!(at_odd[0]["index"], wrong);
    assert!(server.cli(&["compare"]).contains("compared 79 stations"));
}

/// The log index of the one protocol at `station`.
fn qc_index(server: &Server, station: &str) -> u64 {
    let listed = server.cli(&["records", "--json", "--station", station]);
    let records: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{listed}");
    records[0]["index"].as_u64().unwrap()
}
