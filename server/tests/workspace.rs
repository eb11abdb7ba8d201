//! The coordinator workspace attacked as a stranger, a neighbouring site
//! and a coordinator with too small a role would attack it: cookie flags,
//! session fixation, CSRF, brute force, every admin route tried by a
//! verifier, and HTML in every field an observer controls. Against a real
//! server process on loopback, through the real HTTP stack.

mod support;

use observer_core::sync::{SyncOptions, sync};
use support::web::{Browser, PASSWORD};
use support::*;

fn audit_actions(server: &Server) -> Vec<(String, String, String)> {
    server
        .cli(&["audit", "--json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["actor"].as_str().unwrap().to_string(),
                v["action"].as_str().unwrap().to_string(),
                v["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_session_cookie_is_host_only_script_proof_and_never_planted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.add_user("aigerim", "admin");
    let mut b = Browser::new(&server.url());
    // A neighbour planted a session id before the coordinator signed in.
    b.cookies.insert(
        "__Host-observer_session".into(),
        "planted-by-attacker".into(),
    );
    assert_eq!(b.get("/").status, 303, "a planted id is no session");
    let signed = b.login("aigerim", PASSWORD);
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location(), Some("/"));
    let session = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.name() == "__Host-observer_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.same_site(), Some(cookie::SameSite::Strict));
    assert_eq!(session.path(), Some("/"));
    assert_eq!(session.domain(), None, "host-only");
    assert_eq!(session.max_age().unwrap().whole_hours(), 12);
    assert_ne!(
        session.value(),
        "planted-by-attacker",
        "a new id at sign-in"
    );
    assert!(session.value().len() >= 43, "256 bits");
    assert_eq!(b.get("/").status, 200);

    // The database holds its digest, never the token.
    let stored: Vec<String> = server
        .db()
        .prepare("SELECT digest FROM sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(session.value()));
    let dump = std::fs::read(server.data.join("server.db")).unwrap();
    assert!(
        !dump
            .windows(session.value().len())
            .any(|w| w == session.value().as_bytes())
    );

    // Signing out ends it on the server: the old cookie, replayed, is nothing.
    let csrf = b.csrf();
    let old = b.cookies.clone();
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).status, 303);
    assert!(!b.cookies.contains_key("__Host-observer_session"));
    b.cookies = old;
    assert_eq!(b.get("/").status, 303);

    // A restart keeps sessions (they live in the database).
    let mut c = Browser::new(&server.url());
    assert_eq!(c.login("aigerim", PASSWORD).status, 303);
    let mut server = server;
    server.restart();
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn a_form_without_its_csrf_token_or_from_another_site_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let mut admin = server.signed_in("aigerim", "admin");
    let csrf = admin.csrf();
    let add = |b: &mut Browser, name: &str, csrf: Option<&str>| {
        let mut form = vec![("name", name), ("role", "admin"), ("password", PASSWORD)];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        b.post("/users", &form)
    };
    let refused = add(&mut admin, "mallory1", None);
    assert_eq!(refused.status, 400, "no token: not the page's form");
    assert_eq!(add(&mut admin, "mallory2", Some("guess")).status, 403);
    // Another session's token is no good either.
    let mut other = server.signed_in("bauyrzhan", "admin");
    let other_csrf = other.csrf();
    assert_eq!(add(&mut admin, "mallory3", Some(&other_csrf)).status, 403);
    // The right token, but the page that posts it is another site's.
    admin.origin = Some("https://evil.example".into());
    let cross = add(&mut admin, "mallory4", Some(&csrf));
    assert_eq!(cross.status, 403);
    assert!(cross.text.contains("another site"));
    admin.origin = Some(server.url());
    let accounts = server.cli(&["users", "list"]);
    assert!(!accounts.contains("mallory"), "{accounts}");
    assert_eq!(add(&mut admin, "dana", Some(&csrf)).status, 303);
    assert!(server.cli(&["users", "list"]).contains("dana"));

    // Sign-in has its own guard: a form whose nonce is not the cookie's
    // (another site signing the coordinator in to its own account).
    let mut b = Browser::new(&server.url());
    let forged = b.post(
        "/login",
        &[
            ("name", "aigerim"),
            ("password", PASSWORD),
            ("nonce", "forged"),
        ],
    );
    assert_eq!(forged.status, 403);
    assert!(!b.cookies.contains_key("__Host-observer_session"));
    b.get("/login");
    b.origin = Some("https://evil.example".into());
    let nonce = b.cookies["__Host-observer_login"].clone();
    let cross = b.post(
        "/login",
        &[
            ("name", "aigerim"),
            ("password", PASSWORD),
            ("nonce", &nonce),
        ],
    );
    assert_eq!(cross.status, 403);
}

#[test]
fn guessing_a_password_is_slowed_per_account_and_per_address_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    server.add_user("aigerim", "admin");
    let mut b = Browser::new(&server.url());
    // Wrong password and unknown account: the same answer.
    let wrong = b.login("aigerim", "not the password");
    let unknown = b.login("nobody", "not the password");
    assert_eq!((wrong.status, unknown.status), (401, 401));
    let problem = |a: &web::Answer| {
        a.text
            .split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(problem(&wrong), problem(&unknown));
    for _ in 0..4 {
        assert_eq!(b.login("aigerim", "not the password").status, 401);
    }
    // Five failures: now even the right password waits.
    let waiting = b.login("aigerim", PASSWORD);
    assert_eq!(waiting.status, 429, "{}", waiting.text);
    let secs: u64 = waiting.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    std::thread::sleep(std::time::Duration::from_secs(secs + 1));
    assert_eq!(b.login("aigerim", PASSWORD).status, 303);
    let failed = audit_actions(&server)
        .iter()
        .filter(|(_, a, _)| a == "account.login_failed")
        .count();
    assert_eq!(failed, 6, "each failed sign-in is in the audit log");
    // The address: ten sign-ins a minute, whatever the accounts.
    let mut spray = Browser::new(&server.url());
    let mut last = 0;
    for i in 0..4 {
        last = spray.login(&format!("spray{i}"), "not the password").status;
    }
    assert_eq!(last, 429, "the 11th sign-in from one address in a minute");
}

#[test]
fn a_verifier_is_refused_every_admin_route_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    let device = p.device_id().as_str().to_string();
    server.add_user("dana", "analyst");
    for role in ["verifier", "analyst", "supervisor"] {
        let mut b = server.signed_in(&format!("a-{role}"), role);
        let csrf = b.csrf();
        let revoke_at = format!("/devices/{device}/revoke");
        let gets = ["/audit", "/users", revoke_at.as_str()];
        for path in gets {
            let page = b.get(path);
            assert_eq!(page.status, 403, "{role} GET {path}");
            assert!(
                page.text.contains("This needs the role admin"),
                "{role} {path}: {}",
                page.text
            );
        }
        let c = [("csrf", csrf.as_str())];
        let add = [
            ("csrf", csrf.as_str()),
            ("name", "mallory"),
            ("role", "admin"),
            ("password", PASSWORD),
        ];
        let posts: [(&str, &[(&str, &str)]); 4] = [
            ("/users", &add),
            ("/users/dana/disable", &c),
            ("/users/dana/enable", &c),
            (&revoke_at, &c),
        ];
        for (path, form) in posts {
            let answer = b.post(path, form);
            assert_eq!(answer.status, 403, "{role} POST {path}");
        }
        // Every role reads the overview.
        assert_eq!(b.get("/").status, 200);
    }
    let devices = server.devices();
    assert!(devices[0]["revoked_at_ms"].is_null(), "not revoked");
    let accounts = server.cli(&["users", "list"]);
    assert!(!accounts.contains("mallory"));
    assert!(!accounts.contains("disabled"));

    // An admin may, after a confirmation that names the observer.
    let mut admin = server.signed_in("aigerim", "admin");
    let confirm = admin.get(&format!("/devices/{device}/revoke"));
    assert_eq!(confirm.status, 200);
    let csrf = admin.csrf();
    assert_eq!(
        admin
            .post(&format!("/devices/{device}/revoke"), &[("csrf", &csrf)])
            .status,
        303
    );
    assert!(!server.devices()[0]["revoked_at_ms"].is_null());
    // Disabling an account ends its sessions at once.
    let mut dana = Browser::new(&server.url());
    assert_eq!(dana.login("dana", PASSWORD).status, 303);
    assert_eq!(
        admin.post("/users/dana/disable", &[("csrf", &csrf)]).status,
        303
    );
    assert_eq!(dana.get("/").status, 303);
    assert_eq!(dana.login("dana", PASSWORD).status, 401);
    let actions = audit_actions(&server);
    for (actor, action, subject) in [
        ("account:aigerim", "device.revoked", device.as_str()),
        ("account:aigerim", "account.disabled", "dana"),
        ("account:aigerim", "account.login", "aigerim"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()) == (actor, action, subject)),
            "{actor} {action} {subject} in {actions:?}"
        );
    }
    assert!(server.cli(&["audit", "verify"]).contains("entries"));
}

