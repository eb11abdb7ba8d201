//! Panic wipe: one call that leaves nothing readable on the phone.
//!
//! Everything that says what was observed is sealed under the data key
//! (`sealed.rs`), and the data key and device key exist only wrapped by the
//! platform key store. So the wipe is crypto-shredding plus deletion, and
//! costs the same at ten records as at a million:
//!
//! 1. if asked, the sealed outbox (undelivered records of sealed forms, which
//!    only the organisation can open) and where to deliver it are written to
//!    [`WIPED_FILE`], which also marks the directory as wiped, so a crash
//!    later in the wipe is finished at the next open;
//! 2. the connection is closed and the platform key is destroyed
//!    ([`KeyStore::destroy`]): no copy of the wrapped keys can be opened;
//! 3. the database, its write-ahead log and shared memory are truncated and
//!    removed.
//!
//! What a forensic copy of the flash could still hold: blocks of the
//! removed files (ciphertext, plus each record's station and capture time),
//! unreadable without the destroyed key. `docs/threat-model.md` says so.

use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{DB_FILE, Store, StoreError, encrypted};
use crate::identity::{DeviceId, KeyStore, PublicKey};
use crate::record::Sha256Digest;
use crate::seal::SealedRecord;

/// The file left after a wipe: the mark, and the sealed outbox if kept.
pub const WIPED_FILE: &str = "wiped.db";

/// What a wipe did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WipeSummary {
    /// When (ms since the epoch).
    pub wiped_at_ms: i64,
    /// Sealed records kept for delivery.
    pub sealed_waiting: u64,
}

impl WipeSummary {
    pub(super) fn error(&self) -> StoreError {
        StoreError::Wiped {
            wiped_at_ms: self.wiped_at_ms,
            sealed_waiting: self.sealed_waiting,
        }
    }
}

/// Where a kept sealed outbox goes: the enrollment minus everything not
/// needed to deliver it (no stations, no clock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTarget {
    /// The coordinating server.
    pub url: String,
    /// Its pinned TLS certificate.
    pub tls_sha256: Sha256Digest,
    /// The key that signs its receipts.
    #[serde(with = "crate::protocol::enrollment::public_key_text")]
    pub coordinator: PublicKey,
    /// The organisation.
    pub org: String,
    /// The wiped device.
    pub device: DeviceId,
}

const MARK_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS wipe (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        wiped_at    INTEGER NOT NULL,
        target      TEXT
    );
    CREATE TABLE IF NOT EXISTS outbox (
        seq    INTEGER PRIMARY KEY,
        sealed BLOB NOT NULL
    );";

impl Store {
    /// Destroys the keys and everything readable, in well under a second
    /// whatever the store's size (see the module docs). With
    /// `keep_sealed`, undelivered records of sealed forms are kept, still
    /// sealed to the organisation, for `sync::deliver_sealed`
    /// (with the `sync` feature).
    ///
    /// Afterwards every call on this store, and every later
    /// [`Store::open`] of the directory, answers [`StoreError::Wiped`].
    ///
    /// ```
    /// use observer_core::identity::FileKeyStore;
    /// use observer_core::record::NewRecord;
    /// use observer_core::store::{Store, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keys = FileKeyStore::open_or_create(dir.path().join("device.kek"))?;
    /// let store = Store::open(dir.path(), &keys)?;
    /// store.save(NewRecord::builder("S1", "opening", 1, "checklist").build()?)?;
    /// store.wipe(&keys, false)?;
    /// assert!(matches!(Store::open(dir.path(), &keys), Err(StoreError::Wiped { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wipe(
        &self,
        keystore: &dyn KeyStore,
        keep_sealed: bool,
    ) -> Result<WipeSummary, StoreError> {
        let mut conn = self.conn()?;
        let kept: Vec<(u64, Vec<u8>)> = if keep_sealed {
            let mut stmt = conn.prepare(
                "SELECT seq, for_org FROM records
                 WHERE for_org IS NOT NULL AND state IN (0, 1) ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let target = self.session().enrollment.as_ref().map(|e| DeliveryTarget {
            url: e.url.clone(),
            tls_sha256: e.tls_sha256,
            coordinator: e.coordinator,
            org: e.org.clone(),
            device: self.device.clone(),
        });
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let summary = write_mark(&dir, target.filter(|_| !kept.is_empty()), &kept)?;
        // Close the database: swap in an empty in-memory connection, which
        // nothing will use (every call now answers `Wiped`).
        *conn = Connection::open_in_memory()?;
        let _ = self.wiped.set(summary.clone());
        drop(conn);
        finish(&dir, keystore)?;
        Ok(summary)
    }

    /// Whether `dir` holds a wiped store; finishes an interrupted wipe.
    pub(super) fn check_wiped(dir: &Path, keystore: &dyn KeyStore) -> Result<(), StoreError> {
        let Some(outbox) = SealedOutbox::open(dir)? else {
            return Ok(());
        };
        finish(dir, keystore)?;
        Err(StoreError::Wiped {
            wiped_at_ms: outbox.wiped_at_ms,
            sealed_waiting: outbox.pending()?.len() as u64,
        })
    }

    /// Clears a wiped directory so that [`Store::open`] starts a new store
    /// (a new identity, to be enrolled again). Refuses while sealed records
    /// wait for delivery, unless `discard_sealed`.
    pub fn start_over(dir: &Path, discard_sealed: bool) -> Result<(), StoreError> {
        if let Some(outbox) = SealedOutbox::open(dir)? {
            let waiting = outbox.pending()?.len() as u64;
            if waiting > 0 && !discard_sealed {
                return Err(StoreError::Wiped {
                    wiped_at_ms: outbox.wiped_at_ms,
                    sealed_waiting: waiting,
                });
            }
            drop(outbox);
            remove_database(&dir.join(WIPED_FILE))?;
        }
        Ok(())
    }
}

/// Writes the mark (and the kept outbox) atomically: a temporary file,
/// synced, renamed into place, directory synced.
fn write_mark(
    dir: &Path,
    target: Option<DeliveryTarget>,
    kept: &[(u64, Vec<u8>)],
) -> Result<WipeSummary, StoreError> {
    let tmp = dir.join(format!("{WIPED_FILE}.tmp"));
    remove_database(&tmp)?;
    let summary = WipeSummary {
        wiped_at_ms: Utc::now().timestamp_millis(),
        sealed_waiting: if target.is_some() {
            kept.len() as u64
        } else {
            0
        },
    };
    {
        let mut conn = Connection::open(&tmp)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let tx = conn.transaction()?;
        tx.execute_batch(MARK_SCHEMA)?;
        tx.execute(
            "INSERT INTO wipe (id, wiped_at, target) VALUES (1, ?1, ?2)",
            params![
                summary.wiped_at_ms,
                target
                    .as_ref()
                    .map(|t| serde_json::to_string(t).expect("serialises"))
            ],
        )?;
        if target.is_some() {
            let mut insert = tx.prepare("INSERT INTO outbox (seq, sealed) VALUES (?1, ?2)")?;
            for (seq, bytes) in kept {
                insert.execute(params![*seq as i64, bytes])?;
            }
        }
        tx.commit()?;
    }
    let io = |source| StoreError::NotWritable {
        path: dir.to_owned(),
        source,
    };
    std::fs::rename(&tmp, dir.join(WIPED_FILE)).map_err(io)?;
    sync_dir(dir).map_err(io)?;
    Ok(summary)
}

/// Destroys the key and removes the database files (idempotent).
fn finish(dir: &Path, keystore: &dyn KeyStore) -> Result<(), StoreError> {
    keystore
        .destroy()
        .map_err(|e| StoreError::KeyUnavailable(e.into()))?;
    remove_database(&dir.join(DB_FILE))?;
    // Media files are ciphertext under the destroyed key; removed anyway.
    let media = dir.join(super::MEDIA_DIR);
    match std::fs::remove_dir_all(&media) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::NotWritable {
            path: media,
            source,
        }),
    }
}

