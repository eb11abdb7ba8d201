//! The main job on the embedded default: a coordinating server on loopback,
//! simulated observers who record through a blackout, one phone seized and
//! purged, then the link returns and everything is delivered at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use observer_core::identity::FileKeyStore;
use observer_core::protocol::EnrollmentCode;
use observer_core::record::NewRecord;
use observer_core::store::{OnTampering, Store};
use observer_core::sync::{Backoff, SyncOptions, enroll, sync_with_retry};
use serde_json::json;

use crate::coordinator::{Coordinator, SetupError};
use crate::unlock::Unlock;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where everything is kept (server and phones).
    pub dir: PathBuf,
    /// Simulated observers.
    pub observers: usize,
    /// Records each observer makes during the blackout.
    pub records: usize,
}

fn phone(dir: &Path) -> Result<Store, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(dir)?;
    let keys = FileKeyStore::open_or_create(dir.join("device.kek"))?;
    Ok(Store::open_with(dir, &keys, OnTampering::Continue)?)
}

fn observation(station: &str, i: usize) -> NewRecord {
    // Answers that fit the shipped forms, so the coordinator's checks pass
    // where the observers saw nothing wrong.
    let (form, kind, answers) = match i % 4 {
        0 => (
            "opening",
            "checklist",
            json!({
            "arrival_time": "06:00", "admitted_on_time": false, "admitted_time": "07:00",
            "boxes_empty_shown": true, "boxes_sealed": !i.is_multiple_of(7), "ballots_received": 1500,
            "voter_list_available": true, "opened_on_time": true}),
        ),
        1 => (
            "voting",
            "checklist",
            json!({
            "time": "10:30", "voters_in_queue": i * 3, "secrecy_respected": true,
            "unauthorised_persons": i.is_multiple_of(5), "supplementary_list_used": false,
            "recording_allowed": false}),
        ),
        2 => (
            "incident",
            "incident",
            json!({
            "type": if i.is_multiple_of(3) { "carousel_voting" } else { "ballot_stuffing" },
            "time": "11:40", "description": "seen from the observer area", "reported_to_chair": false}),
        ),
        _ => (
            "access",
            "access",
            json!({"event": "admitted", "time": "07:00"}),
        ),
    };
    NewRecord::builder(station, form, 1, kind)
        .payload(answers)
        .build()
        .expect("demo records are valid")
}

/// The demo's registry: each observer's station in Almaty, and three
/// stations in Astana that nobody observes.
fn registry(observers: usize) -> Vec<crate::registry::Station> {
    let station = |id: String, region: &str, district: &str, n: usize| crate::registry::Station {
        name: format!("School {n}"),
        region: region.into(),
        district: district.into(),
        address: format!("Street {n}"),
        registered_voters: 1500,
        location: None,
        id,
    };
    let mut all: Vec<_> = (1..=observers)
        .map(|i| {
            let district = if i % 2 == 0 { "Bostandyk" } else { "Medeu" };
            station(format!("KZ-ALA-{i:04}"), "Almaty", district, i)
        })
        .collect();
    all.extend((1..=3).map(|i| station(format!("KZ-AST-{i:04}"), "Astana", "Esil", 100 + i)));
    all
}

