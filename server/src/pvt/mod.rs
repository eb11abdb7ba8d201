//! The parallel vote tabulation (quick count): a random sample of stations
//! drawn from the registry and committed to before election day
//! ([`design`], [`store`]), the estimates with their margins of error as
//! the sampled stations' protocols arrive ([`tally`], [`estimate`]), and the
//! verdict on the official result ([`verdict`]). `docs/pvt.md` gives the
//! method, the formulas and how to read them.
//!
//! Decisions only: nothing here speaks HTTP; the command line and the
//! workspace both call [`quick_count`].

pub mod design;
pub mod estimate;
#[cfg(test)]
mod simulation;
pub mod store;
pub mod tally;
pub mod verdict;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::reader::Reader;
use crate::storage::StorageError;

pub use design::Sample;
pub use store::Commitment;

/// The quick count as it stands: the sample, the estimate and, once the
/// official results are imported, the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct QuickCount {
    pub seed: String,
    pub strata_by: design::Strata,
    pub registry_version: u32,
    pub registry_digest: observer_core::record::Sha256Digest,
    pub commitment: Commitment,
    pub strata: Vec<design::Stratum>,
    pub estimate: tally::Estimate,
    pub excluded: Vec<tally::Excluded>,
    /// The official results version the verdict is made on: the newest.
    pub official_version: Option<crate::storage::OfficialVersion>,
    pub verdict: Option<verdict::Verdict>,
}

/// The quick count from what the storage holds, `None` while no sample
/// was drawn.
pub fn quick_count(reader: &Reader<'_>, now_ms: i64) -> Result<Option<QuickCount>, StorageError> {
    let storage = reader.storage();
    let Some((sample, commitment)) = store::load(storage)? else {
        return Ok(None);
    };
    // Regions as the registry version the sample was drawn from says.
    let regions: BTreeMap<String, String> = storage
        .registry_stations(sample.registry_version)?
        .into_iter()
        .map(|s| (s.id, s.region))
        .collect();
    let inputs = tally::gather(reader, &sample, &regions, now_ms)?;
    let estimate = tally::estimate(&sample, &regions, &inputs.counted);
    let official_version = storage.official_versions()?.pop();
    let official = match &official_version {
        Some(v) => storage.official_results(v.version)?,
        None => Vec::new(),
    };
    let verdict = (!official.is_empty())
        .then(|| verdict::verdict(&estimate, &official, &regions, &inputs.figures));
    Ok(Some(QuickCount {
        seed: sample.seed,
        strata_by: sample.strata_by,
        registry_version: sample.registry_version,
        registry_digest: sample.registry_digest,
        commitment,
        strata: sample.strata,
        estimate,
        excluded: inputs.excluded,
        official_version,
        verdict,
    }))
}
