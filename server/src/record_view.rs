//! One record as a verifier sees it: its answers (opened in memory when it
//! rests sealed), its signature checked again against the device's
//! enrolled key, its review history and claim, the reports that
//! corroborate it, its corrections as one chain (latest first), and, for a
//! results protocol, every observer's copy for that station compared field
//! by field, and the evidence files it names with their consent flags.
//! Plain values; the page is `templates/record.html` and the
//! same values are `GET /api/v1/records/{index}`.

use std::collections::BTreeSet;

use observer_core::record::{AttachmentRef, MediaMeta};
use serde::Serialize;

use crate::reader::Reader;
use crate::review::{Corroboration, CorroborationRule, Decision, QueueItem};
use crate::storage::{RecordFilter, RecordRow, StorageError};

/// How far back and forward a correction chain is followed.
const MAX_CHAIN: usize = 50;

/// The record view.
#[derive(Debug, Serialize)]
pub struct RecordView {
    #[serde(flatten)]
    pub item: QueueItem,
    pub observer: String,
    /// It travelled and rests sealed to the organisation's key.
    pub sealed: bool,
    /// `None`: the signature verifies under the device's enrolled key and
    /// the stored columns match the signed body; else what is wrong.
    pub signature_problem: Option<String>,
    /// The device's clock minus the server's when it signed, as the
    /// device knew it (`None` before its first sync).
    pub clock_offset_ms: Option<i64>,
    /// Field id to the answer as JSON text, in the form's order where
    /// the form is known.
    pub answers: Vec<(String, String)>,
    pub form: String,
    /// The form check: `None` when the form is unknown.
    pub check_clean: Option<bool>,
    /// The check in one line ("ok", or what failed).
    pub check_summary: String,
    pub check: serde_json::Value,
    pub in_registry: Option<bool>,
    pub decisions: Vec<Decision>,
    pub corroboration: Option<Corroboration>,
    /// The correction chain this record is part of, latest first (itself
    /// included); one entry when it was never corrected.
    pub chain: Vec<QueueItem>,
    /// Every observer's newest results protocol for this station.
    pub protocols: Option<Comparison>,
    /// The media files it names, with what the observer declared about
    /// each (signed with the record).
    pub evidence: Vec<Evidence>,
}

/// One media file a record names, as the workspace shows it beside the
/// record: only to signed-in accounts that may read the record, never
/// published.
#[derive(Debug, Serialize)]
pub struct Evidence {
    pub sha256: String,
    pub bytes: u64,
    pub mime: String,
    /// Consent, faces, ballots, voter list, where from, a note.
    pub meta: Option<MediaMeta>,
    /// Whether the server holds it whole (its hash checked).
    pub held: bool,
    /// How the page shows it, if at all (else: a download).
    pub shown_as: Option<ShownAs>,
}

impl Evidence {
    /// The catalogue id of what the observer declared about consent.
    pub fn consent_key(&self) -> &'static str {
        use observer_core::record::Consent;
        match self.meta.as_ref().map(|m| m.consent) {
            None => "consent-undeclared",
            Some(Consent::Given) => "consent-given",
            Some(Consent::Refused) => "consent-refused",
            Some(Consent::NotAsked) => "consent-not-asked",
            Some(Consent::NobodyShown) => "consent-nobody-shown",
        }
    }

    /// The catalogue ids of what the file shows that needs care.
    pub fn visible_keys(&self) -> Vec<&'static str> {
        let Some(m) = &self.meta else {
            return Vec::new();
        };
        [
            (m.faces_visible, "visible-faces"),
            (m.ballots_visible, "visible-ballots"),
            (m.voter_list_visible, "visible-voter-list"),
            (m.location_kept, "location-kept"),
        ]
        .into_iter()
        .filter_map(|(set, key)| set.then_some(key))
        .collect()
    }
}

