//! `/openapi.json` is the truth: every answer each operation gives is
//! documented there, with its content type and body shape. This drives
//! every documented status of every operation against a real server and
//! checks each answer against the document; `tests/api/schemathesis.sh`
//! then fuzzes the live server from the same document.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use observer_core::identity::SigningKey;
use observer_core::protocol::{
    Batch, EnrollRequest, HEARTBEAT_DOMAIN, Heartbeat, Signed, SyncRequest, WireRecord,
};
use observer_core::record::{NewRecord, Sha256Digest};
use observer_core::seal::SealedRecord;
use observer_core::store::{Query, Store};
use observer_core::sync::{SyncOptions, sync};
use reqwest::blocking::Client;
use support::witness::{WitnessProcess, witness_cli};
use support::*;

struct Probe<'a> {
    client: Client,
    server: &'a Server,
    spec: serde_json::Value,
    driven: BTreeSet<(String, String, u16)>,
}

impl Probe<'_> {
    /// Sends a request and checks its answer against the operation's
    /// documented responses: the status, then the content type and, for
    /// JSON refusals, the error body.
    fn send(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        want: u16,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.server.url());
        let mut req = self.client.request(method.parse().unwrap(), url).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().unwrap();
        let op = &self.spec["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is documented");
        let doc = &op["responses"][status.to_string()];
        assert!(
            doc.is_object(),
            "{method} {template} answered {status}, which the document does not list: {}",
            String::from_utf8_lossy(&bytes)
        );
        let doc = match doc["$ref"].as_str() {
            Some(r) => &self.spec["components"]["responses"][r.rsplit('/').next().unwrap()],
            None => doc,
        };
        let documented_types: Vec<&String> = doc["content"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if documented_types.is_empty() {
            assert!(
                bytes.is_empty(),
                "{method} {template} {status}: documented without a body"
            );
        } else {
            assert!(
                documented_types.iter().any(|t| ct.starts_with(t.as_str())),
                "{method} {template} {status}: content type {ct:?}, documented {documented_types:?}"
            );
        }
        assert_eq!(
            status,
            want,
            "{method} {path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        self.driven
            .insert((method.to_lowercase(), template.to_string(), status));
        if ct.starts_with("application/json") {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if status >= 400 && template != "/healthz" {
                assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
            }
            v
        } else {
            serde_json::Value::Null
        }
    }

    /// A request whose body stalls after its headers: 408 once the grace is spent.
    fn slow(&mut self, method: &str, template: &str, path: &str, headers: &[(&str, &str)]) {
        use std::io::{Read as _, Write as _};
        let tcp = std::net::TcpStream::connect(("127.0.0.1", self.server.port)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(any_cert_client(), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).unwrap();
        tls.write_all(b"{").unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{method} {path}: {text}");
        let op = &self.spec["paths"][template][method.to_lowercase()];
        assert!(
            op["responses"]["408"].is_object(),
            "408 documented for {method} {template}"
        );
        self.driven
            .insert((method.to_lowercase(), template.to_string(), 408));
    }
}

/// `/v1/log/*`: the checkpoint and both proofs, for the device `me`
/// speaks for (the revoked one's heartbeat is `them`).
fn log_proofs(t: &mut Probe<'_>, me: &[(&str, &str)], them: &str, many: &[(&str, &str)]) {
    let revoked = [("observer-heartbeat", them)];
    let c = "/v1/log/checkpoint";
    let i = "/v1/log/inclusion";
    let k = "/v1/log/consistency";
    let size = t.server.record_count().0;
    assert!(size >= 2, "the phones' records are in the log");
    for (template, ok) in [
        (c, c.to_string()),
        (i, format!("{i}?index=0&size={size}")),
        (k, format!("{k}?from=1&to={size}")),
    ] {
        t.send("GET", template, &ok, me, vec![], 200);
        t.send("GET", template, &ok, &[], vec![], 401);
        t.send("GET", template, &ok, &revoked, vec![], 403);
        t.send("GET", template, &ok, many, vec![], 431);
    }
    for bad in ["?index=0", "?index=x&size=1", "?index=3&size=2"] {
        t.send("GET", i, &format!("{i}{bad}"), me, vec![], 400);
    }
    for bad in ["?from=1", "?from=-1&to=2", "?from=0&to=2", "?from=3&to=2"] {
        t.send("GET", k, &format!("{k}{bad}"), me, vec![], 400);
    }
    // Witnessed: none before a witness cosigns, then the checkpoint
    // with its cosignature.
    let w = "/v1/log/witnessed";
    t.send("GET", w, w, me, vec![], 404);
    t.send("GET", w, w, &[], vec![], 401);
    t.send("GET", w, w, &revoked, vec![], 403);
    t.send("GET", w, w, many, vec![], 431);
    let wdata = t.server.data.with_file_name("witness");
    let made = witness_cli(&wdata, &["init", "--name", "witness.example/openapi"]);
    let vkey = made
        .lines()
        .find_map(|l| l.strip_prefix("witness key  "))
        .unwrap()
        .to_owned();
    let log_key = t.server.coordinator_key().to_string();
    witness_cli(&wdata, &["follow", "--log-key", &log_key]);
    let witness = WitnessProcess::start(&wdata);
    let url = format!("http://{}", witness.addr);
    t.server
        .cli(&["witnesses", "add", "--key", &vkey, "--url", &url]);
    wait_until("a witnessed checkpoint", Duration::from_secs(30), || {
        let mut asked = t.client.get(format!("{}{w}", t.server.url()));
        for (k, v) in me {
            asked = asked.header(*k, *v);
        }
        asked.send().unwrap().status() == 200
    });
    t.send("GET", w, w, me, vec![], 200);
    let beyond = size + 1;
    t.send(
        "GET",
        i,
        &format!("{i}?index=0&size={beyond}"),
        me,
        vec![],
        404,
    );
    t.send(
        "GET",
        k,
        &format!("{k}?from=1&to={beyond}"),
        me,
        vec![],
        404,
    );
}

fn cookies(b: &web::Browser) -> String {
    b.cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(fields).unwrap().into_bytes()
}

/// Every answer of the workspace's operations, signed in (as an admin, as
/// an analyst) and not. `revocable` is an enrolled device.
fn workspace(t: &mut Probe<'_>, many: &[(&str, &str)], revocable: &str) {
    const F: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    let server = t.server;
    let origin = server.url();
    let mut admin = server.signed_in("admin", "admin");
    let mut analyst = server.signed_in("analyst", "analyst");
    let csrf = admin.csrf();
    let analyst_csrf = analyst.csrf();
    let (ac, nc) = (cookies(&admin), cookies(&analyst));
    let a = [("cookie", ac.as_str()), F, ("origin", origin.as_str())];
    let n = [("cookie", nc.as_str()), F, ("origin", origin.as_str())];

    for path in [
        "/",
        "/api/v1/overview",
        "/audit",
        "/users",
        "/api/v1/audit",
        "/api/v1/users",
        "/sms",
        "/api/v1/sms",
    ] {
        t.send("GET", path, path, &[], vec![], 303);
        t.send("GET", path, path, &a[..1], vec![], 200);
    }
    // The SMS reports are national supervisors' and admins'.
    for path in ["/sms", "/api/v1/sms"] {
        t.send("GET", path, path, &n[..1], vec![], 403);
        t.send("GET", path, path, many, vec![], 431);
    }
    for (method, template, path) in [
        ("GET", "/api/v1/overview", "/api/v1/overview"),
        ("GET", "/api/v1/audit", "/api/v1/audit"),
        ("GET", "/api/v1/users", "/api/v1/users"),
        ("GET", "/audit", "/audit"),
        ("GET", "/login", "/login"),
        ("POST", "/login", "/login"),
        ("POST", "/logout", "/logout"),
        ("GET", "/users", "/users"),
        ("POST", "/users", "/users"),
        ("POST", "/users/{name}/{change}", "/users/a/disable"),
        ("GET", "/devices/{id}/revoke", "/devices/a/revoke"),
        ("POST", "/devices/{id}/revoke", "/devices/a/revoke"),
    ] {
        t.send(method, template, path, many, vec![], 431);
    }
    t.send("GET", "/audit", "/audit?before=x", &a[..1], vec![], 400);
    t.send("GET", "/audit", "/audit", &n[..1], vec![], 403);
    t.send("GET", "/users", "/users", &n[..1], vec![], 403);
    let audit = t.send(
        "GET",
        "/api/v1/audit",
        "/api/v1/audit?before=3",
        &a[..1],
        vec![],
        200,
    );
    assert_eq!(audit[0]["seq"], 2, "newest first, before 3");
    t.send(
        "GET",
        "/api/v1/audit",
        "/api/v1/audit?before=x",
        &a[..1],
        vec![],
        400,
    );
    t.send(
        "GET",
        "/api/v1/audit",
        "/api/v1/audit",
        &n[..1],
        vec![],
        403,
    );
    let users = t.send(
        "GET",
        "/api/v1/users",
        "/api/v1/users",
        &a[..1],
        vec![],
        200,
    );
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("password_hash").is_none())
    );
    t.send(
        "GET",
        "/api/v1/users",
        "/api/v1/users",
        &n[..1],
        vec![],
        403,
    );

    // Sign-in: the form, then each answer to it.
    t.send("GET", "/login", "/login", &[], vec![], 200);
    t.send("GET", "/login", "/login", &a[..1], vec![], 303);
    let mut b = web::Browser::new(&origin);
    let nonce = b.get("/login").field("nonce").unwrap();
    let lc = format!("__Host-observer_login={nonce}");
    let l = [("cookie", lc.as_str()), F];
    let login = |name: &str, password: &str| {
        form(&[("name", name), ("password", password), ("nonce", &nonce)])
    };
    t.send(
        "POST",
        "/login",
        "/login",
        &l,
        login("admin", "wrong password!"),
        401,
    );
    t.send(
        "POST",
        "/login",
        "/login",
        &l,
        form(&[("name", "admin")]),
        400,
    );
    t.send(
        "POST",
        "/login",
        "/login",
        &[F],
        login("admin", web::PASSWORD),
        403,
    );
    t.send("POST", "/login", "/login", &l, vec![b'a'; 20 * 1024], 413);
    t.send(
        "POST",
        "/login",
        "/login",
        &l,
        login("admin", web::PASSWORD),
        303,
    );

    // Accounts.
    let new_user = |name: &str, password: &str, c: &str| {
        form(&[
            ("csrf", c),
            ("name", name),
            ("role", "verifier"),
            ("password", password),
        ])
    };
    t.send(
        "POST",
        "/users",
        "/users",
        &[F],
        new_user("v", web::PASSWORD, &csrf),
        303,
    );
    t.send(
        "POST",
        "/users",
        "/users",
        &a,
        new_user("v", web::PASSWORD, &csrf),
        303,
    );
    t.send(
        "POST",
        "/users",
        "/users",
        &a,
        new_user("w", "short", &csrf),
        400,
    );
    t.send("POST", "/users", "/users", &a, vec![b'a'; 20 * 1024], 413);
    t.send(
        "POST",
        "/users",
        "/users",
        &n,
        new_user("x", web::PASSWORD, &analyst_csrf),
        403,
    );
    let change = "/users/{name}/{change}";
    let c = form(&[("csrf", &csrf)]);
    t.send("POST", change, "/users/v/disable", &a, c.clone(), 303);
    t.send(
        "POST",
        change,
        "/users/v/enable",
        &n,
        form(&[("csrf", &analyst_csrf)]),
        403,
    );
    t.send("POST", change, "/users/ghost/enable", &a, c.clone(), 404);

    // Revoking a device.
    let rv = "/devices/{id}/revoke";
    let at = format!("/devices/{revocable}/revoke");
    t.send("GET", rv, &at, &[], vec![], 303);
    t.send("GET", rv, &at, &a[..1], vec![], 200);
    t.send("GET", rv, &at, &n[..1], vec![], 403);
    t.send("GET", rv, "/devices/no-such/revoke", &a[..1], vec![], 404);
    t.send("POST", rv, &at, &n, form(&[("csrf", &analyst_csrf)]), 403);
    t.send("POST", rv, "/devices/no-such/revoke", &a, c.clone(), 404);
    t.send("POST", rv, &at, &a, c.clone(), 303);

    // Enrollment codes.
    t.send("GET", "/codes", "/codes", &[], vec![], 303);
    t.send("GET", "/codes", "/codes", &a[..1], vec![], 200);
    t.send("GET", "/codes", "/codes", &n[..1], vec![], 403);
    t.send("GET", "/codes", "/codes", many, vec![], 431);
    let issue = |c: &str, stations: &str| {
        form(&[
            ("csrf", c),
            ("stations", stations),
            ("name", "Dana"),
            ("valid_hours", "72"),
        ])
    };
    t.send("POST", "/codes", "/codes", &[F], issue(&csrf, "S-1"), 303);
    t.send("POST", "/codes", "/codes", &a, issue(&csrf, "S-1 S-2"), 200);
    t.send("POST", "/codes", "/codes", &a, issue(&csrf, ", ,"), 400);
    t.send("POST", "/codes", "/codes", &a, vec![b'a'; 20 * 1024], 413);
    t.send(
        "POST",
        "/codes",
        "/codes",
        &n,
        issue(&analyst_csrf, "S-1"),
        403,
    );
    t.send("POST", "/codes", "/codes", many, vec![], 431);

    // The language picker.
    let l = "/language";
    t.send("GET", l, "/language?lang=kk&back=/audit", &[], vec![], 303);
    t.send("GET", l, "/language?lang=xx", &[], vec![], 400);
    t.send("GET", l, "/language?lang=kk", many, vec![], 431);

    // Signing out: without the CSRF token refused, with it done.
    t.send(
        "POST",
        "/logout",
        "/logout",
        &a,
        form(&[("csrf", "guess")]),
        403,
    );
    t.send("POST", "/logout", "/logout", &a, c, 303);
    t.send("GET", "/", "/", &a[..1], vec![], 303);
}

