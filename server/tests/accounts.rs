//! Regional coordinators and second factors, as coordinators would use
//! and abuse them, against a real server process on loopback: an account
//! of one region sees and acts on that region's stations, devices,
//! records, codes and accounts only, and is refused everything else with
//! a 403 that names both regions; a TOTP second factor is needed once set,
//! is checked along with the password, is used once, and is set up in the
//! workspace only by proving the app holds the key.

mod support;

use observer_core::record::NewRecord;
use observer_core::store::Store;
use observer_core::sync::{SyncOptions, sync};
use serde_json::{Value, json};
use support::web::{Browser, PASSWORD};
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

fn report(p: &Store, station: &str) {
    p.save(
        NewRecord::builder(station, "incident", 1, "incident")
            .payload(json!({"type": "ballot_stuffing"}))
            .build()
            .unwrap(),
    )
    .unwrap();
    sync(p, &SyncOptions::default()).unwrap();
}

fn fails(server: &Server, args: &[&str]) -> String {
    let out = command(&server.data).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// The queue's (index, station) pairs.
fn queue(b: &mut Browser, query: &str) -> Vec<(u64, String)> {
    json_of(b, &format!("/api/v1/queue{query}"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["station"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_regional_coordinator_sees_and_acts_on_its_region_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    // Before a registry, a regional account would see nothing: refused.
    assert!(
        fails(
            &server,
            &[
                "users",
                "add",
                "nora",
                "--role",
                "coordinator",
                "--region",
                "North"
            ]
        )
        .contains("stations import")
    );
    let csv = dir.path().join("stations.csv");
    std::fs::write(&csv, STATIONS).unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    assert!(fails(&server, &["users", "add", "x", "--role", "coordinator"]).contains("--region"));
    assert!(
        fails(
            &server,
            &["users", "add", "x", "--role", "admin", "--region", "North"]
        )
        .contains("whole country")
    );
    assert!(
        fails(
            &server,
            &[
                "users",
                "add",
                "x",
                "--role",
                "coordinator",
                "--region",
                "Atlantis"
            ]
        )
        .contains("North, South")
    );

    let north = enrolled_phone(&dir.path().join("n"), &server, "S-1");
    let south = enrolled_phone(&dir.path().join("s"), &server, "S-3");
    report(&north, "S-1");
    report(&south, "S-3");
    let north_id = north.device_id().as_str().to_string();
    let south_id = south.device_id().as_str().to_string();

    server.add_user_with("nora", "coordinator", &["--region", "North"]);
    server.add_user("aigerim", "admin");
    let mut nora = Browser::new(&server.url());
    assert_eq!(nora.login("nora", PASSWORD).status, 303);
    let csrf = nora.csrf();

    // Her start page is her region's coverage; the national overview is not hers.
    assert_eq!(nora.get("/").location(), Some("/coverage"));
    assert_eq!(nora.get("/api/v1/overview").status, 403);
    let coverage = json_of(&mut nora, "/api/v1/coverage");
    assert_eq!(coverage["region"], "North");
    assert_eq!(
        coverage["areas"].as_array().unwrap().len(),
        2,
        "Lake and Hill"
    );
    let refused = nora.get("/coverage?region=South");
    assert_eq!(refused.status, 403);
    assert!(
        refused.text.contains("South") && refused.text.contains("North"),
        "{}",
        refused.text
    );

    // The queue holds her region's records only, whatever she asks.
    let hers = queue(&mut nora, "");
    assert_eq!(
        hers.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["S-1"]
    );
    assert_eq!(nora.get("/api/v1/queue?region=South").status, 403);
    assert!(queue(&mut nora, "?station=S-3").is_empty());
    let mut admin = Browser::new(&server.url());
    assert_eq!(admin.login("aigerim", PASSWORD).status, 303);
    let admin_csrf = admin.csrf();
    let all = queue(&mut admin, "");
    assert_eq!(all.len(), 2);
    let south_index = all.iter().find(|(_, s)| s == "S-3").unwrap().0;
    let north_index = all.iter().find(|(_, s)| s == "S-1").unwrap().0;
    let path = format!("/records/{south_index}");
    assert_eq!(nora.get(&path).status, 403);
    assert_eq!(nora.get(&format!("/api/v1{path}")).status, 403);
    for action in ["claim", "release"] {
        assert_eq!(
            nora.post(&format!("{path}/{action}"), &[("csrf", &csrf)])
                .status,
            403
        );
    }
    let decide = [
        ("csrf", csrf.as_str()),
        ("verdict", "rejected"),
        ("note", "not ours"),
    ];
    assert_eq!(nora.post(&format!("{path}/review"), &decide).status, 403);
    assert_eq!(
        json_of(&mut admin, &format!("/api/v1{path}"))["review"],
        "unreviewed"
    );
    // Her own region's record she reviews.
    let confirm = [
        ("csrf", csrf.as_str()),
        ("verdict", "confirmed"),
        ("note", ""),
    ];
    assert_eq!(
        nora.post(&format!("/records/{north_index}/review"), &confirm)
            .status,
        303
    );

    // Observers and revocation: her region's devices only.
    let found = json_of(&mut nora, "/api/v1/observers");
    let ids: Vec<&str> = found["observers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [north_id.as_str()]);
    assert_eq!(nora.get(&format!("/devices/{south_id}/revoke")).status, 403);
    assert_eq!(
        nora.post(&format!("/devices/{south_id}/revoke"), &[("csrf", &csrf)])
            .status,
        403
    );
    assert_eq!(
        nora.post(&format!("/devices/{north_id}/revoke"), &[("csrf", &csrf)])
            .status,
        303
    );
    let devices = server.devices();
    let revoked = |id: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()["revoked_at_ms"]
            .is_number()
    };
    assert!(revoked(&north_id) && !revoked(&south_id));

    // Enrollment codes for her stations only, and only hers listed.
    let issue = |b: &mut Browser, csrf: &str, stations: &str| {
        b.post(
            "/codes",
            &[
                ("csrf", csrf),
                ("stations", stations),
                ("name", "Ayan"),
                ("valid_hours", "24"),
            ],
        )
        .status
    };
    assert_eq!(issue(&mut nora, &csrf, "S-2 S-3"), 403);
    assert_eq!(issue(&mut nora, &csrf, "S-2"), 200);
    assert_eq!(issue(&mut admin, &admin_csrf, "S-3"), 200);
    let batch = [
        ("csrf", csrf.as_str()),
        ("observers", "Dana,S-3"),
        ("valid_hours", "24"),
    ];
    assert_eq!(nora.post("/codes/batch", &batch).status, 403);
    let codes = json_of(&mut nora, "/api/v1/codes");
    let mut stations: Vec<String> = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["stations"].to_string())
        .collect();
    stations.sort();
    assert_eq!(
        stations,
        ["[\"S-1\"]", "[\"S-2\"]"],
        "the North's codes, not the South's"
    );

    // Accounts: she adds her region's, never an admin or another region's.
    let add = |b: &mut Browser, csrf: &str, name: &str, role: &str, region: &str| {
        b.post(
            "/users",
            &[
                ("csrf", csrf),
                ("name", name),
                ("role", role),
                ("region", region),
                ("password", PASSWORD),
            ],
        )
        .status
    };
    assert_eq!(add(&mut nora, &csrf, "mallory", "admin", ""), 400);
    assert_eq!(add(&mut nora, &csrf, "sam", "verifier", "South"), 400);
    assert_eq!(add(&mut nora, &csrf, "vlad", "verifier", ""), 303);
    let users = json_of(&mut nora, "/api/v1/users");
    let mut seen: Vec<(String, Value)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_string(), u["region"].clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("nora".into(), json!("North")),
            ("vlad".into(), json!("North"))
        ]
    );
    assert_eq!(
        nora.post("/users/aigerim/disable", &[("csrf", &csrf)])
            .status,
        404
    );
    // The admin adds a coordinator of the South; a region outside the registry is refused.
    assert_eq!(
        add(&mut admin, &admin_csrf, "saule", "coordinator", "South"),
        303
    );
    assert_eq!(add(&mut admin, &admin_csrf, "sam", "coordinator", ""), 400);
    assert_eq!(
        add(&mut admin, &admin_csrf, "sam", "verifier", "Atlantis"),
        400
    );

    // What concerns the whole country is the national admins'.
    assert_eq!(nora.get("/audit").status, 403);
    let plan = [
        ("csrf", csrf.as_str()),
        ("time_zone", "UTC"),
        ("silent_after_minutes", "30"),
    ];
    assert_eq!(nora.post("/coverage/plan", &plan).status, 403);

    // A verifier of the North sees the North's queue only.
    let mut vlad = Browser::new(&server.url());
    assert_eq!(vlad.login("vlad", PASSWORD).status, 303);
    // (Nora confirmed its one report: it left the open queue.)
    assert!(queue(&mut vlad, "").is_empty());
    assert_eq!(queue(&mut vlad, "?state=confirmed").len(), 1);
    assert_eq!(vlad.get(&format!("/records/{south_index}")).status, 403);

    let regions: Vec<Value> = server
        .cli(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "account.added")
        .map(|e| {
            serde_json::from_str::<Value>(e["detail"].as_str().unwrap()).unwrap()["region"].clone()
        })
        .collect();
    assert!(
        regions.contains(&json!("North")),
        "the account's region is audited: {regions:?}"
    );
    assert!(server.cli(&["audit", "verify"]).contains("entries"));
}

/// When the test began, in seconds: every code is computed from this one
/// moment, so that "the same code again" stays the same code even when the
/// clock passes a 30-second step during the test.
fn started() -> u64 {
    static AT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    })
}

