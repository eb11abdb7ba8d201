//! A witness's database: its wrapped cosigning key, the logs it follows
//! with the newest head it cosigned for each, and the checkpoints it
//! refused. One SQLite file, `witness.db`, in the witness's own data
//! directory; a request's check and its update are one immediate
//! transaction, so two requests (or two processes) racing cannot roll
//! a log's cosigned head back.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use observer_core::identity::{KeyStore, PublicKey, SigningKey};
use observer_core::merkle::{Checkpoint, TreeHead, TrustedWitness, Witness, origin_of};
use observer_core::record::Sha256Digest;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{AddCheckpoint, Followed, Refused, decide};

/// The witness's database file in its data directory.
pub const FILE: &str = "witness.db";

/// Refused checkpoints kept per log: the first and the newest.
const KEPT_REFUSALS: i64 = 32;

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/witness/0001_witness.sql")];

/// Why the witness's data could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The database failed.
    #[error("the witness database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("the witness database: {0}")]
    Schema(#[from] observer_core::store::StoreError),
    /// `init` on a directory that already holds a witness.
    #[error("{0} already holds a witness")]
    Exists(PathBuf),
    /// A directory without one.
    #[error("{0} holds no witness (run `observer-server witness init` first)")]
    Missing(PathBuf),
    /// A directory that holds a coordinator: a witness must be run by
    /// someone else, on other machines.
    #[error(
        "{0} holds a coordinator's data; a witness runs apart from the log it witnesses, with its own data directory"
    )]
    Coordinator(PathBuf),
    /// The data directory could not be made.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cosigning key could not be wrapped or unwrapped.
    #[error("the witness's key: {0}")]
    Key(String),
    /// A stored value is not what this code wrote.
    #[error("the witness database is damaged: {0}")]
    Damaged(String),
    /// The request was refused.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// A followed log as the witness holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogState {
    /// The log's origin line.
    pub origin: String,
    /// Its key.
    pub key: PublicKey,
    /// The newest head cosigned, if any.
    pub cosigned: Option<TreeHead>,
    /// When it was cosigned (Unix ms).
    pub cosigned_ms: Option<i64>,
    /// How many checkpoints of this log were refused as rewrites.
    pub refusals: u64,
}

/// A checkpoint refused because it did not extend the one cosigned
/// before: both are signed by the log, so together they show it rewrote
/// its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The log.
    pub origin: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The checkpoint cosigned before, as the log signed it.
    pub held: Vec<u8>,
    /// The checkpoint refused, as the log signed it.
    pub offered: Vec<u8>,
    /// Why the proof failed.
    pub why: String,
}

/// The witness's database.
pub struct WitnessStore {
    conn: Mutex<Connection>,
}

impl WitnessStore {
    /// Makes a witness named `name` in `dir`: a fresh cosigning key,
    /// wrapped by `keys` (whose description is `lock`).
    pub fn create(
        dir: &Path,
        name: &str,
        keys: &dyn KeyStore,
        lock: &[u8],
        now_ms: i64,
    ) -> Result<(Self, SigningKey), WitnessError> {
        if !TrustedWitness::valid_name(name) {
            return Err(WitnessError::Key(format!(
                "{name:?} cannot name a witness: one word without '+' (C2SP: a URL without its scheme, such as example.org/witness)"
            )));
        }
        if dir.join("server.db").exists() || dir.join("config.json").exists() {
            return Err(WitnessError::Coordinator(dir.to_path_buf()));
        }
        let path = dir.join(FILE);
        if path.exists() {
            return Err(WitnessError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|source| WitnessError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let store = Self::connect(&path)?;
        let key = SigningKey::generate().map_err(|e| WitnessError::Key(e.to_string()))?;
        let wrapped = key
            .wrap(keys)
            .map_err(|e| WitnessError::Key(e.to_string()))?;
        store.conn().execute(
            "INSERT INTO witness (only_row, name, key, lock, made_ms) VALUES (1, ?1, ?2, ?3, ?4)",
            params![name, wrapped, lock, now_ms],
        )?;
        Ok((store, key))
    }

    /// Opens the witness in `dir`.
    pub fn open(dir: &Path) -> Result<Self, WitnessError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Err(WitnessError::Missing(dir.to_path_buf()));
        }
        Self::connect(&path)
    }

