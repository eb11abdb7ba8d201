//! Validated field types: once constructed (or deserialised), a value is
//! known to be within the limits, so nothing downstream re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Sha256Digest;
use super::limits::{MAX_ATTACHMENT_BYTES, MAX_MIME_BYTES, MAX_NAME_BYTES};

/// A polling station's id, as the election commission numbers it.
///
/// Any printable text of 1 to 64 bytes without surrounding whitespace:
/// commissions number stations in their own ways ("KZ-ALA-0042", "12/345").
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StationId(String);

impl StationId {
    /// Validates `s` as a station id.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.is_empty() {
            return Err("it is empty".into());
        }
        if s.len() > MAX_NAME_BYTES {
            return Err(format!("it is over {MAX_NAME_BYTES} bytes"));
        }
        if s.chars().any(char::is_control) {
            return Err("it contains control characters".into());
        }
        if s.trim() != s {
            return Err("it starts or ends with spaces".into());
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A machine name (form id, record kind): 1 to 64 of `a-z 0-9 _ - .`.
fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(format!("it is over {MAX_NAME_BYTES} bytes"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
    {
        return Err(format!(
            "{s:?} may only use lowercase letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

/// What sort of observation a record is ("checklist", "incident", "results",
/// "access", ...). Forms define the kinds they produce.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kind(String);

impl Kind {
    /// Validates `s` as a kind.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        check_name(&s)?;
        Ok(Self(s))
    }

    /// The kind as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The form a record was filled against: its id and version.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormRef {
    /// The form's id.
    #[serde(deserialize_with = "form_id")]
    pub id: String,
    /// The form's version, from 1.
    #[serde(deserialize_with = "form_version")]
    pub version: u32,
}

impl FormRef {
    /// Validates a form reference.
    pub fn new(id: impl Into<String>, version: u32) -> Result<Self, String> {
        let id = id.into();
        check_name(&id).map_err(|e| format!("form id {e}"))?;
        if version == 0 {
            return Err("form version starts at 1".into());
        }
        Ok(Self { id, version })
    }
}

fn form_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_name(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn form_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom("form version starts at 1")),
        v => Ok(v),
    }
}

/// A MIME type such as `image/jpeg`: `type/subtype`, lowercase, no parameters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mime(String);

impl Mime {
    /// Validates `s` as a MIME type.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&-^_.+".contains(&b)
                })
        };
        match s.split_once('/') {
            Some((t, sub)) if s.len() <= MAX_MIME_BYTES && token(t) && token(sub) => Ok(Self(s)),
            _ => Err(format!("{s:?} is not a lowercase type/subtype MIME type")),
        }
    }

    /// The MIME type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reference from a record to a media file: what the signature covers is
/// the file's hash, so the file can travel later and separately.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// SHA-256 of the file's bytes as uploaded.
    pub sha256: Sha256Digest,
    /// The file's size in bytes.
    #[serde(deserialize_with = "attachment_bytes")]
    pub bytes: u64,
    /// The file's MIME type.
    pub mime: Mime,
    /// What the observer says about it (consent, what is visible, where it
    /// was taken from); signed with the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MediaMeta>,
}

/// Whether the people a photo, audio or video shows agreed to it (field
/// reports: recording is barred without the consent of those shown).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// They agreed.
    Given,
    /// They refused (recorded anyway, for evidence; the coordinator decides).
    Refused,
    /// Nobody was asked.
    NotAsked,
    /// Nobody is shown.
    NobodyShown,
}

/// What the observer declares about one media file. Nothing here is
/// published by default; it tells the coordinator how the file may be used.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaMeta {
    /// Whether the people shown agreed.
    pub consent: Consent,
    /// Voters' faces can be recognised.
    pub faces_visible: bool,
    /// Marked ballots can be read (ballot secrecy).
    pub ballots_visible: bool,
    /// The voter list can be read (voters' data).
    pub voter_list_visible: bool,
    /// Where it was taken from (the observation area the commission chair
    /// set), at most 200 bytes.
    #[serde(
        default,
        deserialize_with = "short_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub taken_from: Option<String>,
    /// A free note, at most 1,000 bytes.
    #[serde(
        default,
        deserialize_with = "note_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub note: Option<String>,
    /// The observer kept the photo's location and device tags on purpose
    /// (they are removed from JPEGs otherwise).
    #[serde(default)]
    pub location_kept: bool,
}