/// Truncates and removes a database file and its companions. Truncating
/// first hands the blocks back to the file system at once.
fn remove_database(db: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        let io = |source| StoreError::NotWritable {
            path: path.clone(),
            source,
        };
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => {
                f.set_len(0).map_err(io)?;
                f.sync_all().map_err(io)?;
                drop(f);
                std::fs::remove_file(&path).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    if let Some(dir) = db.parent() {
        sync_dir(dir).map_err(|source| StoreError::NotWritable {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Makes a rename or removal in `dir` durable (on Unix, where a directory
/// can be synced).
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

/// What a wipe left: the mark, and the sealed records still to deliver.
/// Nothing in it is readable without the organisation's private key.
pub struct SealedOutbox {
    conn: Connection,
    wiped_at_ms: i64,
    target: Option<DeliveryTarget>,
}

impl SealedOutbox {
    /// The outbox of a wiped store in `dir`, or `None` if it was not wiped.
    pub fn open(dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = dir.join(WIPED_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open(&path).map_err(|e| StoreError::from_open(e, &path))?;
        let row: Option<(i64, Option<String>)> = conn
            .query_row("SELECT wiped_at, target FROM wipe WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (wiped_at_ms, target) = row.ok_or_else(|| StoreError::Corrupt {
            path: path.clone(),
            detail: "the wipe mark is empty".into(),
        })?;
        let target = target
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: format!("the delivery target is unreadable: {e}"),
            })?;
        Ok(Some(Self {
            conn,
            wiped_at_ms,
            target,
        }))
    }

    /// When the store was wiped (ms since the epoch).
    pub fn wiped_at_ms(&self) -> i64 {
        self.wiped_at_ms
    }

    /// Where to deliver, if anything was kept.
    pub fn target(&self) -> Option<&DeliveryTarget> {
        self.target.as_ref()
    }

    /// The sealed records still to deliver, oldest first.
    pub fn pending(&self) -> Result<Vec<SealedRecord>, StoreError> {
        let Some(target) = &self.target else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare("SELECT seq, sealed FROM outbox ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, bytes) = row?;
            out.push(
                encrypted::org_copy(&target.device, seq, &bytes).ok_or_else(|| {
                    StoreError::Corrupt {
                        path: PathBuf::from(WIPED_FILE),
                        detail: format!("sealed record {seq} is truncated"),
                    }
                })?,
            );
        }
        Ok(out)
    }

    /// Drops delivered (or refused) records from the outbox.
    pub fn settle(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare("DELETE FROM outbox WHERE seq = ?1")?;
        for s in seqs {
            stmt.execute([*s as i64])?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    /// Writes the wipe mark alone, as a wipe cut short after its first step.
    pub(in crate::store) fn write_mark_only(dir: &std::path::Path) {
        super::write_mark(dir, None, &[]).unwrap();
    }
}
