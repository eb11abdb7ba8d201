//! Reading records as they were signed. Records that arrived sealed to the
//! organisation rest sealed in the database; a [`Reader`] holds the
//! organisation's key and opens them in memory as they are read, so every
//! reader (the web view, exports, tabulation, verification) sees the
//! signed bytes and nothing is ever written back in the clear.

use observer_core::seal::OrgSecretKey;

use crate::storage::{RecordFilter, RecordRow, Storage, StorageError};

/// Storage, and the key that opens what rests sealed in it.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    storage: &'a dyn Storage,
    seal: &'a OrgSecretKey,
}

impl<'a> Reader<'a> {
    /// Reads `storage`, opening sealed rows with `seal`.
    pub fn new(storage: &'a dyn Storage, seal: &'a OrgSecretKey) -> Self {
        Self { storage, seal }
    }

    /// The storage itself (for what is never sealed: devices, totals, the log).
    pub fn storage(&self) -> &'a dyn Storage {
        self.storage
    }

    /// [`Storage::records`], each row opened.
    pub fn records(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(RecordRow) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.storage
            .records(filter, &mut |row| each(open(row, self.seal)?))
    }
}

/// A row with its body and signature, opened from its sealed form when it
/// rests sealed (its `sealed` stays set, so readers can say so).
pub fn open(mut row: RecordRow, seal: &OrgSecretKey) -> Result<RecordRow, StorageError> {
    if let Some(sealed) = &row.sealed {
        let env = sealed.open(seal).map_err(|e| {
            StorageError::Corrupt(format!(
                "record {} at log index {} rests sealed but does not open: {e}",
                row.id, row.index
            ))
        })?;
        row.body = env.body;
        row.sig = env.sig.to_vec();
    }
    Ok(row)
}
