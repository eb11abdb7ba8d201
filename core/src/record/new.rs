use serde_json::{Map, Value};

use super::limits::{MAX_ATTACHMENTS, MAX_PAYLOAD_BYTES};
use super::{AttachmentRef, FormRef, Kind, MediaMeta, RecordError, RecordId, StationId};

/// A record the observer wants to save, validated but not yet signed or
/// placed in the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecord {
    pub(crate) station: StationId,
    pub(crate) form: FormRef,
    pub(crate) kind: Kind,
    pub(crate) payload: Map<String, Value>,
    pub(crate) attachments: Vec<AttachmentRef>,
    pub(crate) supersedes: Option<RecordId>,
}

impl NewRecord {
    /// Starts a record for `station`, filled against form `form_id` version
    /// `form_version`, of sort `kind`. Nothing is checked until
    /// [`NewRecordBuilder::build`], which reports the first problem.
    pub fn builder(
        station: impl Into<String>,
        form_id: impl Into<String>,
        form_version: u32,
        kind: impl Into<String>,
    ) -> NewRecordBuilder {
        NewRecordBuilder {
            station: station.into(),
            form_id: form_id.into(),
            form_version,
            kind: kind.into(),
            payload: PayloadInput::Object(Map::new()),
            attachments: Vec::new(),
            supersedes: None,
        }
    }

    /// The station.
    pub fn station(&self) -> &StationId {
        &self.station
    }

    /// The record this one corrects, if any.
    pub fn supersedes(&self) -> Option<RecordId> {
        self.supersedes
    }
}

enum PayloadInput {
    Json(String),
    Object(Map<String, Value>),
    Value(Value),
}

/// Collects a [`NewRecord`]'s parts; see [`NewRecord::builder`].
pub struct NewRecordBuilder {
    station: String,
    form_id: String,
    form_version: u32,
    kind: String,
    payload: PayloadInput,
    attachments: Vec<(String, u64, String, Option<MediaMeta>)>,
    supersedes: Option<RecordId>,
}

impl NewRecordBuilder {
    /// The answers as JSON text; must be an object.
    pub fn payload_json(mut self, json: impl Into<String>) -> Self {
        self.payload = PayloadInput::Json(json.into());
        self
    }

    /// The answers as a JSON value; must be an object.
    pub fn payload(mut self, value: Value) -> Self {
        self.payload = PayloadInput::Value(value);
        self
    }

    /// References a media file by SHA-256 (hex), size and MIME type.
    pub fn attachment(
        mut self,
        sha256: impl Into<String>,
        bytes: u64,
        mime: impl Into<String>,
    ) -> Self {
        self.attachments
            .push((sha256.into(), bytes, mime.into(), None));
        self
    }

    /// [`NewRecordBuilder::attachment`] with what the observer declares
    /// about the file (consent, what is visible, where it was taken from).
    pub fn attachment_with(
        mut self,
        sha256: impl Into<String>,
        bytes: u64,
        mime: impl Into<String>,
        meta: MediaMeta,
    ) -> Self {
        self.attachments
            .push((sha256.into(), bytes, mime.into(), Some(meta)));
        self
    }

    /// Marks the record as a correction of `id`.
    pub fn supersedes(mut self, id: RecordId) -> Self {
        self.supersedes = Some(id);
        self
    }

    /// Validates every part. Nothing is signed or stored here.
    pub fn build(self) -> Result<NewRecord, RecordError> {
        let station = StationId::new(self.station).map_err(RecordError::Station)?;
        let form = FormRef::new(self.form_id, self.form_version).map_err(RecordError::Form)?;
        let kind = Kind::new(self.kind).map_err(RecordError::Kind)?;
        let value = match self.payload {
            PayloadInput::Object(m) => Value::Object(m),
            PayloadInput::Value(v) => v,
            PayloadInput::Json(s) => {
                if s.len() > MAX_PAYLOAD_BYTES * 4 {
                    return Err(RecordError::PayloadTooLarge {
                        bytes: s.len(),
                        limit: MAX_PAYLOAD_BYTES,
                    });
                }
                serde_json::from_str(&s).map_err(|e| RecordError::PayloadNotJson(e.to_string()))?
            }
        };
        let payload = match value {
            Value::Object(m) => m,
            other => return Err(RecordError::PayloadNotObject(json_type(&other))),
        };
        let bytes = serde_json::to_vec(&payload)
            .expect("a JSON map always serialises")
            .len();
        if bytes > MAX_PAYLOAD_BYTES {
            return Err(RecordError::PayloadTooLarge {
                bytes,
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(RecordError::TooManyAttachments {
                count: self.attachments.len(),
                limit: MAX_ATTACHMENTS,
            });
        }
        let attachments = self
            .attachments
            .into_iter()
            .enumerate()
            .map(|(index, (h, b, m, meta))| {
                let mut a = AttachmentRef::new(&h, b, &m)
                    .map_err(|reason| RecordError::Attachment { index, reason })?;
                if let Some(meta) = meta {
                    meta.check()
                        .map_err(|reason| RecordError::Attachment { index, reason })?;
                    a.meta = Some(meta);
                }
                Ok(a)
            })
            .collect::<Result<_, _>>()?;
        Ok(NewRecord {
            station,
            form,
            kind,
            payload,
            attachments,
            supersedes: self.supersedes,
        })
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NewRecordBuilder {
        NewRecord::builder("S1", "opening", 1, "checklist")
    }

    #[test]
    fn each_bad_input_has_its_own_error() {
        assert!(matches!(
            NewRecord::builder("", "f", 1, "k").build(),
            Err(RecordError::Station(_))
        ));
        assert!(matches!(
            base().payload_json("{").build(),
            Err(RecordError::PayloadNotJson(_))
        ));
        assert_eq!(
            base().payload_json("[1]").build(),
            Err(RecordError::PayloadNotObject("an array"))
        );
        let big = format!(r#"{{"t":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(
            base().payload_json(big).build(),
            Err(RecordError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            base().attachment("nothex", 1, "image/jpeg").build(),
            Err(RecordError::Attachment { index: 0, .. })
        ));
        let mut b = base();
        for _ in 0..=MAX_ATTACHMENTS {
            b = b.attachment("a".repeat(64), 1, "image/jpeg");
        }
        assert!(matches!(
            b.build(),
            Err(RecordError::TooManyAttachments { .. })
        ));
    }

    #[test]
    fn a_payload_at_the_limit_is_accepted() {
        let overhead = r#"{"t":""}"#.len();
        let json = format!(r#"{{"t":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES - overhead));
        assert!(base().payload_json(json).build().is_ok());
    }
}
