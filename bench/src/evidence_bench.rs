//! Issue 18's evidence figures: checking a package of many records with
//! the real reader and verifier (`observer-verify`'s), and the package's
//! size per record, beside the floor the checks cannot go under, measured
//! in the same run: one Ed25519 verification and one SHA-256 of each body,
//! and the inclusion proofs' hashing, with everything already in memory.
//!
//! The package is made the way `observer-server evidence export` lays it
//! out (records of many devices, each chained, in one RFC 6962 log under a
//! signed checkpoint, each with its inclusion proof) and written with the
//! server's own ZIP writer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use observer_core::evidence::audit::{DEVICE_ENROLLED, Entry};
use observer_core::evidence::layout::{device_path, receipt_path, record_path};
use observer_core::evidence::{
    CHECKPOINT_FILE, DeviceFile, FORMAT, MANIFEST_FILE, Manifest, Package, RecordFile, Trust,
    verify,
};
use observer_core::identity::SigningKey;
use observer_core::merkle::{
    Checkpoint, Frontier, NodeId, ProofPlan, TreeHead, leaf_hash, origin_of, tree_hash,
    verify_inclusion,
};
use observer_core::protocol::{Ack, InclusionProof, RECEIPT_DOMAIN, Receipt, Signed, WireRecord};
use observer_core::record::{
    ChainPosition, Envelope, NewRecord, SIGNING_DOMAIN, Sha256Digest, sign_record,
};

use crate::report::machine;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("serialises")
}

/// Records a phone sends per sync in the package: each sync's receipt
/// acknowledges them, and the phone's next records name it.
const PER_SYNC: usize = 10;

/// A package of `records` records from `devices` devices, interleaved in
/// the log as phones' syncs interleave them, with the receipts that
/// bracket them (one per sync of [`PER_SYNC`] records).
fn package(records: usize, devices: usize) -> Result<(Package, SigningKey)> {
    let coordinator = SigningKey::generate()?;
    let keys: Vec<SigningKey> = (0..devices)
        .map(|_| SigningKey::generate())
        .collect::<std::result::Result<_, _>>()?;
    let mut positions: Vec<ChainPosition> = keys.iter().map(ChainPosition::first).collect();
    let mut envelopes: Vec<(usize, Envelope)> = Vec::with_capacity(records);
    let mut unacknowledged: Vec<Vec<Ack>> = vec![Vec::new(); devices];
    let mut receipts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut log = Frontier::new();
    for i in 0..records {
        let d = i % devices;
        let new = NewRecord::builder("KZ-0001", "voting", 1, "checklist")
            .payload(serde_json::json!({"n": i, "queue": i % 17, "note": "ballot box sealed, observers admitted"}))
            .build()?;
        let env = sign_record(&new, &positions[d], &keys[d])?;
        log.push(leaf_hash(env.id().as_bytes()));
        unacknowledged[d].push(Ack {
            id: env.id(),
            seq: positions[d].seq,
            index: i as u64,
        });
        positions[d] = positions[d].after(env.id());
        if unacknowledged[d].len() == PER_SYNC {
            let signed = Signed::sign(
                RECEIPT_DOMAIN,
                &Receipt {
                    org: "observers".into(),
                    device: keys[d].public_key().device_id(),
                    server_time_ms: i as i64,
                    accepted: std::mem::take(&mut unacknowledged[d]),
                    already: vec![],
                    rejected: vec![],
                    tree: TreeHead {
                        size: log.size(),
                        root: log.root(),
                    },
                },
                &coordinator,
            );
            let hash = Sha256Digest::of(&signed.body);
            positions[d].clock.after = Some(hash);
            receipts.insert(receipt_path(&hash), json(&signed));
        }
        envelopes.push((d, env));
    }
    let leaves: Vec<Sha256Digest> = envelopes
        .iter()
        .map(|(_, e)| leaf_hash(e.id().as_bytes()))
        .collect();
    let size = leaves.len() as u64;
    let head = TreeHead {
        size,
        root: tree_hash(&leaves),
    };
    // The hashes the server keeps (each leaf, and the nodes at every
    // fourth level), from which it makes each proof as the server does.
    let mut stored: HashMap<NodeId, Sha256Digest> = HashMap::new();
    let mut frontier = Frontier::new();
    let mut kept = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        stored.insert(
            NodeId {
                level: 0,
                index: i as u64,
            },
            *leaf,
        );
        frontier.push_keeping(*leaf, &mut kept);
    }
    stored.extend(kept);
    let mut files: BTreeMap<String, Vec<u8>> = receipts;
    files.insert(
        CHECKPOINT_FILE.into(),
        Checkpoint {
            origin: origin_of(&coordinator.public_key()),
            head,
        }
        .sign(&coordinator)?,
    );
    // Each device with the coordinator's signed enrollment entry.
    for (n, key) in keys.iter().enumerate() {
        let id = key.public_key().device_id().to_string();
        let detail = serde_json::json!({ "key": key.public_key().to_string() }).to_string();
        let entry = Entry {
            seq: n as u64 + 1,
            at_ms: 0,
            actor: "enrollment code".into(),
            action: DEVICE_ENROLLED.into(),
            subject: id.clone(),
            detail,
            prev: Sha256Digest::of(&n.to_be_bytes()),
            hash: Sha256Digest::from_bytes([0; 32]),
            sig: String::new(),
        }
        .seal(&coordinator);
        files.insert(
            device_path(&id),
            json(&DeviceFile {
                device: id.clone(),
                key: key.public_key().to_string(),
                enrolled_at_ms: 0,
                revoked_at_ms: None,
                audit: vec![serde_json::to_value(&entry)?],
            }),
        );
    }
    for (index, (d, env)) in envelopes.iter().enumerate() {
        let file = RecordFile {
            id: env.id(),
            device: keys[*d].public_key().device_id().to_string(),
            index: index as u64,
            received_at_ms: 0,
            envelope: Some(WireRecord::from(env)),
            inclusion: InclusionProof {
                index: index as u64,
                size,
                proof: ProofPlan::inclusion(index as u64, size)?.assemble(&stored)?,
            },
        };
        files.insert(record_path(&env.id()), json(&file));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        org: "observers".into(),
        coordinator_key: coordinator.public_key().to_string(),
        created_at_ms: 0,
        selection: "every record".into(),
        witnesses: vec![],
        witnessed: None,
        devices: keys
            .iter()
            .map(|k| k.public_key().device_id().to_string())
            .collect(),
        records: envelopes.iter().map(|(_, e)| e.id()).collect(),
        media: vec![],
        forms: vec![],
        files: files
            .iter()
            .map(|(n, b)| (n.clone(), Sha256Digest::of(b)))
            .collect(),
    };
    files.insert(MANIFEST_FILE.into(), json(&manifest));
    Ok((Package { files }, coordinator))
}