/// Every answer of the review queue, the record view, the verifier's
/// actions and coverage. Record 0 exists by now.
fn review_and_coverage(t: &mut Probe<'_>, many: &[(&str, &str)]) {
    const F: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    let server = t.server;
    let origin = server.url();
    let mut vera = server.signed_in("vera", "verifier");
    let mut victor = server.signed_in("victor", "verifier");
    let mut sam = server.signed_in("sam", "supervisor");
    let (vc, xc, sc) = (vera.csrf(), victor.csrf(), sam.csrf());
    let (vk, xk, sk) = (cookies(&vera), cookies(&victor), cookies(&sam));
    let v = [("cookie", vk.as_str()), F, ("origin", origin.as_str())];
    let x = [("cookie", xk.as_str()), F, ("origin", origin.as_str())];
    let s = [("cookie", sk.as_str()), F, ("origin", origin.as_str())];
    let long = format!("region={}", "x".repeat(301));
    let (long_page, long_json) = (
        format!("/coverage?{long}"),
        format!("/api/v1/coverage?{long}"),
    );
    for (template, good, bad) in [
        (
            "/queue",
            "/queue?state=unreviewed&phase=voting",
            "/queue?state=maybe",
        ),
        (
            "/api/v1/queue",
            "/api/v1/queue?category=ballot_stuffing",
            "/api/v1/queue?after=x",
        ),
        ("/coverage", "/coverage?region=North", long_page.as_str()),
        ("/api/v1/coverage", "/api/v1/coverage", long_json.as_str()),
    ] {
        t.send("GET", template, good, &[], vec![], 303);
        t.send("GET", template, good, &v[..1], vec![], 200);
        t.send("GET", template, bad, &v[..1], vec![], 400);
        t.send("GET", template, good, many, vec![], 431);
    }
    let page = t.send(
        "GET",
        "/api/v1/queue",
        "/api/v1/queue?state=unreviewed",
        &v[..1],
        vec![],
        200,
    );
    assert!(page["items"].is_array(), "{page}");
    for template in ["/records/{index}", "/api/v1/records/{index}"] {
        let at = template.replace("{index}", "0");
        t.send("GET", template, &at, &[], vec![], 303);
        t.send("GET", template, &at, &v[..1], vec![], 200);
        t.send(
            "GET",
            template,
            &template.replace("{index}", "999999"),
            &v[..1],
            vec![],
            404,
        );
        t.send(
            "GET",
            template,
            &template.replace("{index}", "x"),
            &v[..1],
            vec![],
            404,
        );
        t.send("GET", template, &at, many, vec![], 431);
    }
    let c = |csrf: &str| form(&[("csrf", csrf)]);
    let claim = "/records/{index}/claim";
    t.send("POST", claim, "/records/0/claim", &s, c(&sc), 403);
    t.send("POST", claim, "/records/999999/claim", &v, c(&vc), 404);
    t.send("POST", claim, "/records/0/claim", &v, c(&vc), 303);
    t.send("POST", claim, "/records/0/claim", &x, c(&xc), 409);
    t.send("POST", claim, "/records/0/claim", many, vec![], 431);
    let review = "/records/{index}/review";
    let decide =
        |csrf: &str, verdict: &str| form(&[("csrf", csrf), ("verdict", verdict), ("note", "seen")]);
    t.send(
        "POST",
        review,
        "/records/0/review",
        &x,
        decide(&xc, "confirmed"),
        409,
    );
    t.send(
        "POST",
        review,
        "/records/0/review",
        &v,
        decide(&vc, "maybe"),
        400,
    );
    t.send(
        "POST",
        review,
        "/records/0/review",
        &v,
        vec![b'a'; 20 * 1024],
        413,
    );
    t.send(
        "POST",
        review,
        "/records/0/review",
        &s,
        decide(&sc, "confirmed"),
        403,
    );
    t.send(
        "POST",
        review,
        "/records/999999/review",
        &v,
        decide(&vc, "confirmed"),
        404,
    );
    t.send("POST", review, "/records/0/review", many, vec![], 431);
    let release = "/records/{index}/release";
    t.send("POST", release, "/records/0/release", &s, c(&sc), 403);
    t.send("POST", release, "/records/0/release", &v, c(&vc), 303);
    t.send("POST", release, "/records/0/release", many, vec![], 431);
    t.send(
        "POST",
        review,
        "/records/0/review",
        &v,
        decide(&vc, "confirmed"),
        303,
    );
    let plan = "/coverage/plan";
    let set = |csrf: &str, minutes: &str| {
        form(&[
            ("csrf", csrf),
            ("opening", "2026-12-06T08:00"),
            ("silent_after_minutes", minutes),
        ])
    };
    t.send("POST", plan, plan, &v, set(&vc, "30"), 403);
    t.send("POST", plan, plan, &s, set(&sc, "0"), 400);
    t.send("POST", plan, plan, &s, vec![b'a'; 20 * 1024], 413);
    t.send("POST", plan, plan, &s, set(&sc, "30"), 303);
    t.send("POST", plan, plan, many, vec![], 431);
    // Codes in batches, the list of codes, finding observers.
    let mut a = server.signed_in("batch-admin", "admin");
    let ac = a.csrf();
    let ak = cookies(&a);
    let ad = [("cookie", ak.as_str()), F, ("origin", origin.as_str())];
    let b = "/codes/batch";
    let list = |c: &str, observers: &str| {
        form(&[("csrf", c), ("observers", observers), ("valid_hours", "24")])
    };
    t.send("POST", b, b, &[F], list(&ac, "A,S-1"), 303);
    t.send("POST", b, b, &ad, list(&ac, "A,S-1\nB,S-2"), 200);
    t.send("POST", b, b, &ad, list(&ac, "A"), 400);
    t.send("POST", b, b, &v, list(&vc, "A,S-1"), 403);
    t.send("POST", b, b, &ad, vec![b'a'; 300 * 1024], 413);
    t.send("POST", b, b, many, vec![], 431);
    let c = "/api/v1/codes";
    t.send("GET", c, c, &[], vec![], 303);
    let codes = t.send("GET", c, c, &ad[..1], vec![], 200);
    assert!(codes.as_array().unwrap().len() >= 2);
    t.send("GET", c, c, &v[..1], vec![], 403);
    t.send("GET", c, c, many, vec![], 431);
    let long_q = format!("?q={}", "x".repeat(201));
    for o in ["/observers", "/api/v1/observers"] {
        t.send("GET", o, &format!("{o}?q=S-1"), &[], vec![], 303);
        t.send("GET", o, &format!("{o}?q=S-1"), &v[..1], vec![], 200);
        t.send("GET", o, &format!("{o}{long_q}"), &v[..1], vec![], 400);
        t.send("GET", o, o, many, vec![], 431);
    }
    // Forms: the list, and publishing one.
    for f in ["/forms", "/api/v1/forms"] {
        t.send("GET", f, f, &[], vec![], 303);
        t.send("GET", f, f, &v[..1], vec![], 200);
        t.send("GET", f, f, many, vec![], 431);
    }
    let f = "/forms";
    let definition = |c: &str, d: &str| form(&[("csrf", c), ("definition", d)]);
    let mut v2: serde_json::Value =
        serde_json::from_str(include_str!("../../core/forms/incident.json")).unwrap();
    v2["version"] = serde_json::json!(99);
    let v2 = v2.to_string();
    t.send("POST", f, f, &[F], definition(&ac, &v2), 303);
    t.send("POST", f, f, &v, definition(&vc, &v2), 403);
    t.send("POST", f, f, &ad, definition(&ac, "{"), 400);
    t.send("POST", f, f, &ad, vec![b'a'; 2 * 1024 * 1024], 413);
    t.send("POST", f, f, &[F], vec![b'a'; 2 * 1024 * 1024], 303);
    t.send("POST", f, f, many, vec![], 431);
    t.slow("POST", f, f, &ad);
    t.send("POST", f, f, &ad, definition(&ac, &v2), 303);
    let js = "/static/live.js";
    t.send("GET", js, js, &[], vec![], 200);
    t.send("GET", js, js, many, vec![], 431);
}

