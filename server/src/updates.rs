//! What the coordinator has for one device at each contact: its stations
//! (and which of them are in the quick count's sample) and every published
//! form version, with their tag
//! ([`observer_core::protocol::updates_tag`]). A phone of protocol version
//! 2 sends the tag it holds with its records, and the answer carries these
//! updates only when they differ, so a sync is one exchange.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use observer_core::protocol::{Updates, updates_tag};
use observer_core::record::Sha256Digest;

use crate::remembered::Remembered;
use crate::storage::{DeviceInfo, PublishedForm, Storage, StorageError};

/// What every device's updates are made of on this node.
pub struct Shared<'a> {
    pub org: &'a str,
    /// The stations of the quick count's sample.
    pub sampled: &'a BTreeSet<String>,
    pub forms: &'a [PublishedForm],
    /// The verifier keys of the witnesses.
    pub witnesses: &'a [String],
    /// The SMS gateway's number.
    pub sms_number: Option<&'a str>,
}

impl Shared<'_> {
    /// The device's updates as of `now_ms`.
    pub fn for_device(&self, device: &DeviceInfo, now_ms: i64) -> Updates {
        let (priority, tag) = self.tag(device);
        self.updates(device, priority, tag, now_ms)
    }

    /// The device's updates as of `now_ms`, unless their tag is `held`,
    /// the one the phone says it has. The tag is computed from the forms'
    /// ids and versions, so a phone that is up to date costs no copy of
    /// any definition.
    pub fn unless_held(
        &self,
        device: &DeviceInfo,
        held: &Sha256Digest,
        now_ms: i64,
    ) -> Option<Updates> {
        let (priority, tag) = self.tag(device);
        (tag != *held).then(|| self.updates(device, priority, tag, now_ms))
    }

    /// The device's sampled stations, and the tag of its updates.
    fn tag(&self, device: &DeviceInfo) -> (Vec<String>, Sha256Digest) {
        let priority: Vec<String> = device
            .stations
            .iter()
            .filter(|s| self.sampled.contains(*s))
            .cloned()
            .collect();
        let tag = updates_tag(
            &device.stations,
            &priority,
            self.witnesses,
            self.sms_number,
            self.forms.iter().map(|f| (f.id.as_str(), f.version)),
        );
        (priority, tag)
    }

    fn updates(
        &self,
        device: &DeviceInfo,
        priority: Vec<String>,
        tag: Sha256Digest,
        now_ms: i64,
    ) -> Updates {
        Updates {
            org: self.org.to_string(),
            device: device.id.clone(),
            server_time_ms: now_ms,
            stations: device.stations.clone(),
            forms: self.forms.iter().map(|f| f.definition.clone()).collect(),
            priority_stations: priority,
            witnesses: self.witnesses.to_vec(),
            sms_number: self.sms_number.map(str::to_string),
            tag: Some(tag),
        }
    }
}

/// How long a node believes the list of published forms it read. A form
/// published in this node's workspace is offered at once
/// ([`PublishedForms::forget`]); one published with the command line or
/// on another node reaches the phones' syncs within this time.
const PUBLISHED_FOR: Duration = Duration::from_secs(5);

/// The published form versions, read from the storage at most every
/// `PUBLISHED_FOR`: every sync's updates tag names them.
#[derive(Debug)]
pub struct PublishedForms(Remembered<Arc<Vec<PublishedForm>>>);

impl Default for PublishedForms {
    fn default() -> Self {
        Self(Remembered::new(PUBLISHED_FOR))
    }
}

impl PublishedForms {
    /// Every published form version.
    pub fn get(&self, storage: &dyn Storage) -> Result<Arc<Vec<PublishedForm>>, StorageError> {
        self.0.get(|| Ok(Arc::new(storage.forms()?)))
    }

    /// Reads the list afresh at the next sync (a form was just published).
    pub fn forget(&self) {
        self.0.forget()
    }
}
