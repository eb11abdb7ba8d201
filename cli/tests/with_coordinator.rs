//! The desktop client against a coordinator served in the test's process:
//! what `sync` and `status` tell an observer, and the way out of a wipe.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::{observer, ok};

use observer_server::coordinator::Coordinator;

struct Local {
    coordinator: Coordinator,
    /// Serves until dropped.
    _rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Local {
    fn start(dir: &Path) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let unlock = observer_server::unlock::Unlock::KeyFile(dir.join("server.key"));
        let coordinator =
            Coordinator::init(&dir.join("server"), &url, "test-org", &unlock).unwrap();
        let serving = Coordinator::open(&coordinator.dir, Some(&unlock)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(observer_server::serve::serve(serving, listener, async {
            let _ = stopped.await;
        }));
        Self {
            coordinator,
            _rt: rt,
            stop: Some(stop),
        }
    }

    fn code(&self, station: &str) -> String {
        self.coordinator
            .issue_code(&[station.to_string()], None, 1, chrono_now())
            .unwrap()
            .to_text()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn sync_says_what_arrived_and_status_shows_the_stations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Local::start(dir.path());
    let phone = dir.path().join("phone");
    ok(observer(&phone, &["enroll", &server.code("KZ-0001")]));
    let status = ok(observer(&phone, &["status"]));
    assert!(status.contains("stations    KZ-0001"), "{status}");
    let device = observer_core::identity::DeviceId::try_from(
        status
            .lines()
            .find_map(|l| l.strip_prefix("device"))
            .unwrap()
            .trim()
            .to_string(),
    )
    .unwrap();
    assert!(
        server
            .coordinator
            .storage
            .assign(&device, &["KZ-0002".into(), "KZ-0003".into()])
            .unwrap()
    );
    let synced = ok(observer(&phone, &["sync"]));
    assert!(
        synced.contains("stations: the coordinator now assigns you to KZ-0002, KZ-0003"),
        "{synced}"
    );
    let status = ok(observer(&phone, &["status"]));
    assert!(status.contains("stations    KZ-0002, KZ-0003"), "{status}");
    let again = ok(observer(&phone, &["sync"]));
    assert!(
        !again.contains("stations:"),
        "said once, when it changed: {again}"
    );
    ok(observer(&phone, &["demo"]));
    ok(observer(&phone, &["sync"]));
    let delivered = ok(observer(
        &phone,
        &["list", "--state", "delivered", "--json"],
    ))
    .lines()
    .count();
    assert!(delivered > 0);
    let audit: serde_json::Value =
        serde_json::from_str(&ok(observer(&phone, &["audit-log", "--json"]))).unwrap();
    assert_eq!(audit["records_proved"], delivered as u64, "{audit}");
    assert_eq!(audit["log_size"], delivered as u64, "{audit}");
}

#[test]
fn after_a_wipe_every_refusal_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Local::start(dir.path());
    let phone = dir.path().join("phone");
    ok(observer(&phone, &["enroll", &server.code("KZ-0001")]));
    ok(observer(&phone, &["wipe", "--keep-sealed", "--yes"]));
    let refused = observer(&phone, &["status"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("deliver-sealed") && stderr.contains("start-over"),
        "{stderr}"
    );
}

/// Phone A has no link; phone B carries A's records as a file and delivers
/// them at its own sync; A later sees them `already` delivered. A damaged
/// or truncated file is refused with a sentence and changes nothing.
#[test]
fn a_relay_bundle_carries_records_from_a_phone_without_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let server = Local::start(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(observer(&a, &["enroll", &server.code("KZ-0001")]));
    ok(observer(&b, &["enroll", &server.code("KZ-0002")]));
    ok(observer(&a, &["demo"]));
    let made = ok(observer(&a, &["list", "--json"])).lines().count();
    let bundle = dir.path().join("from-a.obsrelay");
    let wrote = ok(observer(
        &a,
        &["relay", "export", "--output", bundle.to_str().unwrap()],
    ));
    assert!(
        wrote.contains(&format!("wrote {made} undelivered records")),
        "{wrote}"
    );

    let bytes = std::fs::read(&bundle).unwrap();
    let cut = dir.path().join("cut.obsrelay");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let refused = observer(&b, &["relay", "import", cut.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("the bundle is incomplete"), "{said}");
    let mut flipped = bytes.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 1;
    std::fs::write(&cut, &flipped).unwrap();
    let said =
        String::from_utf8_lossy(&observer(&b, &["relay", "import", cut.to_str().unwrap()]).stderr)
            .into_owned();
    assert!(
        said.contains("altered after the sending phone wrote it"),
        "{said}"
    );
    assert!(!ok(observer(&b, &["status"])).contains("relaying"));

    let took: serde_json::Value = serde_json::from_str(&ok(observer(
        &b,
        &["relay", "import", bundle.to_str().unwrap(), "--json"],
    )))
    .unwrap();
    assert_eq!(took["added"], made as u64, "{took}");
    assert!(ok(observer(&b, &["status"])).contains(&format!("relaying    {made} records")));
    let synced = ok(observer(&b, &["sync"]));
    assert!(
        synced.contains(&format!(
            "relay: delivered {made} records for other phones, refused 0, still carrying 0"
        )),
        "{synced}"
    );
    assert!(
        synced.contains("delivered 0 (0 new"),
        "B's own outbox was empty: {synced}"
    );
    let a_synced = ok(observer(&a, &["sync"]));
    assert!(
        a_synced.contains(&format!("delivered {made} (0 new, {made} already there)")),
        "{a_synced}"
    );
}
