//! The sample design: which stations the quick count observes, drawn from
//! the station registry before election day, reproducibly from a seed.
//!
//! The draw is meant to be redone by anyone who doubts it, with nothing
//! but the registry file, the seed and `sha256sum`, so it is defined by
//! hashing rather than by a random number generator's internals:
//!
//! 1. Stations are grouped into strata (by region, or one stratum).
//! 2. Each stratum gets its share of the sample: a given allocation, or
//!    proportional to its number of stations by the largest-remainder
//!    method (exact integer arithmetic, ties to the stratum whose name
//!    sorts first), then raised to two stations where it has two, since a
//!    stratum of one reporting station has no estimable variance.
//! 3. In each stratum the stations are ordered by
//!    `SHA-256("observer/pvt/v1\n" + seed + "\n" + station id)` (bytes,
//!    ascending) and the first ones taken: a uniformly random subset for
//!    a seed nobody could choose with the registry in mind.
//!
//! The sample is written down as a canonical text ([`Sample::text`]) whose
//! SHA-256 is the commitment entered in the audit log.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use observer_core::record::Sha256Digest;
use serde::{Deserialize, Serialize};

use crate::registry::Current;

/// What every station's ordering key starts with.
const DOMAIN: &str = "observer/pvt/v1";

/// The fewest stations a stratum is given when it has that many: with
/// fewer reports the stratum's variance cannot be estimated.
pub const MIN_PER_STRATUM: u64 = 2;

/// Longest seed, in bytes.
pub const MAX_SEED_BYTES: usize = 256;

/// How the registry is divided into strata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Strata {
    /// One stratum: a simple random sample of stations.
    None,
    /// One stratum per region of the registry.
    Region,
}

impl Strata {
    /// Its name in the sample text and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Strata::None => "none",
            Strata::Region => "region",
        }
    }

    /// The name of the one stratum of an unstratified design.
    pub const ALL: &'static str = "all";
}

/// How many stations each stratum gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Allocation {
    /// `size` stations, shared in proportion to the strata's stations.
    Proportional { size: u64 },
    /// Exactly these many per stratum (every stratum named).
    Given(BTreeMap<String, u64>),
}

/// One stratum of the design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stratum {
    pub name: String,
    /// Its stations in the registry (N_h).
    pub stations: u64,
    /// Its stations in the sample (n_h).
    pub sample: u64,
}

/// A drawn sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub seed: String,
    pub strata_by: Strata,
    pub registry_version: u32,
    /// The registry version's digest ([`crate::registry::digest`]).
    pub registry_digest: Sha256Digest,
    /// By name.
    pub strata: Vec<Stratum>,
    /// Sampled station id to its stratum's name.
    pub stations: BTreeMap<String, String>,
}

/// Why a sample cannot be drawn.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DesignError {
    #[error("a sample needs at least one station")]
    Empty,
    #[error("a sample of {size} is larger than the registry's {stations} stations")]
    TooLarge { size: u64, stations: u64 },
    #[error("the registry has no region {0:?}")]
    UnknownStratum(String),
    #[error("the allocation gives no size for the region {0:?}")]
    Unallocated(String),
    #[error("the region {name:?} has {stations} stations: {size} cannot be drawn from it")]
    StratumTooSmall {
        name: String,
        stations: u64,
        size: u64,
    },
    #[error("a given allocation needs --strata region")]
    AllocationWithoutStrata,
    #[error("a seed is 1 to {MAX_SEED_BYTES} bytes of text without control characters")]
    BadSeed,
}

/// The keys that order stations within their strata for one seed
/// (step 3 of the module's doc), the common prefix written once.
struct Keys {
    buf: Vec<u8>,
    prefix: usize,
}

