//! The durable outbox: every record the observer saved, in chain order, with
//! its delivery state.
//!
//! One SQLite file (`observer.db`) in WAL mode with `synchronous = FULL`: when
//! [`Store::save`] returns, the record is on stable storage and survives a
//! process kill or a power cut (see `docs/architecture.md` for why FULL and
//! not NORMAL). A record moves pending -> in flight -> delivered, and becomes
//! delivered only together with the coordinator's receipt that proved it.
//!
//! ```
//! use observer_core::identity::FileKeyStore;
//! use observer_core::record::NewRecord;
//! use observer_core::store::{Query, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let keys = FileKeyStore::open_or_create(dir.path().join("device.kek"))?;
//! let store = Store::open(dir.path(), &keys)?;
//! for station in ["S1", "S2", "S1"] {
//!     let new = NewRecord::builder(station, "voting", 1, "checklist").build()?;
//!     store.save(new)?;
//! }
//! assert_eq!(store.count(&Query::new().station("S1"))?, 2);
//! assert_eq!(store.counts()?.pending, 3);
//! assert!(store.verify()?.is_intact());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encrypted;
mod error;
mod forms;
mod integrity;
mod legacy;
mod log_watch;
mod media;
mod outbox;
mod query;
mod rekey;
mod relay;
pub mod schema;
mod session;
mod sms;
mod wipe;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::at_rest::DataKey;
use crate::identity::{DeviceId, IdentityError, KeyStore, PublicKey, SigningKey};
use crate::record::{ChainHead, ChainPosition, NewRecord, RecordId, now_ms, sign_record};
use crate::seal::SealedRecord;

pub use error::StoreError;
pub use integrity::{StoreFault, TamperReport};
pub use log_watch::LogFault;
pub use media::{ImportedMedia, MEDIA_DIR, MediaInfo};
pub use outbox::{Counts, DeliveryState, PRIORITY_KIND, Refusal, StoredReceipt};
pub use query::{Query, StateFilter, StoredRecord};
pub use relay::{RelayExport, RelayImport, Relayed};
pub use schema::SCHEMA_VERSION;
pub use session::Enrollment;
pub use sms::SmsReceipt;
pub use wipe::{SealedOutbox, WIPED_FILE, WipeSummary};

/// The database file's name inside the store directory.
pub const DB_FILE: &str = "observer.db";

/// How [`Store::open_with`] reacts to evidence of tampering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnTampering {
    /// Refuse to open: [`StoreError::Tampered`]. The default, so tampering is
    /// never silently ignored.
    #[default]
    Refuse,
    /// Open anyway and keep the report in [`Store::tampering`], so an
    /// observer can go on recording (the chain continues from the last
    /// record this device signed, and the coordinator still sees the gap).
    Continue,
}

/// What a save returns: enough to show the observer and to find the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRecord {
    /// The record's id.
    pub id: RecordId,
    /// Its position in this device's chain.
    pub seq: u64,
    /// The capture time that was signed.
    pub captured_at: DateTime<Utc>,
}

