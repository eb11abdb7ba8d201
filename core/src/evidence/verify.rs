//! Checking a package offline (`docs/evidence.md`, "Verifying"). Each
//! check adds a [`Finding`]; a package passes when none failed. Nothing
//! here trusts the package's own word where it can be checked: the
//! coordinator's key is the one the caller pins when given, ids are
//! recomputed, signatures verified, proofs led to the signed roots.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Package;
use super::audit::{DEVICE_ENROLLED, DEVICE_REVOKED, Entry, PVT_SAMPLE_DRAWN};
use super::layout::{
    CHECKPOINT_FILE, DeviceFile, FORMAT, MANIFEST_FILE, Manifest, PVT_COMMITMENTS_FILE,
    PVT_SAMPLE_FILE, RecordFile, WITNESSED_FILE, device_path, media_path, record_path,
};
use crate::identity::PublicKey;
use crate::merkle::{
    Checkpoint, TreeHead, TrustedWitness, leaf_hash, origin_of, verify_consistency,
    verify_inclusion,
};
use crate::protocol::{RECEIPT_DOMAIN, Receipt, Signed};
use crate::record::{
    ChainFault, Envelope, Sha256Digest, VerifiedRecord, verify_chain, verify_envelope,
};

/// What the verifier trusts from outside the package.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// The coordinator's key as the organisation publishes it; without
    /// it, the key the package states is used and the report says so.
    pub coordinator: Option<PublicKey>,
    /// The witnesses the verifier trusts; without them, the ones the
    /// package names (the coordinator's choice) are checked.
    pub witnesses: Option<Vec<TrustedWitness>>,
}

/// One check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked (a file, a record, a device).
    pub subject: String,
    /// Whether it held.
    pub ok: bool,
    /// What was found, in words.
    pub detail: String,
}

/// What a verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check, in the order made.
    pub findings: Vec<Finding>,
    /// Records in the package.
    pub records: u64,
    /// Records whose signature, id and inclusion all verified.
    pub records_verified: u64,
    /// Records left sealed (their inclusion verified, their content not).
    pub sealed: u64,
    /// Records in the log no later than the witnesses' cosignature.
    pub witnessed_records: u64,
    /// Each verified record's time bracket from the receipts, where one
    /// bounds it (the plain report states them in sum).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<RecordTime>,
}

/// When a record was made and received, as the coordinator's signed
/// receipts in the package bound it (ms since the epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordTime {
    /// The record.
    pub id: crate::record::RecordId,
    /// Made after this: the `server_time_ms` of the receipt its clock names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_after_ms: Option<i64>,
    /// Received no later than this: the `server_time_ms` of the first
    /// receipt that acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_by_ms: Option<i64>,
}

impl Report {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.ok)
    }

    fn ok(&mut self, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            subject: subject.into(),
            ok: true,
            detail: detail.into(),
        });
    }

    fn fail(&mut self, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            subject: subject.into(),
            ok: false,
            detail: detail.into(),
        });
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Checks `package` against `trust`.
pub fn verify(package: &Package, trust: &Trust) -> Report {
    let mut r = Report::default();
    let Some(manifest) = manifest(package, &mut r) else {
        return r;
    };
    files(package, &manifest, &mut r);
    let Some(key) = coordinator(&manifest, trust, &mut r) else {
        return r;
    };
    let Some(head) = checkpoint(package, &key, &mut r) else {
        return r;
    };
    let witnessed = witnessed(package, &manifest, trust, &key, head, &mut r);
    let keys = devices(package, &manifest, &key, &mut r);
    let receipts = receipts(package, &key, &mut r);
    let results = records(
        package, &manifest, &keys, &receipts, head, witnessed, &mut r,
    );
    media(package, &manifest, &mut r);
    pvt(package, &key, &results, &mut r);
    r
}

fn manifest(package: &Package, r: &mut Report) -> Option<Manifest> {
    let Some(bytes) = package.files.get(MANIFEST_FILE) else {
        r.fail(MANIFEST_FILE, "missing: this is not an evidence package");
        return None;
    };
    match serde_json::from_slice::<Manifest>(bytes) {
        Ok(m) if m.format == FORMAT => {
            r.ok(
                MANIFEST_FILE,
                format!(
                    "{FORMAT}, organisation {}, made {} ({})",
                    m.org,
                    time(m.created_at_ms),
                    m.selection
                ),
            );
            Some(m)
        }
        Ok(m) => {
            r.fail(
                MANIFEST_FILE,
                format!("format {:?}; this verifier reads {FORMAT}", m.format),
            );
            None
        }
        Err(e) => {
            r.fail(MANIFEST_FILE, format!("not a manifest: {e}"));
            None
        }
    }
}