impl Keys {
    fn new(seed: &str) -> Self {
        let mut buf = Vec::with_capacity(DOMAIN.len() + seed.len() + 80);
        buf.extend_from_slice(DOMAIN.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(seed.as_bytes());
        buf.push(b'\n');
        Self {
            prefix: buf.len(),
            buf,
        }
    }

    fn key(&mut self, id: &str) -> Sha256Digest {
        self.buf.truncate(self.prefix);
        self.buf.extend_from_slice(id.as_bytes());
        Sha256Digest::of(&self.buf)
    }
}

/// Checks a seed: printable, bounded.
pub fn check_seed(seed: &str) -> Result<(), DesignError> {
    if seed.is_empty() || seed.len() > MAX_SEED_BYTES || seed.chars().any(char::is_control) {
        return Err(DesignError::BadSeed);
    }
    Ok(())
}

/// A fresh seed of 128 random bits, for when the organisation does not
/// bring one of its own (a public draw is better: `docs/pvt.md`).
pub fn random_seed() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

/// Shares `size` among `counts` in proportion, by largest remainder:
/// each gets `floor(size * N_h / N)`, and the seats left go to the largest
/// remainders `size * N_h mod N`, ties to the first in order.
fn proportional(counts: &[u64], size: u64) -> Vec<u64> {
    let total: u64 = counts.iter().sum();
    let mut shares: Vec<u64> = Vec::with_capacity(counts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(counts.len());
    for (i, &n) in counts.iter().enumerate() {
        let q = u128::from(size) * u128::from(n);
        shares.push((q / u128::from(total)) as u64);
        remainders.push((q % u128::from(total), i));
    }
    let left = size - shares.iter().sum::<u64>();
    // Largest remainder first; equal remainders in stratum order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(left as usize) {
        shares[i] += 1;
    }
    shares
}

/// Draws the sample from `registry`.
pub fn draw(
    registry: &Current,
    strata_by: Strata,
    allocation: &Allocation,
    seed: &str,
) -> Result<Sample, DesignError> {
    check_seed(seed)?;
    // Stratum name -> its station ids.
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for s in registry.stations.values() {
        let name = match strata_by {
            Strata::None => Strata::ALL.to_string(),
            Strata::Region => s.region.clone(),
        };
        groups.entry(name).or_default().push(&s.id);
    }
    let total = registry.stations.len() as u64;
    let counts: Vec<u64> = groups.values().map(|g| g.len() as u64).collect();
    let sizes: Vec<u64> = match allocation {
        Allocation::Proportional { size } => {
            if *size == 0 {
                return Err(DesignError::Empty);
            }
            if *size > total {
                return Err(DesignError::TooLarge {
                    size: *size,
                    stations: total,
                });
            }
            proportional(&counts, *size)
                .into_iter()
                .zip(&counts)
                .map(|(n, &cap)| n.max(MIN_PER_STRATUM.min(cap)))
                .collect()
        }
        Allocation::Given(given) => {
            if strata_by == Strata::None {
                return Err(DesignError::AllocationWithoutStrata);
            }
            if let Some(unknown) = given.keys().find(|k| !groups.contains_key(*k)) {
                return Err(DesignError::UnknownStratum(unknown.clone()));
            }
            let mut sizes = Vec::with_capacity(groups.len());
            for (name, ids) in &groups {
                let size = *given
                    .get(name)
                    .ok_or_else(|| DesignError::Unallocated(name.clone()))?;
                if size > ids.len() as u64 {
                    return Err(DesignError::StratumTooSmall {
                        name: name.clone(),
                        stations: ids.len() as u64,
                        size,
                    });
                }
                sizes.push(size);
            }
            if sizes.iter().sum::<u64>() == 0 {
                return Err(DesignError::Empty);
            }
            sizes
        }
    };
    let mut strata = Vec::with_capacity(groups.len());
    let mut stations = BTreeMap::new();
    let mut keys = Keys::new(seed);
    for ((name, ids), size) in groups.into_iter().zip(sizes) {
        let mut keyed: Vec<(Sha256Digest, &str)> =
            ids.iter().map(|id| (keys.key(id), *id)).collect();
        keyed.sort_unstable();
        for (_, id) in keyed.iter().take(size as usize) {
            stations.insert(id.to_string(), name.clone());
        }
        strata.push(Stratum {
            stations: ids.len() as u64,
            sample: size,
            name,
        });
    }
    Ok(Sample {
        seed: seed.to_string(),
        strata_by,
        registry_version: registry.version.version,
        registry_digest: registry.version.digest,
        strata,
        stations,
    })
}

impl Sample {
    /// The sample as canonical text: what is published, and whose SHA-256
    /// ([`Sample::digest`]) the audit log commits to. Names and the seed
    /// are JSON strings, so that no name can break a line.
    ///
    /// ```text
    /// observer-pvt-sample v1
    /// seed "<seed>"
    /// strata region
    /// registry 3 <registry digest>
    /// stratum "<name>" <stations> <sample>      (by name)
    /// station "<id>" "<stratum>"                (by id)
    /// ```
    pub fn text(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let mut out = String::with_capacity(64 + 48 * self.stations.len());
        out.push_str("observer-pvt-sample v1\n");
        let _ = writeln!(out, "seed {}", q(&self.seed));
        let _ = writeln!(out, "strata {}", self.strata_by.as_str());
        let _ = writeln!(
            out,
            "registry {} {}",
            self.registry_version, self.registry_digest
        );
        for s in &self.strata {
            let _ = writeln!(out, "stratum {} {} {}", q(&s.name), s.stations, s.sample);
        }
        for (id, stratum) in &self.stations {
            let _ = writeln!(out, "station {} {}", q(id), q(stratum));
        }
        out
    }

