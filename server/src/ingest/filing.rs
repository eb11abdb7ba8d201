//! A record's answers re-validated against its form, as the phone did, and
//! its filing checked (a known form, the form's kind, a station the device
//! is assigned to). A record that fails is kept all the same, never clean.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use observer_core::forms::{FormDefinition, default_forms, filing_flags};
use observer_core::record::VerifiedRecord;
use serde_json::json;

use crate::storage::{FormCheck, Storage, StorageError};

/// Parsed form versions, filled on first use: published versions never
/// change, so an entry is never stale. A version that is not there is
/// remembered for `MISSING_FOR` only (it may be published at any moment,
/// on any node): without that, every record of an unknown form cost a
/// database round trip, which on PostgreSQL was a third of ingest.
#[derive(Default)]
pub struct FormCache {
    parsed: RwLock<HashMap<(String, u32), Arc<FormDefinition>>>,
    missing: RwLock<HashMap<(String, u32), std::time::Instant>>,
}

/// How long "no such form version" is believed.
const MISSING_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Unknown versions remembered at most (signed records from enrolled
/// devices name them; past this the memory starts afresh).
const MISSING_MAX: usize = 1024;

impl FormCache {
    /// The form `id` at `version`: shipped with Observer (a shipped version
    /// always counts as shipped, as on the phones), or published by this
    /// coordinator (one primary-key lookup on a cache miss).
    pub fn get(
        &self,
        storage: &dyn Storage,
        id: &str,
        version: u32,
    ) -> Result<Option<Arc<FormDefinition>>, StorageError> {
        let key = (id.to_string(), version);
        if let Some(f) = self
            .parsed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(f.clone()));
        }
        if self
            .missing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|since| since.elapsed() < MISSING_FOR)
        {
            return Ok(None);
        }
        let shipped = default_forms()
            .iter()
            .find(|f| f.id == id && f.version == version)
            .cloned();
        let found = match shipped {
            Some(f) => Some(f),
            None => storage
                .form(id, version)?
                .and_then(|p| FormDefinition::parse(&p.definition).ok()),
        };
        if found.is_none() {
            let mut missing = self.missing.write().unwrap_or_else(|p| p.into_inner());
            if missing.len() >= MISSING_MAX {
                missing.clear();
            }
            missing.insert(key, std::time::Instant::now());
            return Ok(None);
        }
        Ok(found.map(|f| {
            let f = Arc::new(f);
            self.parsed
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, f.clone());
            f
        }))
    }

    /// `r`'s check against its form and its filing flags, for a device
    /// assigned to `assigned`.
    pub fn check(
        &self,
        storage: &dyn Storage,
        r: &VerifiedRecord,
        assigned: &[String],
    ) -> Result<FormCheck, StorageError> {
        let b = &r.body;
        let form = self.get(storage, &b.form.id, b.form.version)?;
        let flags = filing_flags(
            &b.form.id,
            b.form.version,
            form.as_deref(),
            b.kind.as_str(),
            b.station.as_str(),
            assigned,
        );
        let (clean, mut json) = match &form {
            Some(form) => {
                let v = form.validate(&b.payload, "en");
                (v.is_clean(), serde_json::to_value(&v).expect("serialises"))
            }
            None => (false, json!({})),
        };
        json["flags"] = serde_json::to_value(&flags).expect("serialises");
        Ok(FormCheck {
            clean: clean && flags.is_empty(),
            json: json.to_string(),
        })
    }
}