/// Every file the manifest lists is there with its hash, and nothing else is.
fn files(package: &Package, manifest: &Manifest, r: &mut Report) {
    let mut bad = 0;
    for (name, expected) in &manifest.files {
        match package.files.get(name) {
            None => {
                bad += 1;
                r.fail(name, "listed in the manifest but missing");
            }
            Some(bytes) if Sha256Digest::of(bytes) != *expected => {
                bad += 1;
                r.fail(
                    name,
                    "altered: its SHA-256 is not the one the manifest lists",
                );
            }
            Some(_) => {}
        }
    }
    for name in package.files.keys() {
        if name != MANIFEST_FILE && !manifest.files.contains_key(name) {
            bad += 1;
            r.fail(name, "not listed in the manifest");
        }
    }
    if bad == 0 {
        r.ok(
            "files",
            format!(
                "all {} files are the ones the manifest lists",
                manifest.files.len()
            ),
        );
    }
}

fn coordinator(manifest: &Manifest, trust: &Trust, r: &mut Report) -> Option<PublicKey> {
    let stated: Option<PublicKey> = manifest.coordinator_key.parse().ok();
    match (trust.coordinator, stated) {
        (Some(pinned), Some(stated)) if pinned == stated => {
            r.ok("coordinator key", format!("{pinned}, as pinned"));
            Some(pinned)
        }
        (Some(pinned), _) => {
            r.fail(
                "coordinator key",
                format!(
                    "the package names {} but the key given is {pinned}",
                    manifest.coordinator_key
                ),
            );
            None
        }
        (None, Some(stated)) => {
            r.ok(
                "coordinator key",
                format!(
                    "{stated}, as the package states it (not pinned: compare it with the key the organisation publishes)"
                ),
            );
            Some(stated)
        }
        (None, None) => {
            r.fail("coordinator key", "the manifest's key is not a key");
            None
        }
    }
}

fn checkpoint(package: &Package, key: &PublicKey, r: &mut Report) -> Option<TreeHead> {
    let Some(note) = package.files.get(CHECKPOINT_FILE) else {
        r.fail(CHECKPOINT_FILE, "missing");
        return None;
    };
    match Checkpoint::open(note, &origin_of(key), key) {
        Ok(c) => {
            r.ok(
                CHECKPOINT_FILE,
                format!(
                    "signed by the coordinator: log {} of {} records",
                    c.origin, c.head.size
                ),
            );
            Some(c.head)
        }
        Err(e) => {
            r.fail(
                CHECKPOINT_FILE,
                format!("not the coordinator's checkpoint: {e}"),
            );
            None
        }
    }
}

/// The witnessed head and the earliest time all trusted witnesses vouch
/// for, when the package has one that holds.
fn witnessed(
    package: &Package,
    manifest: &Manifest,
    trust: &Trust,
    key: &PublicKey,
    head: TreeHead,
    r: &mut Report,
) -> Option<(TreeHead, u64)> {
    let part = manifest.witnessed.as_ref()?;
    let Some(note) = package.files.get(WITNESSED_FILE) else {
        r.fail(WITNESSED_FILE, "named by the manifest but missing");
        return None;
    };
    let w = match Checkpoint::open(note, &origin_of(key), key) {
        Ok(c) => c.head,
        Err(e) => {
            r.fail(
                WITNESSED_FILE,
                format!("not the coordinator's checkpoint: {e}"),
            );
            return None;
        }
    };
    let witnesses: Vec<TrustedWitness> = match &trust.witnesses {
        Some(w) => w.clone(),
        None => manifest
            .witnesses
            .iter()
            .filter_map(|v| TrustedWitness::from_vkey(v).ok())
            .collect(),
    };
    let mut latest = 0u64;
    let mut names = Vec::new();
    for witness in &witnesses {
        match witness.cosigned_at(note) {
            Ok(Some(t)) => {
                latest = latest.max(t);
                names.push(witness.name.clone());
            }
            Ok(None) => r.fail(
                WITNESSED_FILE,
                format!("no cosignature of witness {}", witness.name),
            ),
            Err(e) => r.fail(WITNESSED_FILE, e.to_string()),
        }
    }
    if names.is_empty() || names.len() != witnesses.len() {
        return None;
    }
    let extends = if w.size == head.size {
        w.root == head.root
    } else {
        part.consistency
            .as_ref()
            .filter(|p| p.from == w.size && p.to == head.size)
            .is_some_and(|p| {
                w.size > 0
                    && verify_consistency(w.size, head.size, &w.root, &head.root, &p.proof).is_ok()
            })
    };
    if !extends {
        r.fail(
            WITNESSED_FILE,
            format!(
                "the checkpoint of {} records does not extend the witnessed one of {}",
                head.size, w.size
            ),
        );
        return None;
    }
    r.ok(
        WITNESSED_FILE,
        format!(
            "{} records cosigned by {} by {}; the checkpoint extends it",
            w.size,
            names.join(", "),
            time(latest as i64 * 1000)
        ),
    );
    Some((w, latest))
}

