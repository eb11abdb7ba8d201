//! The region an account of one region is held to: every station,
//! device and record it asks for is looked up in the station registry,
//! and anything outside its region is refused with a 403 that names both
//! regions; every list it reads is filtered to its region in the
//! database. National accounts pass through without a lookup. The
//! decision itself is [`crate::accounts::Account::covers`].

use std::sync::Arc;

use super::AppState;
use super::pages::{WebError, blocking};
use super::session::SignedIn;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A list filter's region for `signed`: its own region whatever was asked
/// (asking for another is refused), or what was asked for a national
/// account.
pub fn region_filter(
    signed: &SignedIn,
    org: &str,
    what: &'static str,
    asked: &str,
) -> Result<String, WebError> {
    let asked = asked.trim();
    match signed.region() {
        None => Ok(asked.to_string()),
        Some(mine) if asked.is_empty() || asked == mine => Ok(mine.to_string()),
        Some(_) => Err(WebError::outside_region(signed.nav(org), what, Some(asked))),
    }
}

/// Refuses unless every one of `stations` is in `signed`'s region.
pub async fn require_stations(
    app: &Arc<AppState>,
    signed: &SignedIn,
    what: &'static str,
    stations: Vec<String>,
) -> Result<(), WebError> {
    if signed.region().is_none() {
        return Ok(());
    }
    let app2 = app.clone();
    let regions: Vec<Option<String>> = blocking(move || {
        let registry = crate::registry::current(app2.storage.as_ref())?;
        Ok(stations
            .iter()
            .map(|s| {
                registry
                    .as_ref()
                    .and_then(|r| r.region_of(s))
                    .map(str::to_string)
            })
            .collect())
    })
    .await?;
    match regions
        .iter()
        .find(|r| !signed.account.covers(r.as_deref()))
    {
        Some(outside) => Err(WebError::outside_region(
            signed.nav(&app.org),
            what,
            outside.as_deref(),
        )),
        None => Ok(()),
    }
}

/// Refuses unless record `index`'s station is in `signed`'s region (a
/// record that does not exist is left for the caller's 404).
pub async fn require_record(
    app: &Arc<AppState>,
    signed: &SignedIn,
    what: &'static str,
    index: u64,
) -> Result<(), WebError> {
    if signed.region().is_none() {
        return Ok(());
    }
    let app2 = app.clone();
    let station = blocking(move || {
        Ok(app2
            .storage
            .review_store()
            .item(index, now_ms())?
            .map(|i| i.station))
    })
    .await?;
    match station {
        Some(s) => require_stations(app, signed, what, vec![s]).await,
        None => Ok(()),
    }
}

/// Refuses unless every station device `id` is assigned to is in
/// `signed`'s region (a device that does not exist is left for the
/// caller's 404).
pub async fn require_device(
    app: &Arc<AppState>,
    signed: &SignedIn,
    what: &'static str,
    id: &observer_core::identity::DeviceId,
) -> Result<(), WebError> {
    if signed.region().is_none() {
        return Ok(());
    }
    let app2 = app.clone();
    let id = id.clone();
    let stations = blocking(move || Ok(app2.storage.device(&id)?.map(|d| d.stations))).await?;
    match stations {
        // A device assigned to no station belongs to no region.
        Some(s) if s.is_empty() => Err(WebError::outside_region(signed.nav(&app.org), what, None)),
        Some(s) => require_stations(app, signed, what, s).await,
        None => Ok(()),
    }
}
