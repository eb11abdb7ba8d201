//! Tabulation from the observers' copies of the results protocols, and the
//! comparison with the official per-station results.
//!
//! For each station, each observer's newest `results` record counts (a
//! correction supersedes by coming later in that observer's chain). When
//! several observers report one station, identical figures are agreement;
//! different figures are a conflict, shown and left out of the totals.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::reader::Reader;
use crate::storage::{OfficialResult, RecordFilter, StorageError};

/// Whether the observers at a station agree.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Agreement {
    /// One observer reported.
    Single,
    /// Several observers reported the same figures.
    Agreed { observers: usize },
    /// Observers reported different figures.
    Conflict { observers: usize },
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Agreement::Single => f.write_str("one observer"),
            Agreement::Agreed { observers } => write!(f, "{observers} observers agree"),
            Agreement::Conflict { observers } => write!(f, "{observers} observers DISAGREE"),
        }
    }
}

/// One station as the observers reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StationResult {
    pub station: String,
    /// From the station registry; without one, from the official results
    /// when they were imported.
    pub region: Option<String>,
    /// From the station registry.
    pub district: Option<String>,
    /// Whether the registry holds the station (`None`: no registry).
    pub in_registry: Option<bool>,
    #[serde(flatten)]
    pub agreement: Agreement,
    /// The reported figures (the first observer's, when in conflict).
    pub figures: BTreeMap<String, i64>,
}

/// Figure name to value.
type Figures = BTreeMap<String, i64>;

/// The observers' figures per station.
pub fn stations(reader: &Reader<'_>) -> Result<Vec<StationResult>, StorageError> {
    let storage = reader.storage();
    // station -> device -> (seq, figures) of that device's newest protocol
    let mut latest: BTreeMap<String, BTreeMap<String, (u64, Figures)>> = BTreeMap::new();
    reader.records(
        &RecordFilter {
            kind: Some("results".into()),
            ..Default::default()
        },
        &mut |r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let figures: BTreeMap<String, i64> = body["payload"]
                .as_object()
                .map(|p| {
                    p.iter()
                        .filter_map(|(k, v)| v.as_i64().map(|n| (k.clone(), n)))
                        .collect()
                })
                .unwrap_or_default();
            let slot = latest
                .entry(r.station)
                .or_default()
                .entry(r.device.to_string())
                .or_insert((0, BTreeMap::new()));
            if r.seq >= slot.0 {
                *slot = (r.seq, figures);
            }
            Ok(())
        },
    )?;
    let registry = crate::registry::current(storage)?;
    // Regions come from the registry; the official results' own regions
    // stand in only where no registry was imported.
    let official_regions: BTreeMap<String, Option<String>> = if registry.is_some() {
        BTreeMap::new()
    } else {
        storage
            .official()?
            .into_iter()
            .map(|o| (o.station, o.region))
            .collect()
    };
    Ok(latest
        .into_iter()
        .map(|(station, by_device)| {
            let reports: Vec<&BTreeMap<String, i64>> = by_device.values().map(|(_, f)| f).collect();
            let n = reports.len();
            let agreement = if n == 1 {
                Agreement::Single
            } else if reports.windows(2).all(|w| w[0] == w[1]) {
                Agreement::Agreed { observers: n }
            } else {
                Agreement::Conflict { observers: n }
            };
            let listed = registry.as_ref().and_then(|r| r.get(&station));
            StationResult {
                region: match listed {
                    Some(s) => Some(s.region.clone()),
                    None => official_regions.get(&station).cloned().flatten(),
                },
                district: listed.map(|s| s.district.clone()),
                in_registry: crate::registry::holds(registry.as_ref(), &station),
                figures: reports[0].clone(),
                station,
                agreement,
            }
        })
        .collect())
}

/// Totals of one area.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Region name, or "country".
    pub area: String,
    /// Stations counted.
    pub stations: usize,
    /// Stations left out because their observers disagree.
    pub conflicts: usize,
    pub figures: BTreeMap<String, i64>,
}

/// The areas totals are made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Country,
    Region,
    /// "region / district".
    District,
}