    /// SHA-256 of [`Sample::text`].
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(self.text().as_bytes())
    }

    /// Stations in the sample.
    pub fn size(&self) -> u64 {
        self.stations.len() as u64
    }
}

/// The normal quantile for a two-sided confidence level.
pub fn z_for(confidence: Confidence) -> f64 {
    match confidence {
        Confidence::C95 => Z95,
        Confidence::C99 => Z99,
    }
}

/// The two-sided 95% normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;
/// The two-sided 99% normal quantile.
pub const Z99: f64 = 2.575_829_303_548_900_4;

/// A confidence level the calculator and the estimate use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Confidence {
    #[value(name = "95")]
    C95,
    #[value(name = "99")]
    C99,
}

/// Voters a simple random sample needs for a margin of error `margin`
/// (a proportion, 0.0032 for 0.32 points) at normal quantile `z`, for a
/// proportion near `p`, in a population of `population` voters: the
/// handbook's formula, `p(1-p) / (E²/z² + p(1-p)/N)` (Estok, Nevitte and
/// Cowan 2002, chapter 5), which is `z²p(1-p)/E²` with the finite
/// population correction.
pub fn voters_needed(p: f64, margin: f64, z: f64, population: u64) -> f64 {
    let pq = p * (1.0 - p);
    pq / (margin * margin / (z * z) + pq / population as f64)
}

/// Why the calculator refuses its question.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SizeError {
    #[error("the margin of error is a proportion between 0 and 0.5 (0.02 for 2 points)")]
    Margin,
    #[error("the expected share is a proportion strictly between 0 and 1")]
    Share,
    #[error("the design effect is a number of at least 1")]
    DesignEffect,
    #[error("the registry holds no registered voters")]
    NoVoters,
}

/// What the calculator answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeAnswer {
    /// Voters the registry holds (N).
    pub population: u64,
    /// Voters a simple random sample of voters would need.
    pub voters: u64,
    /// Mean registered voters per station in the registry.
    pub voters_per_station: f64,
    /// Stations to sample: the voters needed, times the design effect,
    /// over the voters per station; never more than the registry holds.
    pub stations: u64,
}