/// Every answer of an account of one region, the account page and its
/// second factor, and an evidence file. `evidence` is a complete file a
/// record of station S-1 names.
fn regions_accounts_and_evidence(
    t: &mut Probe<'_>,
    many: &[(&str, &str)],
    evidence: &Sha256Digest,
) {
    const F: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    let server = t.server;
    let origin = server.url();
    let csv = server.data.with_extension("stations.csv");
    std::fs::write(
        &csv,
        "station,name,region,district,address,registered_voters
S-0,School 0,South,River,Main St 0,1000
S-1,School 1,North,Lake,Main St 1,1000
S-2,School 2,South,Hill,Main St 2,1000
S-3,School 3,South,River,Main St 3,1000
",
    )
    .unwrap();
    server.cli(&["stations", "import", csv.to_str().unwrap()]);
    server.add_user_with("sol", "coordinator", &["--region", "South"]);
    let mut sol = web::Browser::new(&origin);
    assert_eq!(sol.login("sol", web::PASSWORD).status, 303);
    let mut vera = web::Browser::new(&origin);
    assert_eq!(vera.login("vera", web::PASSWORD).status, 303);
    let (sk, vk) = (cookies(&sol), cookies(&vera));
    let s = [("cookie", sk.as_str())];
    let v = [("cookie", vk.as_str()), F, ("origin", origin.as_str())];

    // The quick count: national, so a region's account is refused.
    for q in ["/pvt", "/api/v1/pvt"] {
        t.send("GET", q, q, &[], vec![], 303);
        t.send("GET", q, q, &s, vec![], 403);
        t.send("GET", q, q, &v[..1], vec![], 200);
        t.send("GET", q, q, many, vec![], 431);
    }

    // The record that names the file, found as a verifier finds it.
    let index = (0..50)
        .find(|i| {
            let page = vera.get(&format!("/api/v1/records/{i}"));
            page.status == 200 && page.text.contains(&evidence.to_string())
        })
        .expect("the record naming the file");
    for template in ["/queue", "/api/v1/queue", "/coverage", "/api/v1/coverage"] {
        t.send(
            "GET",
            template,
            &format!("{template}?region=North"),
            &s,
            vec![],
            403,
        );
    }
    t.send(
        "GET",
        "/api/v1/overview",
        "/api/v1/overview",
        &s,
        vec![],
        403,
    );
    for template in ["/records/{index}", "/api/v1/records/{index}"] {
        let at = template.replace("{index}", &index.to_string());
        t.send("GET", template, &at, &s, vec![], 403);
    }
    let m = "/records/{index}/media/{sha256}";
    let at = format!("/records/{index}/media/{evidence}");
    t.send("GET", m, &at, &[], vec![], 303);
    t.send("GET", m, &at, &s, vec![], 403);
    t.send("GET", m, &at, &v[..1], vec![], 200);
    let other = format!("/records/{index}/media/{}", Sha256Digest::of(b"not named"));
    t.send("GET", m, &other, &v[..1], vec![], 404);
    t.send("GET", m, &at, many, vec![], 431);

    // The account page and the second factor.
    t.send("GET", "/account", "/account", &[], vec![], 303);
    t.send("GET", "/account", "/account", &v[..1], vec![], 200);
    t.send("GET", "/account", "/account", many, vec![], 431);
    let csrf = vera.csrf();
    let c = |csrf: &str| form(&[("csrf", csrf)]);
    let start = "/account/totp";
    t.send("POST", start, start, &[F], c(&csrf), 303);
    t.send("POST", start, start, &v, c("forged"), 403);
    t.send("POST", start, start, many, vec![], 431);
    t.send("POST", start, start, &v, c(&csrf), 200);
    let setup = vera.post(start, &[("csrf", &csrf)]);
    let key = setup
        .text
        .split("<code id=\"totp-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let sealed = setup.field("sealed").unwrap();
    // Every code from one moment: "the same code again" stays the same
    // code even when the clock passes a 30-second step meanwhile.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code_at = |steps: u64| {
        let secret = totp_rs::Secret::try_from_base32(&key).unwrap();
        let totp = totp_rs::Builder::new()
            .with_secret(secret.as_bytes().to_vec())
            .build()
            .unwrap();
        totp.generate(t0 + 30 * steps).to_string()
    };
    let confirm = "/account/totp/confirm";
    let with =
        |csrf: &str, code: &str| form(&[("csrf", csrf), ("sealed", &sealed), ("code", code)]);
    t.send("POST", confirm, confirm, &v, with(&csrf, "000000"), 400);
    t.send(
        "POST",
        confirm,
        confirm,
        &v,
        with("forged", &code_at(0)),
        403,
    );
    t.send("POST", confirm, confirm, &v, vec![b'a'; 20 * 1024], 413);
    t.send("POST", confirm, confirm, many, vec![], 431);
    t.send("POST", confirm, confirm, &v, with(&csrf, &code_at(0)), 303);
    let remove = "/account/totp/remove";
    let code = |csrf: &str, code: &str| form(&[("csrf", csrf), ("code", code)]);
    t.send("POST", remove, remove, &v, code(&csrf, &code_at(0)), 400);
    t.send("POST", remove, remove, &v, code("forged", &code_at(1)), 403);
    t.send("POST", remove, remove, &v, vec![b'a'; 20 * 1024], 413);
    t.send("POST", remove, remove, many, vec![], 431);
    t.send("POST", remove, remove, &v, code(&csrf, &code_at(1)), 303);
}

