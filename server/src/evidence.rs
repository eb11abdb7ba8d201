//! `observer-server evidence export`: an evidence package
//! (`docs/evidence.md`) of the records a selection names, with what an
//! outsider needs to check them without trusting this server: the device
//! keys and the audit entries that enrolled and revoked them, a checkpoint
//! signed by the coordinator with an inclusion proof for every record, the
//! newest witnessed checkpoint with the proof that the checkpoint extends
//! it, the forms the records name, the media files (or their hashes), and
//! the quick-count sample with its signed commitments.
//! The package is written as a ZIP archive of stored (uncompressed) files,
//! which every operating system opens.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, Write};
use std::path::Path;

use observer_core::evidence::audit::PVT_SAMPLE_DRAWN;
use observer_core::evidence::layout::{
    device_path, form_path, media_path, receipt_path, record_path,
};
use observer_core::evidence::{
    CHECKPOINT_FILE, DeviceFile, FORMAT, MANIFEST_FILE, Manifest, MediaEntry, PVT_COMMITMENTS_FILE,
    PVT_SAMPLE_FILE, Package, RecordFile, WITNESSED_FILE, Witnessed,
};
use observer_core::identity::DeviceId;
use observer_core::protocol::{Receipt, WireRecord};
use observer_core::record::{Body, Sha256Digest};

use crate::coordinator::Coordinator;
use crate::integrity::{DeviceKeys, check_row};
use crate::storage::{RecordFilter, RecordRow, StorageError};

/// What to put in a package.
#[derive(Clone, Debug)]
pub enum Selection {
    /// One record, by id.
    Record(observer_core::record::RecordId),
    /// A station's records.
    Station(String),
    /// A device's records.
    Device(DeviceId),
    /// Every record.
    All,
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Record(id) => write!(f, "record {id}"),
            Selection::Station(s) => write!(f, "station {s}"),
            Selection::Device(d) => write!(f, "device {d}"),
            Selection::All => f.write_str("every record"),
        }
    }
}