#[test]
fn html_in_every_field_an_observer_controls_is_inert() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let attack = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'";
    let station = "S-<b>1</b>";
    let pdir = dir.path().join("phone");
    let code = server.cli(&["enroll", "--station", station, "--name", attack, "--text"]);
    let p = phone(&pdir);
    observer_core::sync::enroll(
        &p,
        &observer_core::protocol::EnrollmentCode::parse(code.trim()).unwrap(),
        Some(attack),
    )
    .unwrap();
    p.save(
        observer_core::record::NewRecord::builder(station, "incident", 1, "incident")
            .payload(serde_json::json!({ "note": attack, attack: attack }))
            .build()
            .unwrap(),
    )
    .unwrap();
    p.save(
        observer_core::record::NewRecord::builder(station, "opening", 1, "checklist")
            .payload(serde_json::json!({ "note": attack }))
            .build()
            .unwrap(),
    )
    .unwrap();
    sync(&p, &SyncOptions::default()).unwrap();
    // A registry that does not hold the observer's station: coverage
    // lists it as unregistered.
    let csv = dir.path().join("stations.csv");
    std::fs::write(
        &csv,
        "station,name,region,district,address,registered_voters\nS-2,School 2,North,Lake,Main St,100\n",
    )
    .unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let mut admin = server.signed_in("aigerim", "admin");
    let device = p.device_id().as_str().to_string();
    for path in [
        "/".to_string(),
        "/audit".to_string(),
        format!("/devices/{device}/revoke"),
        "/queue".to_string(),
        "/records/0".to_string(),
        "/coverage".to_string(),
    ] {
        let page = admin.get(&path);
        assert_eq!(page.status, 200, "{path}");
        for raw in ["<script>", "<img", "<b>1</b>"] {
            assert!(
                !page.text.contains(raw),
                "{path} holds {raw}: {}",
                page.text
            );
        }
        // Each page shows the observer's text, escaped: the name or note,
        // or at least the station.
        assert!(
            [
                "&#60;script&#62;",
                "&lt;script&gt;",
                "&#60;b&#62;1",
                "&lt;b&gt;1"
            ]
            .iter()
            .any(|escaped| page.text.contains(escaped)),
            "{path} shows the observer's text escaped: {}",
            page.text
        );
    }
    // The page forbids scripts whatever slips through.
    let csp = admin.get("/").headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

