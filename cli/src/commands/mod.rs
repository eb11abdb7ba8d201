//! The `observer` commands, one function each; `main.rs` only parses the
//! command line and dispatches here.

mod delivery;
mod device;
mod forms;
mod records;
pub mod relay;

use std::path::PathBuf;

use observer_core::identity::FileKeyStore;
use observer_core::store::{OnTampering, Store, StoreError};

pub use delivery::{audit_log, deliver_sealed, sync};
pub use device::{enroll, init, start_over, status, wipe};
pub use forms::{forms, validate};
pub use records::{RecordArgs, StateArg, demo, list, load, media, record, verify};

/// A command's failure, printed by `main`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where the data is and whether to open it despite tampering.
pub struct Ctx {
    /// The data directory.
    pub data: PathBuf,
    /// What to do when the store finds tampering at open.
    pub policy: OnTampering,
}

impl Ctx {
    /// Opens the store under [`Ctx::policy`].
    fn open(&self) -> Result<Store> {
        self.open_with(self.policy)
    }

    /// Opens the store; the desktop key store lives beside the data (see
    /// `FileKeyStore` for why that is weaker than a phone's).
    fn open_with(&self, on_tampering: OnTampering) -> Result<Store> {
        let data = &self.data;
        std::fs::create_dir_all(data).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}; choose a directory you may write to",
                data.display()
            )
        })?;
        let keys = FileKeyStore::open_or_create(data.join("device.kek"))?;
        match Store::open_with(data, &keys, on_tampering) {
            Err(e @ StoreError::Wiped { .. }) => {
                let dir = data.display();
                Err(format!(
                    "{e}\n  deliver them:  observer --data {dir} deliver-sealed\n  then:          observer --data {dir} start-over"
                )
                .into())
            }
            other => Ok(other?),
        }
    }
}