/// A device as the coordinator's signed audit entries attest it.
struct Enrolled {
    key: PublicKey,
    /// When the coordinator revoked it, if it did (its earliest
    /// revocation entry).
    revoked_at_ms: Option<i64>,
}

/// The devices whose key the coordinator's signed `device.enrolled` entry
/// names: only their records count as signed by an enrolled device.
fn devices(
    package: &Package,
    manifest: &Manifest,
    coordinator: &PublicKey,
    r: &mut Report,
) -> BTreeMap<String, Enrolled> {
    let mut keys = BTreeMap::new();
    for device in &manifest.devices {
        let path = device_path(device);
        let parsed = package
            .files
            .get(&path)
            .and_then(|b| serde_json::from_slice::<DeviceFile>(b).ok());
        let Some(file) = parsed else {
            r.fail(&path, "missing or not a device file");
            continue;
        };
        let key = match file.key.parse::<PublicKey>() {
            Ok(key) if key.device_id().as_str() == device && file.device == *device => key,
            _ => {
                r.fail(&path, "its key is not the key of the device it names");
                continue;
            }
        };
        // The coordinator's own signed account of the device: its audit
        // entries, each re-hashed and its signature checked.
        let mut actions = Vec::new();
        let mut enrolled = false;
        let mut revoked_at_ms: Option<i64> = None;
        for entry in &file.audit {
            match serde_json::from_value::<Entry>(entry.clone()) {
                Ok(e) if e.subject == *device && e.holds(coordinator) => {
                    if e.action == DEVICE_ENROLLED
                        && e.detail_field("key").as_deref() == Some(file.key.as_str())
                    {
                        enrolled = true;
                    }
                    if e.action == DEVICE_REVOKED {
                        revoked_at_ms = Some(revoked_at_ms.map_or(e.at_ms, |t| t.min(e.at_ms)));
                    }
                    actions.push(format!(
                        "{} {} (audit entry {})",
                        e.action,
                        time(e.at_ms),
                        e.seq
                    ));
                }
                Ok(e) => r.fail(
                    &path,
                    format!(
                        "audit entry {} is altered, not the coordinator's, or about another device",
                        e.seq
                    ),
                ),
                Err(_) => r.fail(&path, "an audit entry is not one"),
            }
        }
        if !enrolled {
            r.fail(
                &path,
                format!(
                    "not enrolled: no {DEVICE_ENROLLED} audit entry signed by the coordinator names this key"
                ),
            );
            continue;
        }
        r.ok(format!("device {device}"), actions.join("; "));
        keys.insert(device.clone(), Enrolled { key, revoked_at_ms });
    }
    r.ok(
        "devices",
        format!("devices enrolled by the coordinator: {}", keys.len()),
    );
    keys
}

/// The package's receipts whose signature holds, by the hash of their
/// body.
type Receipts = BTreeMap<String, Receipt>;