/// How a browser may show a media file inline. Only raster images, audio
/// and video: a document or an SVG can carry script or links, so those
/// are downloads, never rendered in the workspace's origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShownAs {
    Image,
    Audio,
    Video,
}

impl ShownAs {
    /// How `mime` is shown, by the record's signed type.
    pub fn of(mime: &str) -> Option<Self> {
        match mime {
            "image/jpeg" | "image/png" | "image/webp" | "image/gif" => Some(ShownAs::Image),
            "audio/mpeg" | "audio/mp4" | "audio/aac" | "audio/ogg" | "audio/webm" | "audio/wav" => {
                Some(ShownAs::Audio)
            }
            "video/mp4" | "video/webm" | "video/quicktime" => Some(ShownAs::Video),
            _ => None,
        }
    }
}

/// The attachments of a signed body.
pub fn attachments(body: &serde_json::Value) -> Vec<AttachmentRef> {
    serde_json::from_value(body["attachments"].clone()).unwrap_or_default()
}

/// Several observers' protocols of one station, field by field.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Each protocol's record index, device (first 8 characters) and,
    /// when it is set aside, the text id of why.
    pub observers: Vec<(u64, String, Option<&'static str>)>,
    /// How many are not set aside.
    pub standing: usize,
    pub rows: Vec<ComparedField>,
    pub agree: bool,
}

#[derive(Debug, Serialize)]
pub struct ComparedField {
    pub field: String,
    /// One value per observer, in `observers` order.
    pub values: Vec<Option<String>>,
    pub agree: bool,
}

fn one_row(reader: &Reader<'_>, index: u64) -> Result<Option<RecordRow>, StorageError> {
    let mut found = None;
    reader.records(
        &RecordFilter {
            index: Some(index),
            ..Default::default()
        },
        &mut |r| {
            found = Some(r);
            Ok(())
        },
    )?;
    Ok(found)
}

