//! Evidence packages, made by the real `observer-server evidence export`
//! from a real coordinator that two phones synced to and a witness
//! cosigned, and checked the way an outsider checks them: read from the
//! ZIP archive and verified with nothing but the coordinator's published
//! key and the witness's. Then tampered with, the ways someone who wants
//! a report dismissed (or a fabrication accepted) would try, and each
//! tampering named.

mod support;

use std::path::Path;
use std::time::Duration;

use observer_core::evidence::{Package, Report, Trust, verify};
use observer_core::media::PhotoTags;
use observer_core::merkle::TrustedWitness;
use observer_core::record::{MediaMeta, NewRecord, Sha256Digest};
use observer_core::sync::{SyncOptions, sync};
use support::witness::{WitnessProcess, witness_cli};
use support::*;

fn export(server: &Server, args: &[&str], out: &Path) -> Package {
    let mut all = vec!["evidence", "export"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let said = server.cli(&all);
    assert!(said.starts_with("wrote "), "{said}");
    observer_verify::read_package(out).unwrap()
}

fn failures(report: &Report) -> Vec<String> {
    report
        .failures()
        .map(|f| format!("{}: {}", f.subject, f.detail))
        .collect()
}

/// Rewrites one file of `p`, keeping the manifest's hash of it true (the
/// forger's best move: a manifest that matches what it holds).
fn forge(p: &mut Package, name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&p.files[name]).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&p.files["manifest.json"]).unwrap();
    manifest["files"][name] = serde_json::json!(Sha256Digest::of(&bytes).to_string());
    p.files.insert(name.into(), bytes);
    p.files.insert(
        "manifest.json".into(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    );
}

/// Changes the bytes a base64 JSON string holds.
fn edit_base64(v: &mut serde_json::Value, edit: impl FnOnce(&mut Vec<u8>)) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64.decode(v.as_str().unwrap()).unwrap();
    edit(&mut raw);
    *v = serde_json::json!(b64.encode(raw));
}