    fn connect(path: &Path) -> Result<Self, WitnessError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        observer_core::store::schema::migrate_to(&mut conn, MIGRATIONS, MIGRATIONS.len() as u32)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The witness's name and how its key is wrapped.
    pub fn identity(&self) -> Result<(String, Vec<u8>), WitnessError> {
        Ok(self.conn().query_row(
            "SELECT name, lock FROM witness WHERE only_row = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The witness's cosigning key, unwrapped by `keys`.
    pub fn key(&self, keys: &dyn KeyStore) -> Result<SigningKey, WitnessError> {
        let wrapped: Vec<u8> =
            self.conn()
                .query_row("SELECT key FROM witness WHERE only_row = 1", [], |r| {
                    r.get(0)
                })?;
        SigningKey::unwrap(&wrapped, keys).map_err(|e| WitnessError::Key(e.to_string()))
    }

    /// Follows the log whose checkpoints `key` signs (its origin is the
    /// one Observer derives from the key). Following it again changes
    /// nothing.
    pub fn follow(&self, key: &PublicKey, now_ms: i64) -> Result<Followed, WitnessError> {
        let origin = origin_of(key);
        let conn = self.conn();
        let known: Option<Vec<u8>> = conn
            .query_row("SELECT key FROM logs WHERE origin = ?1", [&origin], |r| {
                r.get(0)
            })
            .optional()?;
        match known {
            Some(k) if k.as_slice() != key.as_bytes() => {
                return Err(WitnessError::Damaged(format!(
                    "{origin} is followed with another key"
                )));
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO logs (origin, key, followed_ms) VALUES (?1, ?2, ?3)",
                    params![origin, key.as_bytes().as_slice(), now_ms],
                )?;
            }
        }
        Ok(Followed { origin, key: *key })
    }

    /// The logs followed, with what was cosigned for each.
    pub fn logs(&self) -> Result<Vec<LogState>, WitnessError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT origin, key, size, root, cosigned_ms,
                    (SELECT count(*) FROM refusals r WHERE r.origin = logs.origin)
             FROM logs ORDER BY origin",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(origin, key, size, root, cosigned_ms, refusals)| {
                Ok(LogState {
                    key: public_key(&key)?,
                    cosigned: head(size, root)?,
                    origin,
                    cosigned_ms,
                    refusals: refusals as u64,
                })
            })
            .collect()
    }

    /// The refused checkpoints of `origin`, oldest first.
    pub fn refusals(&self, origin: &str) -> Result<Vec<Refusal>, WitnessError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT origin, at_ms, held, offered, why FROM refusals WHERE origin = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([origin], |r| {
                Ok(Refusal {
                    origin: r.get(0)?,
                    at_ms: r.get(1)?,
                    held: r.get(2)?,
                    offered: r.get(3)?,
                    why: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Answers an `add-checkpoint` request: decided and, when cosigned,
    /// the new head stored, in one immediate transaction. Returns the
    /// cosignature line. A checkpoint refused as a rewrite is kept with
    /// the one it failed to extend.
    pub fn add_checkpoint(
        &self,
        request: &AddCheckpoint,
        witness: &Witness<'_>,
        now_ms: i64,
    ) -> Result<Vec<u8>, WitnessError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let origin = Checkpoint::claimed_origin(&request.note)
            .map_err(|e| Refused::Malformed(e.to_string()))?;
        let row = tx
            .query_row(
                "SELECT key, size, root, note FROM logs WHERE origin = ?1",
                [&origin],
                |r| {
                    Ok(HeldRow {
                        key: r.get(0)?,
                        size: r.get(1)?,
                        root: r.get(2)?,
                        note: r.get(3)?,
                    })
                },
            )
            .optional()?;
        let Some(HeldRow {
            key,
            size,
            root,
            note: held_note,
        }) = row
        else {
            return Err(Refused::UnknownLog(origin).into());
        };
        let followed = [Followed {
            origin: origin.clone(),
            key: public_key(&key)?,
        }];
        let held = head(size, root)?;
        let secs = (now_ms / 1000).max(1) as u64;
        match decide(&followed, |_| held, request, witness, secs) {
            Ok((_, new, line)) => {
                tx.execute(
                    "UPDATE logs SET size = ?2, root = ?3, note = ?4, cosigned_ms = ?5 WHERE origin = ?1",
                    params![
                        origin,
                        new.size as i64,
                        new.root.as_bytes().as_slice(),
                        request.note,
                        now_ms
                    ],
                )?;
                tx.commit()?;
                Ok(line)
            }
            Err(Refused::Inconsistent(why)) => {
                if let Some(held) = held_note {
                    tx.execute(
                        "INSERT INTO refusals (origin, at_ms, held, offered, why) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![origin, now_ms, held, request.note, why],
                    )?;
                    tx.execute(
                        "DELETE FROM refusals WHERE origin = ?1
                           AND id <> (SELECT min(id) FROM refusals WHERE origin = ?1)
                           AND id NOT IN (SELECT id FROM refusals WHERE origin = ?1
                                          ORDER BY id DESC LIMIT ?2)",
                        params![origin, KEPT_REFUSALS - 1],
                    )?;
                    tx.commit()?;
                }
                Err(Refused::Inconsistent(why).into())
            }
            Err(refused) => Err(refused.into()),
        }
    }
}

/// A followed log's row: its key and what was cosigned.
struct HeldRow {
    key: Vec<u8>,
    size: Option<i64>,
    root: Option<Vec<u8>>,
    note: Option<Vec<u8>>,
}

fn public_key(bytes: &[u8]) -> Result<PublicKey, WitnessError> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| WitnessError::Damaged("a log key is not 32 bytes".into()))?;
    Ok(PublicKey::from_bytes(key))
}

