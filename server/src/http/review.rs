//! The review queue, one record's view, and the verifier's actions on it:
//! claim, release, decide. Every decision is an audit entry as the
//! signed-in account; a record held by another verifier's claim is
//! refused with who holds it and until when.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;

use super::AppState;
use super::pages::{QueuePage, RecordPage, WebError, blocking, page};
use super::scope;
use super::session::{CsrfForm, SignedIn};
use crate::accounts::Permission;
use crate::audit::{self, Draft};
use crate::i18n::Texts;
use crate::reader::Reader;
use crate::record_view::{self, RecordView};
use crate::review::{
    self, ClaimOutcome, DecideOutcome, QueueCursor, QueueFilter, QueueItem, ReviewState, Verdict,
};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Records a queue page lists.
const PAGE: u32 = 50;

/// The queue's filters as the page's form and links send them (empty
/// means "any").
#[derive(Clone, Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub station: String,
    #[serde(default)]
    pub after: String,
}

impl QueueQuery {
    /// The query string of these filters, without `after`.
    pub fn filters(&self) -> String {
        let pairs = [
            ("state", &self.state),
            ("category", &self.category),
            ("phase", &self.phase),
            ("region", &self.region),
            ("station", &self.station),
        ];
        let set: Vec<(&str, &String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(set).unwrap_or_default()
    }
}

/// Longest filter value accepted (a station id, a region's name).
const MAX_FILTER_CHARS: usize = 300;

/// The filter `q` asks for, checked; `registry` names the version a
/// region filter reads.
fn filter(q: &QueueQuery, registry: Option<u32>) -> Result<QueueFilter, WebError> {
    let bad = WebError::BadQuery("refused-query");
    let any = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
    if [
        &q.state,
        &q.category,
        &q.phase,
        &q.region,
        &q.station,
        &q.after,
    ]
    .iter()
    .any(|v| v.chars().count() > MAX_FILTER_CHARS)
    {
        return Err(bad);
    }
    Ok(QueueFilter {
        state: match any(&q.state) {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| WebError::BadQuery("refused-query"))?),
        },
        category: any(&q.category),
        phase: match any(&q.phase) {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| WebError::BadQuery("refused-query"))?),
        },
        station: any(&q.station),
        region: match (any(&q.region), registry) {
            (Some(r), Some(v)) => Some((v, r)),
            // No registry: no station is in any region.
            (Some(r), None) => Some((0, r)),
            (None, _) => None,
        },
        since_ms: None,
        from_priority: None,
        after: match any(&q.after) {
            None => None,
            Some(a) => Some(QueueCursor::parse(&a).ok_or(bad)?),
        },
        limit: PAGE,
    })
}

/// One queue page and where the next starts.
async fn queue_items(
    app: &Arc<AppState>,
    signed: &SignedIn,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<(QueueQuery, Vec<QueueItem>, Option<QueueCursor>), WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let Ok(Query(mut q)) = query else {
        return Err(WebError::BadQuery("refused-query"));
    };
    q.region = scope::region_filter(signed, &app.org, "may-read", &q.region)?;
    let app = app.clone();
    let q2 = q.clone();
    let (items, next) = blocking(move || {
        let storage = app.storage.as_ref();
        let version = storage.registry_versions()?.last().map(|v| v.version);
        let f = filter(&q2, version)?;
        let items = review::queue(storage.review_store(), &f, now_ms())?;
        let next = (items.len() == f.limit as usize)
            .then(|| items.last().map(QueueItem::cursor))
            .flatten();
        Ok((items, next))
    })
    .await?;
    Ok((q, items, next))
}

/// `GET /queue`: what needs a verifier, critical first, then by arrival.
pub async fn queue_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (q, items, next) = queue_items(&app, &signed, query).await?;
    Ok(page(
        StatusCode::OK,
        &QueuePage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            filters: q.filters(),
            q,
            items,
            next: next.map(QueueCursor::to_text),
            states: ReviewState::ALL.iter().map(|s| s.as_str()).collect(),
            phases: crate::triage::Phase::ALL
                .iter()
                .map(|p| p.as_str())
                .collect(),
            categories: crate::triage::CRITICAL.to_vec(),
        },
    ))
}

