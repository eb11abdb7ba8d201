//! The quick count from what arrived: which sampled stations' protocols
//! count and which are left out (and why), then the estimates for the
//! country and each region.
//!
//! A protocol is an observer's newest `results` record for a station. At
//! a sampled station, a protocol is set aside when its arithmetic rules
//! failed, when a verifier rejected it, or when its device was revoked
//! (a seized phone's word no longer counts); the protocols left must agree
//! figure for figure, or the station is left out as a conflict. Figures:
//! every `party_*` answer is a party's votes, their sum the valid ballots;
//! `ballots_cast` over `registered_voters` is the turnout.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::design::Sample;
use super::estimate::{Observation, Ratio, ratio};
use crate::reader::Reader;
use crate::storage::StorageError;
use crate::tabulate::{Protocol, SetAside};

/// The prefix of a party's figure in the results form.
pub const PARTY_PREFIX: &str = "party_";

/// Why a sampled station's protocol, or the station, is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Exclusion {
    /// The protocol fails its form's arithmetic rules.
    FailedRules,
    /// A verifier rejected the protocol.
    RejectedByVerifier,
    /// The device that sent it was revoked.
    DeviceRevoked,
    /// It lacks the ballots cast, the registered voters or any party.
    MissingFigures,
    /// The protocols that are left differ.
    ObserversDisagree { observers: usize },
}

impl Exclusion {
    /// The key of its text in the workspace's languages.
    pub fn text_id(&self) -> &'static str {
        match self {
            Exclusion::FailedRules => "pvt-excluded-rules",
            Exclusion::RejectedByVerifier => "pvt-excluded-rejected",
            Exclusion::DeviceRevoked => "pvt-excluded-revoked",
            Exclusion::MissingFigures => "pvt-excluded-missing",
            Exclusion::ObserversDisagree { .. } => "pvt-excluded-conflict",
        }
    }
}

/// A protocol or station left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Excluded {
    pub station: String,
    /// The protocol's log index (none when the whole station is meant).
    pub index: Option<u64>,
    #[serde(flatten)]
    pub why: Exclusion,
}

/// A sampled station's agreed figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    pub station: String,
    /// Index into the sample's strata.
    pub stratum: usize,
    pub region: String,
    pub registered: i64,
    pub cast: i64,
    /// Party figure name to votes.
    pub parties: BTreeMap<String, i64>,
}

/// What the estimate is computed from.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub counted: Vec<Counted>,
    pub excluded: Vec<Excluded>,
    /// Every figure of every counted station, for the comparison with the
    /// official results.
    pub figures: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Reads the sampled stations' protocols and decides which count.
/// `regions` maps each station of the sample's registry version to its
/// region.
pub fn gather(
    reader: &Reader<'_>,
    sample: &Sample,
    regions: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<Inputs, StorageError> {
    let read = crate::tabulate::protocols(
        reader,
        &|station| sample.stations.contains_key(station),
        now_ms,
    )?;
    let strata: BTreeMap<&str, usize> = sample
        .strata
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut out = Inputs::default();
    for (station, p, why) in read.set_aside {
        out.excluded.push(Excluded {
            station,
            index: Some(p.index),
            why: match why {
                SetAside::DeviceRevoked => Exclusion::DeviceRevoked,
                SetAside::RejectedByVerifier => Exclusion::RejectedByVerifier,
            },
        });
    }
    for (station, protocols) in read.standing {
        let mut standing: Vec<Protocol> = Vec::with_capacity(protocols.len());
        for p in protocols {
            if p.clean {
                standing.push(p);
            } else {
                out.excluded.push(Excluded {
                    station: station.clone(),
                    index: Some(p.index),
                    why: Exclusion::FailedRules,
                });
            }
        }
        let Some(first) = standing.first() else {
            continue;
        };
        if standing.iter().any(|p| p.figures != first.figures) {
            out.excluded.push(Excluded {
                station,
                index: None,
                why: Exclusion::ObserversDisagree {
                    observers: standing.len(),
                },
            });
            continue;
        }
        let f = &first.figures;
        let parties: BTreeMap<String, i64> = f
            .iter()
            .filter(|(k, _)| k.starts_with(PARTY_PREFIX))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let (Some(&registered), Some(&cast)) = (f.get("registered_voters"), f.get("ballots_cast"))
        else {
            out.excluded.push(Excluded {
                station,
                index: Some(first.index),
                why: Exclusion::MissingFigures,
            });
            continue;
        };
        if parties.is_empty() {
            out.excluded.push(Excluded {
                station,
                index: Some(first.index),
                why: Exclusion::MissingFigures,
            });
            continue;
        }
        let stratum_name = &sample.stations[&station];
        out.figures.insert(station.clone(), f.clone());
        out.counted.push(Counted {
            stratum: strata[stratum_name.as_str()],
            region: regions.get(&station).cloned().unwrap_or_default(),
            station,
            registered,
            cast,
            parties,
        });
    }
    Ok(out)
}

/// The estimates for one area.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaEstimate {
    /// A region's name, or `country`.
    pub area: String,
    /// Sampled stations in the area.
    pub sampled: u64,
    /// Of them, stations whose protocol counts.
    pub reported: u64,
    /// Ballots cast over registered voters.
    pub turnout: Option<Ratio>,
    /// Each party's votes over the valid ballots.
    pub parties: BTreeMap<String, Ratio>,
}