#[test]
fn a_supervisor_issues_a_code_in_the_browser_that_enrolls_a_phone_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let mut analyst = server.signed_in("dana", "analyst");
    assert_eq!(analyst.get("/codes").status, 403);
    let mut sup = server.signed_in("saule", "supervisor");
    let csrf = sup.csrf();
    let page = sup.post(
        "/codes",
        &[
            ("csrf", &csrf),
            ("stations", "KZ-1, KZ-2"),
            ("name", "Ерлан"),
            ("valid_hours", "12"),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("data:image/svg+xml;base64,"),
        "a QR code"
    );
    let text = page
        .text
        .split("<code id=\"code-text\">")
        .nth(1)
        .and_then(|t| t.split("</code>").next())
        .expect("the code's text")
        .replace("&#43;", "+")
        .replace("&#61;", "=")
        .replace("&#47;", "/");
    let code = observer_core::protocol::EnrollmentCode::parse(&text).unwrap();
    // The code a phone gets from the page pins this server and enrolls once.
    let p = phone(&dir.path().join("phone"));
    observer_core::sync::enroll(&p, &code, None).unwrap();
    let again = phone(&dir.path().join("phone2"));
    assert!(observer_core::sync::enroll(&again, &code, None).is_err());
    let devices = server.devices();
    assert_eq!(devices[0]["stations"], serde_json::json!(["KZ-1", "KZ-2"]));
    assert_eq!(devices[0]["name"], "Ерлан");
    // Audited as the supervisor, without the code.
    let audit = server.cli(&["audit", "--json"]);
    assert!(audit.contains("account:saule"));
    assert!(audit.contains("code.issued"));
    assert!(!audit.contains(&code.token));
}

