//! The simulation the method is judged by (issue 17): a synthetic country
//! of 10,000 stations in 17 regions, of unequal sizes and with regional
//! differences in turnout and party strength, whose true shares are known;
//! 500 samples of 1,000 stations are drawn exactly as `pvt draw` draws
//! them and estimated exactly as `pvt estimate` estimates. The 95%
//! intervals must hold the true share in 93% to 97% of the samples, and a
//! stratified design must give narrower intervals than a simple random
//! sample of as many stations.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::design::{Allocation, Strata, draw};
use super::tally::{Counted, country as estimate_country};
use crate::registry::{Current, Station};

const STATIONS: usize = 10_000;
const REGIONS: usize = 17;
const PARTIES: usize = 4;
const REPETITIONS: usize = 500;
const SAMPLE: u64 = 1_000;

struct Country {
    registry: Current,
    /// Station id to its figures.
    figures: BTreeMap<String, Counted>,
    /// The true shares of each party, and the true turnout.
    truth: Vec<f64>,
    turnout: f64,
}

fn country() -> Country {
    let mut rng = StdRng::seed_from_u64(20_261_203);
    // Regions of unequal numbers of stations: weights 1..=17, shuffled by
    // region index, scaled to 10,000 stations.
    let weights: Vec<usize> = (0..REGIONS).map(|r| 1 + (r * 7) % REGIONS).collect();
    let total: usize = weights.iter().sum();
    let mut sizes: Vec<usize> = weights.iter().map(|w| w * STATIONS / total).collect();
    sizes[0] += STATIONS - sizes.iter().sum::<usize>();
    let mut stations = Vec::new();
    let mut figures = BTreeMap::new();
    let mut votes = [0f64; PARTIES];
    let (mut cast_all, mut registered_all) = (0f64, 0f64);
    for (r, &n) in sizes.iter().enumerate() {
        let region = format!("Region {r:02}");
        // Party strength varies strongly by region; turnout too.
        let lean = r as f64 / (REGIONS - 1) as f64;
        let base = [
            0.20 + 0.45 * lean,
            0.45 - 0.30 * lean,
            0.20,
            0.15 - 0.1 * lean,
        ];
        let turnout = 0.45 + 0.35 * (1.0 - lean);
        for i in 0..n {
            let id = format!("R{r:02}-{i:04}");
            let registered: i64 = rng.random_range(200..3000);
            let t = (turnout + rng.random_range(-0.1..0.1)).clamp(0.05, 1.0);
            let cast = (registered as f64 * t).round() as i64;
            let invalid = (cast as f64 * rng.random_range(0.0..0.04)).round() as i64;
            let valid = cast - invalid;
            let raw: Vec<f64> = base
                .iter()
                .map(|b| b * (1.0 + rng.random_range(-0.4..0.4)))
                .collect();
            let sum: f64 = raw.iter().sum();
            let mut parties = BTreeMap::new();
            let mut given = 0;
            for (p, share) in raw.iter().enumerate() {
                let v = if p + 1 == PARTIES {
                    valid - given
                } else {
                    (valid as f64 * share / sum).floor() as i64
                };
                given += v;
                votes[p] += v as f64;
                parties.insert(format!("party_{}", p + 1), v);
            }
            cast_all += cast as f64;
            registered_all += registered as f64;
            figures.insert(
                id.clone(),
                Counted {
                    station: id.clone(),
                    stratum: 0,
                    region: region.clone(),
                    registered,
                    cast,
                    parties,
                },
            );
            stations.push(Station {
                id,
                name: format!("School {i}"),
                region: region.clone(),
                district: "D".into(),
                address: "Street 1".into(),
                registered_voters: registered as u64,
                location: None,
            });
        }
    }
    let valid_all: f64 = votes.iter().sum();
    Country {
        registry: Current::first_version(stations),
        figures,
        truth: votes.iter().map(|v| v / valid_all).collect(),
        turnout: cast_all / registered_all,
    }
}

/// For each party and the turnout: how often the 95% interval held the
/// truth, and the mean width of the interval.
fn repeat(c: &Country, strata: Strata) -> (Vec<f64>, Vec<f64>) {
    let mut held = [0usize; PARTIES + 1];
    let mut width = [0f64; PARTIES + 1];
    for rep in 0..REPETITIONS {
        let sample = draw(
            &c.registry,
            strata,
            &Allocation::Proportional { size: SAMPLE },
            &format!("simulation {rep}"),
        )
        .unwrap();
        let index: BTreeMap<&str, usize> = sample
            .strata
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let counted: Vec<Counted> = sample
            .stations
            .iter()
            .map(|(id, stratum)| Counted {
                stratum: index[stratum.as_str()],
                ..c.figures[id].clone()
            })
            .collect();
        let e = estimate_country(&sample, &counted);
        for p in 0..PARTIES {
            let r = e.parties[&format!("party_{}", p + 1)];
            held[p] += usize::from((r.estimate - c.truth[p]).abs() <= r.margin95);
            width[p] += 2.0 * r.margin95 / REPETITIONS as f64;
        }
        let t = e.turnout.unwrap();
        held[PARTIES] += usize::from((t.estimate - c.turnout).abs() <= t.margin95);
        width[PARTIES] += 2.0 * t.margin95 / REPETITIONS as f64;
    }
    (
        held.iter()
            .map(|&h| h as f64 / REPETITIONS as f64)
            .collect(),
        width.to_vec(),
    )
}

#[test]
fn the_95_percent_intervals_hold_the_truth_95_percent_of_the_time() {
    let c = country();
    let (coverage, width) = repeat(&c, Strata::Region);
    let (srs_coverage, srs_width) = repeat(&c, Strata::None);
    for p in 0..PARTIES {
        assert!(
            (0.93..=0.97).contains(&coverage[p]),
            "party {}: stratified coverage {:.3} (true share {:.4})",
            p + 1,
            coverage[p],
            c.truth[p]
        );
        assert!(
            (0.93..=0.97).contains(&srs_coverage[p]),
            "party {}: unstratified coverage {:.3}",
            p + 1,
            srs_coverage[p]
        );
        assert!(
            width[p] < srs_width[p],
            "party {}: stratified mean width {:.5} is not below the unstratified {:.5}",
            p + 1,
            width[p],
            srs_width[p]
        );
    }
    assert!(
        width[PARTIES] < srs_width[PARTIES],
        "turnout: {width:?} vs {srs_width:?}"
    );
    eprintln!(
        "coverage stratified {coverage:.3?} unstratified {srs_coverage:.3?}; mean width stratified {width:.5?} unstratified {srs_width:.5?}"
    );
}