/// Runs the simulation against a server already serving `url` from
/// `server_dir`; prints what happens and returns the phones' directories.
pub fn simulate(
    server: &Coordinator,
    opts: &DemoOptions,
    out: &mut dyn std::io::Write,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let now = chrono::Utc::now().timestamp_millis();
    let stations = registry(opts.observers);
    server.storage.import_registry(
        None,
        &crate::registry::RegistryVersion {
            version: 1,
            imported_at_ms: now,
            digest: crate::registry::digest(&stations),
            stations: stations.len() as u64,
            added: stations.len() as u64,
            changed: 0,
            removed: 0,
        },
        &stations,
    )?;
    // Opening was due an hour ago: the stations nobody observes are late.
    let mut plan = crate::coverage::DayPlan::default();
    plan.deadlines
        .insert(crate::triage::Phase::Opening, now - 60 * 60 * 1000);
    crate::coverage::set_plan(server.storage.as_ref(), &plan)?;
    writeln!(
        out,
        "0. The coordinator imports the {} polling stations and sets the opening deadline.",
        stations.len()
    )?;
    let phones_dir = opts.dir.join("phones");
    let mut codes: Vec<(PathBuf, String, EnrollmentCode)> = Vec::new();
    for i in 0..opts.observers {
        let station = format!("KZ-ALA-{:04}", i + 1);
        let code = server.issue_code(
            std::slice::from_ref(&station),
            Some(&format!("Observer {}", i + 1)),
            24,
            now,
        )?;
        codes.push((
            phones_dir.join(format!("observer-{:02}", i + 1)),
            station,
            code,
        ));
    }
    writeln!(
        out,
        "1. {} observers enroll at training (QR code -> phone).",
        opts.observers
    )?;
    for (dir, _, code) in &codes {
        let store = phone(dir)?;
        enroll(&store, code, None)?;
    }

    writeln!(
        out,
        "2. Election day: the internet is cut. Each observer records {} observations offline.",
        opts.records
    )?;
    for (dir, station, _) in &codes {
        let store = phone(dir)?;
        for i in 0..opts.records {
            store.save(observation(station, i))?;
        }
    }

    let seized = &codes[0].0;
    writeln!(
        out,
        "3. Police take observer 1's phone and delete records 5 to 7 before returning it."
    )?;
    rusqlite::Connection::open(seized.join(observer_core::store::DB_FILE))?
        .execute("DELETE FROM records WHERE seq BETWEEN 5 AND 7", [])?;

    writeln!(out, "4. The link returns: every phone syncs at once.")?;
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for (dir, _, _) in &codes {
            let tx = tx.clone();
            s.spawn(move || {
                let result = phone(dir).and_then(|store| {
                    Ok(sync_with_retry(
                        &store,
                        &SyncOptions::default(),
                        &Backoff::default(),
                        5,
                    )?)
                });
                let _ = tx.send((dir.clone(), result.map_err(|e| e.to_string())));
            });
        }
    });
    drop(tx);
    let mut delivered = 0;
    for (dir, result) in rx {
        match result {
            Ok(s) => delivered += s.delivered(),
            Err(e) => writeln!(out, "   {}: {e}", dir.display())?,
        }
    }
    let totals = server.storage.totals()?;
    writeln!(
        out,
        "   delivered {delivered} records; the coordinator holds {} from {} stations.",
        totals.records, totals.stations
    )?;
    for d in server.storage.devices()? {
        let missing: Vec<String> = d.missing().map(|r| r.to_string()).collect();
        if !missing.is_empty() {
            writeln!(
                out,
                "   device {} ({}) is missing records {}: possible deletion on the phone.",
                d.info.id,
                d.info.name.unwrap_or_default(),
                missing.join(", ")
            )?;
        }
    }
    // A mobile team passes station 1 and sees the same ballot stuffing:
    // the workspace shows observer 1's report corroborated.
    let team = phones_dir.join("mobile-team");
    let store = phone(&team)?;
    let first = &codes[0].1;
    enroll(
        &store,
        &server.issue_code(std::slice::from_ref(first), Some("Mobile team"), 24, now)?,
        None,
    )?;
    store.save(observation(first, 2))?;
    sync_with_retry(&store, &SyncOptions::default(), &Backoff::default(), 5)?;
    writeln!(
        out,
        "5. A mobile team at {first} reports the same ballot stuffing as observer 1."
    )?;
    Ok(())
}

/// What unlocks the demo server's keys: a key file in the demo's own
/// directory, beside (not inside) the server's data directory. A real
/// coordinator keeps it on other storage (`docs/operations.md`).
pub fn unlock(dir: &Path) -> Unlock {
    Unlock::KeyFile(dir.join("demo.key"))
}

/// Creates the server directory for the demo, with the URL of `port`.
pub fn init_server(dir: &Path, port: u16) -> Result<Coordinator, SetupError> {
    Coordinator::init(
        &dir.join("server"),
        &format!("https://127.0.0.1:{port}"),
        "demo-observers",
        &unlock(dir),
    )
}

/// How to run this program again from where it was started: the path of
/// this executable, relative to the current directory when it is below it
/// (`target/release/observer-server` after `cargo run --release`), so the
/// commands the demo prints work as printed.
pub fn this_command() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(exe), Some(cwd)) => match exe.strip_prefix(&cwd) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => exe.display().to_string(),
        },
        _ => "observer-server".into(),
    }
}

/// The account the demo signs its coordinator in with.
pub const COORDINATOR_ACCOUNT: &str = "coordinator";

/// Creates the demo's admin account with a new random password, and
/// returns the password (printed once, as `users add` does).
pub fn coordinator_account(c: &Coordinator) -> Result<String, SetupError> {
    let invalid = |e: crate::accounts::AccountError| SetupError::Invalid(e.to_string());
    let password = crate::accounts::generate_password().map_err(invalid)?;
    let now = chrono::Utc::now().timestamp_millis();
    let account = crate::accounts::Account::new(
        COORDINATOR_ACCOUNT,
        crate::accounts::Role::Admin,
        None,
        crate::accounts::hash_password(&password).map_err(invalid)?,
        now,
    )
    .map_err(invalid)?;
    c.storage.account_store().add_account(&account)?;
    let draft = crate::audit::Draft {
        actor: "demo".into(),
        action: "account.added",
        subject: COORDINATOR_ACCOUNT.into(),
        detail: json!({ "role": "admin" }),
    };
    crate::audit::append(c.storage.as_ref(), &c.key, draft, now)?;
    Ok(password)
}
