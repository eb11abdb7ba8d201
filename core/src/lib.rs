//! Observer's shared core.
//!
//! Everything a field observer's phone does lives here, in Rust, so that the
//! Android and iOS apps (through `observer-ffi`) and the desktop client
//! `observer` share one implementation of what a record is and how it is kept.
//!
//! * [`identity`]: the device's Ed25519 key, stored only wrapped by a platform
//!   [`identity::KeyStore`].
//! * [`record`]: the signed, hash-chained record format and the verification
//!   functions the coordinating server uses too.
//! * [`store`]: the durable SQLite outbox that keeps every record until a
//!   signed receipt proves it was delivered.
//! * [`protocol`]: the sync protocol's wire types, and [`merkle`], the RFC 6962
//!   hashing of the coordinator's append-only log: shared with the server.
//!
//! ```
//! use observer_core::identity::FileKeyStore;
//! use observer_core::record::NewRecord;
//! use observer_core::store::Store;
//!
//! let dir = tempfile::tempdir()?;
//! let keys = FileKeyStore::open_or_create(dir.path().join("device.kek"))?;
//! let store = Store::open(dir.path(), &keys)?;
//! let new = NewRecord::builder("KZ-ALA-0042", "opening", 1, "checklist")
//!     .payload_json(r#"{"seals_intact": true}"#)
//!     .build()?;
//! let saved = store.save(new)?;
//! assert_eq!(saved.seq, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "store")]
mod at_rest;
pub mod cancel;
pub mod evidence;
pub mod forms;
pub mod i18n;
pub mod identity;
#[cfg(feature = "store")]
pub mod media;
pub mod merkle;
pub mod protocol;
pub mod record;
pub mod relay;
pub mod seal;
pub mod sms;

#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "sync")]
pub mod sync;