/// The codes' texts on a page, unescaped, in order.
fn codes_on(page: &str, marker: &str) -> Vec<observer_core::protocol::EnrollmentCode> {
    page.split(marker)
        .skip(1)
        .filter_map(|t| t.split("</code>").next())
        .map(|t| {
            let text = t
                .replace("&#43;", "+")
                .replace("&#61;", "=")
                .replace("&#47;", "/");
            observer_core::protocol::EnrollmentCode::parse(&text).unwrap()
        })
        .collect()
}

#[test]
fn a_batch_of_observers_becomes_printable_cards_and_the_codes_are_listed_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let csv = dir.path().join("stations.csv");
    std::fs::write(
        &csv,
        "station,name,region,district,address,registered_voters\nS-1,A,North,Lake,x,1\nS-2,B,North,Lake,x,1\nS-3,C,South,Hill,x,1\n",
    )
    .unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    let mut sup = server.signed_in("saule", "supervisor");
    let csrf = sup.csrf();
    let batch = |b: &mut Browser, text: &str| {
        b.post(
            "/codes/batch",
            &[
                ("csrf", csrf.as_str()),
                ("observers", text),
                ("valid_hours", "48"),
            ],
        )
    };
    // A bad line refuses the whole batch, naming the line; nothing issued.
    let refused = batch(&mut sup, "name;stations\nАйгүл;S-1\nЕрлан;S-9\n;S-2\n");
    assert_eq!(refused.status, 400);
    for named in ["Line 3: Not in the station registry: S-9", "Line 4: a name"] {
        assert!(refused.text.contains(named), "{named}: {}", refused.text);
    }
    assert!(
        server
            .db()
            .query_row("SELECT count(*) FROM tokens", [], |r| r.get::<_, i64>(0))
            .unwrap()
            == 0
    );
    // Without the CSRF token: refused.
    let forged = sup.post(
        "/codes/batch",
        &[("csrf", "x"), ("observers", "A,S-1"), ("valid_hours", "1")],
    );
    assert_eq!(forged.status, 403);

    let cards = batch(
        &mut sup,
        "name,stations\nАйгүл <b>С.</b>,S-1\nЕрлан,S-2 S-3\n",
    );
    assert_eq!(cards.status, 200, "{}", cards.text);
    assert_eq!(cards.text.matches("class=\"card\"").count(), 2);
    assert!(!cards.text.contains("<b>С.</b>"), "names are text");
    let codes = codes_on(&cards.text, "<code class=\"code-text\">");
    assert_eq!(codes.len(), 2);
    // Each card enrolls its observer, once, at its stations.
    let p = phone(&dir.path().join("phone"));
    observer_core::sync::enroll(&p, &codes[1], None).unwrap();
    let devices = server.devices();
    assert_eq!(devices[0]["stations"], serde_json::json!(["S-2", "S-3"]));
    assert_eq!(devices[0]["name"], "Ерлан");
    // The list: one used (by that device), one not yet; never the codes.
    let listed = sup.get("/api/v1/codes");
    let list: serde_json::Value = serde_json::from_str(&listed.text).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let used: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["used_at_ms"].is_null())
        .collect();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["device"], devices[0]["id"]);
    for c in &codes {
        assert!(!listed.text.contains(&c.token) && !sup.get("/codes").text.contains(&c.token));
    }
    let page = sup.get("/codes");
    assert!(
        page.text.contains("not used yet") && page.text.contains(">used<"),
        "{}",
        page.text
    );
    let audit = server.cli(&["audit", "--json"]);
    assert_eq!(audit.matches("code.issued").count(), 2);

    // The observer is found by a part of the name, the id's start, a station.
    let id = devices[0]["id"].as_str().unwrap().to_string();
    for q in ["ерл", &id[..6], "S-3"] {
        let found: serde_json::Value = serde_json::from_str(
            &sup.get(&format!("/api/v1/observers?q={}", urlencode(q)))
                .text,
        )
        .unwrap();
        assert_eq!(found["total"], 1, "{q}");
        assert_eq!(found["observers"][0]["id"], id.as_str());
    }
    let none: serde_json::Value =
        serde_json::from_str(&sup.get("/api/v1/observers?q=nobody").text).unwrap();
    assert_eq!(none["total"], 0);
    assert!(
        sup.get("/observers?q=%D0%B5%D1%80%D0%BB")
            .text
            .contains(&id)
    );
    // An analyst may not issue codes.
    let mut ana = server.signed_in("ana", "analyst");
    let c = ana.csrf();
    assert_eq!(
        ana.post(
            "/codes/batch",
            &[
                ("csrf", c.as_str()),
                ("observers", "A,S-1"),
                ("valid_hours", "1")
            ]
        )
        .status,
        403
    );
    assert_eq!(ana.get("/api/v1/codes").status, 403);
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_string()
}

