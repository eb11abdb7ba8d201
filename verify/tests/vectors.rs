//! The test vectors of `docs/evidence.md` (`tests/vectors/evidence/`): a
//! small package and tampered variants of it, each with the verdict the
//! real `observer-verify` binary must give. Another implementation of the
//! verifier can be checked against the same files.
//!
//! The files are committed; `OBSERVER_WRITE_VECTORS=1 cargo test -p
//! observer-verify --test vectors` makes them again (new keys, so new
//! bytes) from the builder below, which uses only the core's public
//! record, log and witness functions, as a coordinator does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use observer_core::evidence::audit::{DEVICE_ENROLLED, Entry};
use observer_core::evidence::layout::{device_path, media_path, receipt_path, record_path};
use observer_core::evidence::{
    CHECKPOINT_FILE, DeviceFile, FORMAT, MANIFEST_FILE, Manifest, MediaEntry, Package, RecordFile,
    WITNESSED_FILE, Witnessed,
};
use observer_core::identity::SigningKey;
use observer_core::merkle::{
    Checkpoint, TreeHead, TrustedWitness, Witness, consistency_proof, inclusion_proof, leaf_hash,
    origin_of, tree_hash,
};
use observer_core::protocol::{
    Ack, ConsistencyProof, InclusionProof, RECEIPT_DOMAIN, Receipt, Signed, WireRecord,
};
use observer_core::record::{ChainPosition, NewRecord, Sha256Digest, sign_record};
use serde::Deserialize;

const WITNESS: &str = "press.example/witness";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/evidence")
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap();
    out.push(b'\n');
    out
}

/// The manifest made true again after `files` changed (a forger's move).
fn reseal(p: &mut Package) {
    let mut m: Manifest = serde_json::from_slice(&p.files[MANIFEST_FILE]).unwrap();
    m.files = p
        .files
        .iter()
        .filter(|(n, _)| n.as_str() != MANIFEST_FILE)
        .map(|(n, b)| (n.clone(), Sha256Digest::of(b)))
        .collect();
    p.files.insert(MANIFEST_FILE.into(), json(&m));
}

