//! The quick count in the workspace: the committed sample, the estimates
//! with their margins, what was left out and why, and the verdict on the
//! official result once it is imported; the same as JSON. Recomputed on
//! every request from what arrived (`docs/benchmarks.md` measures it).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::pages::{PvtPage, WebError, blocking, page};
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::i18n::Texts;
use crate::pvt::verdict::{AreaVerdict, Judged};
use crate::pvt::{self, QuickCount, tally};
use crate::reader::Reader;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn current(app: &Arc<AppState>) -> Result<Option<QuickCount>, WebError> {
    let app = app.clone();
    blocking(move || {
        let reader = Reader::new(app.storage.as_ref(), &app.seal);
        Ok(pvt::quick_count(&reader, now_ms())?)
    })
    .await
}

/// One line of an area's table, its numbers written out.
#[derive(Debug)]
pub struct Line {
    pub figure: String,
    pub estimate: String,
    pub margin95: String,
    pub margin99: String,
    /// With the official result: the official share, the difference in
    /// points, the z-score, and whether it lies within the 99% interval.
    pub judged: Option<(String, String, String, bool)>,
}

/// One area as the page shows it.
#[derive(Debug)]
pub struct AreaView {
    pub name: String,
    pub reported: u64,
    pub sampled: u64,
    pub lines: Vec<Line>,
    /// With the official result: whether every figure is within.
    pub consistent: Option<bool>,
}

/// A protocol or station left out.
#[derive(Debug)]
pub struct ExcludedView {
    pub station: String,
    pub index: Option<u64>,
    pub why: String,
}

/// A figure where the official result differs from the observers' copy.
#[derive(Debug)]
pub struct DifferingView {
    pub station: String,
    pub figure: String,
    pub observed: String,
    pub official: i64,
}

/// The quick count as the page shows it.
#[derive(Debug)]
pub struct PvtView {
    pub seed: String,
    pub registry_version: u32,
    pub registry_digest: String,
    pub digest: String,
    pub audit_seq: u64,
    pub drawn_at_ms: i64,
    pub strata: usize,
    pub country: AreaView,
    pub regions: Vec<AreaView>,
    pub unreported: String,
    pub single: String,
    pub thin: String,
    pub excluded: Vec<ExcludedView>,
    pub differing: Vec<DifferingView>,
    pub official: bool,
    /// The official version judged: its number, when and by whom it was
    /// imported, and its file's digest.
    pub official_version: Option<(u32, i64, String, String)>,
}

impl PvtView {
    /// The country, then each region.
    pub fn areas(&self) -> Vec<&AreaView> {
        std::iter::once(&self.country)
            .chain(&self.regions)
            .collect()
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// The label of a results figure in `lang`: the shipped counting form's,
/// else its id.
fn labels(t: &Texts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for def in observer_core::forms::default_forms()
        .iter()
        .filter(|d| d.kind == "results")
    {
        for f in &def.fields {
            if let Some(l) = f.label.get(t.lang.tag()).or_else(|| f.label.get("en")) {
                out.entry(f.id.clone()).or_insert_with(|| l.clone());
            }
        }
    }
    out.insert("turnout".into(), t.get("pvt-turnout"));
    out
}

fn area(
    e: &tally::AreaEstimate,
    verdict: Option<&AreaVerdict>,
    labels: &BTreeMap<String, String>,
) -> AreaView {
    let judged: BTreeMap<&str, &Judged> = verdict
        .map(|v| v.figures.iter().map(|j| (j.figure.as_str(), j)).collect())
        .unwrap_or_default();
    let line = |figure: &str, r: &pvt::estimate::Ratio| Line {
        figure: labels
            .get(figure)
            .cloned()
            .unwrap_or_else(|| figure.to_string()),
        estimate: pct(r.estimate),
        margin95: pct(r.margin95),
        margin99: pct(r.margin99),
        judged: judged.get(figure).map(|j| {
            (
                pct(j.official),
                format!("{:+.2}", j.difference_points),
                j.z.map_or("–".into(), |z| format!("{z:+.2}")),
                j.within,
            )
        }),
    };
    let mut lines: Vec<Line> = e.parties.iter().map(|(p, r)| line(p, r)).collect();
    if let Some(t) = &e.turnout {
        lines.push(line("turnout", t));
    }
    AreaView {
        name: e.area.clone(),
        reported: e.reported,
        sampled: e.sampled,
        lines,
        consistent: verdict.map(AreaVerdict::consistent),
    }
}

fn view(qc: &QuickCount, t: &Texts) -> PvtView {
    let labels = labels(t);
    let v = qc.verdict.as_ref();
    let region_verdict = |name: &str| v.and_then(|v| v.regions.iter().find(|r| r.area == name));
    PvtView {
        seed: qc.seed.clone(),
        registry_version: qc.registry_version,
        registry_digest: qc.registry_digest.to_string(),
        digest: qc.commitment.digest.to_string(),
        audit_seq: qc.commitment.audit_seq,
        drawn_at_ms: qc.commitment.drawn_at_ms,
        strata: qc.strata.len(),
        country: area(&qc.estimate.country, v.map(|v| &v.country), &labels),
        regions: qc
            .estimate
            .regions
            .iter()
            .map(|r| area(r, region_verdict(&r.area), &labels))
            .collect(),
        unreported: qc.estimate.strata_unreported.join(", "),
        single: qc.estimate.strata_single.join(", "),
        thin: qc.estimate.strata_thin.join(", "),
        excluded: qc
            .excluded
            .iter()
            .map(|e| ExcludedView {
                station: e.station.clone(),
                index: e.index,
                why: match &e.why {
                    tally::Exclusion::ObserversDisagree { observers } => {
                        t.arg(e.why.text_id(), "observers", observers)
                    }
                    other => t.get(other.text_id()),
                },
            })
            .collect(),
        differing: v
            .map(|v| {
                v.differing
                    .iter()
                    .map(|d| DifferingView {
                        station: d.station.clone(),
                        figure: labels
                            .get(&d.figure)
                            .cloned()
                            .unwrap_or_else(|| d.figure.clone()),
                        observed: d.observed.map_or("–".into(), |o| o.to_string()),
                        official: d.official,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        official: v.is_some(),
        official_version: qc.official_version.as_ref().map(|o| {
            (
                o.version,
                o.imported_at_ms,
                o.imported_by.clone(),
                o.digest.map_or_else(|| "–".into(), |d| d.to_string()),
            )
        }),
    }
}

/// `GET /pvt`.
pub async fn pvt_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-quick-count", Permission::QuickCount)?;
    let qc = current(&app).await?;
    let t = Texts::current();
    Ok(page(
        StatusCode::OK,
        &PvtPage {
            view: qc.as_ref().map(|qc| view(qc, &t)),
            nav: signed.nav(&app.org),
            t,
        },
    ))
}

/// `GET /api/v1/pvt`: the quick count as JSON (`null` before a sample is
/// drawn), as `pvt estimate --json` prints it.
pub async fn pvt_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-quick-count", Permission::QuickCount)?;
    Ok(Json(current(&app).await?).into_response())
}