/// The quick count as it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub country: AreaEstimate,
    /// By region name.
    pub regions: Vec<AreaEstimate>,
    /// Strata with no counted report: the estimate leaves them out, so it
    /// speaks only for the strata that reported.
    pub strata_unreported: Vec<String>,
    /// Strata with one counted report: their variance is not estimated.
    pub strata_single: Vec<String>,
    /// Strata with more than one counted report but fewer than
    /// [`THIN_STRATUM`]: their variance rests on so few stations that the
    /// normal quantiles behind the margins understate it.
    pub strata_thin: Vec<String>,
}

/// Below this many counted reports a stratum's variance is too uncertain
/// for the normal quantiles (a t quantile with 4 degrees of freedom is
/// 2.78 where the normal one is 1.96): the margins are shown with a notice.
pub const THIN_STRATUM: u64 = 5;

/// The counted stations' figures as columns, read once for every area
/// and series: what the estimate walks 18 areas × 6 ratios times.
struct Columns<'a> {
    parties: Vec<&'a str>,
    stratum: Vec<usize>,
    registered: Vec<f64>,
    cast: Vec<f64>,
    valid: Vec<f64>,
    /// Per party, per station.
    votes: Vec<Vec<f64>>,
}

impl<'a> Columns<'a> {
    fn of(counted: &'a [Counted]) -> Self {
        let parties: Vec<&str> = counted
            .iter()
            .flat_map(|c| c.parties.keys().map(String::as_str))
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .collect();
        Columns {
            stratum: counted.iter().map(|c| c.stratum).collect(),
            registered: counted.iter().map(|c| c.registered as f64).collect(),
            cast: counted.iter().map(|c| c.cast as f64).collect(),
            valid: counted
                .iter()
                .map(|c| c.parties.values().sum::<i64>() as f64)
                .collect(),
            votes: parties
                .iter()
                .map(|p| {
                    counted
                        .iter()
                        .map(|c| c.parties.get(*p).copied().unwrap_or(0) as f64)
                        .collect()
                })
                .collect(),
            parties,
        }
    }
}

/// The estimates for the stations where `inside` holds (a domain), from
/// every stratum's counted stations, with `sampled` stations of the
/// sample in the area.
fn area_estimate(
    name: &str,
    sampled: u64,
    population: &[u64],
    columns: &Columns<'_>,
    inside: &[bool],
) -> AreaEstimate {
    let mut obs: Vec<Observation> = Vec::with_capacity(inside.len());
    let mut series = |y: &[f64], x: &[f64]| {
        obs.clear();
        obs.extend((0..inside.len()).map(|i| {
            let (y, x) = if inside[i] { (y[i], x[i]) } else { (0.0, 0.0) };
            Observation {
                stratum: columns.stratum[i],
                y,
                x,
            }
        }));
        ratio(population, &obs)
    };
    let turnout = series(&columns.cast, &columns.registered);
    let parties = columns
        .parties
        .iter()
        .zip(&columns.votes)
        .filter_map(|(p, votes)| series(votes, &columns.valid).map(|r| (p.to_string(), r)))
        .collect();
    AreaEstimate {
        area: name.to_string(),
        sampled,
        reported: inside.iter().filter(|&&b| b).count() as u64,
        turnout,
        parties,
    }
}