/// A coordinator's package of one device's five records (the fourth
/// with a photo), six log leaves in all, witnessed at five.
fn good() -> (Package, String, String) {
    let coordinator = SigningKey::generate().unwrap();
    let device = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let wkey = SigningKey::generate().unwrap();
    let photo = b"\xff\xd8\xff\xe0 a photograph of the ballot box".to_vec();
    let photo_hash = Sha256Digest::of(&photo);
    let mut envelopes = Vec::new();
    let mut pos = ChainPosition::first(&device);
    pos.org = Some("observers".into());
    // The receipt of the phone's first sync (records 1 to 3), which the
    // fourth and fifth records' clock names: they were made after it.
    let receipt = |accepted: Vec<Ack>, tree: TreeHead, server_time_ms| {
        Signed::sign(
            RECEIPT_DOMAIN,
            &Receipt {
                org: "observers".into(),
                device: device.public_key().device_id(),
                server_time_ms,
                accepted,
                already: vec![],
                rejected: vec![],
                tree,
            },
            &coordinator,
        )
    };
    let mut first_sync = None;
    for i in 0..5u64 {
        if i == 3 {
            let acks: Vec<Ack> = envelopes
                .iter()
                .enumerate()
                .map(|(n, e): (usize, &observer_core::record::Envelope)| Ack {
                    id: e.id(),
                    seq: n as u64 + 1,
                    index: n as u64,
                })
                .collect();
            let leaves: Vec<Sha256Digest> = envelopes
                .iter()
                .map(|e| leaf_hash(e.id().as_bytes()))
                .collect();
            let signed = receipt(
                acks,
                TreeHead {
                    size: 3,
                    root: tree_hash(&leaves),
                },
                1_763_995_000_000,
            );
            pos.clock.after = Some(Sha256Digest::of(&signed.body));
            first_sync = Some(signed);
        }
        let mut b = NewRecord::builder("KZ-0001", "voting", 1, "checklist")
            .payload(serde_json::json!({ "n": i }));
        if i == 3 {
            b = b.attachment(photo_hash.to_string(), photo.len() as u64, "image/jpeg");
        }
        let env = sign_record(&b.build().unwrap(), &pos, &device).unwrap();
        pos = pos.after(env.id());
        envelopes.push(env);
    }
    // The log: another device's record sits between the third and fourth.
    let stranger = sign_record(
        &NewRecord::builder("KZ-0002", "voting", 1, "checklist")
            .build()
            .unwrap(),
        &ChainPosition::first(&other),
        &other,
    )
    .unwrap();
    let mut order: Vec<&observer_core::record::Envelope> = envelopes.iter().collect();
    order.insert(3, &stranger);
    let leaves: Vec<Sha256Digest> = order.iter().map(|e| leaf_hash(e.id().as_bytes())).collect();
    let size = leaves.len() as u64;
    let head = TreeHead {
        size,
        root: tree_hash(&leaves),
    };
    let origin = origin_of(&coordinator.public_key());
    let checkpoint = Checkpoint {
        origin: origin.clone(),
        head,
    }
    .sign(&coordinator)
    .unwrap();
    let witnessed_head = TreeHead {
        size: 5,
        root: tree_hash(&leaves[..5]),
    };
    let mut witnessed = Checkpoint {
        origin,
        head: witnessed_head,
    }
    .sign(&coordinator)
    .unwrap();
    let line = Witness {
        name: WITNESS,
        key: &wkey,
    }
    .cosign(&witnessed, 1_764_000_000)
    .unwrap();
    witnessed.extend_from_slice(&line);
    let vkey = TrustedWitness {
        name: WITNESS.into(),
        key: wkey.public_key(),
    }
    .vkey();

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(CHECKPOINT_FILE.into(), checkpoint);
    files.insert(WITNESSED_FILE.into(), witnessed);
    let dev_id = device.public_key().device_id().to_string();
    // The coordinator's signed audit entry of the enrollment (the chain's
    // seventh entry: its predecessors are not the package's business).
    let (at_ms, actor, subject) = (1_763_990_000_000, "enrollment code", dev_id.as_str());
    let detail =
        serde_json::json!({ "key": device.public_key().to_string(), "stations": ["KZ-0001"] })
            .to_string();
    let enrolled = Entry {
        seq: 7,
        at_ms,
        actor: actor.into(),
        action: DEVICE_ENROLLED.into(),
        subject: subject.into(),
        detail,
        prev: Sha256Digest::of(b"the sixth entry"),
        hash: Sha256Digest::from_bytes([0; 32]),
        sig: String::new(),
    }
    .seal(&coordinator);
    files.insert(
        device_path(&dev_id),
        json(&DeviceFile {
            device: dev_id.clone(),
            key: device.public_key().to_string(),
            enrolled_at_ms: at_ms,
            revoked_at_ms: None,
            audit: vec![serde_json::to_value(&enrolled).unwrap()],
        }),
    );
    let mut records = Vec::new();
    for env in &envelopes {
        let index = order.iter().position(|e| e.id() == env.id()).unwrap() as u64;
        files.insert(
            record_path(&env.id()),
            json(&RecordFile {
                id: env.id(),
                device: dev_id.clone(),
                index,
                received_at_ms: 1_763_999_000_000 + index as i64,
                envelope: Some(WireRecord::from(env)),
                inclusion: InclusionProof {
                    index,
                    size,
                    proof: inclusion_proof(&leaves, index).unwrap(),
                },
            }),
        );
        records.push(env.id());
    }
    files.insert(media_path(&photo_hash), photo);
    // The second sync's receipt acknowledges the fourth and fifth.
    let second_sync = receipt(
        envelopes[3..]
            .iter()
            .enumerate()
            .map(|(n, e)| Ack {
                id: e.id(),
                seq: n as u64 + 4,
                index: n as u64 + 4,
            })
            .collect(),
        head,
        1_763_999_500_000,
    );
    for signed in [first_sync.expect("made"), second_sync] {
        files.insert(receipt_path(&Sha256Digest::of(&signed.body)), json(&signed));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        org: "observers".into(),
        coordinator_key: coordinator.public_key().to_string(),
        created_at_ms: 1_764_000_100_000,
        selection: format!("device {dev_id}"),
        witnesses: vec![vkey.clone()],
        witnessed: Some(Witnessed {
            consistency: Some(ConsistencyProof {
                from: 5,
                to: size,
                proof: consistency_proof(&leaves, 5).unwrap(),
            }),
        }),
        devices: vec![dev_id],
        records,
        media: vec![MediaEntry {
            sha256: photo_hash,
            included: true,
        }],
        forms: vec![],
        files: BTreeMap::new(),
    };
    let mut p = Package { files };
    p.files.insert(MANIFEST_FILE.into(), json(&manifest));
    reseal(&mut p);
    (p, coordinator.public_key().to_string(), vkey)
}

