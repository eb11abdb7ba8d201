//! Form definitions on the phone: the shipped defaults plus every version
//! the coordinator published, kept offline.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::forms::{FormDefinition, default_forms};

impl Store {
    /// Checks and stores definitions received from the coordinator (JSON
    /// text each). All or nothing: one bad definition ([`StoreError::Form`])
    /// stores none. Returns how many were new.
    pub fn add_forms(&self, definitions: &[String]) -> Result<usize, StoreError> {
        let parsed: Vec<FormDefinition> = definitions
            .iter()
            .map(|d| FormDefinition::parse(d))
            .collect::<Result<_, _>>()?;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO forms (id, version, definition, received_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let now = Utc::now().timestamp_millis();
            for (f, json) in parsed.iter().zip(definitions) {
                // A shipped version is what every phone checked its records
                // against: nobody, not even the pinned coordinator, can
                // replace it under the same id and version.
                if shipped(&f.id, f.version).is_some() {
                    continue;
                }
                added += insert.execute(params![f.id, f.version, json, now])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn parse_stored(&self, json: &str) -> Result<FormDefinition, StoreError> {
        // Checked when stored; a row that no longer parses was altered.
        FormDefinition::parse(json).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("a stored form is unreadable: {e}"),
        })
    }

    /// Every form version available offline: the shipped defaults and what
    /// the coordinator published, sorted by id then version.
    pub fn forms(&self) -> Result<Vec<FormDefinition>, StoreError> {
        let stored: Vec<String> = {
            let conn = self.conn()?;
            let mut stmt =
                conn.prepare_cached("SELECT definition FROM forms ORDER BY id, version")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut all = default_forms().to_vec();
        for json in stored {
            let f = self.parse_stored(&json)?;
            // Stored before shipped versions were protected: the shipped one counts.
            if shipped(&f.id, f.version).is_none() {
                all.push(f);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id).then(a.version.cmp(&b.version)));
        Ok(all)
    }

    /// Whether records of form `id` at `version` are sealed to the
    /// organisation. Published versions never change, so a form found once
    /// is remembered; an unknown form is not sealed (and not remembered, in
    /// case it is published later).
    pub(super) fn form_seals(&self, id: &str, version: u32) -> Result<bool, StoreError> {
        let key = (id.to_string(), version);
        if let Some(&s) = self
            .seal_policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(s);
        }
        let Some(form) = self.form(id, Some(version))? else {
            return Ok(false);
        };
        self.seal_policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, form.sealed);
        Ok(form.sealed)
    }

    /// The form `id` at `version`, or its newest version: one indexed
    /// lookup, so an app can validate at every keystroke.
    pub fn form(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<FormDefinition>, StoreError> {
        let stored: Option<String> = self
            .conn()?
            .prepare_cached(
                "SELECT definition FROM forms WHERE id = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![id, version], |r| r.get(0))
            .optional()?;
        let stored = stored.map(|json| self.parse_stored(&json)).transpose()?;
        let shipped = default_forms()
            .iter()
            .filter(|f| f.id == id && version.is_none_or(|v| v == f.version))
            .max_by_key(|f| f.version);
        Ok(match (stored, shipped) {
            (Some(s), Some(d)) if d.version >= s.version => Some(d.clone()),
            (Some(s), _) => Some(s),
            (None, d) => d.cloned(),
        })
    }
}

/// The shipped form `id` at `version`, if there is one.
fn shipped(id: &str, version: u32) -> Option<&'static FormDefinition> {
    default_forms()
        .iter()
        .find(|d| d.id == id && d.version == version)
}

impl Store {
    /// How `record` is misfiled, if it is (`forms::filing_flags`): its
    /// form unknown here, its kind not the form's, its station not one the
    /// observer is assigned to. Flags never stop a save; the app shows them.
    pub fn filing_flags(
        &self,
        record: &crate::record::NewRecord,
    ) -> Result<Vec<crate::forms::FilingFlag>, StoreError> {
        let form = self.form(&record.form.id, Some(record.form.version))?;
        let assigned = self.enrollment().map(|e| e.stations).unwrap_or_default();
        Ok(crate::forms::filing_flags(
            &record.form.id,
            record.form.version,
            form.as_ref(),
            record.kind.as_str(),
            record.station.as_str(),
            &assigned,
        ))
    }
}