/// The code an authenticator app shows for `key` (base32) at the test's
/// start, or `steps` steps after it.
fn app_code(key: &str, steps: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key).unwrap();
    let totp = totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .unwrap();
    totp.generate(started() + 30 * steps).to_string()
}

fn shown_key(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("key (shown once): "))
        .expect("the key is printed")
        .to_string()
}

#[test]
fn a_second_factor_is_needed_once_set_and_each_code_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.add_user("aigerim", "admin");
    let out = server.cli(&["users", "totp", "aigerim"]);
    assert!(out.contains("otpauth://totp/"), "{out}");
    let key = shown_key(&out);
    // The key is not stored as it was shown.
    let stored: Vec<u8> = server
        .db()
        .query_row(
            "SELECT totp_sealed FROM accounts WHERE name = 'aigerim'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let decoded = totp_rs::Secret::try_from_base32(&key).unwrap();
    assert!(
        !stored
            .windows(decoded.as_bytes().len())
            .any(|w| w == decoded.as_bytes())
    );

    let mut b = Browser::new(&server.url());
    assert_eq!(
        b.login("aigerim", PASSWORD).status,
        401,
        "a password alone no longer does"
    );
    assert_eq!(b.login_with_code("aigerim", PASSWORD, "000000").status, 401);
    let code = app_code(&key, 0);
    let wrong_password = b.login_with_code("aigerim", "not the password at all", &code);
    assert_eq!(wrong_password.status, 401);
    assert_eq!(b.login_with_code("aigerim", PASSWORD, &code).status, 303);
    assert_eq!(b.get("/account").status, 200);
    // The same code again, from another browser: a replay.
    let mut thief = Browser::new(&server.url());
    assert_eq!(
        thief.login_with_code("aigerim", PASSWORD, &code).status,
        401
    );

    // An operator removes one for a coordinator who lost the phone.
    server.add_user("dana", "analyst");
    server.cli(&["users", "totp", "dana"]);
    assert_eq!(
        Browser::new(&server.url()).login("dana", PASSWORD).status,
        401
    );
    server.cli(&["users", "totp", "dana", "--remove"]);
    assert_eq!(
        Browser::new(&server.url()).login("dana", PASSWORD).status,
        303
    );

    let actions = server.cli(&["audit", "--json"]);
    for a in [
        "account.totp_set",
        "account.totp_removed",
        "account.login_failed",
    ] {
        assert!(actions.contains(a), "{a}");
    }
    let list = server.cli(&["users", "list"]);
    let line = list.lines().find(|l| l.starts_with("aigerim")).unwrap();
    assert!(line.contains("yes"), "{line}");
}