/// Each tampered variant: its name and what is done to the good package.
fn variants(good: &Package) -> Vec<(&'static str, Package)> {
    let manifest: Manifest = serde_json::from_slice(&good.files[MANIFEST_FILE]).unwrap();
    let second = record_path(&manifest.records[1]);
    let mut out = Vec::new();
    let mut edit_record = |name, f: &dyn Fn(&mut RecordFile), reseal_it: bool| {
        let mut p = good.clone();
        let mut r: RecordFile = serde_json::from_slice(&p.files[&second]).unwrap();
        f(&mut r);
        p.files.insert(second.clone(), json(&r));
        if reseal_it {
            reseal(&mut p);
        }
        out.push((name, p));
    };
    edit_record(
        "altered-body",
        &|r| {
            let env = r.envelope.as_mut().unwrap();
            let at = env.body.iter().position(|&c| c == b'1').unwrap();
            env.body[at] = b'7';
        },
        true,
    );
    edit_record("altered-unsealed", &|r| r.received_at_ms += 1, false);
    edit_record("moved-in-log", &|r| r.index += 1, true);
    let mut p = good.clone();
    p.files.remove(&second);
    out.push(("missing-record", p));
    let mut p = good.clone();
    let dev = device_path(&manifest.devices[0]);
    let mut d: DeviceFile = serde_json::from_slice(&p.files[&dev]).unwrap();
    d.key = SigningKey::generate().unwrap().public_key().to_string();
    p.files.insert(dev.clone(), json(&d));
    reseal(&mut p);
    out.push(("forged-device-key", p));
    let mut p = good.clone();
    let mut d: DeviceFile = serde_json::from_slice(&p.files[&dev]).unwrap();
    d.audit.clear();
    p.files.insert(dev.clone(), json(&d));
    reseal(&mut p);
    out.push(("unenrolled-device", p));
    // The first sync's receipt made a day older and signed by someone else.
    let mut p = good.clone();
    let name = p
        .files
        .keys()
        .find(|n| n.starts_with("receipts/"))
        .expect("a receipt")
        .clone();
    let signed: Signed = serde_json::from_slice(&p.files[&name]).unwrap();
    let mut r: Receipt = serde_json::from_slice(&signed.body).unwrap();
    r.server_time_ms -= 86_400_000;
    let forged = Signed::sign(RECEIPT_DOMAIN, &r, &SigningKey::generate().unwrap());
    p.files.remove(&name);
    p.files
        .insert(receipt_path(&Sha256Digest::of(&forged.body)), json(&forged));
    reseal(&mut p);
    out.push(("forged-receipt", p));
    let mut p = good.clone();
    let text = String::from_utf8(p.files[CHECKPOINT_FILE].clone()).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines[1] = "7";
    p.files
        .insert(CHECKPOINT_FILE.into(), lines.join("\n").into_bytes());
    reseal(&mut p);
    out.push(("altered-checkpoint", p));
    let mut p = good.clone();
    let photo = media_path(&manifest.media[0].sha256);
    p.files.get_mut(&photo).unwrap()[0] ^= 1;
    reseal(&mut p);
    out.push(("altered-media", p));
    let mut p = good.clone();
    p.files.insert("records/extra.json".into(), b"{}".to_vec());
    out.push(("unlisted-file", p));
    out
}

