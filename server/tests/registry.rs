//! The station registry end to end with the real binary: a bad file is
//! refused whole with every bad line named, a good one becomes version 1,
//! codes and assignments name only registered stations, a record for an
//! unregistered station is kept and flagged, a re-import lists its changes
//! as version 2, and the totals take their regions and districts from it.

mod support;

use observer_core::record::NewRecord;
use observer_core::sync::{SyncOptions, sync};
use serde_json::{Value, json};
use support::*;

const V1: &str = "\u{feff}station,name,region,district,address,registered_voters,latitude,longitude
KZ-0001,Школа № 1,Алматы,Медеу,\"пр. Абая 1, корпус 2\",2000,43.238949,76.889709
KZ-0002,<b>School 2</b>,Алматы,Бостандык,ул. Тимирязева 5,1500,,
KZ-0003,Гимназия 3,Астана,Есиль,пр. Мангилик Ел 10,1200,,
";

/// The same list a week later: KZ-0002 moved district, KZ-0003 closed,
/// KZ-0004 opened.
/// Written by a spreadsheet in a Russian locale: semicolons, decimal commas.
const V2: &str = "station;name;region;district;address;registered_voters;latitude;longitude
KZ-0001;Школа № 1;Алматы;Медеу;пр. Абая 1, корпус 2;2000;43,238949;76,889709
KZ-0002;<b>School 2</b>;Алматы;Алмалы;ул. Тимирязева 5;1500;;
KZ-0004;Лицей 4;Астана;Сарыарка;ул. Кенесары 4;800;;
";

