//! Tabulation from the observers' copies of the results protocols, and the
//! comparison with the official per-station results.
//!
//! For each station, each observer's newest `results` record counts (a
//! correction supersedes by coming later in that observer's chain). When
//! several observers report one station, identical figures are agreement;
//! different figures are a conflict, shown and left out of the totals.

use std::collections::BTreeMap;

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
    /// Each party's share of the valid ballots, and the turnout.
    #[serde(flatten)]
    pub shares: Shares,
}

/// Vote shares and turnout from summed figures: each `party_*` figure
/// over their sum (the valid ballots), and `ballots_cast` over
/// `registered_voters`; a share is absent when its denominator is zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Shares {
    pub shares: BTreeMap<String, f64>,
    pub turnout: Option<f64>,
}

impl Shares {
    pub fn of(figures: &BTreeMap<String, i64>) -> Self {
        let parties: Vec<(&String, i64)> = figures
            .iter()
            .filter(|(k, _)| k.starts_with(crate::pvt::tally::PARTY_PREFIX))
            .map(|(k, v)| (k, *v))
            .collect();
        let valid: i64 = parties.iter().map(|(_, v)| v).sum();
        let ratio = |n: i64, d: i64| (d > 0).then(|| n as f64 / d as f64);
        Shares {
            shares: parties
                .iter()
                .filter_map(|(k, v)| ratio(*v, valid).map(|r| ((*k).clone(), r)))
                .collect(),
            turnout: match (
                figures.get("ballots_cast"),
                figures.get("registered_voters"),
            ) {
                (Some(&c), Some(&r)) => ratio(c, r),
                _ => None,
            },
        }
    }
}

/// Figure name to value.
type Figures = BTreeMap<String, i64>;

/// A results record's whole-number answers, as tabulation counts them
/// (notes and photos differ between observers without disagreeing); none
/// from a body that is not a record's JSON.
pub fn protocol_figures(body: &[u8]) -> Figures {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    body["payload"]
        .as_object()
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| v.as_i64().map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

/// One device's newest results protocol at a station: a correction is a
/// later record in the same chain, so it replaces what came before.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub device: observer_core::identity::DeviceId,
    pub seq: u64,
    /// Its leaf index in the log (the record's page).
    pub index: u64,
    /// Whether it passes its form's arithmetic rules.
    pub clean: bool,
    pub figures: Figures,
}

/// Why a protocol is set aside before the observers' copies of a station
/// are compared: a decision recorded beside the record (and in the audit
/// log), never an edit of it. A verifier resolves two observers'
/// disagreement by rejecting the copy that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetAside {
    /// Its device was revoked (seized, or not an observer's).
    DeviceRevoked,
    /// A verifier rejected it.
    RejectedByVerifier,
}

/// The results protocols of the stations `keep` accepts: those that stand,
/// by station, and those set aside with the reason.
#[derive(Debug, Default)]
pub struct Protocols {
    pub standing: BTreeMap<String, Vec<Protocol>>,
    pub set_aside: Vec<(String, Protocol, SetAside)>,
}

/// Reads each device's newest results protocol per station and sets aside
/// those of revoked devices and those a verifier rejected.
pub fn protocols(
    reader: &Reader<'_>,
    keep: &dyn Fn(&str) -> bool,
    now_ms: i64,
) -> Result<Protocols, StorageError> {
    let storage = reader.storage();
    let mut latest: BTreeMap<String, BTreeMap<observer_core::identity::DeviceId, Protocol>> =
        BTreeMap::new();
    reader.records(
        &RecordFilter {
            kind: Some("results".into()),
            ..Default::default()
        },
        &mut |r| {
            if !keep(&r.station) {
                return Ok(());
            }
            let by_device = latest.entry(r.station).or_default();
            if by_device
                .get(&r.device)
                .is_none_or(|held| held.seq <= r.seq)
            {
                by_device.insert(
                    r.device.clone(),
                    Protocol {
                        device: r.device,
                        seq: r.seq,
                        index: r.index,
                        clean: r.check.as_ref().is_none_or(|c| c.clean),
                        figures: protocol_figures(&r.body),
                    },
                );
            }
            Ok(())
        },
    )?;
    // Only the devices that sent protocols, each looked up once: the
    // device list with its chains would read every record.
    let mut revoked: BTreeMap<observer_core::identity::DeviceId, bool> = BTreeMap::new();
    let reviews = storage.review_store();
    let mut out = Protocols::default();
    for (station, by_device) in latest {
        let mut standing = Vec::with_capacity(by_device.len());
        for p in by_device.into_values() {
            let is_revoked = match revoked.get(&p.device) {
                Some(&known) => known,
                None => {
                    let known = storage
                        .device(&p.device)?
                        .is_some_and(|d| d.revoked_at_ms.is_some());
                    revoked.insert(p.device.clone(), known);
                    known
                }
            };
            let why = if is_revoked {
                Some(SetAside::DeviceRevoked)
            } else if reviews
                .item(p.index, now_ms)?
                .is_some_and(|i| i.review == crate::review::ReviewState::Rejected)
            {
                Some(SetAside::RejectedByVerifier)
            } else {
                None
            };
            match why {
                Some(why) => out.set_aside.push((station.clone(), p, why)),
                None => standing.push(p),
            }
        }
        if !standing.is_empty() {
            out.standing.insert(station, standing);
        }
    }
    Ok(out)
}

