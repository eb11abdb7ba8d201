//! Coverage: per phase of the day and per region or district, how many of
//! the registry's stations have reported, which have not by the deadline
//! the coordinators set, which devices have gone silent, which records are
//! known to exist but never arrived, and which revoked devices still try.
//!
//! Computed from one row per station and phase and one row per device
//! (counters kept as records arrive), never from the records themselves,
//! so that it stays cheap enough to recompute every few seconds for every
//! coordinator watching it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::registry::Current;
use crate::storage::review::{FieldDevice, StationPhase};
use crate::storage::{Storage, StorageError};
use crate::triage::Phase;

/// Where the day's plan is kept in `meta`.
const PLAN_KEY: &str = "coverage.plan";

/// Late stations and unregistered ones listed at most (the counts are
/// always whole).
pub const MAX_LISTED: usize = 200;

/// What the coordinators set for the day: by when each phase should have
/// been reported, and after how long without contact a device counts as
/// silent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPlan {
    /// Deadline per phase, ms since the epoch.
    pub deadlines: BTreeMap<Phase, i64>,
    pub silent_after_minutes: u32,
    /// The coordination centre's time zone (an IANA name such as
    /// `Asia/Almaty`): every time in the workspace is shown in it, and
    /// deadlines are entered in it. UTC when none is set.
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl Default for DayPlan {
    fn default() -> Self {
        Self {
            deadlines: BTreeMap::new(),
            silent_after_minutes: 60,
            time_zone: None,
        }
    }
}

impl DayPlan {
    /// The plan's time zone (UTC when none is set, or when the stored name
    /// is not one this build knows).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }
}

/// The day's plan as stored; the default when none was set.
pub fn plan(storage: &dyn Storage) -> Result<DayPlan, StorageError> {
    match storage.meta(PLAN_KEY)? {
        None => Ok(DayPlan::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("the day's plan: {e}"))),
    }
}

/// Stores the day's plan.
pub fn set_plan(storage: &dyn Storage, plan: &DayPlan) -> Result<(), StorageError> {
    storage.set_metas(&[(PLAN_KEY, serde_json::to_vec(plan).expect("serialises"))])
}

/// Which part of the registry to look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Area {
    /// One region (then its districts are listed), or every region.
    pub region: Option<String>,
}

/// The coverage view.
#[derive(Debug, Serialize)]
pub struct Coverage {
    pub at_ms: i64,
    /// The registry version the stations are from (none imported: only
    /// what reported is known).
    pub registry_version: Option<u32>,
    pub region: Option<String>,
    pub phases: Vec<PhaseLine>,
    /// One line per region, or per district of the chosen region.
    pub areas: Vec<AreaLine>,
    /// Stations past a deadline without a report of its phase.
    pub late: Vec<LateStation>,
    pub late_total: usize,
    pub silent: Vec<DeviceLine>,
    /// Devices with records known to exist but never received.
    pub missing: Vec<DeviceLine>,
    pub missing_total: u64,
    /// Revoked devices that still sent something after their revocation.
    pub revoked_trying: Vec<DeviceLine>,
    /// Stations that reported but are not in the registry.
    pub unregistered: Vec<String>,
    pub silent_after_minutes: u32,
    /// The areas placed by their stations' coordinates, coloured by the
    /// phase now due (`None` when the registry gives no coordinates).
    pub map: Option<CoverageMap>,
}

/// A map of the areas drawn from the registry's own coordinates (no map
/// tiles: they would not load offline): each area a circle at the mean of
/// its stations' positions, sized by its stations, coloured by the share
/// that reported the phase now due.
#[derive(Debug, Serialize)]
pub struct CoverageMap {
    pub width: u32,
    pub height: u32,
    /// The phase the colours are of: the latest whose deadline has
    /// passed, else the opening.
    pub phase: Phase,
    pub points: Vec<MapPoint>,
}

/// One area on the [`CoverageMap`], in the map's pixels.
#[derive(Debug, Serialize)]
pub struct MapPoint {
    pub name: String,
    pub x: u32,
    pub y: u32,
    pub r: u32,
    pub reported: usize,
    pub stations: usize,
    /// Percent of its stations that reported `phase`.
    pub share: usize,
}

impl MapPoint {
    /// The colour class: most reported, about half, or few.
    pub fn tone(&self) -> &'static str {
        match self.share {
            90.. => "ok",
            50..=89 => "mid",
            _ => "gap",
        }
    }

    /// The coverage view's query for this area (a region's districts).
    pub fn link(&self) -> String {
        serde_urlencoded::to_string([("region", &self.name)]).unwrap_or_default()
    }
}

