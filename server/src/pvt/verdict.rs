//! The verdict on the official result: for each party, overall and per
//! region, whether the official share lies within the quick count's 99%
//! interval, the difference in points and its z-score; and the sampled
//! stations whose official figures differ from the observers' copies.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tally::{AreaEstimate, Estimate, PARTY_PREFIX};
use crate::storage::OfficialResult;
use crate::tabulate::Discrepancy;

/// One party (or the turnout) in one area.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Judged {
    /// The party's figure name, or `turnout`.
    pub figure: String,
    /// The official share, a proportion.
    pub official: f64,
    /// The quick count's estimate and its 99% margin.
    pub estimate: f64,
    pub margin99: f64,
    /// `official - estimate`, in percentage points.
    pub difference_points: f64,
    /// The difference in standard errors (none when the estimate has no
    /// sampling error: every station reported).
    pub z: Option<f64>,
    /// Whether the official share lies within the 99% interval.
    pub within: bool,
}

/// One area's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaVerdict {
    pub area: String,
    /// Stations the official results list in this area.
    pub official_stations: u64,
    pub figures: Vec<Judged>,
}

impl AreaVerdict {
    /// Whether every figure lies within its interval.
    pub fn consistent(&self) -> bool {
        self.figures.iter().all(|j| j.within)
    }
}

/// The verdict as a whole.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub country: AreaVerdict,
    pub regions: Vec<AreaVerdict>,
    /// Figures of sampled stations where the official result differs from
    /// the observers' agreed copy.
    pub differing: Vec<Discrepancy>,
}

#[derive(Default)]
struct Sums {
    stations: u64,
    registered: i64,
    cast: i64,
    parties: BTreeMap<String, i64>,
}

impl Sums {
    fn add(&mut self, o: &OfficialResult) {
        self.stations += 1;
        self.registered += o.figures.get("registered_voters").copied().unwrap_or(0);
        self.cast += o.figures.get("ballots_cast").copied().unwrap_or(0);
        for (k, v) in &o.figures {
            if k.starts_with(PARTY_PREFIX) {
                *self.parties.entry(k.clone()).or_default() += v;
            }
        }
    }
}

fn judge(estimate: &AreaEstimate, sums: &Sums) -> AreaVerdict {
    let mut figures = Vec::new();
    let mut push = |figure: &str, official: Option<f64>, r: &super::estimate::Ratio| {
        let Some(official) = official else {
            return;
        };
        let diff = official - r.estimate;
        figures.push(Judged {
            figure: figure.to_string(),
            official,
            estimate: r.estimate,
            margin99: r.margin99,
            difference_points: 100.0 * diff,
            z: (r.se > 0.0).then(|| diff / r.se),
            within: r.within99(official),
        });
    };
    let share = |n: i64, d: i64| (d > 0).then(|| n as f64 / d as f64);
    let valid: i64 = sums.parties.values().sum();
    for (party, r) in &estimate.parties {
        push(
            party,
            share(sums.parties.get(party).copied().unwrap_or(0), valid),
            r,
        );
    }
    if let Some(t) = &estimate.turnout {
        push("turnout", share(sums.cast, sums.registered), t);
    }
    AreaVerdict {
        area: estimate.area.clone(),
        official_stations: sums.stations,
        figures,
    }
}

/// Judges `official` against `estimate`. `regions` maps each station of
/// the registry to its region (the official results' own region names
/// are not trusted to match); `observed` holds the counted sampled
/// stations' figures.
pub fn verdict(
    estimate: &Estimate,
    official: &[OfficialResult],
    regions: &BTreeMap<String, String>,
    observed: &BTreeMap<String, BTreeMap<String, i64>>,
) -> Verdict {
    let mut country = Sums::default();
    let mut by_region: BTreeMap<&str, Sums> = BTreeMap::new();
    let mut differing = Vec::new();
    for o in official {
        country.add(o);
        if let Some(region) = regions.get(&o.station) {
            by_region.entry(region).or_default().add(o);
        }
        if let Some(seen) = observed.get(&o.station) {
            for (figure, &value) in &o.figures {
                let copy = seen.get(figure).copied();
                if copy != Some(value) {
                    differing.push(Discrepancy {
                        station: o.station.clone(),
                        figure: figure.clone(),
                        observed: copy,
                        official: value,
                    });
                }
            }
        }
    }
    let empty = Sums::default();
    Verdict {
        country: judge(&estimate.country, &country),
        regions: estimate
            .regions
            .iter()
            .map(|r| judge(r, by_region.get(r.area.as_str()).unwrap_or(&empty)))
            .collect(),
        differing,
    }
}
