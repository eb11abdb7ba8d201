//! The record: what an observer saw, signed by their device and chained to
//! everything the device signed before.
//!
//! A record is an [`Envelope`]: body bytes (JSON, serialised exactly once)
//! and an Ed25519 signature over `"observer/record/v1\0" || body`. Its
//! [`RecordId`] is SHA-256 of the body bytes. The body names the device,
//! a per-device `seq` (1, 2, 3, ...) and `prev`, the id of record `seq - 1`,
//! so deleting or reordering records is detectable by anyone holding the
//! device's public key ([`verify_chain`]).
//!
//! Verification works without a store, so the coordinating server uses this
//! same module: one implementation of "is this record genuine".
//!
//! ```
//! use observer_core::identity::SigningKey;
//! use observer_core::record::{sign_record, verify_envelope, ChainPosition, NewRecord};
//!
//! let key = SigningKey::generate()?;
//! let new = NewRecord::builder("KZ-ALA-0042", "incident", 1, "incident")
//!     .payload_json(r#"{"type": "ballot_stuffing"}"#)
//!     .build()?;
//! let envelope = sign_record(&new, &ChainPosition::first(&key), &key)?;
//! let verified = verify_envelope(&envelope, &key.public_key())?;
//! assert_eq!(verified.body.seq, 1);
//! assert_eq!(verified.id, envelope.id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod chain;
mod digest;
mod envelope;
mod fields;
pub mod limits;
mod new;
pub mod unique_keys;

pub use body::{BODY_VERSION, Body, Clock};
pub use chain::{ChainFault, ChainHead, ChainReport, ChainVerifier, SeqRange, verify_chain};
pub use digest::{RecordId, Sha256Digest};
#[cfg(feature = "store")]
pub(crate) use envelope::now_ms;
pub use envelope::{
    ChainPosition, Envelope, SIGNING_DOMAIN, VerifiedRecord, VerifyError, sign_record,
    verify_envelope, verify_envelope_by,
};
pub use fields::{AttachmentRef, Consent, FormRef, Kind, MediaMeta, Mime, StationId};
pub use new::{NewRecord, NewRecordBuilder};

/// Why a new record could not be created. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Station id empty, too long or with control characters.
    #[error("station id is invalid: {0}; enter the station number as printed on the assignment")]
    Station(String),
    /// Form id or version invalid.
    #[error("form reference is invalid: {0}; update the forms from the coordinator")]
    Form(String),
    /// Kind invalid.
    #[error("record kind is invalid: {0}")]
    Kind(String),
    /// The payload text is not JSON.
    #[error("the answers are not valid JSON: {0}")]
    PayloadNotJson(String),
    /// The payload is JSON but not an object.
    #[error("the answers must be a JSON object (got {0})")]
    PayloadNotObject(&'static str),
    /// The payload is over [`limits::MAX_PAYLOAD_BYTES`].
    #[error(
        "the answers take {bytes} bytes, over the limit of {limit}; shorten long text answers or attach media instead"
    )]
    PayloadTooLarge { bytes: usize, limit: usize },
    /// An attachment reference is malformed.
    #[error("attachment {index} is invalid: {reason}; import the file again")]
    Attachment { index: usize, reason: String },
    /// More than [`limits::MAX_ATTACHMENTS`] attachments.
    #[error(
        "{count} attachments is over the limit of {limit} per record; split them across records"
    )]
    TooManyAttachments { count: usize, limit: usize },
    /// The whole body is over [`limits::MAX_BODY_BYTES`].
    #[error("the record takes {bytes} bytes, over the limit of {limit}; shorten it")]
    BodyTooLarge { bytes: usize, limit: usize },
}
