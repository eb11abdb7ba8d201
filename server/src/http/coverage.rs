//! The coverage view (and its JSON), the day's plan (deadlines per phase,
//! when a device counts as silent), and the small script that keeps the
//! view current without a reload.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::AppState;
use super::pages::{CoveragePage, WebError, blocking, page};
use super::scope;
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::audit::{self, Draft};
use crate::coverage::{self, Area, Coverage, DayPlan};
use crate::i18n::Texts;
use crate::triage::Phase;

/// The script every live view loads (embedded in the binary: the
/// workspace needs nothing from the internet).
const LIVE_JS: &str = include_str!("../../static/live.js");

/// Longest region name accepted in a query.
const MAX_REGION_CHARS: usize = 300;

/// Longest a device may stay silent before counting as silent, in minutes.
const MAX_SILENT_MINUTES: u32 = 24 * 60;

/// `GET /static/live.js`.
pub async fn live_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE_JS,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct CoverageQuery {
    #[serde(default)]
    region: String,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn read(
    app: &Arc<AppState>,
    signed: &SignedIn,
    query: Result<Query<CoverageQuery>, QueryRejection>,
) -> Result<(Coverage, Vec<String>, DayPlan), WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let Ok(Query(q)) = query else {
        return Err(WebError::BadQuery("refused-query"));
    };
    if q.region.chars().count() > MAX_REGION_CHARS {
        return Err(WebError::BadQuery("refused-query"));
    }
    let region = scope::region_filter(signed, &app.org, "may-read", &q.region)?;
    let area = Area {
        region: Some(region).filter(|r| !r.is_empty()),
    };
    let mine = signed.region().map(str::to_string);
    let app = app.clone();
    blocking(move || {
        let storage = app.storage.as_ref();
        let registry = crate::registry::current(storage)?;
        let store = storage.review_store();
        let plan = coverage::plan(storage)?;
        let c = coverage::coverage(
            registry.as_ref(),
            &store.station_phases()?,
            &store.field_devices()?,
            &plan,
            &area,
            now_ms(),
        );
        let regions = match mine {
            Some(r) => vec![r],
            None => registry.map(|r| r.regions()).unwrap_or_default(),
        };
        Ok((c, regions, plan))
    })
    .await
}

/// A deadline as a `datetime-local` field shows it, in `zone`.
fn field_time(ms: Option<i64>, zone: chrono_tz::Tz) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// `GET /coverage`: per phase and area, who reported, who is late, who is
/// silent; it refreshes itself.
pub async fn coverage_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<CoverageQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (c, regions, plan) = read(&app, &signed, query).await?;
    Ok(page(
        StatusCode::OK,
        &CoveragePage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            may_plan: signed.account.may(Permission::PlanDay),
            regions,
            time_zone: plan.time_zone.clone().unwrap_or_default(),
            deadlines: Phase::ALL
                .iter()
                .map(|p| {
                    (
                        p.as_str(),
                        field_time(plan.deadlines.get(p).copied(), plan.zone()),
                    )
                })
                .collect(),
            c,
        },
    ))
}

/// `GET /api/v1/coverage?region=R`: the coverage view as JSON.
pub async fn coverage_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<CoverageQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    Ok(Json(read(&app, &signed, query).await?.0).into_response())
}

#[derive(Deserialize)]
pub struct PlanForm {
    csrf: String,
    #[serde(default)]
    opening: String,
    #[serde(default)]
    voting: String,
    #[serde(default)]
    closing: String,
    #[serde(default)]
    counting: String,
    silent_after_minutes: u32,
    #[serde(default)]
    time_zone: String,
}

/// A deadline field: empty for none, else `YYYY-MM-DDTHH:MM` in `zone`
/// (a time a clock change skips is refused; one it repeats is the earlier).
fn deadline(text: &str, zone: chrono_tz::Tz) -> Result<Option<i64>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let t = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .map_err(|_| WebError::BadQuery("refused-deadline"))?;
    let at = zone
        .from_local_datetime(&t)
        .earliest()
        .ok_or(WebError::BadQuery("refused-deadline"))?;
    Ok(Some(at.timestamp_millis()))
}

/// `POST /coverage/plan`: sets the day's deadlines and the silence
/// threshold (audited).
pub async fn set_plan(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    signed: SignedIn,
    form: Result<Form<PlanForm>, FormRejection>,
) -> Result<Response, WebError> {
    signed.require(&app.org, "may-plan", Permission::PlanDay)?;
    let Form(form) = form?;
    signed.check_form(&headers, &form.csrf)?;
    if form.silent_after_minutes == 0 || form.silent_after_minutes > MAX_SILENT_MINUTES {
        return Err(WebError::BadQuery("refused-silent"));
    }
    let time_zone = Some(form.time_zone.trim().to_string()).filter(|z| !z.is_empty());
    let zone: chrono_tz::Tz = match &time_zone {
        None => chrono_tz::UTC,
        Some(z) => z.parse().map_err(|_| WebError::BadQuery("refused-zone"))?,
    };
    let mut plan = DayPlan {
        silent_after_minutes: form.silent_after_minutes,
        time_zone: time_zone.map(|_| zone.name().to_string()),
        ..DayPlan::default()
    };
    for (phase, text) in [
        (Phase::Opening, &form.opening),
        (Phase::Voting, &form.voting),
        (Phase::Closing, &form.closing),
        (Phase::Counting, &form.counting),
    ] {
        if let Some(at) = deadline(text, zone)? {
            plan.deadlines.insert(phase, at);
        }
    }
    let actor = signed.actor();
    let app2 = app.clone();
    blocking(move || {
        let now = now_ms();
        coverage::set_plan(app2.storage.as_ref(), &plan)?;
        let draft = Draft {
            actor,
            action: "plan.set",
            subject: "coverage".into(),
            detail: serde_json::to_value(&plan).expect("serialises"),
        };
        audit::append(app2.storage.as_ref(), &app2.key, draft, now)?;
        Ok(())
    })
    .await?;
    app.forget_zone();
    Ok(Redirect::to("/coverage").into_response())
}