/// Each `receipts/<hash>.json`: named for its body's SHA-256 and signed by
/// the coordinator.
fn receipts(package: &Package, coordinator: &PublicKey, r: &mut Report) -> Receipts {
    let mut out = Receipts::new();
    for (name, bytes) in package.files.range("receipts/".to_string()..) {
        let Some(rest) = name.strip_prefix("receipts/") else {
            break;
        };
        let Some(hash) = rest.strip_suffix(".json") else {
            r.fail(name, "not a receipt file name");
            continue;
        };
        let opened = serde_json::from_slice::<Signed>(bytes)
            .ok()
            .filter(|s| Sha256Digest::of(&s.body).to_string() == hash)
            .map(|s| s.open::<Receipt>("receipt", RECEIPT_DOMAIN, coordinator));
        match opened {
            Some(Ok(receipt)) => {
                out.insert(hash.to_string(), receipt);
            }
            Some(Err(e)) => r.fail(name, format!("not the coordinator's receipt: {e}")),
            None => r.fail(name, "not a receipt whose body's SHA-256 is its name"),
        }
    }
    if !out.is_empty() {
        r.ok(
            "receipts",
            format!("{} receipts signed by the coordinator", out.len()),
        );
    }
    out
}

/// When a record was made and received, as the receipts in the package
/// bracket it.
#[derive(Default)]
struct Brackets {
    /// Records made after a receipt the package holds.
    after: u64,
    /// Records acknowledged by a receipt the package holds.
    acknowledged: u64,
    /// Records whose clock names a receipt the package does not hold.
    after_not_held: u64,
    /// The single record's bracket, said in words (for a one-record package).
    said: Option<String>,
}

/// A verified record's place in a quick count: its station, and when the
/// coordinator says it arrived.
struct Protocol {
    station: String,
    received_at_ms: i64,
}