fn heartbeat(key: &SigningKey, store: &Store) -> Signed {
    let head = store.head().unwrap();
    Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: key.public_key().device_id(),
            seq: head.map_or(0, |h| h.seq),
            head: head.map(|h| h.id),
            at_ms: 0,
        },
        key,
    )
}

fn batch(key: &SigningKey, store: &Store, records: Vec<WireRecord>) -> Vec<u8> {
    serde_json::to_vec(&Batch {
        heartbeat: heartbeat(key, store),
        records,
        sealed: Vec::new(),
    })
    .unwrap()
}

/// A protocol-2 sync: the batch's parts and a tag of updates the phone
/// does not hold.
fn sync_v2(heartbeat: Signed, records: Vec<WireRecord>) -> Vec<u8> {
    serde_json::to_vec(&SyncRequest {
        heartbeat,
        records,
        sealed: Vec::new(),
        updates_have: Sha256Digest::of(b"nothing yet"),
        log_have: Some(1),
        log_prove: vec![0],
        log_witnessed: Some(0),
    })
    .unwrap()
}

fn wire(store: &Store) -> Vec<WireRecord> {
    store
        .list(&Query::new())
        .unwrap()
        .iter()
        .map(|r| WireRecord::from(&r.envelope))
        .collect()
}

#[test]
fn every_documented_answer_of_every_operation_is_driven_and_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("server"),
        &[
            "--body-grace-secs",
            "1",
            "--body-idle-secs",
            "1",
            "--witness-interval-secs",
            "1",
        ],
    );
    // Redirects are answers to check, not to follow.
    install_crypto();
    let client = reqwest::blocking::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let spec: serde_json::Value = serde_json::from_slice(
        &client
            .get(format!("{}/openapi.json", server.url()))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    let mut t = Probe {
        client,
        server: &server,
        spec,
        driven: BTreeSet::new(),
    };
    const J: (&str, &str) = ("content-type", "application/json");
    let many: Vec<(String, String)> = (0..80).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // The phone that speaks, one that is revoked, one media file.
    let pdir = dir.path().join("phone");
    let p = enrolled_phone(&pdir, &server, "S-1");
    let key = phone_key(&pdir);
    let data = b"0123456789";
    let sha = Sha256Digest::of(data);
    p.save(
        NewRecord::builder("S-1", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing", "time": "11:40"}))
            .attachment(sha.to_string(), 10, "image/jpeg")
            .build()
            .unwrap(),
    )
    .unwrap();
    let big = Sha256Digest::of(b"a 20 MiB clip");
    p.save(
        NewRecord::builder("S-1", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing", "time": "11:41"}))
            .attachment(big.to_string(), 20 * 1024 * 1024, "video/mp4")
            .build()
            .unwrap(),
    )
    .unwrap();
    let rdir = dir.path().join("revoked");
    let r = enrolled_phone(&rdir, &server, "S-2");
    let rkey = phone_key(&rdir);
    r.save(record("S-2", 0)).unwrap();
    sync(&r, &SyncOptions::default()).unwrap();
    server.cli(&["revoke", r.device_id().as_str()]);
    r.save(record("S-2", 1)).unwrap();

    // /healthz, /
    t.send("GET", "/healthz", "/healthz", &[], vec![], 200);
    t.send("GET", "/healthz", "/healthz", &many, vec![], 431);
    t.send("GET", "/", "/", &many, vec![], 431);
    workspace(&mut t, &many, r.device_id().as_str());

    // /v1/enroll
    let e = "/v1/enroll";
    let stranger = SigningKey::generate().unwrap();
    let request = |token: &str, k: &SigningKey| {
        serde_json::to_vec(&EnrollRequest {
            token: token.into(),
            public_key: k.public_key(),
            name: None,
            proof: k.sign(&EnrollRequest::proof_message(token)).to_vec(),
        })
        .unwrap()
    };
    let code = server.code("S-3");
    t.send("POST", e, e, &[J], request(&code.token, &stranger), 200);
    t.send("POST", e, e, &[J], request(&code.token, &stranger), 409);
    t.send("POST", e, e, &[J], request("no-such-token", &stranger), 401);
    let expired = server.cli(&["enroll", "--station", "S-0", "--valid-hours", "0", "--text"]);
    let expired = observer_core::protocol::EnrollmentCode::parse(expired.trim()).unwrap();
    t.send("POST", e, e, &[J], request(&expired.token, &stranger), 410);
    // The revoked phone asks again with a fresh code: refused, and the code
    // still works for someone else.
    let fresh = server.code("S-2");
    let again = t.send("POST", e, e, &[J], request(&fresh.token, &rkey), 403);
    assert_eq!(again["error"], "device_revoked");
    let newcomer = SigningKey::generate().unwrap();
    t.send("POST", e, e, &[J], request(&fresh.token, &newcomer), 200);
    t.send("POST", e, e, &[J], b"{".to_vec(), 400);
    t.send(
        "POST",
        e,
        e,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
        415,
    );
    t.send("POST", e, e, &[J], vec![b' '; 20_000], 413);
    t.send("POST", e, e, &many, b"{}".to_vec(), 431);
    t.slow("POST", e, e, &[J]);

    // /v1/records
    let rr = "/v1/records";
    let mut forged = wire(&p);
    forged[1].sig[0] ^= 1;
    let only_forged = vec![forged[1].clone()];
    t.send("POST", rr, rr, &[J], batch(&key, &p, only_forged), 422);
    t.send("POST", rr, rr, &[J], b"{".to_vec(), 400);
    let mut bad_hb: Batch = serde_json::from_slice(&batch(&key, &p, vec![])).unwrap();
    bad_hb.heartbeat.sig[0] ^= 1;
    t.send(
        "POST",
        rr,
        rr,
        &[J],
        serde_json::to_vec(&bad_hb).unwrap(),
        401,
    );
    // Enrolled above: a key nobody enrolled speaks now.
    let stranger = SigningKey::generate().unwrap();
    let mut from_stranger: Batch = serde_json::from_slice(&batch(&key, &p, vec![])).unwrap();
    from_stranger.heartbeat = Signed::sign(
        HEARTBEAT_DOMAIN,
        &Heartbeat {
            device: stranger.public_key().device_id(),
            seq: 0,
            head: None,
            at_ms: 0,
        },
        &stranger,
    );
    t.send(
        "POST",
        rr,
        rr,
        &[J],
        serde_json::to_vec(&from_stranger).unwrap(),
        403,
    );
    let revoked_answer = t.send("POST", rr, rr, &[J], batch(&rkey, &r, wire(&r)), 403);
    assert_eq!(revoked_answer["error"], "device_revoked");
    assert!(revoked_answer["receipt"]["body"].is_string());
    t.send(
        "POST",
        rr,
        rr,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
        415,
    );
    t.send("POST", rr, rr, &[J], vec![b' '; 5 * 1024 * 1024], 413);
    t.send("POST", rr, rr, &many, b"{}".to_vec(), 431);
    t.slow("POST", rr, rr, &[J]);
    t.send("POST", rr, rr, &[J], batch(&key, &p, wire(&p)), 200);

    // /v2/sync
    let v2 = "/v2/sync";
    let only_forged = vec![forged[1].clone()];
    t.send(
        "POST",
        v2,
        v2,
        &[J],
        sync_v2(heartbeat(&key, &p), only_forged),
        422,
    );
    t.send("POST", v2, v2, &[J], b"{".to_vec(), 400);
    t.send(
        "POST",
        v2,
        v2,
        &[J],
        sync_v2(bad_hb.heartbeat.clone(), vec![]),
        401,
    );
    t.send(
        "POST",
        v2,
        v2,
        &[J],
        sync_v2(from_stranger.heartbeat.clone(), vec![]),
        403,
    );
    let revoked_answer = t.send(
        "POST",
        v2,
        v2,
        &[J],
        sync_v2(heartbeat(&rkey, &r), wire(&r)),
        403,
    );
    assert_eq!(revoked_answer["error"], "device_revoked");
    t.send(
        "POST",
        v2,
        v2,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
        415,
    );
    t.send("POST", v2, v2, &[J], vec![b' '; 5 * 1024 * 1024], 413);
    t.send("POST", v2, v2, &many, b"{}".to_vec(), 431);
    t.slow("POST", v2, v2, &[J]);
    let answer = t.send(
        "POST",
        v2,
        v2,
        &[J],
        sync_v2(heartbeat(&key, &p), wire(&p)),
        200,
    );
    assert!(answer["receipt"]["body"].is_string());
    assert!(
        answer["updates"]["body"].is_string(),
        "a phone holding other updates gets them with its receipt: {answer}"
    );
    assert!(
        answer["log"]["consistency"]["proof"].is_array()
            && answer["log"]["inclusion"][0]["index"] == 0,
        "the log proofs asked for come with the receipt: {answer}"
    );
    let mut too_many: serde_json::Value =
        serde_json::from_slice(&sync_v2(heartbeat(&key, &p), vec![])).unwrap();
    too_many["log_prove"] = (0..65).collect::<Vec<u64>>().into();
    let refused = t.send(
        "POST",
        v2,
        v2,
        &[J],
        serde_json::to_vec(&too_many).unwrap(),
        400,
    );
    assert_eq!(refused["error"], "too_many_proofs");

    // /v1/updates
    let u = "/v1/updates";
    let upd = |hb: &Signed| serde_json::to_vec(&serde_json::json!({ "heartbeat": hb })).unwrap();
    t.send("POST", u, u, &[J], upd(&heartbeat(&key, &p)), 200);
    t.send("POST", u, u, &[J], upd(&bad_hb.heartbeat), 401);
    t.send("POST", u, u, &[J], upd(&from_stranger.heartbeat), 403);
    t.send("POST", u, u, &[J], b"{".to_vec(), 400);
    t.send(
        "POST",
        u,
        u,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
        415,
    );
    t.send("POST", u, u, &[J], vec![b' '; 20_000], 413);
    t.send("POST", u, u, &many, b"{}".to_vec(), 431);
    t.slow("POST", u, u, &[J]);

    // /v1/sealed
    let s = "/v1/sealed";
    let org = p.enrollment().unwrap().seal_key.unwrap();
    let sealed_of = |store: &Store, seq_index: usize| {
        let rec = store.list(&Query::new()).unwrap().remove(seq_index);
        SealedRecord::seal(&org, store.device_id(), rec.seq, &rec.envelope).unwrap()
    };
    let sealed_body = |recs: Vec<SealedRecord>| {
        serde_json::to_vec(&serde_json::json!({ "sealed": recs })).unwrap()
    };
    t.send("POST", s, s, &[J], sealed_body(vec![sealed_of(&p, 0)]), 200);
    let junk = SealedRecord {
        device: p.device_id().clone(),
        seq: 1,
        enc: vec![1; 32],
        ct: vec![2; 100],
    };
    t.send("POST", s, s, &[J], sealed_body(vec![junk]), 422);
    t.send("POST", s, s, &[J], sealed_body(vec![sealed_of(&r, 1)]), 403);
    t.send("POST", s, s, &[J], b"{".to_vec(), 400);
    t.send(
        "POST",
        s,
        s,
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
        415,
    );
    t.send("POST", s, s, &[J], vec![b' '; 5 * 1024 * 1024], 413);
    t.send("POST", s, s, &many, b"{}".to_vec(), 431);
    t.slow("POST", s, s, &[J]);

    // /v1/sms/twilio and /v1/sms/android: not found until set up, then
    // each gateway's signature decides.
    let (tw, an) = ("/v1/sms/twilio", "/v1/sms/android");
    const F: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    t.send("POST", tw, tw, &[F], b"From=1&Body=x".to_vec(), 404);
    t.send("POST", an, an, &[J], b"{}".to_vec(), 404);
    support::sms::set_up_gateways(&server, dir.path(), 48);
    let url = support::sms::twilio_url(&server);
    let part = p.heartbeat_sms_parts().unwrap().remove(0);
    let (body, sig) = support::sms::twilio(&url, support::sms::TWILIO_TOKEN, "+77011234567", &part);
    t.send(
        "POST",
        tw,
        tw,
        &[F, ("x-twilio-signature", &sig)],
        body.clone(),
        200,
    );
    let (_, wrong) = support::sms::twilio(&url, "another-token", "+77011234567", &part);
    t.send(
        "POST",
        tw,
        tw,
        &[F, ("x-twilio-signature", &wrong)],
        body,
        403,
    );
    let no_body = b"From=%2B77011234567".to_vec();
    let sig = {
        use base64::Engine as _;
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            support::sms::TWILIO_TOKEN.as_bytes(),
        );
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(
            &key,
            format!("{url}From+77011234567").as_bytes(),
        ))
    };
    t.send(
        "POST",
        tw,
        tw,
        &[F, ("x-twilio-signature", &sig)],
        no_body,
        400,
    );
    t.send("POST", tw, tw, &[F], vec![b'a'; 20_000], 413);
    t.send("POST", tw, tw, &many, vec![], 431);
    t.slow("POST", tw, tw, &[F]);
    let now = support::sms::now_secs();
    let (body, sig, ts) =
        support::sms::android(support::sms::ANDROID_KEY, "+77011234567", &part, now);
    let signed = [
        J,
        ("x-signature", sig.as_str()),
        ("x-timestamp", ts.as_str()),
    ];
    t.send("POST", an, an, &signed, body.clone(), 200);
    let stale = (now - 3_600).to_string();
    t.send(
        "POST",
        an,
        an,
        &[
            J,
            ("x-signature", sig.as_str()),
            ("x-timestamp", stale.as_str()),
        ],
        body,
        403,
    );
    let junk = b"not json".to_vec();
    let junk_sig = {
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            support::sms::ANDROID_KEY.as_bytes(),
        );
        hex::encode(ring::hmac::sign(
            &key,
            &[junk.as_slice(), ts.as_bytes()].concat(),
        ))
    };
    t.send(
        "POST",
        an,
        an,
        &[
            J,
            ("x-signature", junk_sig.as_str()),
            ("x-timestamp", ts.as_str()),
        ],
        junk,
        400,
    );
    t.send("POST", an, an, &[J], vec![b' '; 20_000], 413);
    t.send("POST", an, an, &many, b"{}".to_vec(), 431);
    t.slow("POST", an, an, &[J]);

    // /v1/media/{sha256}
    let m = "/v1/media/{sha256}";
    let at = format!("/v1/media/{sha}");
    let me = heartbeat(&key, &p).to_header();
    let them = heartbeat(&rkey, &r).to_header();
    let hb = |h: &str| [("observer-heartbeat", h.to_string())];
    let unknown_media = format!("/v1/media/{}", Sha256Digest::of(b"nobody"));
    for method in ["GET", "PUT"] {
        let q = if method == "PUT" { "?offset=0" } else { "" };
        let h = hb(&me);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.send(method, m, &format!("/v1/media/nothex{q}"), &h, vec![], 400);
        t.send(method, m, &format!("{at}{q}"), &[], vec![], 401);
        let rh = hb(&them);
        let rh: Vec<(&str, &str)> = rh.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.send(method, m, &format!("{at}{q}"), &rh, vec![], 403);
        t.send(method, m, &format!("{unknown_media}{q}"), &h, vec![], 404);
        t.send(method, m, &format!("{at}{q}"), &many, vec![], 431);
    }
    let h = hb(&me);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.send("GET", m, &at, &h, vec![], 200);
    t.send("PUT", m, &format!("{at}?offset=x"), &h, vec![], 400);
    t.send("PUT", m, &format!("{at}?offset=3"), &h, b"3".to_vec(), 409);
    // A stalled body keeps what arrived (one byte), then 9 MiB from there
    // is over the per-request limit.
    t.slow("PUT", m, &format!("/v1/media/{big}?offset=0"), &h);
    let at_big = format!("/v1/media/{big}?offset=1");
    t.send("PUT", m, &at_big, &h, vec![0; 9 * 1024 * 1024], 413);
    t.send(
        "PUT",
        m,
        &format!("{at}?offset=0"),
        &h,
        b"9876543210".to_vec(),
        422,
    );
    t.send("PUT", m, &format!("{at}?offset=0"), &h, data.to_vec(), 200);
    log_proofs(&mut t, &h, &them, &many);
    review_and_coverage(&mut t, &many);
    regions_accounts_and_evidence(&mut t, &many, &sha);

    // Rate limits: a server that allows one request a second (bursts of ten).
    let dir2 = tempfile::tempdir().unwrap();
    let limited = Server::start_with(&dir2.path().join("server"), &["--rate-per-address", "1"]);
    let mut t2 = Probe {
        client: raw_client(),
        server: &limited,
        spec: t.spec.clone(),
        driven: BTreeSet::new(),
    };
    for _ in 0..10 {
        t2.send("GET", "/healthz", "/healthz", &[], vec![], 200);
    }
    let answer = t2.send("GET", "/healthz", "/healthz", &[], vec![], 429);
    assert_eq!(answer["error"], "rate_limited");
    let answer = t2
        .client
        .get(format!("{}/healthz", limited.url()))
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    assert!(answer.headers().contains_key("retry-after"));

    // Every documented answer was driven here, but 429 (driven above, the
    // same middleware for every operation) and 503 (the database failing:
    // healthz_reports_a_full_disk, and body::tests for server_busy).
    let mut missing = Vec::new();
    for (path, ops) in t.spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                let status: u16 = status.parse().unwrap();
                if [429, 503].contains(&status) {
                    continue;
                }
                if !t.driven.contains(&(method.clone(), path.clone(), status)) {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but never driven: {missing:?}"
    );
}