/// Longest `taken_from`, in bytes.
pub const MAX_TAKEN_FROM_BYTES: usize = 200;
/// Longest media note, in bytes.
pub const MAX_MEDIA_NOTE_BYTES: usize = 1000;

impl MediaMeta {
    /// Checks the text limits.
    pub fn check(&self) -> Result<(), String> {
        for (name, text, limit) in [
            ("taken_from", &self.taken_from, MAX_TAKEN_FROM_BYTES),
            ("note", &self.note, MAX_MEDIA_NOTE_BYTES),
        ] {
            if let Some(t) = text
                && t.len() > limit
            {
                return Err(format!(
                    "{name} is {} bytes, over the limit of {limit}",
                    t.len()
                ));
            }
        }
        Ok(())
    }
}

fn bounded<'de, D: serde::Deserializer<'de>>(
    d: D,
    limit: usize,
) -> Result<Option<String>, D::Error> {
    let t = Option::<String>::deserialize(d)?;
    if t.as_ref().is_some_and(|t| t.len() > limit) {
        return Err(serde::de::Error::custom(format!(
            "over the limit of {limit} bytes"
        )));
    }
    Ok(t)
}

fn short_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    bounded(d, MAX_TAKEN_FROM_BYTES)
}

fn note_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    bounded(d, MAX_MEDIA_NOTE_BYTES)
}

impl AttachmentRef {
    /// Validates an attachment reference from its text parts.
    pub fn new(sha256: &str, bytes: u64, mime: &str) -> Result<Self, String> {
        let sha256 = sha256
            .parse()
            .map_err(|e| format!("hash {sha256:?}: {e}"))?;
        check_attachment_bytes(bytes)?;
        Ok(Self {
            sha256,
            bytes,
            mime: Mime::new(mime)?,
            meta: None,
        })
    }
}

fn check_attachment_bytes(bytes: u64) -> Result<(), String> {
    if bytes == 0 {
        return Err("an attachment cannot be empty".into());
    }
    if bytes > MAX_ATTACHMENT_BYTES {
        return Err(format!(
            "{bytes} bytes is over the limit of {MAX_ATTACHMENT_BYTES}"
        ));
    }
    Ok(())
}

fn attachment_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let b = u64::deserialize(d)?;
    check_attachment_bytes(b).map_err(serde::de::Error::custom)?;
    Ok(b)
}

macro_rules! text_impls {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
    )*};
}
text_impls!(StationId, Kind, Mime);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stations_accept_real_numbering_and_refuse_junk() {
        assert!(StationId::new("KZ-ALA-0042").is_ok());
        assert!(StationId::new("12/345").is_ok());
        assert!(StationId::new("Участок 7").is_ok());
        assert!(StationId::new("").is_err());
        assert!(StationId::new(" 7").is_err());
        assert!(StationId::new("a\nb").is_err());
        assert!(StationId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn names_mimes_and_attachments_validate() {
        assert!(Kind::new("incident").is_ok());
        assert!(Kind::new("Incident").is_err());
        assert!(FormRef::new("opening", 0).is_err());
        assert!(Mime::new("image/jpeg").is_ok());
        assert!(Mime::new("image").is_err());
        assert!(Mime::new("image/JPEG").is_err());
        let h = "a".repeat(64);
        assert!(AttachmentRef::new(&h, 10, "video/mp4").is_ok());
        assert!(AttachmentRef::new("abc", 10, "video/mp4").is_err());
        assert!(AttachmentRef::new(&h, 0, "video/mp4").is_err());
        assert!(AttachmentRef::new(&h, MAX_ATTACHMENT_BYTES + 1, "video/mp4").is_err());
    }

    #[test]
    fn deserialisation_validates_like_construction() {
        assert!(serde_json::from_str::<StationId>("\"\"").is_err());
        assert!(serde_json::from_str::<FormRef>(r#"{"id":"x","version":0}"#).is_err());
        assert!(serde_json::from_str::<FormRef>(r#"{"id":"X","version":1}"#).is_err());
        assert!(
            serde_json::from_str::<AttachmentRef>(r#"{"sha256":"zz","bytes":1,"mime":"a/b"}"#)
                .is_err()
        );
    }
}