#[test]
fn a_coordinator_sets_up_a_second_factor_only_by_proving_the_app_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.add_user("vera", "verifier");
    let mut vera = Browser::new(&server.url());
    assert_eq!(vera.login("vera", PASSWORD).status, 303);
    let csrf = vera.csrf();
    let setup = vera.post("/account/totp", &[("csrf", &csrf)]);
    assert_eq!(setup.status, 200);
    assert!(
        setup.text.contains("data:image/svg+xml;base64,"),
        "a QR code"
    );
    let vkey = setup
        .text
        .split("<code id=\"totp-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let sealed = setup.field("sealed").unwrap();
    let confirm = |b: &mut Browser, csrf: &str, sealed: &str, code: &str| {
        b.post(
            "/account/totp/confirm",
            &[("csrf", csrf), ("sealed", sealed), ("code", code)],
        )
        .status
    };
    assert_eq!(confirm(&mut vera, &csrf, &sealed, "123456"), 400);
    assert!(
        !vera.get("/account").text.contains("/account/totp/remove"),
        "not set by a wrong code"
    );
    // Another account cannot confirm Vera's key as its own.
    server.add_user("dana", "analyst");
    let mut dana = Browser::new(&server.url());
    assert_eq!(dana.login("dana", PASSWORD).status, 303);
    let dana_csrf = dana.csrf();
    assert_eq!(
        confirm(&mut dana, &dana_csrf, &sealed, &app_code(&vkey, 0)),
        403
    );
    let mut tampered = sealed.clone().into_bytes();
    tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        confirm(&mut vera, &csrf, &tampered, &app_code(&vkey, 0)),
        403
    );
    assert_eq!(
        confirm(&mut vera, "forged", &sealed, &app_code(&vkey, 0)),
        403
    );
    assert_eq!(confirm(&mut vera, &csrf, &sealed, &app_code(&vkey, 0)), 303);
    assert!(vera.get("/account").text.contains("/account/totp/remove"));
    let mut again = Browser::new(&server.url());
    assert_eq!(again.login("vera", PASSWORD).status, 401);
    // The confirming code is spent.
    assert_eq!(
        again
            .login_with_code("vera", PASSWORD, &app_code(&vkey, 0))
            .status,
        401
    );
    // Removing it needs a current code and the session's CSRF token.
    let remove = |b: &mut Browser, csrf: &str, code: &str| {
        b.post("/account/totp/remove", &[("csrf", csrf), ("code", code)])
            .status
    };
    assert_eq!(
        remove(&mut vera, &csrf, &app_code(&vkey, 0)),
        400,
        "a spent code"
    );
    assert_eq!(remove(&mut vera, &csrf, "forged"), 400);
    assert_eq!(remove(&mut vera, "forged csrf", &app_code(&vkey, 1)), 403);
    assert_eq!(remove(&mut vera, &csrf, &app_code(&vkey, 1)), 303);
    assert_eq!(
        Browser::new(&server.url()).login("vera", PASSWORD).status,
        303
    );

    let actions = server.cli(&["audit", "--json"]);
    assert_eq!(actions.matches("account.totp_set").count(), 1);
    assert_eq!(actions.matches("account.totp_removed").count(), 1);
}