#[test]
fn every_page_speaks_kazakh_russian_or_english_as_its_reader_chooses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let mut b = server.signed_in("aigerim", "admin");
    let overview = b.get("/");
    assert!(overview.text.contains("<html lang=\"en\">"));
    assert!(overview.text.contains("Devices"));
    // The picker keeps the choice in a cookie and comes back to the page.
    let picked = b.get("/language?lang=kk&back=/users");
    assert_eq!((picked.status, picked.location()), (303, Some("/users")));
    let users = b.get("/users");
    assert!(users.text.contains("<html lang=\"kk\">"));
    assert!(users.text.contains("Есептік жазба қосу"), "{}", users.text);
    assert!(b.get("/").text.contains("Құрылғылар"));
    b.get("/language?lang=ru&back=/");
    assert!(b.get("/").text.contains("Устройства"));
    // Refusals speak the reader's language too, down to the line of a batch
    // and the rules of a password.
    let csrf = b.csrf();
    let batch = b.post(
        "/codes/batch",
        &[
            ("csrf", csrf.as_str()),
            ("observers", "Айгүл\n"),
            ("valid_hours", "24"),
        ],
    );
    assert_eq!(batch.status, 400);
    assert!(
        batch.text.contains("Строка 1: нет участка для Айгүл"),
        "{}",
        batch.text
    );
    let code = b.post(
        "/codes",
        &[
            ("csrf", csrf.as_str()),
            ("stations", ""),
            ("name", ""),
            ("valid_hours", "24"),
        ],
    );
    assert!(
        code.text.contains("Укажите хотя бы один участок."),
        "{}",
        code.text
    );
    b.get("/language?lang=kk&back=/");
    let short = b.post(
        "/users",
        &[
            ("csrf", csrf.as_str()),
            ("name", "dana"),
            ("role", "analyst"),
            ("password", "short"),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(
        short.text.contains("Құпиясөзде кемінде 12 таңба болады."),
        "{}",
        short.text
    );
    b.get("/language?lang=ru&back=/");
    // Never a redirect to another site; an unknown language is refused.
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let r = b.get(&format!("/language?lang=en&back={back}"));
        assert_eq!(r.location(), Some("/"), "{back}");
    }
    assert_eq!(b.get("/language?lang=fr").status, 400);
    // Before sign-in: the browser's language.
    let mut stranger = Browser::new(&server.url());
    stranger.cookies.clear();
    let login = stranger.get("/login");
    assert!(login.text.contains("Observer coordinator: sign in"));
    let ru = reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("{}/login", server.url()))
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.5")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(ru.contains("Координатор Observer: вход"), "{ru}");
}