#[test]
fn a_package_verifies_offline_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("server"),
        &["--witness-interval-secs", "1"],
    );
    let coordinator = server.coordinator_key();
    let wdata = dir.path().join("witness");
    let made = witness_cli(&wdata, &["init", "--name", "press.example/witness"]);
    let vkey = made
        .lines()
        .find_map(|l| l.strip_prefix("witness key  "))
        .unwrap()
        .to_owned();
    witness_cli(&wdata, &["follow", "--log-key", &coordinator.to_string()]);
    let w = WitnessProcess::start(&wdata);
    server.cli(&[
        "witnesses",
        "add",
        "--key",
        &vkey,
        "--url",
        &format!("http://{}", w.addr),
    ]);

    // Two observers at two stations; one films what it reports.
    let pa = dir.path().join("a");
    let a = enrolled_phone(&pa, &server, "S-1");
    let b = enrolled_phone(&dir.path().join("b"), &server, "S-2");
    // A second observer at the first station.
    let c = enrolled_phone(&dir.path().join("c"), &server, "S-1");
    c.save_all(&(0..3).map(|i| record("S-1", 100 + i)).collect::<Vec<_>>())
        .unwrap();
    a.save_all(&(0..12).map(|i| record("S-1", i)).collect::<Vec<_>>())
        .unwrap();
    b.save_all(&(0..5).map(|i| record("S-2", i)).collect::<Vec<_>>())
        .unwrap();
    let clip: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let clip_path = pa.join("clip.mp4");
    std::fs::write(&clip_path, &clip).unwrap();
    let media = a
        .import_media(&clip_path, "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    a.save(
        NewRecord::builder("S-1", "incident", 1, "incident")
            .payload(serde_json::json!({"type": "ballot_stuffing"}))
            .attachment_with(
                media.sha256.to_string(),
                media.bytes,
                media.mime.clone(),
                MediaMeta {
                    consent: observer_core::record::Consent::NotAsked,
                    faces_visible: false,
                    ballots_visible: true,
                    voter_list_visible: false,
                    taken_from: None,
                    note: None,
                    location_kept: false,
                },
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    sync(&a, &SyncOptions::default()).unwrap();
    sync(&b, &SyncOptions::default()).unwrap();
    sync(&c, &SyncOptions::default()).unwrap();
    assert_eq!(server.record_count().0, 21);
    let list = || server.cli(&["witnesses", "list"]);
    wait_until(
        "the witness cosigned all 21",
        Duration::from_secs(30),
        || list().contains("cosigned size 21"),
    );

    let trust = Trust {
        coordinator: Some(coordinator),
        witnesses: Some(vec![TrustedWitness::from_vkey(&vkey).unwrap()]),
    };
    let all = export(&server, &["--all"], &dir.path().join("all.zip"));
    let report = verify(&all, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    // The incident arrived sealed to the organisation and stays sealed:
    // its place in the log is proved, its content not shown.
    assert_eq!(
        (report.records, report.records_verified, report.sealed),
        (21, 20, 1)
    );
    assert_eq!(report.witnessed_records, 21);
    let opened = export(
        &server,
        &["--all", "--open-sealed"],
        &dir.path().join("opened.zip"),
    );
    let report = verify(&opened, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    assert_eq!((report.records_verified, report.sealed), (21, 0));
    assert!(all.files.contains_key(&format!("media/{}", media.sha256)));
    // A summary a reader can take in, in each language.
    let summary =
        |lang: &str| String::from_utf8(all.files[&format!("summary.{lang}.txt")].clone()).unwrap();
    assert!(
        summary("en").contains("21 records from 3 observers' phones at 2 polling stations"),
        "{}",
        summary("en")
    );
    assert!(
        summary("en").contains("21 of them were in that log no later than"),
        "{}",
        summary("en")
    );
    assert!(summary("en").contains("press.example/witness"));
    assert!(
        summary("en").contains("Records kept sealed: 1."),
        "{}",
        summary("en")
    );
    assert!(
        summary("ru").starts_with("Пакет доказательств организации test-org"),
        "{}",
        summary("ru")
    );
    assert!(
        summary("kk").starts_with("test-org ұйымының дәлелдер пакеті"),
        "{}",
        summary("kk")
    );
    for lang in ["en", "ru", "kk"] {
        assert!(summary(lang).contains(&format!("--coordinator-key {coordinator}")));
    }
    let audit = |p: &Package, device: &str| -> Vec<String> {
        let f: serde_json::Value =
            serde_json::from_slice(&p.files[&format!("devices/{device}.json")]).unwrap();
        f["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let a_id = a.device_id().to_string();
    assert!(
        audit(&all, &a_id).iter().any(|x| x == "device.enrolled"),
        "{:?}",
        audit(&all, &a_id)
    );

    // One station: the other observer's records and key are not in it.
    let s1 = export(&server, &["--station", "S-1"], &dir.path().join("s1.zip"));
    let report = verify(&s1, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    // Both observers of the station, each chain whole.
    assert_eq!((report.records, report.records_verified), (16, 15));
    assert!(
        s1.files
            .contains_key(&format!("devices/{}.json", c.device_id()))
    );
    let whole = |r: &Report, d: String| {
        r.findings
            .iter()
            .any(|f| f.ok && f.subject == format!("device {d}") && f.detail.contains("each linked"))
    };
    assert!(whole(&report, a.device_id().to_string()));
    assert!(whole(&report, c.device_id().to_string()));
    assert!(
        !s1.files
            .contains_key(&format!("devices/{}.json", b.device_id()))
    );
    // Without media: the hash stands for the clip.
    let bare = export(
        &server,
        &["--device", &a_id, "--no-media"],
        &dir.path().join("bare.zip"),
    );
    assert!(verify(&bare, &trust).passed());
    assert!(!bare.files.keys().any(|n| n.starts_with("media/")));
    // One record from the middle of a chain: the rest is stated as not in
    // the package, not as a fault.
    let one_id =
        serde_json::from_slice::<serde_json::Value>(&s1.files["manifest.json"]).unwrap()["records"]
            [4]
        .as_str()
        .unwrap()
        .to_owned();
    let one = export(&server, &["--record", &one_id], &dir.path().join("one.zip"));
    let report = verify(&one, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.detail.contains("are not in this package")),
        "{:?}",
        report.findings
    );

    // Tampering, each named.
    let record_file = format!("records/{one_id}.json");
    // A body altered, the manifest made to match.
    let mut t = s1.clone();
    forge(&mut t, &record_file, |v| {
        edit_base64(&mut v["envelope"]["body"], |raw| {
            let at = raw.iter().position(|&c| c == b'0').unwrap_or(10);
            raw[at] = b'9';
        })
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.contains(&record_file) && l.contains("altered")),
        "{f:?}"
    );
    // A file changed without the manifest: named as altered.
    let mut t = s1.clone();
    t.files.get_mut(&record_file).unwrap().push(b' ');
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.starts_with(&record_file) && l.contains("SHA-256")),
        "{f:?}"
    );
    // A record dropped from the archive.
    let mut t = s1.clone();
    t.files.remove(&record_file);
    let f = failures(&verify(&t, &trust));
    assert!(f.iter().any(|l| l.contains("missing")), "{f:?}");
    // A record moved to another place in the log.
    let mut t = s1.clone();
    forge(&mut t, &record_file, |v| {
        v["index"] = serde_json::json!(v["index"].as_u64().unwrap() + 1);
    });
    let f = failures(&verify(&t, &trust));
    assert!(f.iter().any(|l| l.contains("not in the log")), "{f:?}");
    // A fabricated device key: its records no longer verify.
    let mut t = s1.clone();
    let dev = format!("devices/{a_id}.json");
    let other = observer_core::identity::SigningKey::generate().unwrap();
    forge(&mut t, &dev, |v| {
        v["key"] = serde_json::json!(other.public_key().to_string());
    });
    let f = failures(&verify(&t, &trust));
    assert!(f.iter().any(|l| l.starts_with(&dev)), "{f:?}");
    // The coordinator's account of the device, checked under its key...
    assert!(
        verify(&s1, &trust)
            .findings
            .iter()
            .any(|f| f.ok && f.detail.starts_with("device.enrolled")),
    );
    // ... and an entry rewritten (the stations it was enrolled for).
    let mut t = s1.clone();
    forge(&mut t, &dev, |v| {
        v["audit"][0]["detail"] = serde_json::json!("{\"stations\":[\"S-9\"]}");
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.starts_with(&dev) && l.contains("audit entry")),
        "{f:?}"
    );
    // Two records' places in the log swapped.
    let manifest: serde_json::Value = serde_json::from_slice(&s1.files["manifest.json"]).unwrap();
    let ids: Vec<String> = manifest["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let (x, y) = (
        format!("records/{}.json", ids[1]),
        format!("records/{}.json", ids[2]),
    );
    let rx: serde_json::Value = serde_json::from_slice(&s1.files[&x]).unwrap();
    let ry: serde_json::Value = serde_json::from_slice(&s1.files[&y]).unwrap();
    let mut t = s1.clone();
    forge(&mut t, &x, |v| {
        v["index"] = ry["index"].clone();
        v["inclusion"] = ry["inclusion"].clone();
    });
    forge(&mut t, &y, |v| {
        v["index"] = rx["index"].clone();
        v["inclusion"] = rx["inclusion"].clone();
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter().filter(|l| l.contains("not in the log")).count() == 2,
        "{f:?}"
    );
    // A record of a key the coordinator never enrolled, added with its
    // device: it is not in the log.
    let mut t = s1.clone();
    let intruder = observer_core::identity::SigningKey::generate().unwrap();
    let forged = observer_core::record::sign_record(
        &record("S-1", 7),
        &observer_core::record::ChainPosition::first(&intruder),
        &intruder,
    )
    .unwrap();
    let intruder_id = intruder.public_key().device_id().to_string();
    let mut file: serde_json::Value = serde_json::from_slice(&s1.files[&x]).unwrap();
    file["id"] = serde_json::json!(forged.id().to_string());
    file["device"] = serde_json::json!(intruder_id);
    file["envelope"] =
        serde_json::to_value(observer_core::protocol::WireRecord::from(&forged)).unwrap();
    let forged_path = format!("records/{}.json", forged.id());
    t.files
        .insert(forged_path.clone(), serde_json::to_vec(&file).unwrap());
    t.files.insert(
        format!("devices/{intruder_id}.json"),
        serde_json::to_vec(&serde_json::json!({
            "device": intruder_id, "key": intruder.public_key().to_string(),
            "enrolled_at_ms": 0, "audit": []
        }))
        .unwrap(),
    );
    let mut m: serde_json::Value = serde_json::from_slice(&t.files["manifest.json"]).unwrap();
    m["records"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(forged.id().to_string()));
    m["devices"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(intruder_id));
    t.files
        .insert("manifest.json".into(), serde_json::to_vec(&m).unwrap());
    for name in [forged_path.clone(), format!("devices/{intruder_id}.json")] {
        forge(&mut t, &name, |_| {});
    }
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.starts_with(&forged_path) && l.contains("not in the log")),
        "{f:?}"
    );
    // ... and its device is not one the coordinator signed as enrolled.
    assert!(
        f.iter()
            .any(|l| l.starts_with(&format!("devices/{intruder_id}.json"))
                && l.contains("not enrolled")),
        "{f:?}"
    );
    // An enrolled device's enrollment entry dropped from its file: its
    // records are no longer those of an enrolled device.
    let mut t = s1.clone();
    forge(&mut t, &dev, |v| {
        v["audit"]
            .as_array_mut()
            .unwrap()
            .retain(|e| e["action"] != "device.enrolled");
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.starts_with(&dev) && l.contains("not enrolled")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|l| l.starts_with("records/") && l.contains("not enrolled")),
        "{f:?}"
    );
    // The clip swapped.
    let mut t = all.clone();
    let clip_file = format!("media/{}", media.sha256);
    t.files.get_mut(&clip_file).unwrap()[0] ^= 1;
    let f = failures(&verify(&t, &trust));
    assert!(f.iter().any(|l| l.starts_with(&clip_file)), "{f:?}");
    // Another coordinator's key pinned; a witness the package lacks.
    let stranger = observer_core::identity::SigningKey::generate().unwrap();
    let f = failures(&verify(
        &s1,
        &Trust {
            coordinator: Some(stranger.public_key()),
            witnesses: None,
        },
    ));
    assert!(f.iter().any(|l| l.starts_with("coordinator key")), "{f:?}");
    let absent = TrustedWitness {
        name: "other.example/w".into(),
        key: stranger.public_key(),
    };
    let f = failures(&verify(
        &s1,
        &Trust {
            coordinator: Some(coordinator),
            witnesses: Some(vec![absent]),
        },
    ));
    assert!(
        f.iter()
            .any(|l| l.contains("no cosignature of witness other.example/w")),
        "{f:?}"
    );

    // The witness goes away; the log grows past what it cosigned. The
    // package proves the growth from the witnessed checkpoint...
    drop(w);
    b.save_all(&(5..7).map(|i| record("S-2", i)).collect::<Vec<_>>())
        .unwrap();
    sync(&b, &SyncOptions::default()).unwrap();
    // The receipts are archived a moment after they are sent.
    let b_id = b.device_id().to_string();
    wait_until("b's two receipts archived", Duration::from_secs(10), || {
        server
            .db()
            .query_row(
                "SELECT count(*) FROM receipts WHERE device = ?1",
                [&b_id],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            >= 2
    });
    let grown = export(&server, &["--all"], &dir.path().join("grown.zip"));
    let report = verify(&grown, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    assert_eq!((report.records, report.witnessed_records), (23, 21));
    // b's two new records were made after the receipt of its first sync
    // (their signed clock names it), and every record shown was received
    // no later than the receipt that acknowledged it.
    let said = |r: &Report, subject: &str| -> Vec<String> {
        r.findings
            .iter()
            .filter(|f| f.ok && f.subject == subject)
            .map(|f| f.detail.clone())
            .collect()
    };
    assert_eq!(
        said(&report, "time bracket"),
        vec![
            "2 records made after the signed receipt their clock names; 22 received no later than the signed receipt that acknowledged them"
        ],
        "{:?}",
        report.findings
    );
    // The same, record by record, for a program reading the report.
    assert_eq!(report.times.len(), 22);
    let bracketed: Vec<_> = report
        .times
        .iter()
        .filter_map(|t| Some((t.made_after_ms?, t.received_by_ms?)))
        .collect();
    assert_eq!(bracketed.len(), 2);
    assert!(bracketed.iter().all(|(after, by)| after <= by));
    let m: serde_json::Value = serde_json::from_slice(&grown.files["manifest.json"]).unwrap();
    let newest = m["records"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let latest = export(
        &server,
        &["--record", &newest],
        &dir.path().join("latest.zip"),
    );
    let report = verify(&latest, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    let bracket = said(&report, "time bracket").join(" | ");
    assert!(
        bracket.contains(&format!("record {newest}: made after "))
            && bracket.contains("and received no later than"),
        "{bracket}"
    );
    let receipts: Vec<String> = latest
        .files
        .keys()
        .filter(|n| n.starts_with("receipts/"))
        .cloned()
        .collect();
    assert_eq!(
        receipts.len(),
        2,
        "the clock's receipt and the acknowledging one"
    );
    // A receipt's time moved and signed again by someone else: not the
    // coordinator's.
    for name in &receipts {
        let mut t = latest.clone();
        let signed: observer_core::protocol::Signed =
            serde_json::from_slice(&t.files[name]).unwrap();
        let mut body: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        body["server_time_ms"] = serde_json::json!(0);
        let forged = observer_core::protocol::Signed::sign(
            observer_core::protocol::RECEIPT_DOMAIN,
            &body,
            &observer_core::identity::SigningKey::generate().unwrap(),
        );
        let renamed = format!("receipts/{}.json", Sha256Digest::of(&forged.body));
        t.files.remove(name);
        t.files
            .insert(renamed.clone(), serde_json::to_vec(&forged).unwrap());
        let mut m: serde_json::Value = serde_json::from_slice(&t.files["manifest.json"]).unwrap();
        let files = m["files"].as_object_mut().unwrap();
        files.remove(name);
        files.insert(
            renamed.clone(),
            serde_json::json!(Sha256Digest::of(&t.files[&renamed]).to_string()),
        );
        t.files
            .insert("manifest.json".into(), serde_json::to_vec(&m).unwrap());
        let f = failures(&verify(&t, &trust));
        assert!(
            f.iter()
                .any(|l| l.starts_with(&renamed) && l.contains("not the coordinator's receipt")),
            "{f:?}"
        );
    }
    // A receipt's body changed under its name.
    let mut t = latest.clone();
    forge(&mut t, &receipts[0], |v| {
        edit_base64(&mut v["body"], |body| body.push(b' '))
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter().any(|l| l.starts_with(&receipts[0])
            && l.contains("not a receipt whose body's SHA-256 is its name")),
        "{f:?}"
    );
    // ... and a proof from a forked log does not lead there.
    let mut t = grown.clone();
    let mut m: serde_json::Value = serde_json::from_slice(&t.files["manifest.json"]).unwrap();
    m["witnessed"]["consistency"]["proof"][0] =
        serde_json::json!(Sha256Digest::of(b"a forked log").to_string());
    t.files
        .insert("manifest.json".into(), serde_json::to_vec(&m).unwrap());
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.contains("does not extend the witnessed one")),
        "{f:?}"
    );

    // The second observer at S-1 is revoked: its package says so under
    // the coordinator's signature, and its records, all received before,
    // still verify...
    let c_id = c.device_id().to_string();
    server.cli(&["revoke", &c_id]);
    let revoked = export(
        &server,
        &["--device", &c_id],
        &dir.path().join("revoked.zip"),
    );
    let report = verify(&revoked, &trust);
    assert!(report.passed(), "{:?}", failures(&report));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.subject == format!("device {c_id}") && f.detail.contains("device.revoked")),
        "{:?}",
        report.findings
    );
    // ... but one said to have arrived after the revocation does not.
    let m: serde_json::Value = serde_json::from_slice(&revoked.files["manifest.json"]).unwrap();
    let late = format!("records/{}.json", m["records"][0].as_str().unwrap());
    let mut t = revoked.clone();
    forge(&mut t, &late, |v| {
        v["received_at_ms"] = serde_json::json!(chrono::Utc::now().timestamp_millis() + 60_000);
    });
    let f = failures(&verify(&t, &trust));
    assert!(
        f.iter()
            .any(|l| l.starts_with(&late) && l.contains("after the coordinator revoked")),
        "{f:?}"
    );
}

/// Receipts are archived off the sync's path, a moment after they are
/// sent; a graceful stop writes the ones still queued, so the receipt of
/// a sync made just before it is there for the next evidence package.
#[test]
fn a_receipt_sent_just_before_a_graceful_stop_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"));
    let phone = enrolled_phone(&dir.path().join("p"), &server, "S-1");
    phone.save(record("S-1", 1)).unwrap();
    assert_eq!(sync(&phone, &SyncOptions::default()).unwrap().accepted, 1);
    assert!(server.terminate().success());
    let kept: Vec<(Vec<u8>, Vec<u8>)> = server
        .db()
        .prepare("SELECT body, sig FROM receipts WHERE device = ?1")
        .unwrap()
        .query_map([phone.device_id().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept.len(), 1);
    let (body, sig) = kept[0].clone();
    let receipt: observer_core::protocol::Receipt = observer_core::protocol::Signed { body, sig }
        .open(
            "receipt",
            observer_core::protocol::RECEIPT_DOMAIN,
            &server.coordinator_key(),
        )
        .unwrap();
    assert_eq!(receipt.accepted.len(), 1);
}