/// `GET /api/v1/queue`: the queue page as JSON, with the cursor of the
/// next page.
pub async fn queue_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (_, items, next) = queue_items(&app, &signed, query).await?;
    Ok(Json(serde_json::json!({
        "items": items,
        "next": next.map(QueueCursor::to_text),
    }))
    .into_response())
}

/// A record's index from its path: anything but a number names no record.
type IndexPath = Result<Path<u64>, PathRejection>;

fn index_of(p: IndexPath) -> Result<u64, WebError> {
    p.map(|Path(i)| i)
        .map_err(|_| WebError::NotFound("not-found-record"))
}

async fn record(
    app: &Arc<AppState>,
    signed: &SignedIn,
    index: IndexPath,
) -> Result<RecordView, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let index = index_of(index)?;
    scope::require_record(app, signed, "may-read", index).await?;
    let app = app.clone();
    blocking(move || {
        let reader = Reader::new(app.storage.as_ref(), &app.seal);
        Ok(record_view::view(
            &reader,
            index,
            &app.corroboration,
            now_ms(),
        )?)
    })
    .await?
    .ok_or(WebError::NotFound("not-found-record"))
}

/// `GET /records/{index}`: one record, its review and its corroboration.
pub async fn record_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    index: IndexPath,
) -> Result<Response, WebError> {
    let v = record(&app, &signed, index).await?;
    let me = signed.account.name.clone();
    Ok(page(
        StatusCode::OK,
        &RecordPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            may_review: signed.account.may(Permission::Review),
            mine: v.item.claim.as_ref().is_some_and(|c| c.account == me),
            held: v
                .item
                .claim
                .as_ref()
                .filter(|c| c.account != me)
                .map(|c| (c.account.clone(), crate::i18n::time(Some(c.until_ms)))),
            v,
        },
    ))
}

/// `GET /api/v1/records/{index}`: the record view as JSON.
pub async fn record_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    index: IndexPath,
) -> Result<Response, WebError> {
    Ok(Json(record(&app, &signed, index).await?).into_response())
}

fn held_by(claim: &review::Claim) -> WebError {
    WebError::Held {
        account: claim.account.clone(),
        until: crate::i18n::time(Some(claim.until_ms)),
    }
}

/// `POST /records/{index}/claim`: holds the record for this verifier.
pub async fn claim(
    State(app): State<Arc<AppState>>,
    index: IndexPath,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-review", Permission::Review)?;
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let index = index_of(index)?;
    scope::require_record(&app, &signed, "may-review", index).await?;
    let me = signed.account.name.clone();
    let app2 = app.clone();
    let outcome = blocking(move || {
        let now = now_ms();
        let until = now + review::CLAIM_FOR.as_millis() as i64;
        Ok(app2.storage.review_store().claim(index, &me, now, until)?)
    })
    .await?;
    match outcome {
        ClaimOutcome::Claimed(_) => Ok(Redirect::to(&format!("/records/{index}")).into_response()),
        ClaimOutcome::HeldBy(c) => Err(held_by(&c)),
        ClaimOutcome::NoSuchRecord => Err(WebError::NotFound("not-found-record")),
    }
}

/// `POST /records/{index}/release`: gives the record back to the queue.
pub async fn release(
    State(app): State<Arc<AppState>>,
    index: IndexPath,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-review", Permission::Review)?;
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    signed.check_form(&headers, &csrf)?;
    let index = index_of(index)?;
    scope::require_record(&app, &signed, "may-review", index).await?;
    let me = signed.account.name.clone();
    blocking(move || Ok(app.storage.review_store().release(index, &me)?)).await?;
    Ok(Redirect::to(&format!("/records/{index}")).into_response())
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    verdict: String,
    #[serde(default)]
    note: String,
}

