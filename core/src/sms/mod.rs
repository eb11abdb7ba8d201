//! Signed reports by SMS, for when mobile data is blocked and SMS still
//! works: a record or a heartbeat, exactly as the device signed it, packed
//! ([`pack_record`], [`pack_heartbeat`]) and written as standalone GSM
//! 7-bit segments ([`record_parts`], [`heartbeat_parts`]).
//! The receiver puts the parts together in any order, rebuilds the signed
//! bytes and verifies them like any record: the same id, the same chain,
//! so the same record arriving later over the internet is `already`.
//! Layout and test vectors: `docs/protocol.md`, "SMS reports".
//!
//! ```
//! use observer_core::identity::SigningKey;
//! use observer_core::record::{sign_record, ChainPosition, NewRecord};
//! use observer_core::sms::{self, Unpacked};
//!
//! let device = SigningKey::generate()?;
//! let pos = ChainPosition::first(&device);
//! let new = NewRecord::builder("KZ-ALA-0042", "access", 1, "access")
//!     .payload_json(r#"{"event": "denied_entry", "time": "07:40"}"#)
//!     .build()?;
//! let env = sign_record(&new, &pos, &device)?;
//! let texts = sms::record_parts(&env, &sms::Forms::shipped(None), None)?;
//! assert!(texts.iter().all(|t| t.chars().count() <= 160 && sms::is_gsm7(t)));
//! let mut parts: Vec<_> = texts.iter().map(|t| sms::parse(t)).collect::<Result<_, _>>()?;
//! parts.reverse(); // any order
//! let bytes = sms::join(&parts)?;
//! assert_eq!(sms::unpack(&bytes, &sms::Forms::shipped(None))?, Unpacked::Record(env));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pack;
mod parts;
mod receipt;

pub use pack::{Context, Unpacked, pack_heartbeat, pack_record, unpack};
pub use parts::{
    ALPHABET, DATA_CHARS, MAX_PARTS, PART_MAGIC, Part, SEGMENT_CHARS, is_gsm7, join, parse, split,
};
pub use receipt::{ReceiptContext, pack_receipt, unpack_receipt};

use crate::forms::FormDefinition;
use crate::protocol::Signed;
use crate::record::Envelope;

/// Why a report could not be written as SMS, or a received SMS could not
/// be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// This record cannot be sent by SMS (send it over the internet or in
    /// a relay bundle).
    #[error("this record cannot be sent by SMS: {0}")]
    NotPackable(String),
    /// It would take more than [`MAX_PARTS`] messages.
    #[error(
        "this record would take {parts} SMS messages, more than {MAX_PARTS}; send it over the internet or in a relay bundle"
    )]
    TooLong { parts: usize },
    /// Not an Observer SMS at all.
    #[error("not an Observer report")]
    NotAPart,
    /// A part whose check character does not match: altered on the way.
    #[error(
        "part {index} of {total} was altered on the way (its check character does not match); it was not used"
    )]
    AlteredPart { index: usize, total: usize },
    /// Parts still missing.
    #[error("the report is incomplete: parts {missing:?} have not arrived")]
    Incomplete { missing: Vec<usize> },
    /// Packed by a form this receiver does not hold.
    #[error("the report follows form {id} version {version}, which this coordinator does not have")]
    UnknownForm { id: String, version: u32 },
    /// Anything else out of place.
    #[error("malformed report: {0}")]
    Malformed(String),
    /// A receipt by SMS that the pinned coordinator key did not sign, or
    /// that speaks of another phone: nothing was marked delivered.
    #[error("this SMS is not a receipt signed by your coordinator; nothing was marked delivered")]
    NotFromCoordinator,
    /// A receipt by SMS reached a phone that is not enrolled.
    #[error("this phone is not enrolled, so it has no coordinator's receipt to check")]
    NotEnrolled,
}

/// The usual [`Context`]: an organisation and a set of form definitions
/// (the shipped ones, and whatever the holder adds).
#[derive(Clone, Debug, Default)]
pub struct Forms {
    org: Option<String>,
    forms: Vec<FormDefinition>,
}

impl Forms {
    /// The forms every phone ships with, for organisation `org`.
    pub fn shipped(org: Option<&str>) -> Self {
        Self {
            org: org.map(str::to_string),
            forms: crate::forms::default_forms().to_vec(),
        }
    }

    /// Adds (or replaces) a definition.
    pub fn with(mut self, form: FormDefinition) -> Self {
        self.forms
            .retain(|f| !(f.id == form.id && f.version == form.version));
        self.forms.push(form);
        self
    }
}

impl Context for Forms {
    fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
    fn form(&self, id: &str, version: u32) -> Option<FormDefinition> {
        self.forms
            .iter()
            .find(|f| f.id == id && f.version == version)
            .cloned()
    }
}

/// A signed record as SMS texts (one segment each), answers packed by its
/// form when `ctx` holds it.
pub fn record_parts(
    env: &Envelope,
    ctx: &dyn Context,
    form: Option<&FormDefinition>,
) -> Result<Vec<String>, SmsError> {
    let body: crate::record::Body = serde_json::from_slice(&env.body)
        .map_err(|e| SmsError::NotPackable(format!("not a record body: {e}")))?;
    let found = form
        .cloned()
        .or_else(|| ctx.form(&body.form.id, body.form.version));
    split(&pack_record(env, ctx, found.as_ref())?)
}

/// A signed heartbeat as SMS texts (one, for every heartbeat).
pub fn heartbeat_parts(hb: &Signed) -> Result<Vec<String>, SmsError> {
    split(&pack_heartbeat(hb)?)
}

/// Whether `number` is a gateway number a phone can text: digits (3 to
/// 20) with an optional leading `+`. Coordinators set it, phones check it
/// wherever it arrives (the enrollment code, the enrollment answer).
pub fn is_gateway_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A signed receipt that settles records as SMS texts (one segment for a
/// report's receipt), for a gateway to text back to the phone.
pub fn receipt_parts(receipt: &Signed) -> Result<Vec<String>, SmsError> {
    split(&pack_receipt(receipt)?)
}

/// Rebuilds the coordinator's receipt from the texts it came in (in any
/// order; a copy counts once). The caller verifies it with the pinned key.
pub fn read_receipt<S: AsRef<str>>(
    texts: &[S],
    ctx: &dyn ReceiptContext,
) -> Result<Signed, SmsError> {
    let parts: Vec<Part> = texts
        .iter()
        .map(|t| parse(t.as_ref()))
        .collect::<Result<_, _>>()?;
    unpack_receipt(&join(&parts)?, ctx)
}

#[cfg(test)]
mod tests;