/// An open store. Thread-safe; calls are serialised on one connection.
pub struct Store {
    conn: Mutex<Connection>,
    key: SigningKey,
    vault: DataKey,
    device: DeviceId,
    path: PathBuf,
    tampering: Option<TamperReport>,
    session: std::sync::RwLock<session::Session>,
    /// Set by [`Store::wipe`]: every later call answers [`StoreError::Wiped`].
    wiped: std::sync::OnceLock<WipeSummary>,
    /// Which (form, version) seal their records: see `forms.rs`.
    seal_policy: Mutex<std::collections::HashMap<(String, u32), bool>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("device", &self.device)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating on first use) the store in `dir`, refusing on
    /// tampering. See [`Store::open_with`].
    pub fn open(dir: &Path, keystore: &dyn KeyStore) -> Result<Self, StoreError> {
        Self::open_with(dir, keystore, OnTampering::Refuse)
    }

    /// Opens the store in `dir`: creates the directory, database and device
    /// key on first use; migrates an older schema; unwraps the device key;
    /// checks the chain's integrity (counts, head, and the newest records in
    /// full: [`Store::verify`] checks every record); returns records left in
    /// flight by a crash to pending.
    pub fn open_with(
        dir: &Path,
        keystore: &dyn KeyStore,
        on_tampering: OnTampering,
    ) -> Result<Self, StoreError> {
        check_writable(dir)?;
        Self::check_wiped(dir, keystore)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::from_open(e, &path))?;
        configure(&conn).map_err(|e| e.with_path(&path))?;
        // Freed pages are zeroed, so a deleted row or a dropped plaintext
        // table leaves nothing behind in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        schema::migrate(&mut conn).map_err(|e| e.with_path(&path))?;
        let (key, vault) = load_or_create_keys(&mut conn, keystore)?;
        legacy::convert(&mut conn, &vault)?;
        let device = key.public_key().device_id();
        let session = session::load(&conn, &vault)?;
        let mut store = Self {
            conn: Mutex::new(conn),
            key,
            vault,
            device,
            path,
            tampering: None,
            session,
            wiped: Default::default(),
            seal_policy: Mutex::default(),
        };
        let report = store.quick_check()?;
        tracing::debug!(checked = report.checked, "store opened, its chain checked");
        if !report.is_intact() {
            tracing::warn!(
                faults = report.faults.len(),
                checked = report.checked,
                refused = matches!(on_tampering, OnTampering::Refuse),
                "stored records were deleted, altered or reordered"
            );
            match on_tampering {
                OnTampering::Refuse => return Err(StoreError::Tampered(report)),
                OnTampering::Continue => store.tampering = Some(report),
            }
        }
        store.requeue_in_flight()?;
        Ok(store)
    }

    /// This device's id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device
    }

    /// This device's public key, for enrollment.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The device key, for the statements sync signs (heartbeat, proof of
    /// possession). Never leaves the crate.
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tampering found at open, when opened with [`OnTampering::Continue`].
    pub fn tampering(&self) -> Option<&TamperReport> {
        self.tampering.as_ref()
    }

    /// The newest record this device signed, if any.
    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        read_head(&*self.conn()?, &self.vault)
    }

    /// The connection, unless the store was wiped while open.
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (the transaction rolls back on drop), so a poisoned lock is usable.
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match self.wiped.get() {
            Some(w) => Err(w.error()),
            None => Ok(guard),
        }
    }

    /// Signs `new` as this device's next record and stores it durably.
    ///
    /// When this returns `Ok`, the record is on disk (fsynced) and will
    /// survive a crash or power cut. On `Err`, nothing was written.
    pub fn save(&self, new: NewRecord) -> Result<SavedRecord, StoreError> {
        Ok(self.save_all(std::slice::from_ref(&new))?.remove(0))
    }

    /// Saves several records in one transaction (one fsync): all or none.
    /// For bulk import and load generation; interactive saves use
    /// [`Store::save`].
    pub fn save_all(&self, news: &[NewRecord]) -> Result<Vec<SavedRecord>, StoreError> {
        if self.revoked_at_ms().is_some() {
            return Err(StoreError::Revoked);
        }
        let seal_to = self.session().enrollment.as_ref().and_then(|e| e.seal_key);
        let seals = news
            .iter()
            .map(|n| match seal_to {
                Some(org) if self.form_seals(&n.form.id, n.form.version)? => Ok(Some(org)),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut pos = self.next_position(&tx)?;
        let mut saved = Vec::with_capacity(news.len());
        {
            let mut known = tx.prepare_cached("SELECT 1 FROM records WHERE tag = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (seq, tag, content, for_org, station, captured_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (new, seal_to) in news.iter().zip(seals) {
                if let Some(old) = new.supersedes()
                    && !known.exists([self.vault.tag(old.as_bytes())])?
                {
                    return Err(StoreError::UnknownSupersedes(old));
                }
                let env = sign_record(new, &pos, &self.key)?;
                let id = env.id();
                let content =
                    encrypted::encrypt_record(&self.vault, pos.seq, &id, new.kind.as_str(), &env)?;
                let for_org = seal_to
                    .map(|org| SealedRecord::seal(&org, &self.device, pos.seq, &env))
                    .transpose()
                    .map_err(StoreError::Seal)?
                    .map(|s| encrypted::org_copy_bytes(&s));
                insert.execute(params![
                    pos.seq as i64,
                    self.vault.tag(id.as_bytes()),
                    content,
                    for_org,
                    new.station().as_str(),
                    pos.captured_at.timestamp_millis(),
                ])?;
                saved.push(SavedRecord {
                    id,
                    seq: pos.seq,
                    captured_at: pos.captured_at,
                });
                pos = pos.after(id);
            }
        }
        if let Some(last) = saved.last() {
            write_head(
                &tx,
                &self.vault,
                ChainHead {
                    seq: last.seq,
                    id: last.id,
                },
            )?;
        }
        tx.commit()?;
        Ok(saved)
    }
}

/// Durability and safety settings, chosen on purpose (docs/architecture.md):
/// WAL, `synchronous = FULL` (a commit survives a power cut), foreign keys,
/// no trusted schema. The server's database uses the same.
pub fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal(mode));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    Ok(())
}

