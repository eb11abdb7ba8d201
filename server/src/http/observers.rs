//! Finding an observer: by a part of their name, the first characters of
//! their device id (what a phone's settings screen shows), or a station.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::pages::{ObserversPage, WebError, blocking, page};
use super::session::SignedIn;
use crate::accounts::Permission;
use crate::coverage::DeviceLine;
use crate::i18n::Texts;
use crate::storage::review::FieldDevice;

/// Observers one answer lists at most.
const MAX_LISTED: usize = 200;

/// Longest search accepted.
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct ObserverQuery {
    #[serde(default)]
    q: String,
}

/// Whether `d` is what `q` looks for: empty finds everyone; else a part of
/// the name (ignoring case), the start of the device id, or a station.
pub fn matches(d: &FieldDevice, q: &str) -> bool {
    let q = q.trim();
    if q.is_empty() {
        return true;
    }
    let lower = q.to_lowercase();
    d.name
        .as_deref()
        .is_some_and(|n| n.to_lowercase().contains(&lower))
        || d.id.as_str().starts_with(&lower)
        || d.stations.iter().any(|s| s.eq_ignore_ascii_case(q))
}

/// The observers `query` finds, and how many in all.
async fn find(
    app: &Arc<AppState>,
    signed: &SignedIn,
    query: Result<Query<ObserverQuery>, QueryRejection>,
) -> Result<(String, Vec<DeviceLine>, Vec<bool>, usize), WebError> {
    signed.require(&app.org, "may-read", Permission::Read)?;
    let Ok(Query(q)) = query else {
        return Err(WebError::BadQuery("refused-query"));
    };
    if q.q.chars().count() > MAX_QUERY_CHARS {
        return Err(WebError::BadQuery("refused-query"));
    }
    let app = app.clone();
    let text = q.q.clone();
    let mine = signed.region().map(str::to_string);
    let found: Vec<FieldDevice> = blocking(move || {
        let storage = app.storage.as_ref();
        let all = storage.review_store().field_devices()?;
        // An account of one region finds the observers of its stations.
        let registry = match mine {
            Some(_) => crate::registry::current(storage)?,
            None => None,
        };
        let in_region = |d: &FieldDevice| match (&mine, &registry) {
            (None, _) => true,
            (Some(r), Some(reg)) => d
                .stations
                .iter()
                .any(|s| reg.region_of(s) == Some(r.as_str())),
            (Some(_), None) => false,
        };
        Ok(all
            .into_iter()
            .filter(|d| in_region(d) && matches(d, &text))
            .collect())
    })
    .await?;
    let total = found.len();
    let revoked = found
        .iter()
        .take(MAX_LISTED)
        .map(|d| d.revoked_at_ms.is_some())
        .collect();
    let lines = found
        .iter()
        .take(MAX_LISTED)
        .map(DeviceLine::from)
        .collect();
    Ok((q.q, lines, revoked, total))
}

/// `GET /observers?q=`: the observers a search finds.
pub async fn observers_page(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<ObserverQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (q, found, revoked, total) = find(&app, &signed, query).await?;
    Ok(page(
        StatusCode::OK,
        &ObserversPage {
            t: Texts::current(),
            nav: signed.nav(&app.org),
            may_revoke: signed.account.may(Permission::Revoke),
            q,
            found: found.into_iter().zip(revoked).collect(),
            total,
        },
    ))
}

/// `GET /api/v1/observers?q=`: the same as JSON.
pub async fn observers_json(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    query: Result<Query<ObserverQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (_, found, _, total) = find(&app, &signed, query).await?;
    Ok(Json(serde_json::json!({ "observers": found, "total": total })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_part_an_id_prefix_or_a_station_finds_an_observer() {
        let id = observer_core::identity::SigningKey::generate()
            .unwrap()
            .public_key()
            .device_id();
        let d = FieldDevice {
            id: id.clone(),
            name: Some("Айгүл Серікқызы".into()),
            stations: vec!["KZ-ALA-0042".into()],
            last_contact_ms: None,
            revoked_at_ms: None,
            revoked_after_seq: None,
            held: 0,
            max_seq: 0,
            declared: 0,
            quarantined: 0,
        };
        for q in ["", "айгүл", "СЕРІК", &id.as_str()[..6], "kz-ala-0042"] {
            assert!(matches(&d, q), "{q:?}");
        }
        for q in ["Ерлан", &id.as_str()[1..7], "KZ-ALA-004"] {
            assert!(!matches(&d, q), "{q:?}");
        }
    }
}