fn head(size: Option<i64>, root: Option<Vec<u8>>) -> Result<Option<TreeHead>, WitnessError> {
    match (size, root) {
        (Some(size), Some(root)) => {
            let root: [u8; 32] = root
                .try_into()
                .map_err(|_| WitnessError::Damaged("a cosigned root is not 32 bytes".into()))?;
            Ok(Some(TreeHead {
                size: u64::try_from(size)
                    .map_err(|_| WitnessError::Damaged("a negative cosigned size".into()))?,
                root: Sha256Digest::from_bytes(root),
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use observer_core::identity::SecretKeyStore;
    use observer_core::merkle::{consistency_proof, leaf_hash, tree_hash};

    use super::*;

    fn checkpoint(log: &SigningKey, leaves: &[Sha256Digest]) -> Vec<u8> {
        Checkpoint {
            origin: origin_of(&log.public_key()),
            head: TreeHead {
                size: leaves.len() as u64,
                root: tree_hash(leaves),
            },
        }
        .sign(log)
        .unwrap()
    }

    #[test]
    fn the_cosigned_head_survives_reopening_and_a_rewrite_is_kept_as_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SecretKeyStore::new(&[7u8; 32]);
        let (store, wkey) =
            WitnessStore::create(dir.path(), "example.org/w", &keys, b"{}", 1_000).unwrap();
        assert!(matches!(
            WitnessStore::create(dir.path(), "example.org/w", &keys, b"{}", 1_000),
            Err(WitnessError::Exists(_))
        ));
        let witness = Witness {
            name: "example.org/w",
            key: &wkey,
        };
        let log = SigningKey::generate().unwrap();
        let mut leaves: Vec<_> = (0..9u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let first = AddCheckpoint {
            old: 0,
            proof: vec![],
            note: checkpoint(&log, &leaves),
        };
        assert!(matches!(
            store.add_checkpoint(&first, &witness, 2_000),
            Err(WitnessError::Refused(Refused::UnknownLog(_)))
        ));
        store.follow(&log.public_key(), 1_500).unwrap();
        store.add_checkpoint(&first, &witness, 2_000).unwrap();
        drop(store);

        let store = WitnessStore::open(dir.path()).unwrap();
        assert_eq!(store.key(&keys).unwrap().public_key(), wkey.public_key());
        let logs = store.logs().unwrap();
        assert_eq!(logs[0].cosigned.map(|h| h.size), Some(9));
        // The same request again is a stale one now.
        assert!(matches!(
            store.add_checkpoint(&first, &witness, 3_000),
            Err(WitnessError::Refused(Refused::Conflict { latest: 9 }))
        ));
        // A rewritten history is refused, kept, and the head stays.
        leaves[2] = leaf_hash(b"rewritten");
        leaves.push(leaf_hash(b"new"));
        let forged = AddCheckpoint {
            old: 9,
            proof: consistency_proof(&leaves, 9).unwrap(),
            note: checkpoint(&log, &leaves),
        };
        assert!(matches!(
            store.add_checkpoint(&forged, &witness, 4_000),
            Err(WitnessError::Refused(Refused::Inconsistent(_)))
        ));
        let logs = store.logs().unwrap();
        assert_eq!(logs[0].cosigned.map(|h| h.size), Some(9));
        assert_eq!(logs[0].refusals, 1);
        let refusal = &store.refusals(&logs[0].origin).unwrap()[0];
        assert_eq!(refusal.held, first.note);
        assert_eq!(refusal.offered, forged.note);
        // Refusals are bounded: the first and the newest are kept.
        for t in 0..40 {
            let _ = store.add_checkpoint(&forged, &witness, 5_000 + t);
        }
        let kept = store.refusals(&logs[0].origin).unwrap();
        assert_eq!(kept.len(), KEPT_REFUSALS as usize);
        assert_eq!(kept[0].at_ms, 4_000);
        assert_eq!(kept.last().unwrap().at_ms, 5_039);
    }
}