/// Width of the map in pixels; its height follows the areas' extent.
const MAP_WIDTH: f64 = 640.0;
const MAP_PAD: f64 = 40.0;

/// The map of `areas` whose mean positions are `centres` (sum of latitudes,
/// of longitudes, and how many stations had one), coloured by phase index
/// `phase` of [`Phase::ALL`].
fn map(
    areas: &BTreeMap<String, AreaLine>,
    centres: &HashMap<String, (f64, f64, usize)>,
    phase: usize,
) -> Option<CoverageMap> {
    let placed: Vec<(&AreaLine, f64, f64)> = areas
        .values()
        .filter_map(|a| {
            let (lat, lon, n) = centres.get(&a.name)?;
            (*n > 0).then(|| (a, lat / *n as f64, lon / *n as f64))
        })
        .collect();
    if placed.is_empty() {
        return None;
    }
    let (min_lat, max_lat) = placed.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (min_lon, max_lon) = placed.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.2), hi.max(p.2))
    });
    // Equirectangular, a degree of longitude shortened by the cosine of
    // the middle latitude: true enough in shape for one country.
    let squeeze = ((min_lat + max_lat) / 2.0).to_radians().cos().max(0.1);
    let span_x = ((max_lon - min_lon) * squeeze).max(1e-6);
    let span_y = (max_lat - min_lat).max(1e-6);
    let scale = (MAP_WIDTH - 2.0 * MAP_PAD) / span_x.max(span_y);
    let height = (span_y * scale + 2.0 * MAP_PAD).clamp(2.0 * MAP_PAD, MAP_WIDTH);
    let most = placed
        .iter()
        .map(|p| p.0.stations)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let points = placed
        .into_iter()
        .map(|(a, lat, lon)| {
            let reported = a.reported.get(phase).copied().unwrap_or(0);
            MapPoint {
                name: a.name.clone(),
                x: (MAP_PAD + (lon - min_lon) * squeeze * scale).round() as u32,
                y: (MAP_PAD + (max_lat - lat) * scale).round() as u32,
                r: (6.0 + 18.0 * (a.stations as f64 / most).sqrt()).round() as u32,
                reported,
                stations: a.stations,
                share: (reported * 100).checked_div(a.stations).unwrap_or(0),
            }
        })
        .collect();
    Some(CoverageMap {
        width: MAP_WIDTH as u32,
        height: height.round() as u32,
        phase: Phase::ALL[phase],
        points,
    })
}

/// One phase's totals in the chosen area.
#[derive(Debug, Serialize)]
pub struct PhaseLine {
    pub phase: Phase,
    pub deadline_ms: Option<i64>,
    pub reported: usize,
    pub stations: usize,
    /// Not reported, and the deadline has passed.
    pub late: usize,
}

/// One region's or district's counts, per phase in [`Phase::ALL`] order.
#[derive(Debug, Serialize)]
pub struct AreaLine {
    pub name: String,
    pub stations: usize,
    pub reported: Vec<usize>,
    pub late: Vec<usize>,
}

impl AreaLine {
    /// The coverage view's query for this area (a region's districts).
    pub fn link(&self) -> String {
        serde_urlencoded::to_string([("region", &self.name)]).unwrap_or_default()
    }