/// The country's estimate alone (what [`estimate`] gives first).
pub fn country(sample: &Sample, counted: &[Counted]) -> AreaEstimate {
    let population: Vec<u64> = sample.strata.iter().map(|s| s.stations).collect();
    area_estimate(
        "country",
        sample.size(),
        &population,
        &Columns::of(counted),
        &vec![true; counted.len()],
    )
}

/// The estimates from `counted`: the country, then every region of the
/// sample (`regions` maps each sampled station to its region).
pub fn estimate(
    sample: &Sample,
    regions: &BTreeMap<String, String>,
    counted: &[Counted],
) -> Estimate {
    let population: Vec<u64> = sample.strata.iter().map(|s| s.stations).collect();
    let columns = Columns::of(counted);
    let mut per_stratum = vec![0u64; sample.strata.len()];
    for c in counted {
        per_stratum[c.stratum] += 1;
    }
    let names = |want: fn(u64) -> bool| -> Vec<String> {
        sample
            .strata
            .iter()
            .zip(&per_stratum)
            .filter(|(_, n)| want(**n))
            .map(|(s, _)| s.name.clone())
            .collect()
    };
    let mut sampled_in: BTreeMap<&str, u64> = BTreeMap::new();
    for station in sample.stations.keys() {
        let region = regions.get(station).map_or("", String::as_str);
        *sampled_in.entry(region).or_default() += 1;
    }
    let regions = sampled_in
        .iter()
        .map(|(&region, &sampled)| {
            let inside: Vec<bool> = counted.iter().map(|c| c.region == region).collect();
            area_estimate(region, sampled, &population, &columns, &inside)
        })
        .collect();
    Estimate {
        country: area_estimate(
            "country",
            sample.size(),
            &population,
            &columns,
            &vec![true; counted.len()],
        ),
        regions,
        strata_unreported: names(|n| n == 0),
        strata_single: names(|n| n == 1),
        strata_thin: names(|n| n > 1 && n < THIN_STRATUM),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvt::design::{Strata, Stratum};

    /// Each stratum is named by how much of its variance can be trusted:
    /// none reported, one, a few (thin), or enough.
    #[test]
    fn strata_are_named_by_how_many_reports_they_have() {
        let reported = [("North", 0u64), ("South", 1), ("East", 3), ("West", 5)];
        let mut sample = Sample {
            seed: "s".into(),
            strata_by: Strata::Region,
            registry_version: 1,
            registry_digest: observer_core::record::Sha256Digest::of(b"r"),
            strata: Vec::new(),
            stations: BTreeMap::new(),
        };
        let mut counted = Vec::new();
        let mut regions = BTreeMap::new();
        for (h, (name, n)) in reported.iter().enumerate() {
            sample.strata.push(Stratum {
                name: name.to_string(),
                stations: 100,
                sample: 6,
            });
            for i in 0..6u64 {
                let station = format!("{name}-{i}");
                sample.stations.insert(station.clone(), name.to_string());
                regions.insert(station.clone(), name.to_string());
                if i < *n {
                    counted.push(Counted {
                        station,
                        stratum: h,
                        region: name.to_string(),
                        registered: 1000,
                        cast: 600 + i as i64,
                        parties: BTreeMap::from([
                            ("party_1".into(), 300 + i as i64),
                            ("party_2".into(), 280),
                        ]),
                    });
                }
            }
        }
        let e = estimate(&sample, &regions, &counted);
        assert_eq!(e.strata_unreported, ["North"]);
        assert_eq!(e.strata_single, ["South"]);
        assert_eq!(e.strata_thin, ["East"]);
        assert_eq!(e.country.reported, 9);
    }
}
