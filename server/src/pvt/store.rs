//! Where the drawn sample rests: the storage's key-value metadata, one
//! document for the sample and one for its commitment in the audit log,
//! written together. A sample is a few hundred kilobytes at most (one line
//! per station), read whole by every estimate; it needs no table of its
//! own on either backend. A replaced sample is not kept: its audit entry
//! holds its seed, registry version and allocation, which redraw it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use observer_core::record::Sha256Digest;
use serde::{Deserialize, Serialize};

use super::design::Sample;
use crate::remembered::Remembered;
use crate::storage::{Storage, StorageError};

const SAMPLE: &str = "pvt.sample";
const COMMITMENT: &str = "pvt.commitment";

/// The audit entry that committed to a sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    /// SHA-256 of the sample's canonical text.
    pub digest: Sha256Digest,
    /// The audit entry's seq and hash.
    pub audit_seq: u64,
    pub audit_hash: Sha256Digest,
    pub drawn_at_ms: i64,
}

/// Stores `sample` and its commitment, replacing any earlier one.
pub fn save(
    storage: &dyn Storage,
    sample: &Sample,
    commitment: &Commitment,
) -> Result<(), StorageError> {
    let sample = serde_json::to_vec(sample).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let commitment =
        serde_json::to_vec(commitment).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    storage.set_metas(&[(SAMPLE, sample), (COMMITMENT, commitment)])
}

/// The sample in force and its commitment, if one was drawn.
pub fn load(storage: &dyn Storage) -> Result<Option<(Sample, Commitment)>, StorageError> {
    let (Some(sample), Some(commitment)) = (storage.meta(SAMPLE)?, storage.meta(COMMITMENT)?)
    else {
        return Ok(None);
    };
    let sample: Sample = serde_json::from_slice(&sample)
        .map_err(|e| StorageError::Corrupt(format!("the stored quick-count sample: {e}")))?;
    let commitment: Commitment = serde_json::from_slice(&commitment)
        .map_err(|e| StorageError::Corrupt(format!("the stored sample commitment: {e}")))?;
    if sample.digest() != commitment.digest {
        return Err(StorageError::Corrupt(
            "the stored quick-count sample is not the one its audit entry committed to".into(),
        ));
    }
    Ok(Some((sample, commitment)))
}

/// How long a node believes the sample it read: a sample is drawn days
/// before the election, and another node's draw reaches this one within
/// this time.
const SAMPLED_FOR: Duration = Duration::from_secs(10);

/// The sampled stations, read from the storage at most every
/// `SAMPLED_FOR`: every sync's updates name the device's sampled
/// stations, and reading and checking the whole sample at each of
/// thousands of syncs a second would cost more than the sync.
#[derive(Debug)]
pub struct SampledStations(Remembered<Arc<BTreeSet<String>>>);

impl Default for SampledStations {
    fn default() -> Self {
        Self(Remembered::new(SAMPLED_FOR))
    }
}

impl SampledStations {
    /// The stations in the sample in force (none when no sample was drawn).
    pub fn get(&self, storage: &dyn Storage) -> Result<Arc<BTreeSet<String>>, StorageError> {
        self.0.get(|| {
            Ok(Arc::new(
                load(storage)?
                    .map(|(sample, _)| sample.stations.into_keys().collect::<BTreeSet<_>>())
                    .unwrap_or_default(),
            ))
        })
    }
}