/// The stations a sample needs for `margin` at `confidence` in the
/// registry: the handbook's voters, scaled by `design_effect` (how much
/// less a station's voters tell than as many voters drawn one by one; 1
/// is the handbook's assumption, a past election's results give a better
/// one), converted to stations by the mean station size.
pub fn sample_size(
    registry: &Current,
    margin: f64,
    confidence: Confidence,
    p: f64,
    design_effect: f64,
) -> Result<SizeAnswer, SizeError> {
    if !(margin > 0.0 && margin < 0.5) {
        return Err(SizeError::Margin);
    }
    if !(p > 0.0 && p < 1.0) {
        return Err(SizeError::Share);
    }
    if !(design_effect.is_finite() && design_effect >= 1.0) {
        return Err(SizeError::DesignEffect);
    }
    let population: u64 = registry
        .stations
        .values()
        .map(|s| s.registered_voters)
        .sum();
    if population == 0 {
        return Err(SizeError::NoVoters);
    }
    let voters = voters_needed(p, margin, z_for(confidence), population);
    let per_station = population as f64 / registry.stations.len() as f64;
    let stations = ((voters * design_effect / per_station).ceil() as u64)
        .clamp(1, registry.stations.len() as u64);
    Ok(SizeAnswer {
        population,
        voters: voters.ceil() as u64,
        voters_per_station: per_station,
        stations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Station;

    fn registry(regions: &[(&str, usize)]) -> Current {
        let mut stations = Vec::new();
        for (r, n) in regions {
            for i in 0..*n {
                stations.push(Station {
                    id: format!("{r}-{i:04}"),
                    name: format!("School {i}"),
                    region: r.to_string(),
                    district: "D".into(),
                    address: "Street 1".into(),
                    registered_voters: 1000 + i as u64,
                    location: None,
                });
            }
        }
        Current::first_version(stations)
    }

    #[test]
    fn proportional_shares_add_up_by_largest_remainder() {
        // 10 over 3, 3, 4: quotas 3.0, 3.0, 4.0.
        assert_eq!(proportional(&[3, 3, 4], 10), vec![3, 3, 4]);
        // 2 over 1, 1, 1: quotas 0.67 each; the first two in order win the tie.
        assert_eq!(proportional(&[1, 1, 1], 2), vec![1, 1, 0]);
        // 7 over 50, 30, 20: quotas 3.5, 2.1, 1.4 -> 3+1, 2, 1.
        assert_eq!(proportional(&[50, 30, 20], 7), vec![4, 2, 1]);
    }

    #[test]
    fn the_draw_is_reproducible_from_its_seed_and_documented_hash() {
        let reg = registry(&[("North", 30), ("South", 70)]);
        let a = draw(
            &reg,
            Strata::Region,
            &Allocation::Proportional { size: 10 },
            "dice 4 2 6",
        )
        .unwrap();
        let b = draw(
            &reg,
            Strata::Region,
            &Allocation::Proportional { size: 10 },
            "dice 4 2 6",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.size(), 10);
        let sizes: Vec<u64> = a.strata.iter().map(|s| s.sample).collect();
        assert_eq!(sizes, vec![3, 7]);
        // The first three North stations by the documented key.
        let mut north: Vec<(Sha256Digest, String)> = reg
            .stations
            .values()
            .filter(|s| s.region == "North")
            .map(|s| {
                let key =
                    Sha256Digest::of(format!("observer/pvt/v1\ndice 4 2 6\n{}", s.id).as_bytes());
                (key, s.id.clone())
            })
            .collect();
        north.sort();
        for (_, id) in north.iter().take(3) {
            assert_eq!(a.stations.get(id).map(String::as_str), Some("North"));
        }
        let other = draw(
            &reg,
            Strata::Region,
            &Allocation::Proportional { size: 10 },
            "dice 4 2 5",
        )
        .unwrap();
        assert_ne!(
            a.stations, other.stations,
            "another seed draws another sample"
        );
        assert_ne!(a.digest(), other.digest());
    }

    #[test]
    fn small_strata_get_two_stations_and_bad_designs_are_refused() {
        let reg = registry(&[("Big", 98), ("Tiny", 2)]);
        let s = draw(
            &reg,
            Strata::Region,
            &Allocation::Proportional { size: 10 },
            "s",
        )
        .unwrap();
        let sizes: Vec<u64> = s.strata.iter().map(|s| s.sample).collect();
        assert_eq!(sizes, vec![10, 2], "Tiny's share of 0.2 is raised to 2");
        assert_eq!(
            draw(
                &reg,
                Strata::Region,
                &Allocation::Proportional { size: 101 },
                "s"
            ),
            Err(DesignError::TooLarge {
                size: 101,
                stations: 100
            })
        );
        assert_eq!(
            draw(
                &reg,
                Strata::Region,
                &Allocation::Proportional { size: 0 },
                "s"
            ),
            Err(DesignError::Empty)
        );
        let given = |pairs: &[(&str, u64)]| {
            Allocation::Given(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        };
        assert_eq!(
            draw(&reg, Strata::Region, &given(&[("Big", 5)]), "s"),
            Err(DesignError::Unallocated("Tiny".into()))
        );
        assert_eq!(
            draw(
                &reg,
                Strata::Region,
                &given(&[("Big", 5), ("Tiny", 3)]),
                "s"
            ),
            Err(DesignError::StratumTooSmall {
                name: "Tiny".into(),
                stations: 2,
                size: 3
            })
        );
        assert_eq!(
            draw(
                &reg,
                Strata::Region,
                &given(&[("Big", 5), ("Tiny", 1), ("Moon", 1)]),
                "s"
            ),
            Err(DesignError::UnknownStratum("Moon".into()))
        );
        let g = draw(
            &reg,
            Strata::Region,
            &given(&[("Big", 5), ("Tiny", 1)]),
            "s",
        )
        .unwrap();
        assert_eq!(g.size(), 6);
        assert_eq!(
            draw(
                &reg,
                Strata::None,
                &Allocation::Proportional { size: 5 },
                "a\nb"
            ),
            Err(DesignError::BadSeed)
        );
        let srs = draw(
            &reg,
            Strata::None,
            &Allocation::Proportional { size: 5 },
            "s",
        )
        .unwrap();
        assert_eq!(srs.strata.len(), 1);
        assert_eq!(srs.strata[0].name, "all");
    }

    #[test]
    fn the_text_names_every_part_of_the_design() {
        let reg = registry(&[("North", 3)]);
        let s = draw(
            &reg,
            Strata::Region,
            &Allocation::Proportional { size: 2 },
            "x\"y",
        )
        .unwrap();
        let text = s.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "observer-pvt-sample v1");
        assert_eq!(lines[1], "seed \"x\\\"y\"");
        assert_eq!(lines[2], "strata region");
        assert_eq!(lines[3], format!("registry 1 {}", reg.version.digest));
        assert_eq!(lines[4], "stratum \"North\" 3 2");
        assert_eq!(lines.len(), 7);
        assert!(lines[5].starts_with("station \"North-"));
        assert_eq!(s.digest(), Sha256Digest::of(text.as_bytes()));
    }

    /// The handbook's worked example (Peru 2001): N = 14,570,774 voters,
    /// p = 0.5, E = 0.0032, z = 2.58, printed as "163,185". The formula
    /// evaluated exactly gives 160,717: the handbook rounds its
    /// intermediate values (it prints .0032² as .000010 and E²/z² as
    /// .000001515), which puts its figure 1.5% higher. We keep the exact
    /// value and check we are within that rounding of the printed one.
    #[test]
    fn the_calculator_reproduces_the_handbooks_peru_example() {
        let n = voters_needed(0.5, 0.0032, 2.58, 14_570_774);
        assert_eq!(n.ceil() as u64, 160_718);
        assert!((n - 163_185.0).abs() / 163_185.0 < 0.016, "{n}");
        // With the handbook's own printed intermediates the same formula
        // gives its figure exactly.
        let printed: f64 = 0.25 / (0.000_001_515 + 0.000_000_017);
        assert_eq!(printed.round() as u64, 163_185);
        // Without the finite population correction: z²p(1-p)/E².
        let infinite = voters_needed(0.5, 0.0032, 2.58, u64::MAX);
        assert!((infinite - 2.58f64.powi(2) * 0.25 / 0.0032f64.powi(2)).abs() < 1e-3);
    }

    #[test]
    fn the_calculator_turns_voters_into_stations() {
        let reg = registry(&[("North", 100)]);
        let a = sample_size(&reg, 0.02, Confidence::C95, 0.5, 1.0).unwrap();
        assert_eq!(a.population, (0..100).map(|i| 1000 + i).sum::<u64>());
        assert!((a.voters_per_station - 1049.5).abs() < 1e-9);
        let expected_voters = voters_needed(0.5, 0.02, Z95, a.population);
        assert_eq!(a.voters, expected_voters.ceil() as u64);
        assert_eq!(a.stations, (expected_voters / 1049.5).ceil() as u64);
        let twice = sample_size(&reg, 0.02, Confidence::C95, 0.5, 2.0).unwrap();
        assert_eq!(
            twice.stations,
            (2.0 * expected_voters / 1049.5).ceil() as u64
        );
        assert_eq!(
            sample_size(&reg, 0.0, Confidence::C95, 0.5, 1.0),
            Err(SizeError::Margin)
        );
        assert_eq!(
            sample_size(&reg, 0.02, Confidence::C95, 1.0, 1.0),
            Err(SizeError::Share)
        );
        assert_eq!(
            sample_size(&reg, 0.02, Confidence::C95, 0.5, 0.5),
            Err(SizeError::DesignEffect)
        );
    }
}