/// The view of the record at `index`, `None` when there is none.
pub fn view(
    reader: &Reader<'_>,
    index: u64,
    rule: &CorroborationRule,
    now_ms: i64,
) -> Result<Option<RecordView>, StorageError> {
    let storage = reader.storage();
    let store = storage.review_store();
    let Some(item) = store.item(index, now_ms)? else {
        return Ok(None);
    };
    let Some(row) = one_row(reader, index)? else {
        return Ok(None);
    };
    let device = storage.device(&item.device)?;
    let signature_problem = crate::integrity::check_row(&row, device.as_ref().map(|d| &d.key))
        .err()
        .map(|p| p.to_string());
    let body: serde_json::Value = serde_json::from_slice(&row.body).unwrap_or_default();
    let answers = body["payload"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
        .unwrap_or_default();
    let check: serde_json::Value = row
        .check
        .as_ref()
        .and_then(|c| serde_json::from_str(&c.json).ok())
        .unwrap_or_default();
    let registry = crate::registry::current(storage)?;
    let corroboration = match &item.category {
        Some(category) => {
            let window = rule.window.as_millis() as i64;
            let candidates = store.reports(
                &item.station,
                category,
                item.captured_at_ms - window,
                item.captured_at_ms + window,
                now_ms,
            )?;
            Some(rule.judge(&item, candidates))
        }
        None => None,
    };
    let protocols = if item.kind == "results" {
        Some(compare(reader, &item.station, now_ms)?)
    } else {
        None
    };
    Ok(Some(RecordView {
        observer: device.and_then(|d| d.name).unwrap_or_default(),
        sealed: row.sealed.is_some(),
        signature_problem,
        clock_offset_ms: body["clock"]["offset_ms"].as_i64(),
        answers,
        form: format!(
            "{} v{}",
            body["form"]["id"].as_str().unwrap_or("?"),
            body["form"]["version"].as_u64().unwrap_or(0)
        ),
        check_clean: row.check.as_ref().map(|c| c.clean),
        check_summary: crate::dashboard::check_summary(row.check.as_ref()).0,
        check,
        in_registry: crate::registry::holds(registry.as_ref(), &item.station),
        decisions: store.decisions(index)?,
        corroboration,
        chain: chain(store, &item, now_ms)?,
        protocols,
        evidence: attachments(&body)
            .into_iter()
            .map(|a| {
                Ok(Evidence {
                    held: storage.media_held(&a.sha256)?,
                    sha256: a.sha256.to_string(),
                    bytes: a.bytes,
                    shown_as: ShownAs::of(a.mime.as_str()),
                    mime: a.mime.as_str().to_string(),
                    meta: a.meta,
                })
            })
            .collect::<Result<_, StorageError>>()?,
        item,
    }))
}

/// The correction chain through `item`, latest first: back through what
/// each record supersedes, forward through what corrects it (the first
/// correction of each, in arrival order).
fn chain(
    store: &dyn crate::storage::ReviewStore,
    item: &QueueItem,
    now_ms: i64,
) -> Result<Vec<QueueItem>, StorageError> {
    let mut seen = BTreeSet::from([item.index]);
    let mut older = Vec::new();
    let mut at = item.supersedes;
    while let Some(id) = at {
        if older.len() >= MAX_CHAIN {
            break;
        }
        match store.item_by_id(&id, now_ms)? {
            Some(prev) if seen.insert(prev.index) => {
                at = prev.supersedes;
                older.push(prev);
            }
            _ => break,
        }
    }
    let mut newer = Vec::new();
    let mut last = item.id;
    while newer.len() < MAX_CHAIN {
        let next = store
            .corrections_of(&last, now_ms)?
            .into_iter()
            .find(|c| !seen.contains(&c.index));
        match next {
            Some(n) => {
                seen.insert(n.index);
                last = n.id;
                newer.push(n);
            }
            None => break,
        }
    }
    newer.reverse();
    newer.push(item.clone());
    newer.extend(older);
    Ok(newer)
}

/// Every observer's newest results protocol at `station`, field by field;
/// those set aside (a revoked device, a verifier's rejection) are shown,
/// marked, and left out of whether the station's copies agree.
fn compare(reader: &Reader<'_>, station: &str, now_ms: i64) -> Result<Comparison, StorageError> {
    let read = crate::tabulate::protocols(reader, &|s| s == station, now_ms)?;
    let mut shown: Vec<(crate::tabulate::Protocol, Option<crate::tabulate::SetAside>)> = read
        .standing
        .into_values()
        .flatten()
        .map(|p| (p, None))
        .chain(read.set_aside.into_iter().map(|(_, p, why)| (p, Some(why))))
        .collect();
    shown.sort_by_key(|(p, _)| p.index);
    let fields: BTreeSet<&String> = shown.iter().flat_map(|(p, _)| p.figures.keys()).collect();
    let rows: Vec<ComparedField> = fields
        .into_iter()
        .map(|f| {
            let values: Vec<Option<String>> = shown
                .iter()
                .map(|(p, _)| p.figures.get(f).map(|v| v.to_string()))
                .collect();
            let standing: Vec<&Option<String>> = values
                .iter()
                .zip(&shown)
                .filter(|(_, (_, why))| why.is_none())
                .map(|(v, _)| v)
                .collect();
            ComparedField {
                field: f.clone(),
                agree: standing.windows(2).all(|w| w[0] == w[1]),
                values,
            }
        })
        .collect();
    Ok(Comparison {
        observers: shown
            .iter()
            .map(|(p, why)| {
                let d = p.device.to_string();
                (
                    p.index,
                    d[..8.min(d.len())].to_string(),
                    why.map(|w| match w {
                        crate::tabulate::SetAside::DeviceRevoked => "pvt-excluded-revoked",
                        crate::tabulate::SetAside::RejectedByVerifier => "pvt-excluded-rejected",
                    }),
                )
            })
            .collect(),
        standing: shown.iter().filter(|(_, why)| why.is_none()).count(),
        agree: rows.iter().all(|r| r.agree),
        rows,
    })
}
