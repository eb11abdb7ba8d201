//! What the coordinator has for one device at each contact: its stations
//! (and which of them are in the quick count's sample) and every published
//! form version, with their tag
//! ([`observer_core::protocol::updates_tag`]). A phone of protocol version
//! 2 sends the tag it holds with its records, and the answer carries these
//! updates only when they differ, so a sync is one exchange.

use std::collections::BTreeSet;

use observer_core::protocol::{Updates, updates_tag};

use crate::storage::{DeviceInfo, Storage, StorageError};

/// The device's updates as of now; `sampled` are the stations of the
/// quick count's sample, `witnesses` the verifier keys of the witnesses,
/// `sms_number` the SMS gateway's number.
pub fn current(
    storage: &dyn Storage,
    org: &str,
    device: &DeviceInfo,
    sampled: &BTreeSet<String>,
    witnesses: &[String],
    sms_number: Option<&str>,
    now_ms: i64,
) -> Result<Updates, StorageError> {
    let forms = storage.forms()?;
    let priority: Vec<String> = device
        .stations
        .iter()
        .filter(|s| sampled.contains(*s))
        .cloned()
        .collect();
    let tag = updates_tag(
        &device.stations,
        &priority,
        witnesses,
        sms_number,
        forms.iter().map(|f| (f.id.as_str(), f.version)),
    );
    Ok(Updates {
        org: org.to_string(),
        device: device.id.clone(),
        server_time_ms: now_ms,
        stations: device.stations.clone(),
        forms: forms.into_iter().map(|f| f.definition).collect(),
        priority_stations: priority,
        witnesses: witnesses.to_vec(),
        sms_number: sms_number.map(str::to_string),
        tag: Some(tag),
    })
}
