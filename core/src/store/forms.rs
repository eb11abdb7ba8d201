//! Form definitions on the phone: the shipped defaults plus every version
//! the coordinator published, kept offline.

use chrono::Utc;
use rusqlite::params;

use super::{Store, StoreError};
use crate::forms::{default_forms, FormDefinition, FormError};

impl Store {
    /// Checks and stores definitions received from the coordinator (JSON
    /// text each). All or nothing: one bad definition stores none. Returns
    /// how many were new.
    pub fn add_forms(&self, definitions: &[String]) -> Result<usize, FormError> {
        let parsed: Vec<FormDefinition> = definitions
            .iter()
            .map(|d| FormDefinition::parse(d))
            .collect::<Result<_, _>>()?;
        let store_err = |e: StoreError| FormError::Invalid {
            place: "the phone's store".into(),
            detail: e.to_string(),
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| store_err(e.into()))?;
        let mut added = 0;
        for (f, json) in parsed.iter().zip(definitions) {
            added += tx
                .execute(
                    "INSERT OR IGNORE INTO forms (id, version, definition, received_at) VALUES (?1, ?2, ?3, ?4)",
                    params![f.id, f.version, json, Utc::now().timestamp_millis()],
                )
                .map_err(|e| store_err(e.into()))?;
        }
        tx.commit().map_err(|e| store_err(e.into()))?;
        Ok(added)
    }

    /// Every form version available offline: the shipped defaults and what
    /// the coordinator published, sorted by id then version.
    pub fn forms(&self) -> Result<Vec<FormDefinition>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT definition FROM forms ORDER BY id, version")?;
        let stored: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut all = default_forms();
        for json in stored {
            // Checked when stored; a row that no longer parses was altered.
            let f = FormDefinition::parse(&json).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("a stored form is unreadable: {e}"),
            })?;
            all.retain(|d| !(d.id == f.id && d.version == f.version));
            all.push(f);
        }
        all.sort_by(|a, b| a.id.cmp(&b.id).then(a.version.cmp(&b.version)));
        Ok(all)
    }

    /// The form `id` at `version`, or its newest version.
    pub fn form(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<FormDefinition>, StoreError> {
        Ok(self
            .forms()?
            .into_iter()
            .filter(|f| f.id == id && version.is_none_or(|v| v == f.version))
            .max_by_key(|f| f.version))
    }
}
