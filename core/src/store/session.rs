//! What the phone remembers about its coordinator: the enrollment (who to
//! trust) and the server clock learned at the last sync. Both are signed
//! into every new record (`org`, `clock`), so they live beside the chain.

use std::sync::{RwLock, RwLockReadGuard};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, encrypted};
use crate::at_rest::DataKey;
use crate::identity::{DeviceId, PublicKey};
use crate::record::{Clock, Sha256Digest};

const META_ENROLLMENT: &str = "enrollment";
const META_CLOCK: &str = "clock";
const META_REVOKED: &str = "revoked";
const META_UPDATES: &str = "updates_tag";
pub(super) const META_LOG_ANCHOR: &str = "log_anchor";
pub(super) const META_LOG_FAULTS: &str = "log_faults";
pub(super) const META_LOG_WITNESSED: &str = "log_witnessed";
/// The `meta` values this module and `log_watch` keep (all sealed).
pub(super) const META_KEYS: [&str; 7] = [
    META_ENROLLMENT,
    META_CLOCK,
    META_REVOKED,
    META_UPDATES,
    META_LOG_ANCHOR,
    META_LOG_FAULTS,
    META_LOG_WITNESSED,
];

/// The phone's enrollment with its coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The coordinating server, `https://host:port`.
    pub url: String,
    /// SHA-256 of the server's TLS certificate: the only one accepted.
    pub tls_sha256: Sha256Digest,
    /// The coordinator key that signs receipts.
    #[serde(with = "crate::protocol::enrollment::public_key_text")]
    pub coordinator: PublicKey,
    /// The organisation.
    pub org: String,
    /// This device, as the server enrolled it.
    pub device: DeviceId,
    /// Stations assigned to this observer.
    pub stations: Vec<String>,
    /// Those of `stations` whose results protocol the coordinator needs
    /// first ([`crate::protocol::Updates::priority_stations`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_stations: Vec<String>,
    /// The organisation's sealing key, when its server has one: records
    /// of the forms it seals are sealed to it before they leave the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_key: Option<crate::seal::OrgPublicKey>,
    /// The verifier keys of the coordinator's witnesses
    /// ([`crate::protocol::Updates::witnesses`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// The coordinator's SMS gateway number
    /// ([`crate::protocol::Updates::sms_number`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_number: Option<String>,
}

/// The in-memory copy of what new records are signed with.
#[derive(Debug, Default)]
pub(super) struct Session {
    pub(super) enrollment: Option<Enrollment>,
    pub(super) clock: Clock,
    /// When the coordinator's revocation was learned (ms since the epoch).
    pub(super) revoked_at_ms: Option<i64>,
    /// The tag of the coordinator's updates last applied.
    pub(super) updates_tag: Option<Sha256Digest>,
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    vault: &DataKey,
    key: &str,
) -> Result<Option<T>, StoreError> {
    encrypted::read_meta(conn, vault, key)?
        .map(|v| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                path: Default::default(),
                detail: format!("stored {key} is unreadable: {e}"),
            })
        })
        .transpose()
}

pub(super) fn write_json<T: Serialize>(
    conn: &Connection,
    vault: &DataKey,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    encrypted::write_meta(
        conn,
        vault,
        key,
        &serde_json::to_vec(value).expect("serialises"),
    )
}

pub(super) fn load(conn: &Connection, vault: &DataKey) -> Result<RwLock<Session>, StoreError> {
    Ok(RwLock::new(Session {
        enrollment: read_json(conn, vault, META_ENROLLMENT)?,
        clock: read_json(conn, vault, META_CLOCK)?.unwrap_or_default(),
        revoked_at_ms: read_json(conn, vault, META_REVOKED)?,
        updates_tag: read_json(conn, vault, META_UPDATES)?,
    }))
}

impl Store {
    pub(super) fn session(&self) -> RwLockReadGuard<'_, Session> {
        self.session.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The enrollment, once this device is enrolled.
    pub fn enrollment(&self) -> Option<Enrollment> {
        self.session().enrollment.clone()
    }

    /// Records the enrollment; records signed from now on carry its `org`.
    pub fn set_enrollment(&self, e: &Enrollment) -> Result<(), StoreError> {
        write_json(&*self.conn()?, &self.vault, META_ENROLLMENT, e)?;
        self.session
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .enrollment = Some(e.clone());
        Ok(())
    }

    /// When this device learned that the coordinator revoked it, if it did.
    /// A revoked device signs nothing more ([`StoreError::Revoked`]).
    pub fn revoked_at_ms(&self) -> Option<i64> {
        self.session().revoked_at_ms
    }

    /// Records that the coordinator revoked this device; from now on saves
    /// are refused. Kept records stay readable and verifiable.
    pub fn mark_revoked(&self) -> Result<(), StoreError> {
        if self.revoked_at_ms().is_some() {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_millis();
        write_json(&*self.conn()?, &self.vault, META_REVOKED, &now)?;
        self.session
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .revoked_at_ms = Some(now);
        Ok(())
    }

    /// The tag of the coordinator's updates (stations and forms) this
    /// phone last applied in full, which a sync sends so that the answer
    /// carries updates only when they changed.
    pub fn updates_tag(&self) -> Option<Sha256Digest> {
        self.session().updates_tag
    }

    /// Records the tag of updates just applied in full.
    pub fn set_updates_tag(&self, tag: Sha256Digest) -> Result<(), StoreError> {
        if self.updates_tag() == Some(tag) {
            return Ok(());
        }
        write_json(&*self.conn()?, &self.vault, META_UPDATES, &tag)?;
        self.session
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .updates_tag = Some(tag);
        Ok(())
    }

    /// The server clock as last learned.
    pub fn clock(&self) -> Clock {
        self.session().clock.clone()
    }

    /// Records the offset to server time and the newest signed statement
    /// from the server (`after`); records signed from now on carry them.
    pub fn set_clock(&self, offset_ms: i64, after: Option<Sha256Digest>) -> Result<(), StoreError> {
        let clock = Clock {
            offset_ms: Some(offset_ms),
            after,
        };
        write_json(&*self.conn()?, &self.vault, META_CLOCK, &clock)?;
        self.session
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clock = clock;
        Ok(())
    }
}
