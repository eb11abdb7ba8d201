//! Issue 17's figure: a full quick-count estimate (the country and each of
//! 17 regions, five parties and the turnout) over 10,000 reporting sampled
//! stations, so that it can be recomputed on every arriving protocol;
//! beside it the floor any estimator has, one pass reading every figure it
//! needs once per area, and the draw of the sample itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use observer_server::pvt::design::{Allocation, Strata, draw};
use observer_server::pvt::tally::{Counted, estimate};
use observer_server::registry::{Current, Station};

use crate::report::{Samples, machine, ms, us};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const REGIONS: usize = 17;
const PARTIES: usize = 5;

fn registry(stations: usize) -> Current {
    Current::first_version(
        (0..stations)
            .map(|n| Station {
                id: format!("S-{n:06}"),
                name: format!("School {n}"),
                region: format!("Region {:02}", (n * 7) % REGIONS),
                district: "D".into(),
                address: "Street 1".into(),
                registered_voters: 500 + (n as u64 * 37) % 2500,
                location: None,
            })
            .collect(),
    )
}

pub fn run(
    scratch: &Path,
    population: usize,
    size: u64,
    rounds: usize,
    command: &str,
) -> Result<String> {
    let registry = registry(population);
    let mut draws = Vec::with_capacity(rounds);
    let mut sample = None;
    for round in 0..rounds.min(20) {
        let t0 = Instant::now();
        let s = draw(
            &registry,
            Strata::Region,
            &Allocation::Proportional { size },
            &format!("bench {round}"),
        )?;
        draws.push(t0.elapsed());
        sample = Some(s);
    }
    let sample = sample.ok_or("no rounds")?;
    let index: BTreeMap<&str, usize> = sample
        .strata
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let regions: BTreeMap<String, String> = sample
        .stations
        .keys()
        .map(|id| (id.clone(), registry.stations[id].region.clone()))
        .collect();
    let counted: Vec<Counted> = sample
        .stations
        .iter()
        .enumerate()
        .map(|(n, (id, stratum))| {
            let registered = registry.stations[id].registered_voters as i64;
            let cast = registered * 6 / 10;
            let parties = (1..=PARTIES)
                .map(|p| (format!("party_{p}"), cast / (p as i64 + 1) + (n as i64 % 7)))
                .collect();
            Counted {
                station: id.clone(),
                stratum: index[stratum.as_str()],
                region: regions[id].clone(),
                registered,
                cast,
                parties,
            }
        })
        .collect();
    for _ in 0..3 {
        std::hint::black_box(estimate(&sample, &regions, &counted));
    }
    let mut full = Vec::with_capacity(rounds);
    let mut floor = Vec::with_capacity(rounds);
    let areas = 1 + sample.strata.len();
    for _ in 0..rounds {
        let t0 = Instant::now();
        std::hint::black_box(estimate(&sample, &regions, &counted));
        full.push(t0.elapsed());
        // The floor: every figure the estimate needs, read once per area.
        let t0 = Instant::now();
        let mut sum = 0i64;
        for _ in 0..areas {
            for c in &counted {
                sum += c.registered + c.cast + c.parties.values().sum::<i64>();
            }
        }
        std::hint::black_box(sum);
        floor.push(t0.elapsed());
    }
    let (full, floor, draws) = (Samples::new(full), Samples::new(floor), Samples::new(draws));
    Ok(format!(
        "## Quick count: a full estimate (issue 17)

Machine: {machine}.
Command: `{command}`.
A registry of {population} stations in {strata} regions; a stratified sample of {sampled}
stations, every one reporting; the estimate for the country and each region, {PARTIES} parties
and the turnout, each a ratio with its linearised standard error ({rounds} rounds).

| Operation | p50 | p99 |
| --- | --- | --- |
| **`pvt::tally::estimate`**, country and {strata} regions | **{fp50}** (target: under 50 ms) | {fp99} |
| floor: reading every figure once per area ({areas} passes) | {lp50} | {lp99} |
| `pvt::design::draw` of the sample (hashing and ordering every station) | {dp50} | {dp99} |

The estimate reads the figures held in memory; reading the sampled stations' protocols
from the database (and their review states) comes on top and is not measured here.
",
        machine = machine(scratch),
        strata = sample.strata.len(),
        sampled = sample.size(),
        fp50 = ms(full.p50()),
        fp99 = ms(full.p99()),
        lp50 = us(floor.p50()),
        lp99 = us(floor.p99()),
        dp50 = ms(draws.p50()),
        dp99 = ms(draws.p99()),
    ))
}