fn check_writable(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::NotWritable {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(".observer-write-probe");
    std::fs::write(&probe, b"").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

const META_DEVICE_KEY: &str = "device_key";
const META_DATA_KEY: &str = "data_key";
const META_HEAD: &str = "head";

/// Unwraps the device key and the data key, creating them in a new store.
///
/// A missing key in a store that already holds records is never replaced:
/// a new device key would fork the chain and a new data key could not read
/// what is there, so both refuse with [`StoreError::KeyMissing`]. The one
/// exception is the data key of a store written before encryption at rest
/// (`plain_records` still present), which `legacy::convert` then seals.
fn load_or_create_keys(
    conn: &mut Connection,
    keystore: &dyn KeyStore,
) -> Result<(SigningKey, DataKey), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let raw_meta = |name: &str| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    };
    let has_history = raw_meta(META_HEAD)?.is_some()
        || tx.query_row("SELECT EXISTS(SELECT 1 FROM records)", [], |r| r.get(0))?
        || legacy::pending_rows(&tx)?;
    let unavailable = StoreError::KeyUnavailable;
    let key = match raw_meta(META_DEVICE_KEY)? {
        Some(w) => SigningKey::unwrap(&w, keystore).map_err(unavailable)?,
        None if has_history => return Err(StoreError::KeyMissing),
        None => {
            let key = SigningKey::generate().map_err(unavailable)?;
            let wrapped = key.wrap(keystore).map_err(unavailable)?;
            insert_meta(&tx, META_DEVICE_KEY, &wrapped)?;
            key
        }
    };
    let vault = match raw_meta(META_DATA_KEY)? {
        Some(w) => {
            let secret = keystore
                .unwrap(&w)
                .map_err(|e| unavailable(IdentityError::KeyStore(e)))?;
            DataKey::from_secret(&secret).ok_or(unavailable(IdentityError::InvalidDataKey))?
        }
        None if has_history && !legacy::pending(&tx)? => return Err(StoreError::KeyMissing),
        None => {
            let (secret, vault) = DataKey::generate()?;
            let wrapped = keystore
                .wrap(secret.as_ref())
                .map_err(|e| unavailable(IdentityError::KeyStore(e)))?;
            insert_meta(&tx, META_DATA_KEY, &wrapped)?;
            vault
        }
    };
    tx.commit()?;
    Ok((key, vault))
}

fn insert_meta(conn: &Connection, name: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![name, value],
    )?;
    Ok(())
}

/// The device's chain head as recorded by the saves themselves. It is the
/// source of truth for the next position: if rows were deleted from the end,
/// the next record still follows the last one signed, so the deletion stays
/// a visible gap instead of a silent reuse of its seq.
fn read_head(conn: &Connection, vault: &DataKey) -> Result<Option<ChainHead>, StoreError> {
    encrypted::read_meta(conn, vault, META_HEAD)?
        .map(|v| {
            let (seq, id) = v
                .split_first_chunk::<8>()
                .filter(|(_, id)| id.len() == 32)
                .ok_or_else(|| StoreError::Corrupt {
                    path: PathBuf::new(),
                    detail: "the stored chain head is malformed".into(),
                })?;
            Ok(ChainHead {
                seq: u64::from_be_bytes(*seq),
                id: RecordId::from_bytes(id.try_into().expect("length checked")),
            })
        })
        .transpose()
}

fn write_head(conn: &Connection, vault: &DataKey, head: ChainHead) -> Result<(), StoreError> {
    let mut v = head.seq.to_be_bytes().to_vec();
    v.extend_from_slice(head.id.as_bytes());
    encrypted::write_meta(conn, vault, META_HEAD, &v)
}

impl Store {
    fn next_position(&self, conn: &Connection) -> Result<ChainPosition, StoreError> {
        let head = read_head(conn, &self.vault)?;
        let session = self.session();
        Ok(ChainPosition {
            device: self.device.clone(),
            org: session.enrollment.as_ref().map(|e| e.org.clone()),
            seq: head.map_or(1, |h| h.seq + 1),
            prev: head.map(|h| h.id),
            captured_at: now_ms(),
            clock: session.clock.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
