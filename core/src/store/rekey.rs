//! Replacing the data key, and moving both keys to another key store.

use rusqlite::{TransactionBehavior, params};

use super::{META_DATA_KEY, META_DEVICE_KEY, META_HEAD, Store, StoreError, encrypted, session};
use crate::at_rest::DataKey;
use crate::identity::{IdentityError, KeyStore};

impl Store {
    /// Seals everything again under a new data key and wraps the device key
    /// and the new data key with `keystore`, in one transaction: on any
    /// error the store is as it was, under the old keys.
    ///
    /// For when the old data key or the platform key that wraps it may have
    /// leaked, or the app moves to a new platform key. Old ciphertext is
    /// overwritten (`secure_delete`) and the write-ahead log emptied, so no
    /// copy under the old key stays in the files.
    ///
    /// ```
    /// use observer_core::identity::FileKeyStore;
    /// use observer_core::record::NewRecord;
    /// use observer_core::store::Store;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let old = FileKeyStore::open_or_create(dir.path().join("old.kek"))?;
    /// let mut store = Store::open(dir.path(), &old)?;
    /// store.save(NewRecord::builder("S1", "opening", 1, "checklist").build()?)?;
    /// let new = FileKeyStore::open_or_create(dir.path().join("new.kek"))?;
    /// store.rekey(&new)?;
    /// drop(store);
    /// assert!(Store::open(dir.path(), &old).is_err());
    /// assert!(Store::open(dir.path(), &new)?.verify()?.is_intact());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rekey(&mut self, keystore: &dyn KeyStore) -> Result<(), StoreError> {
        let unavailable = |e| StoreError::KeyUnavailable(IdentityError::KeyStore(e));
        let (secret, fresh) = DataKey::generate()?;
        let wrapped_data = keystore.wrap(secret.as_ref()).map_err(unavailable)?;
        let wrapped_device = self
            .key
            .wrap(keystore)
            .map_err(StoreError::KeyUnavailable)?;
        let old = &self.vault;
        {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut read = tx.prepare("SELECT seq, content, rejection FROM records")?;
                let mut write = tx.prepare(
                    "UPDATE records SET tag = ?1, content = ?2, rejection = ?3 WHERE seq = ?4",
                )?;
                let mut rows = read.query([])?;
                while let Some(r) = rows.next()? {
                    let seq = r.get::<_, i64>(0)? as u64;
                    let unreadable = |what: &str| StoreError::Unreadable {
                        what: format!("record {seq}'s {what}"),
                    };
                    let c = encrypted::decrypt_record(old, seq, &r.get::<_, Vec<u8>>(1)?)
                        .map_err(|_| unreadable("contents"))?;
                    let rejection = r
                        .get::<_, Option<Vec<u8>>>(2)?
                        .map(|b| {
                            let (reason, detail) = encrypted::decrypt_rejection(old, seq, &b)
                                .map_err(|_| unreadable("rejection reason"))?;
                            encrypted::encrypt_rejection(&fresh, seq, reason, &detail)
                        })
                        .transpose()?;
                    write.execute(params![
                        fresh.tag(c.id.as_bytes()),
                        encrypted::encrypt_record(&fresh, seq, &c.id, &c.kind, &c.envelope)?,
                        rejection,
                        seq as i64
                    ])?;
                }
            }
            {
                let mut read = tx.prepare("SELECT id, content FROM receipts")?;
                let mut write = tx.prepare("UPDATE receipts SET content = ?1 WHERE id = ?2")?;
                let mut rows = read.query([])?;
                while let Some(r) = rows.next()? {
                    let number: i64 = r.get(0)?;
                    let bytes = encrypted::decrypt_receipt(old, &r.get::<_, Vec<u8>>(1)?).map_err(
                        |_| StoreError::Unreadable {
                            what: format!("receipt {number}"),
                        },
                    )?;
                    write.execute(params![encrypted::encrypt_receipt(&fresh, &bytes)?, number])?;
                }
            }
            for name in [META_HEAD].into_iter().chain(session::META_KEYS) {
                if let Some(value) = encrypted::read_meta(&tx, old, name)? {
                    encrypted::write_meta(&tx, &fresh, name, &value)?;
                }
            }
            super::insert_meta(&tx, META_DATA_KEY, &wrapped_data)?;
            super::insert_meta(&tx, META_DEVICE_KEY, &wrapped_device)?;
            tx.commit()?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        self.vault = fresh;
        Ok(())
    }
}