fn write_zip(p: &Package, path: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let names = std::iter::once(MANIFEST_FILE).chain(
        p.files
            .keys()
            .map(String::as_str)
            .filter(|n| *n != MANIFEST_FILE),
    );
    for name in names {
        zip.start_file(name, options).unwrap();
        zip.write_all(&p.files[name]).unwrap();
    }
    zip.finish().unwrap();
}

#[derive(Deserialize, serde::Serialize)]
struct Expected {
    coordinator_key: String,
    witness: String,
    /// Per file: the exit code and a phrase its FAIL line holds.
    verdicts: BTreeMap<String, (i32, String)>,
}

fn expected_verdicts() -> BTreeMap<String, (i32, String)> {
    [
        ("good.zip", (0, "")),
        (
            "altered-body.zip",
            (1, "the body's SHA-256 is not the record's id"),
        ),
        (
            "altered-unsealed.zip",
            (1, "its SHA-256 is not the one the manifest lists"),
        ),
        ("moved-in-log.zip", (1, "not in the log at index")),
        (
            "missing-record.zip",
            (1, "listed in the manifest but missing"),
        ),
        (
            "forged-device-key.zip",
            (1, "its key is not the key of the device it names"),
        ),
        (
            "altered-checkpoint.zip",
            (1, "not the coordinator's checkpoint"),
        ),
        ("altered-media.zip", (1, "its SHA-256 is not its name")),
        (
            "unenrolled-device.zip",
            (1, "not enrolled: no device.enrolled audit entry"),
        ),
        ("forged-receipt.zip", (1, "not the coordinator's receipt")),
        ("unlisted-file.zip", (1, "not listed in the manifest")),
    ]
    .into_iter()
    .map(|(k, (c, s))| (k.to_string(), (c, s.to_string())))
    .collect()
}

#[test]
fn every_vector_gets_its_verdict_from_the_binary() {
    let dir = vectors();
    if std::env::var_os("OBSERVER_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        let (good, key, vkey) = good();
        write_zip(&good, &dir.join("good.zip"));
        for (name, p) in variants(&good) {
            write_zip(&p, &dir.join(format!("{name}.zip")));
        }
        let expected = Expected {
            coordinator_key: key,
            witness: vkey,
            verdicts: expected_verdicts(),
        };
        std::fs::write(dir.join("expected.json"), json(&expected)).unwrap();
    }
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.verdicts, expected_verdicts());
    for (file, (code, phrase)) in &expected.verdicts {
        let out = Command::new(env!("CARGO_BIN_EXE_observer-verify"))
            .arg(dir.join(file))
            .args(["--coordinator-key", &expected.coordinator_key])
            .args(["--witness", &expected.witness])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(*code), "{file}: {text}");
        if *code == 0 {
            assert!(text.contains("PASSED"), "{file}: {text}");
            assert!(
                text.contains("5 of 5 records signed by their enrolled device"),
                "{file}: {text}"
            );
            assert!(
                text.contains("4 records were in the log of 5 records that the witnesses cosigned"),
                "{file}: {text}"
            );
        } else {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("FAIL") && l.contains(phrase.as_str())),
                "{file}: wanted a FAIL naming {phrase:?}: {text}"
            );
        }
    }
}

#[test]
fn what_is_not_a_package_is_refused_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.zip");
    std::fs::write(&junk, b"not a zip archive").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_observer-verify"))
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable ZIP archive"));
    // A path that climbs out of the package.
    let climbing = dir.path().join("climb.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&climbing).unwrap());
    zip.start_file("../evil.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"{}").unwrap();
    zip.finish().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_observer-verify"))
        .arg(&climbing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a path inside the package"));
}