/// Checks every record; answers the verified results protocols.
fn records(
    package: &Package,
    manifest: &Manifest,
    keys: &BTreeMap<String, Enrolled>,
    receipts: &Receipts,
    head: TreeHead,
    witnessed: Option<(TreeHead, u64)>,
    r: &mut Report,
) -> Vec<Protocol> {
    let mut results = Vec::new();
    let mut brackets = Brackets::default();
    // The receipt that first acknowledged each record: its time and the
    // index it gave.
    let mut acks: BTreeMap<&crate::record::RecordId, (i64, u64, &str)> = BTreeMap::new();
    for (hash, receipt) in receipts {
        for ack in receipt.accepted.iter().chain(&receipt.already) {
            let at = (receipt.server_time_ms, ack.index, hash.as_str());
            acks.entry(&ack.id)
                .and_modify(|held| {
                    if at.0 < held.0 {
                        *held = at;
                    }
                })
                .or_insert(at);
        }
    }
    let mut chains: BTreeMap<&str, Vec<VerifiedRecord>> = BTreeMap::new();
    for id in &manifest.records {
        r.records += 1;
        let path = record_path(id);
        let Some(file) = package
            .files
            .get(&path)
            .and_then(|b| serde_json::from_slice::<RecordFile>(b).ok())
        else {
            r.fail(&path, "missing or not a record file");
            continue;
        };
        if file.id != *id {
            r.fail(&path, "it holds another record");
            continue;
        }
        let p = &file.inclusion;
        if p.index != file.index
            || p.size != head.size
            || verify_inclusion(
                file.index,
                head.size,
                &leaf_hash(id.as_bytes()),
                &p.proof,
                &head.root,
            )
            .is_err()
        {
            r.fail(
                &path,
                format!(
                    "not in the log at index {} under the checkpoint",
                    file.index
                ),
            );
            continue;
        }
        if witnessed.is_some_and(|(w, _)| file.index < w.size) {
            r.witnessed_records += 1;
        }
        let Some(wire) = &file.envelope else {
            r.sealed += 1;
            continue;
        };
        let Some(device) = keys.get(&file.device) else {
            r.fail(
                &path,
                format!(
                    "its device {} is not in the package or not enrolled",
                    file.device
                ),
            );
            continue;
        };
        if let Some(at) = device.revoked_at_ms.filter(|at| file.received_at_ms > *at) {
            r.fail(
                &path,
                format!(
                    "received {}, after the coordinator revoked its device ({})",
                    time(file.received_at_ms),
                    time(at)
                ),
            );
            continue;
        }
        let Some(envelope): Option<Envelope> = wire.envelope() else {
            r.fail(&path, "its signature is not 64 bytes");
            continue;
        };
        if envelope.id() != *id {
            r.fail(&path, "altered: the body's SHA-256 is not the record's id");
            continue;
        }
        match verify_envelope(&envelope, &device.key) {
            Ok(v) => {
                if !bracket(&file, &v, receipts, acks.get(id).copied(), &mut brackets, r) {
                    continue;
                }
                r.records_verified += 1;
                if v.body.kind.as_str() == "results" {
                    results.push(Protocol {
                        station: v.body.station.as_str().to_string(),
                        received_at_ms: file.received_at_ms,
                    });
                }
                chains
                    .entry(keys.get_key_value(&file.device).expect("held").0)
                    .or_default()
                    .push(v);
            }
            Err(e) => r.fail(&path, e.to_string()),
        }
    }
    r.ok(
        "records",
        format!(
            "{} of {} records signed by their enrolled device, unaltered, and in the log ({} left sealed: in the log, content not shown)",
            r.records_verified, r.records, r.sealed
        ),
    );
    if brackets.after + brackets.acknowledged + brackets.after_not_held > 0 {
        r.ok(
            "time bracket",
            format!(
                "{} records made after the signed receipt their clock names; {} received no later than the signed receipt that acknowledged them{}",
                brackets.after,
                brackets.acknowledged,
                if brackets.after_not_held > 0 {
                    format!(
                        "; {} name a receipt this package does not hold",
                        brackets.after_not_held
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
    if let (Some(said), 1) = (brackets.said.take(), r.records) {
        r.ok("time bracket", said);
    }
    if let Some((w, t)) = witnessed {
        r.ok(
            "received no later than",
            format!(
                "{} records were in the log of {} records that the witnesses cosigned by {}",
                r.witnessed_records,
                w.size,
                time(t as i64 * 1000)
            ),
        );
    }
    for (device, mut records) in chains {
        records.sort_by_key(|v| v.body.seq);
        let report = verify_chain(records.iter(), None);
        let mut broken = false;
        for fault in &report.faults {
            match fault {
                // A selection leaves records out: gaps are stated, not faults.
                ChainFault::Missing { range } => r.ok(
                    format!("device {device}"),
                    format!("records {range} are not in this package"),
                ),
                other => {
                    broken = true;
                    r.fail(format!("device {device}"), other.to_string());
                }
            }
        }
        if !broken {
            r.ok(
                format!("device {device}"),
                format!("{} records, each linked to the one before", report.records),
            );
        }
    }
    results
}

/// The receipts' bracket of one verified record: made after the receipt
/// its clock names, received no later than the receipt that acknowledged
/// it (which must name the record's place in the log). `false` when they
/// contradict it.
fn bracket(
    file: &RecordFile,
    record: &VerifiedRecord,
    receipts: &Receipts,
    ack: Option<(i64, u64, &str)>,
    b: &mut Brackets,
    r: &mut Report,
) -> bool {
    let path = record_path(&file.id);
    let mut lower = None;
    if let Some(after) = &record.body.clock.after {
        match receipts.get(&after.to_string()) {
            Some(receipt) if receipt.device != record.body.device => {
                r.fail(
                    &path,
                    format!("its clock names receipt {after}, which was sent to another device"),
                );
                return false;
            }
            Some(receipt) => {
                b.after += 1;
                lower = Some(receipt.server_time_ms);
            }
            None => b.after_not_held += 1,
        }
    }
    let mut upper = None;
    if let Some((at, index, hash)) = ack {
        if index != file.index {
            r.fail(
                &path,
                format!(
                    "receipt {hash} acknowledged it at log index {index}, not {}",
                    file.index
                ),
            );
            return false;
        }
        b.acknowledged += 1;
        upper = Some(at);
    }
    if let (Some(lo), Some(hi)) = (lower, upper)
        && lo > hi
    {
        r.fail(
            &path,
            format!(
                "made after a receipt of {} but acknowledged by one of {}: impossible",
                time(lo),
                time(hi)
            ),
        );
        return false;
    }
    if lower.is_some() || upper.is_some() {
        r.times.push(RecordTime {
            id: file.id,
            made_after_ms: lower,
            received_by_ms: upper,
        });
    }
    let said = match (lower, upper) {
        (Some(lo), Some(hi)) => format!(
            "record {}: made after {} and received no later than {} (the coordinator's signed receipts)",
            file.id,
            time(lo),
            time(hi)
        ),
        (Some(lo), None) => format!("record {}: made after {}", file.id, time(lo)),
        (None, Some(hi)) => format!("record {}: received no later than {}", file.id, time(hi)),
        (None, None) => format!("record {}: no receipt brackets it", file.id),
    };
    b.said = Some(said);
    true
}

fn media(package: &Package, manifest: &Manifest, r: &mut Report) {
    let mut held = 0;
    let mut named: BTreeSet<Sha256Digest> = BTreeSet::new();
    for entry in &manifest.media {
        named.insert(entry.sha256);
        if !entry.included {
            continue;
        }
        let path = media_path(&entry.sha256);
        match package.files.get(&path) {
            Some(bytes) if Sha256Digest::of(bytes) == entry.sha256 => held += 1,
            Some(_) => r.fail(&path, "altered: its SHA-256 is not its name"),
            None => r.fail(&path, "listed as included but missing"),
        }
    }
    if !named.is_empty() {
        r.ok(
            "media",
            format!(
                "{held} of {} media files included and matching the hashes the records sign",
                named.len()
            ),
        );
    }
}

/// The quick-count sample's commitments (the coordinator's signed
/// `pvt.sample_drawn` entries), the sample itself against the newest of
/// them, and the results protocols in the package from sampled stations.
fn pvt(package: &Package, coordinator: &PublicKey, results: &[Protocol], r: &mut Report) {
    let sample = package.files.get(PVT_SAMPLE_FILE);
    let Some(bytes) = package.files.get(PVT_COMMITMENTS_FILE) else {
        if sample.is_some() {
            r.fail(PVT_SAMPLE_FILE, "a quick-count sample with no commitment");
        }
        return;
    };
    let Ok(entries) = serde_json::from_slice::<Vec<Entry>>(bytes) else {
        r.fail(PVT_COMMITMENTS_FILE, "not a list of audit entries");
        return;
    };
    let mut newest: Option<&Entry> = None;
    for e in &entries {
        let digest = e.detail_field("digest");
        if e.action != PVT_SAMPLE_DRAWN
            || digest.as_deref() != Some(e.subject.as_str())
            || !e.holds(coordinator)
        {
            r.fail(
                PVT_COMMITMENTS_FILE,
                format!(
                    "audit entry {} is altered, not the coordinator's, or not a sample's commitment",
                    e.seq
                ),
            );
            continue;
        }
        let field = |name| e.detail_field(name).unwrap_or_else(|| "?".into());
        let replaces = e
            .detail_field("replaces")
            .map(|d| format!(", replacing sample {d}"))
            .unwrap_or_default();
        r.ok(
            "quick-count sample",
            format!(
                "{} committed {} (audit entry {}): {} stations drawn with seed {:?} from registry version {} ({}), {} results protocols held then{replaces}",
                e.subject,
                time(e.at_ms),
                e.seq,
                field("stations"),
                field("seed"),
                field("registry_version"),
                field("registry_digest"),
                field("results_held"),
            ),
        );
        if newest.is_none_or(|n| e.seq > n.seq) {
            newest = Some(e);
        }
    }
    let Some(newest) = newest else {
        return;
    };
    let Some(text) = sample else {
        r.ok(
            "quick-count sample",
            "its station list is not in this package",
        );
        return;
    };
    if Sha256Digest::of(text).to_string() != newest.subject {
        r.fail(
            PVT_SAMPLE_FILE,
            format!(
                "altered: its SHA-256 is not the committed sample's {}",
                newest.subject
            ),
        );
        return;
    }
    let sampled = sampled_stations(text);
    let mut in_sample = 0;
    let mut before = 0;
    for p in results.iter().filter(|p| sampled.contains(&p.station)) {
        in_sample += 1;
        if p.received_at_ms < newest.at_ms {
            before += 1;
        }
    }
    r.ok(
        PVT_SAMPLE_FILE,
        format!(
            "the committed sample of {} stations; {in_sample} results protocols in this package are from sampled stations, {}",
            sampled.len(),
            if before == 0 {
                "none received before the sample was committed".to_string()
            } else {
                format!("{before} of them received before the sample was committed")
            }
        ),
    );
}

/// The station ids of a sample's canonical text (`station "<id>"
/// "<stratum>"` lines, each string in JSON quoting).
fn sampled_stations(text: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|l| l.strip_prefix("station "))
        .filter_map(|rest| {
            let mut parts = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            parts.next()?.ok()
        })
        .collect()
}