/// The floor: each body hashed and its signature verified, and each
/// inclusion proof's hashing, all from memory.
fn floor(
    p: &Package,
    keys: &BTreeMap<String, observer_core::identity::PublicKey>,
    root: &Sha256Digest,
) -> Duration {
    let records: Vec<RecordFile> = p
        .files
        .iter()
        .filter(|(n, _)| n.starts_with("records/"))
        .map(|(_, b)| serde_json::from_slice(b).expect("a record file"))
        .collect();
    let t = Instant::now();
    for r in &records {
        let env = r.envelope.as_ref().expect("opened");
        let id = Sha256Digest::of(&env.body);
        let key = &keys[&r.device];
        let mut m = SIGNING_DOMAIN.to_vec();
        m.extend_from_slice(&env.body);
        assert!(key.verify(&m, &env.sig));
        let ok = verify_inclusion(
            r.index,
            r.inclusion.size,
            &leaf_hash(id.as_bytes()),
            &r.inclusion.proof,
            root,
        );
        assert!(ok.is_ok());
    }
    t.elapsed()
}

/// Runs the benchmark and returns its section of `docs/benchmarks.md`.
pub fn run(scratch: &Path, records: usize, devices: usize, command: &str) -> Result<String> {
    let (package, coordinator) = package(records, devices)?;
    let keys: BTreeMap<String, observer_core::identity::PublicKey> = package
        .files
        .iter()
        .filter(|(n, _)| n.starts_with("devices/"))
        .map(|(_, b)| {
            let d: DeviceFile = serde_json::from_slice(b).expect("a device file");
            (d.device.clone(), d.key.parse().expect("a key"))
        })
        .collect();
    let dir = tempfile::tempdir_in(scratch)?;
    let path = dir.path().join("package.zip");
    let t = Instant::now();
    observer_server::evidence::write_file(&package, &path)?;
    let write = t.elapsed();
    let bytes = std::fs::metadata(&path)?.len();
    let t = Instant::now();
    let read = observer_verify::read_package(&path)?;
    let read_time = t.elapsed();
    let trust = Trust {
        coordinator: Some(coordinator.public_key()),
        witnesses: None,
    };
    let t = Instant::now();
    let report = verify(&read, &trust);
    let verify_time = t.elapsed();
    if !report.passed() || report.records_verified != records as u64 {
        return Err(format!("the package did not verify: {:?}", report.failures().next()).into());
    }
    let key = coordinator.public_key();
    let root = Checkpoint::open(&read.files[CHECKPOINT_FILE], &origin_of(&key), &key)?
        .head
        .root;
    let floor_time = floor(&read, &keys, &root);
    let per_s = |d: Duration| records as f64 / d.as_secs_f64();
    Ok(format!(
        "## Evidence packages (issue 18)\n\n\
         {machine}\n\
         Command: `{command}`\n\n\
         A package of {records} records from {devices} phones (each record's chain, \
         body, signature and RFC 6962 inclusion proof in a log of {records}; a signed \
         receipt per sync of {PER_SYNC} records, which the phone's next records name), laid out as \
         `observer-server evidence export` writes it, written with its ZIP writer and \
         checked with `observer-verify`'s reader and verifier on one core.\n\n\
         | | Figure |\n|---|---|\n\
         | Package size | {mib:.1} MiB, {per_record} bytes per record |\n\
         | Writing the ZIP (stored entries, fsync, rename) | {write_ms:.0} ms |\n\
         | Reading it back (`read_package`) | {read_ms:.0} ms |\n\
         | Verifying every check (`verify`) | {verify_ms:.0} ms, {verify_rate:.0} records/s |\n\
         | Floor: SHA-256 of each body, its Ed25519 signature, its inclusion proof, from memory | {floor_ms:.0} ms, {floor_rate:.0} records/s |\n\
         | Share of the floor reached | {share:.0}% |\n\n\
         The verifier's extra cost over the floor is parsing each JSON file and \
         body, the manifest's SHA-256 of every file, the receipts' signatures (one per \
         sync) and the chains.\n",
        machine = machine(scratch),
        mib = bytes as f64 / (1024.0 * 1024.0),
        per_record = bytes / records as u64,
        write_ms = write.as_secs_f64() * 1e3,
        read_ms = read_time.as_secs_f64() * 1e3,
        verify_ms = verify_time.as_secs_f64() * 1e3,
        verify_rate = per_s(verify_time),
        floor_ms = floor_time.as_secs_f64() * 1e3,
        floor_rate = per_s(floor_time),
        share = 100.0 * floor_time.as_secs_f64() / verify_time.as_secs_f64(),
    ))
}