/// Totals per area. A station the registry does not hold is totalled
/// under "not in the registry"; without a registry, a station of unknown
/// region under "unknown".
pub fn totals(results: &[StationResult], by: Area) -> Vec<Totals> {
    let mut areas: BTreeMap<String, Totals> = BTreeMap::new();
    for r in results {
        let region = || match (r.in_registry, &r.region) {
            (Some(false), _) => "not in the registry".to_string(),
            (_, Some(region)) => region.clone(),
            (_, None) => "unknown".to_string(),
        };
        let area = match (by, r.in_registry, &r.district) {
            (Area::Country, _, _) => "country".into(),
            (Area::Region, _, _) => region(),
            (Area::District, Some(true), Some(d)) => format!("{} / {d}", region()),
            (Area::District, _, _) => region(),
        };
        let t = areas.entry(area.clone()).or_insert_with(|| Totals {
            area,
            ..Default::default()
        });
        if matches!(r.agreement, Agreement::Conflict { .. }) {
            t.conflicts += 1;
            continue;
        }
        t.stations += 1;
        for (k, v) in &r.figures {
            *t.figures.entry(k.clone()).or_default() += v;
        }
    }
    areas.into_values().collect()
}

/// A figure where the observers' copy and the official result differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Discrepancy {
    pub station: String,
    pub figure: String,
    pub observed: Option<i64>,
    pub official: i64,
}

/// Every figure, at every station with both an official result and an
/// observers' copy they agree on, that differs. (Where the observers
/// disagree, `results --by station` shows the conflict instead.)
pub fn compare(results: &[StationResult], official: &[OfficialResult]) -> Vec<Discrepancy> {
    let observed: BTreeMap<&str, &StationResult> = results
        .iter()
        .filter(|r| !matches!(r.agreement, Agreement::Conflict { .. }))
        .map(|r| (r.station.as_str(), r))
        .collect();
    let mut out = Vec::new();
    for o in official {
        let Some(r) = observed.get(o.station.as_str()) else {
            continue;
        };
        for (figure, &official) in &o.figures {
            let seen = r.figures.get(figure).copied();
            if seen != Some(official) {
                out.push(Discrepancy {
                    station: o.station.clone(),
                    figure: figure.clone(),
                    observed: seen,
                    official,
                });
            }
        }
    }
    out
}

/// Why an official results file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("row {row}: {detail}")]
    Row { row: usize, detail: String },
    #[error("the file has no \"station\" column")]
    NoStation,
    #[error("the file is over {0} bytes")]
    TooLarge(u64),
}

/// Most bytes an official results file may have.
pub const MAX_OFFICIAL_BYTES: u64 = 64 * 1024 * 1024;

/// Reads official results from CSV: a `station` column, an optional
/// `region` column, and one column per figure (whole numbers).
pub fn read_official(path: &Path) -> Result<Vec<OfficialResult>, ImportError> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_OFFICIAL_BYTES {
        return Err(ImportError::TooLarge(MAX_OFFICIAL_BYTES));
    }
    let mut rd = csv::Reader::from_path(path).map_err(|e| ImportError::Row {
        row: 1,
        detail: e.to_string(),
    })?;
    let headers = rd
        .headers()
        .map_err(|e| ImportError::Row {
            row: 1,
            detail: e.to_string(),
        })?
        .clone();
    let station_col = headers
        .iter()
        .position(|h| h == "station")
        .ok_or(ImportError::NoStation)?;
    let region_col = headers.iter().position(|h| h == "region");
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, rec) in rd.records().enumerate() {
        let row = i + 2;
        let rec = rec.map_err(|e| ImportError::Row {
            row,
            detail: e.to_string(),
        })?;
        let station = rec.get(station_col).unwrap_or_default().trim().to_string();
        observer_core::record::StationId::new(station.clone()).map_err(|e| ImportError::Row {
            row,
            detail: format!("station {station:?}: {e}"),
        })?;
        if !seen.insert(station.clone()) {
            return Err(ImportError::Row {
                row,
                detail: format!("station {station:?} appears twice"),
            });
        }
        let mut figures = BTreeMap::new();
        for (c, h) in headers.iter().enumerate() {
            if c == station_col || Some(c) == region_col {
                continue;
            }
            let cell = rec.get(c).unwrap_or_default().trim();
            if cell.is_empty() {
                continue;
            }
            let n: i64 = cell.parse().map_err(|_| ImportError::Row {
                row,
                detail: format!("{h} = {cell:?} is not a whole number"),
            })?;
            figures.insert(h.to_string(), n);
        }
        out.push(OfficialResult {
            station,
            region: region_col
                .and_then(|c| rec.get(c))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            figures,
        });
    }
    Ok(out)
}