/// The observers' figures per station, from the protocols that stand
/// ([`protocols`]): a station whose every copy was set aside is not
/// reported, and one whose wrong copy a verifier rejected agrees again.
pub fn stations(reader: &Reader<'_>, now_ms: i64) -> Result<Vec<StationResult>, StorageError> {
    let storage = reader.storage();
    let latest = protocols(reader, &|_| true, now_ms)?.standing;
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
        .map(|(station, standing)| {
            let reports: Vec<&BTreeMap<String, i64>> =
                standing.iter().map(|p| &p.figures).collect();
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
                shares: Shares::of(reports[0]),
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
    /// Stations the registry holds in the area (`None`: no registry, or
    /// stations outside it).
    pub registered_stations: Option<usize>,
    /// Stations left out because their observers disagree.
    pub conflicts: usize,
    pub figures: BTreeMap<String, i64>,
    /// Shares and turnout of the summed figures.
    #[serde(flatten)]
    pub shares: Shares,
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
/// region under "unknown". With `registry`, each area says how many
/// stations it has ("N of M reported").
pub fn totals(
    results: &[StationResult],
    by: Area,
    registry: Option<&crate::registry::Current>,
) -> Vec<Totals> {
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
    let mut all: Vec<Totals> = areas.into_values().collect();
    if let Some(registry) = registry {
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        for s in registry.stations.values() {
            let name = match by {
                Area::Country => "country".to_string(),
                Area::Region => s.region.clone(),
                Area::District => format!("{} / {}", s.region, s.district),
            };
            *held.entry(name).or_default() += 1;
        }
        for t in &mut all {
            t.registered_stations = held.get(&t.area).copied();
        }
    }
    for t in &mut all {
        t.shares = Shares::of(&t.figures);
    }
    all
}

/// A figure where the observers' copy and the official result differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Discrepancy {
    pub station: String,
    pub figure: String,
    pub observed: Option<i64>,
    pub official: i64,
}

/// The observers' copies against the official results, station by
/// station: how many stations both sides have (and were compared), which
/// differ and where, and which stations only one side has.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// Stations with an official result and an agreed observers' copy.
    pub compared: usize,
    /// Every figure of a compared station where the two differ.
    pub discrepancies: Vec<Discrepancy>,
    /// Stations the observers reported and the official results lack.
    pub only_observed: Vec<String>,
    /// Stations the official results list and no observer reported.
    pub only_official: Vec<String>,
    /// Stations both have whose observers disagree (not compared; the
    /// station view shows the conflict).
    pub observers_disagree: Vec<String>,
}

/// Compares every station with both an official result and an agreed
/// observers' copy, figure by figure (each figure the official result
/// gives).
pub fn compare(results: &[StationResult], official: &[OfficialResult]) -> Comparison {
    let observed: BTreeMap<&str, &StationResult> =
        results.iter().map(|r| (r.station.as_str(), r)).collect();
    let listed: std::collections::BTreeSet<&str> =
        official.iter().map(|o| o.station.as_str()).collect();
    let mut out = Comparison {
        only_observed: results
            .iter()
            .filter(|r| !listed.contains(r.station.as_str()))
            .map(|r| r.station.clone())
            .collect(),
        ..Default::default()
    };
    for o in official {
        let Some(r) = observed.get(o.station.as_str()) else {
            out.only_official.push(o.station.clone());
            continue;
        };
        if matches!(r.agreement, Agreement::Conflict { .. }) {
            out.observers_disagree.push(o.station.clone());
            continue;
        }
        out.compared += 1;
        for (figure, &official) in &o.figures {
            let seen = r.figures.get(figure).copied();
            if seen != Some(official) {
                out.discrepancies.push(Discrepancy {
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

/// Why an official results file was refused. Nothing of it was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is over {0} bytes")]
    TooLarge(u64),
    #[error("the header (line 1) cannot be read: {0}")]
    Header(String),
    #[error("the file has no \"station\" column")]
    NoStation,
    #[error("the column {0:?} appears twice")]
    DuplicateColumn(String),
    #[error("unknown column{} {}: the figures are the results forms' whole-number fields ({})",
        if .unknown.len() == 1 { "" } else { "s" },
        .unknown.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", "),
        .known.join(", "))]
    UnknownColumns {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    #[error("the file holds no stations")]
    Empty,
    #[error("{} bad line{} (nothing was imported):\n{}",
        .0.len(),
        if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|b| format!("  line {}: {}", b.line, b.reason)).collect::<Vec<_>>().join("\n"))]
    Lines(Vec<crate::registry::BadLine>),
}

/// Most bytes an official results file may have.
pub const MAX_OFFICIAL_BYTES: u64 = 64 * 1024 * 1024;

/// Bad lines reported at most.
const MAX_REPORTED: usize = 50;

/// The figures an official results file may hold: every whole-number field
/// of a results form (shipped or published).
pub fn figure_names(storage: &dyn crate::storage::Storage) -> Result<Vec<String>, StorageError> {
    let mut names = std::collections::BTreeSet::new();
    let published = storage.forms()?;
    let parsed: Vec<observer_core::forms::FormDefinition> = published
        .iter()
        .filter_map(|f| observer_core::forms::FormDefinition::parse(&f.definition).ok())
        .collect();
    for def in observer_core::forms::default_forms().iter().chain(&parsed) {
        if def.kind != "results" {
            continue;
        }
        for f in &def.fields {
            if matches!(f.kind, observer_core::forms::FieldType::Integer { .. }) {
                names.insert(f.id.clone());
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// What an import of official results changes against the version before
/// it, station by station: what a coordinator reads before the commission's
/// correction replaces the figures the verdict was made on.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OfficialChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Stations whose figures or region changed: `party_1 510 -> 540`.
    pub changed: Vec<(String, Vec<String>)>,
}

impl OfficialChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The changes from `old` to `new` (both by station, as imported).
pub fn official_changes(old: &[OfficialResult], new: &[OfficialResult]) -> OfficialChanges {
    let old: BTreeMap<&str, &OfficialResult> =
        old.iter().map(|r| (r.station.as_str(), r)).collect();
    let new: BTreeMap<&str, &OfficialResult> =
        new.iter().map(|r| (r.station.as_str(), r)).collect();
    let mut changes = OfficialChanges::default();
    for (station, after) in &new {
        let Some(before) = old.get(station) else {
            changes.added.push(station.to_string());
            continue;
        };
        let mut what = Vec::new();
        if before.region != after.region {
            let or_none = |r: &Option<String>| r.clone().unwrap_or_else(|| "-".into());
            what.push(format!(
                "region {} -> {}",
                or_none(&before.region),
                or_none(&after.region)
            ));
        }
        let names: std::collections::BTreeSet<&String> =
            before.figures.keys().chain(after.figures.keys()).collect();
        for name in names {
            let (b, a) = (before.figures.get(name), after.figures.get(name));
            if b != a {
                let or_none = |v: Option<&i64>| v.map_or_else(|| "-".into(), i64::to_string);
                what.push(format!("{name} {} -> {}", or_none(b), or_none(a)));
            }
        }
        if !what.is_empty() {
            changes.changed.push((station.to_string(), what));
        }
    }
    changes.removed = old
        .keys()
        .filter(|s| !new.contains_key(*s))
        .map(|s| s.to_string())
        .collect();
    changes
}

/// Reads official results from CSV as the election commission publishes
/// them, or as a spreadsheet saves them (a byte-order mark, `;` between
/// cells under Kazakh and Russian settings): a `station` column, an
/// optional `region` column, and one column per figure, named as the
/// results form names it (`known`). Every cell of a figure holds a whole
/// number of at least zero; a file with any bad line is refused whole,
/// each bad line named.
pub fn parse_official(bytes: &[u8], known: &[String]) -> Result<Vec<OfficialResult>, ImportError> {
    if bytes.len() as u64 > MAX_OFFICIAL_BYTES {
        return Err(ImportError::TooLarge(MAX_OFFICIAL_BYTES));
    }
    let mut rd = crate::registry::spreadsheet_csv(bytes);
    let headers: Vec<String> = rd
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut seen_columns = std::collections::BTreeSet::new();
    for h in &headers {
        if !seen_columns.insert(h.as_str()) {
            return Err(ImportError::DuplicateColumn(h.clone()));
        }
    }
    let station_col = headers
        .iter()
        .position(|h| h == "station")
        .ok_or(ImportError::NoStation)?;
    let region_col = headers.iter().position(|h| h == "region");
    let unknown: Vec<String> = headers
        .iter()
        .filter(|h| *h != "station" && *h != "region" && !known.contains(h))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ImportError::UnknownColumns {
            unknown,
            known: known.to_vec(),
        });
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut first_seen: BTreeMap<String, u64> = BTreeMap::new();
    for rec in rd.records() {
        if bad.len() >= MAX_REPORTED {
            break;
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push(crate::registry::BadLine {
                    line: e.position().map_or(0, |p| p.line()),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue; // a blank line, as spreadsheets leave at the end
        }
        let mut reasons = Vec::new();
        if rec.len() != headers.len() {
            reasons.push(format!(
                "{} cells where the header has {}",
                rec.len(),
                headers.len()
            ));
        }
        let station = rec.get(station_col).unwrap_or_default().trim().to_string();
        if let Err(e) = observer_core::record::StationId::new(station.clone()) {
            reasons.push(format!("station {station:?}: {e}"));
        } else if let Some(earlier) = first_seen.get(&station) {
            reasons.push(format!("station {station:?} is already on line {earlier}"));
        }
        let mut figures = BTreeMap::new();
        for (c, h) in headers.iter().enumerate() {
            if c == station_col || Some(c) == region_col {
                continue;
            }
            let cell = rec.get(c).unwrap_or_default().trim();
            if cell.is_empty() {
                reasons.push(format!("{h} is empty"));
            } else if let Ok(n) = cell.parse::<u32>() {
                figures.insert(h.clone(), i64::from(n));
            } else if cell.starts_with('-') && cell[1..].bytes().all(|b| b.is_ascii_digit()) {
                reasons.push(format!("{h} = {cell:?} is negative"));
            } else {
                reasons.push(format!("{h} = {cell:?} is not a whole number"));
            }
        }
        if !reasons.is_empty() {
            bad.push(crate::registry::BadLine {
                line,
                reason: reasons.join("; "),
            });
            continue;
        }
        first_seen.insert(station.clone(), line);
        out.push(OfficialResult {
            station,
            region: region_col
                .and_then(|c| rec.get(c))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            figures,
        });
    }
    if !bad.is_empty() {
        return Err(ImportError::Lines(bad));
    }
    if out.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["ballots_cast", "party_1", "party_2", "registered_voters"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_spreadsheet_export_with_semicolons_and_a_bom_is_read() {
        let file = "\u{feff}station;region;ballots_cast;party_1;party_2\nKZ-1;Алматы;100;60;40\n\nKZ-2;;50;20;30\n";
        let rows = parse_official(file.as_bytes(), &known()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].region.as_deref(), Some("Алматы"));
        assert_eq!(rows[1].region, None);
        assert_eq!(rows[1].figures["party_2"], 30);
    }

    #[test]
    fn every_bad_cell_is_named_with_its_line_and_nothing_is_imported() {
        let file = "station,ballots_cast,party_1\nKZ-1,100,60\nKZ-2,,1\nKZ-3,-5,1\nKZ-4,12.5,1\nKZ-1,1,1\nKZ-5,1\n";
        let Err(ImportError::Lines(bad)) = parse_official(file.as_bytes(), &known()) else {
            panic!("accepted");
        };
        let said: Vec<(u64, &str)> = bad.iter().map(|b| (b.line, b.reason.as_str())).collect();
        assert_eq!(
            said,
            vec![
                (3, "ballots_cast is empty"),
                (4, "ballots_cast = \"-5\" is negative"),
                (5, "ballots_cast = \"12.5\" is not a whole number"),
                (6, "station \"KZ-1\" is already on line 2"),
                (7, "2 cells where the header has 3; party_1 is empty"),
            ]
        );
    }

    #[test]
    fn unknown_and_repeated_columns_and_empty_files_are_refused() {
        let e =
            parse_official(b"station,ballots_cast,votes_for_x\nKZ-1,1,1\n", &known()).unwrap_err();
        assert!(
            matches!(&e, ImportError::UnknownColumns { unknown, .. } if unknown == &["votes_for_x".to_string()]),
            "{e}"
        );
        assert!(e.to_string().contains("party_1"), "{e}");
        assert!(matches!(
            parse_official(b"station,party_1,party_1\nKZ-1,1,1\n", &known()),
            Err(ImportError::DuplicateColumn(_))
        ));
        assert!(matches!(
            parse_official(b"name,party_1\nKZ-1,1\n", &known()),
            Err(ImportError::NoStation)
        ));
        assert!(matches!(
            parse_official(b"station,party_1\n", &known()),
            Err(ImportError::Empty)
        ));
    }
}