    /// Per phase: stations reported, their share (0 to 100), stations late.
    pub fn cells(&self) -> Vec<(usize, usize, usize)> {
        self.reported
            .iter()
            .zip(&self.late)
            .map(|(&r, &l)| (r, (r * 100).checked_div(self.stations).unwrap_or(0), l))
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct LateStation {
    pub station: String,
    pub name: String,
    pub region: String,
    pub district: String,
    pub phase: Phase,
}

#[derive(Debug, Serialize)]
pub struct DeviceLine {
    pub id: String,
    pub observer: String,
    pub stations: String,
    pub last_contact_ms: Option<i64>,
    pub missing: u64,
    pub quarantined: u64,
}

impl From<&FieldDevice> for DeviceLine {
    fn from(d: &FieldDevice) -> Self {
        Self {
            id: d.id.as_str().to_string(),
            observer: d.name.clone().unwrap_or_default(),
            stations: d.stations.join(", "),
            last_contact_ms: d.last_contact_ms,
            missing: d.missing(),
            quarantined: d.quarantined,
        }
    }
}

/// The coverage of `area` at `now_ms`.
pub fn coverage(
    registry: Option<&Current>,
    reported: &[StationPhase],
    devices: &[FieldDevice],
    plan: &DayPlan,
    area: &Area,
    now_ms: i64,
) -> Coverage {
    let by_station: HashMap<&str, Vec<Phase>> = reported.iter().fold(HashMap::new(), |mut m, r| {
        m.entry(r.station.as_str()).or_default().push(r.phase);
        m
    });
    let has = |station: &str, p: Phase| by_station.get(station).is_some_and(|v| v.contains(&p));
    let past: Vec<(usize, Phase)> = Phase::ALL
        .into_iter()
        .enumerate()
        .filter(|(_, p)| plan.deadlines.get(p).is_some_and(|d| *d <= now_ms))
        .collect();

    let mut phases: Vec<PhaseLine> = Phase::ALL
        .into_iter()
        .map(|phase| PhaseLine {
            phase,
            deadline_ms: plan.deadlines.get(&phase).copied(),
            reported: 0,
            stations: 0,
            late: 0,
        })
        .collect();
    let mut areas: BTreeMap<String, AreaLine> = BTreeMap::new();
    let mut late = Vec::new();
    let mut late_total = 0;
    let mut unregistered = Vec::new();
    let mut centres: HashMap<String, (f64, f64, usize)> = HashMap::new();
    match registry {
        Some(reg) => {
            for s in reg.stations.values() {
                if area.region.as_ref().is_some_and(|r| *r != s.region) {
                    continue;
                }
                let name = match area.region {
                    Some(_) => &s.district,
                    None => &s.region,
                };
                let line = areas.entry(name.clone()).or_insert_with(|| AreaLine {
                    name: name.clone(),
                    stations: 0,
                    reported: vec![0; Phase::ALL.len()],
                    late: vec![0; Phase::ALL.len()],
                });
                line.stations += 1;
                if let Some(at) = s.location {
                    let c = centres.entry(name.clone()).or_default();
                    *c = (c.0 + at.latitude, c.1 + at.longitude, c.2 + 1);
                }
                for (i, p) in Phase::ALL.into_iter().enumerate() {
                    phases[i].stations += 1;
                    if has(&s.id, p) {
                        phases[i].reported += 1;
                        line.reported[i] += 1;
                    }
                }
                for &(i, p) in &past {
                    if !has(&s.id, p) {
                        phases[i].late += 1;
                        line.late[i] += 1;
                        late_total += 1;
                        if late.len() < MAX_LISTED {
                            late.push(LateStation {
                                station: s.id.clone(),
                                name: s.name.clone(),
                                region: s.region.clone(),
                                district: s.district.clone(),
                                phase: p,
                            });
                        }
                    }
                }
            }
            // A station the registry does not hold is in no region: only
            // the whole country's view lists it.
            let mut odd: Vec<&str> = by_station
                .keys()
                .copied()
                .filter(|s| area.region.is_none() && reg.get(s).is_none())
                .collect();
            odd.sort_unstable();
            unregistered = odd
                .into_iter()
                .take(MAX_LISTED)
                .map(str::to_string)
                .collect();
        }
        None => {
            for (i, p) in Phase::ALL.into_iter().enumerate() {
                phases[i].reported = reported.iter().filter(|r| r.phase == p).count();
            }
        }
    }

    let silent_ms = i64::from(plan.silent_after_minutes) * 60_000;
    let in_area = |d: &FieldDevice| match (&area.region, registry) {
        (Some(region), Some(reg)) => d
            .stations
            .iter()
            .any(|s| reg.get(s).is_some_and(|st| st.region == *region)),
        // Without a registry no station is in any region.
        (Some(_), None) => false,
        (None, _) => true,
    };
    let devices: Vec<&FieldDevice> = devices.iter().filter(|d| in_area(d)).collect();
    let silent = devices
        .iter()
        .filter(|d| d.revoked_at_ms.is_none())
        .filter(|d| d.last_contact_ms.is_none_or(|t| now_ms - t > silent_ms))
        .map(|d| DeviceLine::from(*d))
        .collect();
    let missing: Vec<DeviceLine> = devices
        .iter()
        .filter(|d| d.missing() > 0)
        .map(|d| DeviceLine::from(*d))
        .collect();
    let revoked_trying = devices
        .iter()
        .filter(|d| d.quarantined > 0)
        .map(|d| DeviceLine::from(*d))
        .collect();
    let due = past.last().map_or(0, |(i, _)| *i);
    let map = map(&areas, &centres, due);
    Coverage {
        map,
        at_ms: now_ms,
        registry_version: registry.map(|r| r.version.version),
        region: area.region.clone(),
        phases,
        areas: areas.into_values().collect(),
        late,
        late_total,
        silent,
        missing_total: missing.iter().map(|d| d.missing).sum(),
        missing,
        revoked_trying,
        unregistered,
        silent_after_minutes: plan.silent_after_minutes,
    }
}