/// `POST /records/{index}/review`: a verifier's decision, audited.
pub async fn decide(
    State(app): State<Arc<AppState>>,
    index: IndexPath,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-review", Permission::Review)?;
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    let index = index_of(index)?;
    scope::require_record(&app, &signed, "may-review", index).await?;
    let verdict: Verdict = form
        .verdict
        .parse()
        .map_err(|_| WebError::BadQuery("refused-verdict"))?;
    let note = review::check_note(verdict, &form.note).map_err(|e| match e {
        review::BadReview::RejectionWithoutReason => WebError::BadQuery("refused-no-reason"),
        _ => WebError::BadQuery("refused-note"),
    })?;
    let me = signed.account.name.clone();
    let actor = signed.actor();
    let app2 = app.clone();
    let outcome = blocking(move || {
        let now = now_ms();
        let store = app2.storage.review_store();
        let outcome = store.decide(index, verdict, &me, &note, now)?;
        if outcome == DecideOutcome::Decided {
            let item = store.item(index, now)?;
            let draft = Draft {
                actor,
                action: "record.reviewed",
                subject: index.to_string(),
                detail: serde_json::json!({
                    "state": verdict.state().as_str(),
                    "note": note,
                    "record": item.as_ref().map(|i| i.id.to_string()),
                    "station": item.as_ref().map(|i| i.station.clone()),
                }),
            };
            audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        }
        Ok(outcome)
    })
    .await?;
    match outcome {
        DecideOutcome::Decided => {
            tracing::info!(verdict = verdict.state().as_str(), "a verifier decided");
            Ok(Redirect::to(&format!("/records/{index}")).into_response())
        }
        DecideOutcome::HeldBy(c) => Err(held_by(&c)),
        DecideOutcome::NoSuchRecord => Err(WebError::NotFound("not-found-record")),
    }
}

/// `GET /records/{index}/media/{sha256}`: an evidence file the record
/// names, to an account that may read the record (and of its region).
/// Only a file this record's signed body names is served, whatever its
/// hash; images, audio and video by their signed type, shown inline;
/// anything else as a download of opaque bytes, so that nothing an
/// observer sent is rendered as a page of this origin.
pub async fn evidence(
    State(app): State<Arc<AppState>>,
    Path((index, sha256)): Path<(String, String)>,
    signed: SignedIn,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let index: u64 = index
        .parse()
        .map_err(|_| WebError::NotFound("not-found-record"))?;
    let sha: observer_core::record::Sha256Digest = sha256
        .parse()
        .map_err(|_| WebError::NotFound("not-found-media"))?;
    scope::require_record(&app, &signed, "may-read", index).await?;
    let app2 = app.clone();
    let named = blocking(move || {
        let reader = Reader::new(app2.storage.as_ref(), &app2.seal);
        let mut found = None;
        reader.records(
            &crate::storage::RecordFilter {
                index: Some(index),
                ..Default::default()
            },
            &mut |r| {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                found = record_view::attachments(&body)
                    .into_iter()
                    .find(|a| a.sha256 == sha);
                Ok(())
            },
        )?;
        Ok(found)
    })
    .await?
    .ok_or(WebError::NotFound("not-found-media"))?;
    let Some((size, stream)) = app
        .media
        .read_complete(&named.sha256)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
    else {
        return Err(WebError::NotFound("not-found-media"));
    };
    let shown = record_view::ShownAs::of(named.mime.as_str());
    let (mime, disposition) = match shown {
        Some(_) => (named.mime.as_str().to_string(), "inline".to_string()),
        None => (
            "application/octet-stream".to_string(),
            format!("attachment; filename=\"{}\"", named.sha256),
        ),
    };
    let mut r = axum::body::Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    let value = |v: &str| {
        axum::http::HeaderValue::from_str(v).map_err(|e| WebError::Internal(e.to_string()))
    };
    h.insert(axum::http::header::CONTENT_TYPE, value(&mime)?);
    h.insert(
        axum::http::header::CONTENT_DISPOSITION,
        value(&disposition)?,
    );
    h.insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(size),
    );
    Ok(r)
}