fn fails(server: &Server, args: &[&str]) -> String {
    let out = command(&server.data).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn protocol(votes: [i64; 5]) -> Value {
    let cast: i64 = votes.iter().sum::<i64>() + 10;
    json!({
        "registered_voters": 2000, "ballots_received": 1500, "ballots_issued": cast,
        "ballots_spoiled": 0, "ballots_unused": 1500 - cast, "ballots_cast": cast,
        "ballots_invalid": 10,
        "party_1": votes[0], "party_2": votes[1], "party_3": votes[2],
        "party_4": votes[3], "party_5": votes[4],
        "count_announced": true, "copy_received": true,
    })
}

fn results(station: &str, votes: [i64; 5]) -> NewRecord {
    NewRecord::builder(station, "counting", 1, "results")
        .payload(protocol(votes))
        .build()
        .unwrap()
}

#[test]
fn the_registry_is_imported_whole_versioned_and_used_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };

    // Before any import: codes name any station, and the list says how to
    // make one.
    let early = enrolled_phone(&dir.path().join("early"), &server, "OUTSIDE-1");
    assert!(fails(&server, &["stations", "list"]).contains("stations import"));

    // A file with bad lines: each named, nothing imported.
    let bad = file(
        "bad.csv",
        &format!(
            "{V1}KZ-0005,Школа 5,Алматы,,ул. 1,100,,\nKZ-0001,Дубль,Алматы,Медеу,ул. 2,10,,\nKZ-0006,Школа 6,Алматы,Медеу,ул. 3,сто,,\n"
        ),
    );
    let err = fails(&server, &["stations", "import", &bad]);
    assert!(err.contains("3 bad lines (nothing was imported)"), "{err}");
    assert!(err.contains("line 5: district is empty"), "{err}");
    assert!(
        err.contains("line 6: station \"KZ-0001\" is already on line 2"),
        "{err}"
    );
    assert!(
        err.contains("line 7: registered_voters \"сто\" is not a whole number"),
        "{err}"
    );
    assert!(
        server
            .cli(&["stations", "versions"])
            .contains("no station registry yet")
    );

    // The good file becomes version 1.
    let v1 = file("v1.csv", V1);
    let said = server.cli(&["stations", "import", &v1]);
    assert!(
        said.contains("registry version 1 is 3 stations: 3 added"),
        "{said}"
    );
    let listed: Value = serde_json::from_str(&server.cli(&["stations", "list", "--json"])).unwrap();
    assert_eq!(listed["version"]["version"], 1);
    assert_eq!(listed["stations"][0]["name"], "Школа № 1");
    assert_eq!(listed["stations"][0]["address"], "пр. Абая 1, корпус 2");
    assert_eq!(listed["stations"][0]["location"]["latitude"], 43.238949);
    let almaty = server.cli(&["stations", "list", "--region", "Алматы"]);
    assert_eq!(almaty.lines().count(), 2, "{almaty}");
    // The same file again changes nothing.
    assert!(
        server
            .cli(&["stations", "import", &v1])
            .contains("version 1 (3 stations) unchanged")
    );

    // Codes and assignments name registered stations only.
    let refused = fails(&server, &["enroll", "--station", "KZ-0009", "--text"]);
    assert!(
        refused.contains("not in the station registry (version 1): KZ-0009"),
        "{refused}"
    );
    let early_id = early.device_id().to_string();
    let refused = fails(
        &server,
        &[
            "assign",
            &early_id,
            "--station",
            "KZ-0001",
            "--station",
            "NOPE",
        ],
    );
    assert!(refused.contains("not in the station registry"), "{refused}");
    server.cli(&["assign", &early_id, "--station", "KZ-0001"]);

    // Records: one at a registered station, one at a station the registry
    // does not hold (the early phone's old assignment): both kept, the
    // second flagged wherever it is shown.
    let a = enrolled_phone(&dir.path().join("a"), &server, "KZ-0001");
    let b = enrolled_phone(&dir.path().join("b"), &server, "KZ-0002");
    let c = enrolled_phone(&dir.path().join("c"), &server, "KZ-0003");
    a.save(results("KZ-0001", [500, 300, 100, 50, 40])).unwrap();
    b.save(results("KZ-0002", [200, 100, 50, 25, 20])).unwrap();
    c.save(results("KZ-0003", [100, 100, 100, 100, 100]))
        .unwrap();
    early.save(record("OUTSIDE-1", 1)).unwrap();
    for p in [&a, &b, &c, &early] {
        assert_eq!(sync(p, &SyncOptions::default()).unwrap().accepted, 1);
    }
    let outside: Value = serde_json::from_str(
        server
            .cli(&["records", "--json", "--station", "OUTSIDE-1"])
            .trim(),
    )
    .unwrap();
    assert_eq!(outside["in_registry"], false);
    let inside: Value = serde_json::from_str(
        server
            .cli(&["records", "--json", "--station", "KZ-0001"])
            .trim(),
    )
    .unwrap();
    assert_eq!(inside["in_registry"], true);
    assert!(
        server
            .cli(&["records", "--station", "OUTSIDE-1"])
            .contains("(station not in the registry)")
    );
    let html = server.view();
    assert_eq!(html.matches("not in the registry").count(), 1, "{html}");

    // Totals by region and district come from the registry.
    let regions: Vec<Value> =
        serde_json::from_str(&server.cli(&["results", "--by", "region", "--json"])).unwrap();
    let area = |list: &[Value], name: &str| -> Value {
        list.iter()
            .find(|r| r["area"] == name)
            .unwrap_or_else(|| panic!("no area {name}: {list:?}"))
            .clone()
    };
    assert_eq!(area(&regions, "Алматы")["stations"], 2);
    assert_eq!(area(&regions, "Алматы")["figures"]["party_1"], 700);
    // Shares and turnout, not only sums, and "N of M stations".
    let almaty = area(&regions, "Алматы");
    assert_eq!(almaty["registered_stations"], 2);
    let share = almaty["shares"]["party_1"].as_f64().unwrap();
    assert!((share - 700.0 / 1385.0).abs() < 1e-12, "{almaty}");
    let turnout = almaty["turnout"].as_f64().unwrap();
    assert!((turnout - 1405.0 / 4000.0).abs() < 1e-12, "{almaty}");
    assert!(
        server
            .cli(&["results", "--by", "region"])
            .contains("2 stations of 2 reported")
    );
    assert_eq!(area(&regions, "Астана")["figures"]["party_1"], 100);

    // Version 2: the changes listed first with --dry-run, then imported.
    let v2 = file("v2.csv", V2);
    let dry = server.cli(&["stations", "import", &v2, "--dry-run"]);
    for line in [
        "registry version 2 would be 3 stations: 1 added, 1 changed, 1 removed",
        "  + KZ-0004",
        "  ~ KZ-0002: district",
        "  - KZ-0003 (its records are kept, flagged as not in the registry)",
        "nothing imported (--dry-run)",
    ] {
        assert!(dry.contains(line), "{line:?} in {dry}");
    }
    assert_eq!(
        serde_json::from_str::<Value>(&server.cli(&["stations", "versions", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let said = server.cli(&["stations", "import", &v2]);
    assert!(said.contains("registry version 2 is 3 stations"), "{said}");
    let versions: Value =
        serde_json::from_str(&server.cli(&["stations", "versions", "--json"])).unwrap();
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["removed"], 1);
    assert_ne!(versions[0]["digest"], versions[1]["digest"]);
    // Version 1 stays readable as it was.
    let old: Value =
        serde_json::from_str(&server.cli(&["stations", "list", "--version", "1", "--json"]))
            .unwrap();
    assert_eq!(old["stations"][2]["id"], "KZ-0003");

    let districts: Vec<Value> =
        serde_json::from_str(&server.cli(&["results", "--by", "district", "--json"])).unwrap();
    assert_eq!(area(&districts, "Алматы / Алмалы")["stations"], 1);
    assert_eq!(area(&districts, "Алматы / Медеу")["stations"], 1);
    // KZ-0003 left the registry: its protocol is kept, totalled apart.
    assert_eq!(area(&districts, "not in the registry")["stations"], 1);
    let by_station = server.cli(&["results", "--by", "station"]);
    assert!(
        by_station
            .lines()
            .any(|l| l.starts_with("KZ-0003") && l.ends_with("(not in the registry)")),
        "{by_station}"
    );
}
