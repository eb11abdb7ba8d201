use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AttachmentRef, FormRef, Kind, RecordId, Sha256Digest, StationId};
use crate::identity::DeviceId;

/// The body format version this code writes and reads.
pub const BODY_VERSION: u32 = 1;

/// A record's body: everything the signature covers.
///
/// Serialised once, when the record is signed; those bytes are what is stored,
/// sent and verified. A `Body` is only ever parsed *from* verified bytes,
/// never re-serialised to check a signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Format version, [`BODY_VERSION`].
    pub v: u32,
    /// The organisation the device is enrolled with (`None` before enrollment).
    pub org: Option<String>,
    /// The signing device.
    pub device: DeviceId,
    /// 1, 2, 3, ... per device, without gaps.
    pub seq: u64,
    /// The id of this device's record `seq - 1`; `None` only for `seq == 1`.
    pub prev: Option<RecordId>,
    /// When the observer saved it, by the device's clock (RFC 3339, UTC, ms).
    #[serde(with = "rfc3339_millis")]
    pub captured_at: DateTime<Utc>,
    /// What the device knew about the server's clock when it signed.
    pub clock: Clock,
    /// The polling station observed.
    pub station: StationId,
    /// The form the answers follow.
    pub form: FormRef,
    /// What sort of observation this is.
    pub kind: Kind,
    /// The answers, a JSON object.
    pub payload: Map<String, Value>,
    /// Media referenced by hash.
    pub attachments: Vec<AttachmentRef>,
    /// The record this one corrects, if any.
    pub supersedes: Option<RecordId>,
}

/// The device's knowledge of server time, learned at its last sync.
///
/// `captured_at` alone is only the phone's word; with the offset the
/// coordinator can correct a wrong phone clock, and `after` brackets the
/// capture cryptographically: the record was signed after the server issued
/// that tree head.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// Server time minus device time, in milliseconds; `None` before the first sync.
    pub offset_ms: Option<i64>,
    /// Hash of the newest signed tree head the device had seen.
    pub after: Option<Sha256Digest>,
}

mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

impl Body {
    /// `captured_at` in the canonical text form used in the body.
    pub fn captured_at_text(&self) -> String {
        self.captured_at
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}