/// How the package is made.
#[derive(Clone, Debug)]
pub struct Options {
    /// Records that arrived sealed go in opened (their content shown).
    pub open_sealed: bool,
    /// Media files go in (otherwise only their hashes).
    pub media: bool,
}

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The storage failed, or a record was altered on this server.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A proof could not be made.
    #[error(transparent)]
    Proof(#[from] crate::proofs::ProofRefused),
    /// The witnesses could not be read.
    #[error(transparent)]
    Witnesses(#[from] crate::witnesses::WitnessesError),
    /// Nothing matched.
    #[error("no record matches {0}")]
    Empty(String),
    /// The archive could not be written.
    #[error("writing the package: {0}")]
    Write(String),
}

/// The package of `selection`, as files.
pub fn package(
    c: &Coordinator,
    selection: &Selection,
    options: &Options,
    now_ms: i64,
) -> Result<Package, ExportError> {
    let storage = c.storage.as_ref();
    let (head, checkpoint) = crate::proofs::checkpoint(storage, &c.key)?;
    let filter = match selection {
        Selection::Station(s) => RecordFilter {
            station: Some(s.clone()),
            ..RecordFilter::default()
        },
        Selection::Device(d) => RecordFilter {
            device: Some(d.clone()),
            ..RecordFilter::default()
        },
        Selection::Record(_) | Selection::All => RecordFilter::default(),
    };
    // Rows first: a record stream holds the database while it runs.
    let keys = DeviceKeys::load(storage)?;
    let mut rows: Vec<RecordRow> = Vec::new();
    c.reader().records(&filter, &mut |r| {
        let wanted = match selection {
            Selection::Record(id) => r.id == *id,
            _ => true,
        };
        if wanted && r.index < head.size {
            check_row(&r, keys.of(&r.device)).map_err(|problem| {
                StorageError::Corrupt(format!(
                    "record {} at log index {} was altered on this server ({problem}); run `observer-server verify`",
                    r.id, r.index
                ))
            })?;
            rows.push(r);
        }
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(ExportError::Empty(selection.to_string()));
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(CHECKPOINT_FILE.into(), checkpoint);
    let witnesses: Vec<String> = crate::witnesses::configured(storage)?
        .iter()
        .map(|w| w.witness.vkey())
        .collect();
    let mut witnessed_size = None;
    let witnessed = match crate::witnesses::witnessed(storage, &c.key)? {
        Some((w, note)) if w.size <= head.size => {
            witnessed_size = Some(w.size);
            files.insert(WITNESSED_FILE.into(), note);
            let consistency = if w.size > 0 && w.size < head.size {
                Some(crate::proofs::consistency(storage, w.size, head.size)?)
            } else {
                None
            };
            Some(Witnessed { consistency })
        }
        _ => None,
    };
    let devices: BTreeSet<DeviceId> = rows.iter().map(|r| r.device.clone()).collect();
    let receipts = Receipts::of(storage, &devices)?;
    let mut forms: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut media: BTreeSet<Sha256Digest> = BTreeSet::new();
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        // Sealed bodies are parsed too: a sealed record's clock and form
        // are the coordinator's to show only when it opens the record.
        let shown = row.sealed.is_none() || options.open_sealed;
        if let Ok(body) = serde_json::from_slice::<Body>(&row.body) {
            forms.insert((body.form.id.clone(), body.form.version));
            media.extend(body.attachments.iter().map(|a| a.sha256));
            if shown && let Some(after) = body.clock.after {
                receipts.include(&after, &mut files);
            }
        }
        if let Some(hash) = receipts.acknowledging(&row.id) {
            receipts.include(&hash, &mut files);
        }
        let envelope = (row.sealed.is_none() || options.open_sealed).then(|| WireRecord {
            body: row.body.clone(),
            sig: row.sig.clone(),
        });
        let file = RecordFile {
            id: row.id,
            device: row.device.to_string(),
            index: row.index,
            received_at_ms: row.received_at_ms,
            envelope,
            inclusion: crate::proofs::inclusion(storage, row.index, head.size)?,
        };
        files.insert(record_path(&row.id), json(&file));
        records.push(row.id);
    }
    let audit = audit_entries(c, &devices)?;
    for id in &devices {
        let Some(info) = storage.device(id)? else {
            continue;
        };
        let file = DeviceFile {
            device: id.to_string(),
            key: info.key.to_string(),
            enrolled_at_ms: info.enrolled_at_ms,
            revoked_at_ms: info.revoked_at_ms,
            audit: audit.devices.get(id.as_str()).cloned().unwrap_or_default(),
        };
        files.insert(device_path(id.as_str()), json(&file));
    }
    // The quick count's commitments and the sample in force: whoever
    // reads a results protocol can see the stations were chosen, and
    // committed to, before it arrived.
    let mut pvt = None;
    if !audit.pvt.is_empty() {
        files.insert(PVT_COMMITMENTS_FILE.into(), json(&audit.pvt));
        if let Some((sample, commitment)) = crate::pvt::store::load(storage)? {
            files.insert(PVT_SAMPLE_FILE.into(), sample.text().into_bytes());
            pvt = Some(PvtSummary {
                digest: commitment.digest.to_string(),
                stations: sample.size(),
                at_ms: commitment.drawn_at_ms,
                seq: commitment.audit_seq,
            });
        }
    }
    let mut form_names = Vec::new();
    for (id, version) in &forms {
        if let Some(form) = storage.form(id, *version)? {
            files.insert(form_path(id, *version), form.definition.into_bytes());
            form_names.push(format!("{id}@{version}"));
        }
    }
    let mut media_entries = Vec::new();
    for sha256 in media {
        let bytes = match (&c.media_store, options.media) {
            (None, true) => std::fs::read(c.media_dir.join(crate::media::relative_path(&sha256)))
                .ok()
                .filter(|b| Sha256Digest::of(b) == sha256),
            _ => None,
        };
        let included = bytes.is_some();
        if let Some(b) = bytes {
            files.insert(media_path(&sha256), b);
        }
        media_entries.push(MediaEntry { sha256, included });
    }
    let summary = Summary {
        org: &c.org,
        selection,
        now_ms,
        rows: &rows,
        devices: devices.len(),
        size: head.size,
        key: c.key.public_key().to_string(),
        witnessed: match witnessed_size {
            Some(size) => Some(witnessed_summary(&files, storage, size)?),
            None => None,
        },
        sealed: rows
            .iter()
            .filter(|r| r.sealed.is_some() && !options.open_sealed)
            .count(),
        media: &media_entries,
        pvt,
    };
    for lang in crate::i18n::Lang::ALL {
        files.insert(
            format!("summary.{}.txt", lang.tag()),
            summary.text(lang).into_bytes(),
        );
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        org: c.org.clone(),
        coordinator_key: c.key.public_key().to_string(),
        created_at_ms: now_ms,
        selection: selection.to_string(),
        witnesses,
        witnessed,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        records,
        media: media_entries,
        forms: form_names,
        files: files
            .iter()
            .map(|(name, bytes)| (name.clone(), Sha256Digest::of(bytes)))
            .collect(),
    };
    files.insert(MANIFEST_FILE.into(), json(&manifest));
    Ok(Package { files })
}

/// What the package's summary says, in each language.
struct Summary<'a> {
    org: &'a str,
    selection: &'a Selection,
    now_ms: i64,
    rows: &'a [RecordRow],
    devices: usize,
    size: u64,
    key: String,
    /// The witnessed size, the newest cosignature time and the witnesses.
    witnessed: Option<(u64, i64, Vec<String>)>,
    sealed: usize,
    media: &'a [MediaEntry],
    pvt: Option<PvtSummary>,
}

/// The quick-count commitment a summary names.
struct PvtSummary {
    digest: String,
    stations: u64,
    at_ms: i64,
    seq: u64,
}

impl Summary<'_> {
    /// The summary in `lang`: what is inside, what it proves, how to check it.
    fn text(&self, lang: crate::i18n::Lang) -> String {
        let t = crate::i18n::Texts::new(lang);
        let stations: BTreeSet<&str> = self.rows.iter().map(|r| r.station.as_str()).collect();
        let first = self
            .rows
            .iter()
            .map(|r| r.captured_at_ms)
            .min()
            .unwrap_or(0);
        let last = self
            .rows
            .iter()
            .map(|r| r.captured_at_ms)
            .max()
            .unwrap_or(0);
        let included = self.media.iter().filter(|m| m.included).count();
        let s = |v: &dyn ToString| v.to_string();
        let mut lines = vec![
            t.args("evidence-title", &[("org", s(&self.org))]),
            String::new(),
            t.args(
                "evidence-made",
                &[
                    ("time", t.time(&self.now_ms)),
                    ("selection", s(self.selection)),
                ],
            ),
            t.args(
                "evidence-records",
                &[
                    ("records", s(&self.rows.len())),
                    ("devices", s(&self.devices)),
                    ("stations", s(&stations.len())),
                    ("first", t.time(&first)),
                    ("last", t.time(&last)),
                ],
            ),
            t.args(
                "evidence-log",
                &[("size", s(&self.size)), ("key", self.key.clone())],
            ),
        ];
        lines.push(match &self.witnessed {
            Some((size, time, names)) => t.args(
                "evidence-witnessed",
                &[
                    (
                        "count",
                        s(&self.rows.iter().filter(|r| r.index < *size).count()),
                    ),
                    ("time", t.time(time)),
                    ("witnesses", names.join(", ")),
                ],
            ),
            None => t.get("evidence-not-witnessed"),
        });
        if self.sealed > 0 {
            lines.push(t.args("evidence-sealed", &[("sealed", s(&self.sealed))]));
        }
        if !self.media.is_empty() {
            lines.push(t.args(
                "evidence-media",
                &[
                    ("included", s(&included)),
                    ("hashes", s(&(self.media.len() - included))),
                ],
            ));
        }
        if let Some(p) = &self.pvt {
            lines.push(t.args(
                "evidence-pvt",
                &[
                    ("digest", p.digest.clone()),
                    ("stations", s(&p.stations)),
                    ("time", t.time(&p.at_ms)),
                    ("seq", s(&p.seq)),
                ],
            ));
        }
        lines.push(String::new());
        lines.push(t.args("evidence-how", &[("key", self.key.clone())]));
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

/// The witnessed checkpoint in `files` (of `size` records): its size, the
/// newest cosignature time (ms) and the configured witnesses that
/// cosigned it.
fn witnessed_summary(
    files: &BTreeMap<String, Vec<u8>>,
    storage: &dyn crate::storage::Storage,
    size: u64,
) -> Result<(u64, i64, Vec<String>), ExportError> {
    let note = files
        .get(WITNESSED_FILE)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut newest = 0u64;
    let mut names = Vec::new();
    for w in crate::witnesses::configured(storage)? {
        if let Ok(Some(t)) = w.witness.cosigned_at(note) {
            newest = newest.max(t);
            names.push(w.witness.name);
        }
    }
    Ok((size, newest as i64 * 1000, names))
}

/// The receipts kept for a package's devices, by hash, and which one
/// first acknowledged each record.
struct Receipts {
    by_hash: BTreeMap<Sha256Digest, Vec<u8>>,
    first_ack: BTreeMap<observer_core::record::RecordId, Sha256Digest>,
}

impl Receipts {
    fn of(
        storage: &dyn crate::storage::Storage,
        devices: &BTreeSet<DeviceId>,
    ) -> Result<Self, StorageError> {
        let mut out = Self {
            by_hash: BTreeMap::new(),
            first_ack: BTreeMap::new(),
        };
        // In the order kept, which is the order sent: the first receipt
        // naming a record is the one that acknowledged its arrival. A
        // receipt kept twice (a write retried) is one hash.
        for kept in storage.receipts(devices)? {
            let hash = kept.hash();
            if let Ok(receipt) = serde_json::from_slice::<Receipt>(&kept.signed.body) {
                for ack in receipt.accepted.iter().chain(&receipt.already) {
                    out.first_ack.entry(ack.id).or_insert(hash);
                }
            }
            out.by_hash.insert(hash, json(&kept.signed));
        }
        Ok(out)
    }

    fn acknowledging(&self, id: &observer_core::record::RecordId) -> Option<Sha256Digest> {
        self.first_ack.get(id).copied()
    }

    /// Puts receipt `hash` in `files`, if it is kept.
    fn include(&self, hash: &Sha256Digest, files: &mut BTreeMap<String, Vec<u8>>) {
        if let Some(bytes) = self.by_hash.get(hash) {
            files
                .entry(receipt_path(hash))
                .or_insert_with(|| bytes.clone());
        }
    }
}

/// The signed audit entries a package carries.
struct AuditPart {
    /// The entries that name each device, by device id.
    devices: BTreeMap<String, Vec<serde_json::Value>>,
    /// Every quick-count sample commitment, oldest first.
    pvt: Vec<serde_json::Value>,
}

/// The audit entries that name each of `devices`, and every sample
/// commitment, as stored (signed), read in one pass over the log.
fn audit_entries(c: &Coordinator, devices: &BTreeSet<DeviceId>) -> Result<AuditPart, StorageError> {
    let wanted: BTreeSet<String> = devices.iter().map(|d| d.to_string()).collect();
    let mut out = AuditPart {
        devices: BTreeMap::new(),
        pvt: Vec::new(),
    };
    let mut after = 0;
    loop {
        let page = c.storage.audit_entries(after, 1000)?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.seq;
        for entry in page {
            let value = || serde_json::to_value(&entry).expect("serialises");
            if entry.action == PVT_SAMPLE_DRAWN {
                out.pvt.push(value());
            } else if wanted.contains(&entry.subject) {
                out.devices
                    .entry(entry.subject.clone())
                    .or_default()
                    .push(value());
            }
        }
    }
}

/// Writes `package` to `out` as a ZIP archive of stored files, manifest
/// first.
pub fn write_zip(package: &Package, out: impl Write + Seek) -> Result<(), ExportError> {
    let fail = |e: &dyn std::fmt::Display| ExportError::Write(e.to_string());
    let mut zip = zip::ZipWriter::new(out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let names = std::iter::once(MANIFEST_FILE).chain(
        package
            .files
            .keys()
            .map(String::as_str)
            .filter(|n| *n != MANIFEST_FILE),
    );
    for name in names {
        let Some(bytes) = package.files.get(name) else {
            continue;
        };
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    zip.finish().map_err(|e| fail(&e))?;
    Ok(())
}

/// Writes the package to `path`, through a temporary file renamed into
/// place, so that a package cut short never looks whole.
pub fn write_file(package: &Package, path: &Path) -> Result<(), ExportError> {
    let fail = |e: &dyn std::fmt::Display| ExportError::Write(format!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
    write_zip(package, tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

/// A JSON file of the package: pretty, newline-terminated, the same way
/// each time.
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("serialises");
    out.push(b'\n');
    out
}
