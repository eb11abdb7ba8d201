//! The compact binary form of a signed record or heartbeat, from which the
//! exact signed bytes are rebuilt.
//!
//! A record body is JSON serialised once from [`Body`]; serialising the same
//! `Body` again gives the same bytes (struct fields in declaration order,
//! payload keys sorted, numbers in serde_json's one textual form). So the
//! SMS carries the body's *values*, packed, and the receiver rebuilds the
//! `Body` and serialises it: the bytes the device signed, checked by the
//! same signature, with the same id. Nothing about what is signed changes.
//! Whether a body rebuilds exactly is checked when it is packed, so a body
//! that would not (written by another serialiser) is refused then, never
//! sent to fail at the server. Layout: `docs/protocol.md`, "SMS reports".

use serde_json::{Map, Value};

use super::SmsError;
use crate::forms::{FieldType, FormDefinition};
use crate::identity::{DeviceId, SIGNATURE_LEN};
use crate::protocol::{Heartbeat, Signed};
use crate::record::{
    AttachmentRef, Body, Clock, Envelope, FormRef, Kind, RecordId, Sha256Digest, StationId,
};

/// First byte: a record.
pub(super) const TYPE_RECORD: u8 = 1;
/// First byte: a heartbeat.
pub(super) const TYPE_HEARTBEAT: u8 = 2;
/// First byte: the coordinator's receipt ([`super::receipt`]).
pub(super) const TYPE_RECEIPT: u8 = 3;

// Record flags (second byte).
const HAS_ORG: u8 = 1;
const HAS_PREV: u8 = 1 << 1;
const HAS_OFFSET: u8 = 1 << 2;
const HAS_AFTER: u8 = 1 << 3;
const KIND_IS_FORM: u8 = 1 << 4;
const HAS_SUPERSEDES: u8 = 1 << 5;
const PAYLOAD_PACKED: u8 = 1 << 6;
const HAS_ATTACHMENTS: u8 = 1 << 7;

/// Largest value of the 6-byte times.
pub(super) const MAX_U48: u64 = (1 << 48) - 1;

/// What a packed message rebuilds into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unpacked {
    /// A signed record.
    Record(Envelope),
    /// A signed heartbeat.
    Heartbeat(Signed),
}

/// How the receiver finds what the bytes leave out: the organisation it
/// serves (records carry it only as a flag) and the form definitions the
/// packed answers follow.
pub trait Context {
    /// The organisation records name when their `org` flag is set.
    fn org(&self) -> Option<&str>;
    /// The definition of form `id` version `version`, if known here.
    fn form(&self, id: &str, version: u32) -> Option<FormDefinition>;
}

pub(super) fn unpackable(why: impl Into<String>) -> SmsError {
    SmsError::NotPackable(why.into())
}

/// Packs a signed record: the body's values, the answers by `form` where
/// every answer has a compact form (otherwise as JSON text), and the
/// signature. Checks that the result rebuilds the same bytes.
pub fn pack_record(
    env: &Envelope,
    ctx: &dyn Context,
    form: Option<&FormDefinition>,
) -> Result<Vec<u8>, SmsError> {
    let body: Body = serde_json::from_slice(&env.body)
        .map_err(|e| unpackable(format!("not a record body: {e}")))?;
    let mut out = vec![TYPE_RECORD, 0];
    let mut flags = 0u8;
    match (&body.org, ctx.org()) {
        (None, _) => {}
        (Some(o), Some(ours)) if o == ours => flags |= HAS_ORG,
        (Some(_), _) => return Err(unpackable("signed for another organisation")),
    }
    out.extend_from_slice(&hex16(&body.device)?);
    let seq = u32::try_from(body.seq).map_err(|_| unpackable("seq over 2^32"))?;
    out.extend_from_slice(&seq.to_be_bytes());
    if let Some(prev) = &body.prev {
        flags |= HAS_PREV;
        out.extend_from_slice(prev.as_bytes());
    }
    let at = u64::try_from(body.captured_at.timestamp_millis())
        .ok()
        .filter(|t| *t <= MAX_U48)
        .ok_or_else(|| unpackable("capture time out of range"))?;
    out.extend_from_slice(&at.to_be_bytes()[2..]);
    if let Some(o) = body.clock.offset_ms {
        flags |= HAS_OFFSET;
        let o = i32::try_from(o).map_err(|_| unpackable("clock offset over 24 days"))?;
        out.extend_from_slice(&o.to_be_bytes());
    }
    if let Some(after) = &body.clock.after {
        flags |= HAS_AFTER;
        out.extend_from_slice(after.as_bytes());
    }
    short_text(&mut out, body.station.as_str())?;
    short_text(&mut out, &body.form.id)?;
    let version = u16::try_from(body.form.version).map_err(|_| unpackable("form version"))?;
    out.extend_from_slice(&version.to_be_bytes());
    if body.kind.as_str() == body.form.id {
        flags |= KIND_IS_FORM;
    } else {
        short_text(&mut out, body.kind.as_str())?;
    }
    match form.and_then(|f| packed_answers(f, &body.payload)) {
        Some(packed) => {
            flags |= PAYLOAD_PACKED;
            out.extend_from_slice(&packed);
        }
        None => long_text(
            &mut out,
            &serde_json::to_vec(&body.payload).expect("serialises"),
        )?,
    }
    if !body.attachments.is_empty() {
        flags |= HAS_ATTACHMENTS;
        long_text(
            &mut out,
            &serde_json::to_vec(&body.attachments).expect("serialises"),
        )?;
    }
    if let Some(s) = &body.supersedes {
        flags |= HAS_SUPERSEDES;
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&env.sig);
    out[1] = flags;
    // The promise the receiver relies on: these bytes rebuild the body.
    match unpack(&out, &FormsOf(ctx, form)) {
        Ok(Unpacked::Record(back)) if back == *env => Ok(out),
        _ => Err(unpackable(
            "the body does not rebuild byte for byte (written by another serialiser)",
        )),
    }
}

/// Packs a signed heartbeat.
pub fn pack_heartbeat(hb: &Signed) -> Result<Vec<u8>, SmsError> {
    let h: Heartbeat = serde_json::from_slice(&hb.body)
        .map_err(|e| unpackable(format!("not a heartbeat: {e}")))?;
    let sig: [u8; SIGNATURE_LEN] = hb
        .sig
        .as_slice()
        .try_into()
        .map_err(|_| unpackable("not a signature"))?;
    let mut out = vec![TYPE_HEARTBEAT, u8::from(h.head.is_some())];
    out.extend_from_slice(&hex16(&h.device)?);
    let seq = u32::try_from(h.seq).map_err(|_| unpackable("seq over 2^32"))?;
    out.extend_from_slice(&seq.to_be_bytes());
    if let Some(head) = &h.head {
        out.extend_from_slice(head.as_bytes());
    }
    let at = u64::try_from(h.at_ms)
        .ok()
        .filter(|t| *t <= MAX_U48)
        .ok_or_else(|| unpackable("heartbeat time out of range"))?;
    out.extend_from_slice(&at.to_be_bytes()[2..]);
    out.extend_from_slice(&sig);
    match unpack(&out, &NoContext) {
        Ok(Unpacked::Heartbeat(back)) if back == *hb => Ok(out),
        _ => Err(unpackable("the heartbeat does not rebuild byte for byte")),
    }
}

/// Rebuilds the signed record or heartbeat. Nothing is verified here:
/// the caller verifies the signature as for any record.
pub fn unpack(bytes: &[u8], ctx: &dyn Context) -> Result<Unpacked, SmsError> {
    let mut r = Reader { rest: bytes };
    match r.u8()? {
        TYPE_RECORD => unpack_record(&mut r, ctx).map(Unpacked::Record),
        TYPE_HEARTBEAT => unpack_heartbeat(&mut r).map(Unpacked::Heartbeat),
        TYPE_RECEIPT => Err(SmsError::Malformed(
            "a coordinator's receipt, not a report".into(),
        )),
        t => Err(SmsError::Malformed(format!("unknown message type {t}"))),
    }
}

fn unpack_record(r: &mut Reader<'_>, ctx: &dyn Context) -> Result<Envelope, SmsError> {
    let flags = r.u8()?;
    let org = if flags & HAS_ORG != 0 {
        Some(
            ctx.org()
                .ok_or_else(|| SmsError::Malformed("names an organisation, none known".into()))?
                .to_string(),
        )
    } else {
        None
    };
    let device = device(r.array::<16>()?)?;
    let seq = u64::from(u32::from_be_bytes(r.array()?));
    let prev = (flags & HAS_PREV != 0)
        .then(|| r.array().map(RecordId::from_bytes))
        .transpose()?;
    let captured_at = chrono::DateTime::from_timestamp_millis(u48(r)? as i64)
        .ok_or_else(|| SmsError::Malformed("capture time".into()))?;
    let offset_ms = (flags & HAS_OFFSET != 0)
        .then(|| r.array().map(|b| i64::from(i32::from_be_bytes(b))))
        .transpose()?;
    let after = (flags & HAS_AFTER != 0)
        .then(|| r.array().map(Sha256Digest::from_bytes))
        .transpose()?;
    let malformed = |e: String| SmsError::Malformed(e);
    let station = StationId::new(r.short_text()?).map_err(malformed)?;
    let form_id = r.short_text()?;
    let version = u32::from(u16::from_be_bytes(r.array()?));
    let kind = if flags & KIND_IS_FORM != 0 {
        form_id.clone()
    } else {
        r.short_text()?
    };
    let payload = if flags & PAYLOAD_PACKED != 0 {
        let def = ctx
            .form(&form_id, version)
            .ok_or_else(|| SmsError::UnknownForm {
                id: form_id.clone(),
                version,
            })?;
        unpack_answers(&def, r)?
    } else {
        serde_json::from_slice(r.long_text()?)
            .map_err(|e| SmsError::Malformed(format!("answers: {e}")))?
    };
    let attachments: Vec<AttachmentRef> = if flags & HAS_ATTACHMENTS != 0 {
        serde_json::from_slice(r.long_text()?)
            .map_err(|e| SmsError::Malformed(format!("attachments: {e}")))?
    } else {
        Vec::new()
    };
    let supersedes = (flags & HAS_SUPERSEDES != 0)
        .then(|| r.array().map(RecordId::from_bytes))
        .transpose()?;
    let sig = r.array::<SIGNATURE_LEN>()?;
    r.end()?;
    let body = Body {
        v: crate::record::BODY_VERSION,
        org,
        device,
        seq,
        prev,
        captured_at,
        clock: Clock { offset_ms, after },
        station,
        form: FormRef::new(form_id, version).map_err(malformed)?,
        kind: Kind::new(kind).map_err(malformed)?,
        payload,
        attachments,
        supersedes,
    };
    Ok(Envelope {
        body: serde_json::to_vec(&body).expect("a Body always serialises"),
        sig,
    })
}

fn unpack_heartbeat(r: &mut Reader<'_>) -> Result<Signed, SmsError> {
    let flags = r.u8()?;
    let device = device(r.array::<16>()?)?;
    let seq = u64::from(u32::from_be_bytes(r.array()?));
    let head = (flags & 1 != 0)
        .then(|| r.array().map(RecordId::from_bytes))
        .transpose()?;
    let at_ms = u48(r)? as i64;
    let sig = r.array::<SIGNATURE_LEN>()?.to_vec();
    r.end()?;
    let hb = Heartbeat {
        device,
        seq,
        head,
        at_ms,
    };
    Ok(Signed {
        body: serde_json::to_vec(&hb).expect("a heartbeat serialises"),
        sig,
    })
}

/// The answers packed by the form: a bitmap of which fields (in the form's
/// order) are answered, then each answer by its field's type. `None` when
/// an answer has no compact form (a key the form lacks, a type or value
/// packed only as JSON): the caller sends the answers as JSON instead.
fn packed_answers(form: &FormDefinition, payload: &Map<String, Value>) -> Option<Vec<u8>> {
    if payload.keys().any(|k| form.field(k).is_none()) {
        return None;
    }
    let mut bitmap = vec![0u8; form.fields.len().div_ceil(8)];
    let mut values = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let Some(v) = payload.get(&field.id) else {
            continue;
        };
        bitmap[i / 8] |= 1 << (i % 8);
        match (&field.kind, v) {
            (FieldType::YesNo | FieldType::Acknowledge, Value::Bool(b)) => {
                values.push(u8::from(*b))
            }
            (FieldType::Integer { .. }, Value::Number(n)) => {
                let n = i32::try_from(n.as_i64()?).ok()?;
                values.extend_from_slice(&n.to_be_bytes());
            }
            (FieldType::SingleChoice { options }, Value::String(s)) => {
                values.push(u8::try_from(options.iter().position(|o| &o.id == s)?).ok()?);
            }
            (FieldType::Time, Value::String(s)) => {
                values.extend_from_slice(&minutes(s)?.to_be_bytes());
            }
            (FieldType::Text { .. }, Value::String(s)) => values.extend_from_slice(&text(s)?),
            _ => return None,
        }
    }
    bitmap.extend_from_slice(&values);
    Some(bitmap)
}

fn unpack_answers(
    form: &FormDefinition,
    r: &mut Reader<'_>,
) -> Result<Map<String, Value>, SmsError> {
    let bitmap = r.take(form.fields.len().div_ceil(8))?.to_vec();
    let mut payload = Map::new();
    for (i, field) in form.fields.iter().enumerate() {
        if bitmap[i / 8] & (1 << (i % 8)) == 0 {
            continue;
        }
        let bad = |what: &str| SmsError::Malformed(format!("answer {}: {what}", field.id));
        let v = match &field.kind {
            FieldType::YesNo | FieldType::Acknowledge => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(bad("not yes or no")),
            },
            FieldType::Integer { .. } => Value::from(i32::from_be_bytes(r.array()?)),
            FieldType::SingleChoice { options } => Value::String(
                options
                    .get(usize::from(r.u8()?))
                    .ok_or_else(|| bad("no such option"))?
                    .id
                    .clone(),
            ),
            FieldType::Time => {
                let m = u16::from_be_bytes(r.array()?);
                if m >= 24 * 60 {
                    return Err(bad("not a time of day"));
                }
                Value::String(format!("{:02}:{:02}", m / 60, m % 60))
            }
            FieldType::Text { .. } => Value::String(untext(r).ok_or_else(|| bad("not text"))?),
            _ => return Err(bad("a type packed only as JSON")),
        };
        payload.insert(field.id.clone(), v);
    }
    Ok(payload)
}

/// The characters after ASCII in a text answer's one-byte form, in byte
/// order from 0x80: Russian and Kazakh Cyrillic and the punctuation they
/// use. Observers write in these languages, and Cyrillic in UTF-8 takes two
/// bytes a letter: this halves an answer, and so the segments it needs.
pub const TEXT_TABLE: &str =
    "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюяЁёӘәҒғҚқҢңӨөҰұҮүҺһІі«»—–№…";

/// A text answer: a length byte (high bit set for the one-byte table form,
/// otherwise UTF-8) and the bytes. Answers over 127 bytes in either form
/// go as JSON.
fn text(s: &str) -> Option<Vec<u8>> {
    let table: Option<Vec<u8>> = s
        .chars()
        .map(|c| match c {
            c if c.is_ascii() => Some(c as u8),
            c => TEXT_TABLE
                .chars()
                .position(|t| t == c)
                .map(|i| 0x80 + i as u8),
        })
        .collect();
    let (mode, bytes) = match table {
        Some(b) => (0x80, b),
        None => (0, s.as_bytes().to_vec()),
    };
    let len = u8::try_from(bytes.len()).ok().filter(|n| *n < 0x80)?;
    let mut out = vec![mode | len];
    out.extend_from_slice(&bytes);
    Some(out)
}

/// Reads what [`text`] wrote.
fn untext(r: &mut Reader<'_>) -> Option<String> {
    let head = r.u8().ok()?;
    let bytes = r.take(usize::from(head & 0x7f)).ok()?;
    if head & 0x80 == 0 {
        return String::from_utf8(bytes.to_vec()).ok();
    }
    bytes
        .iter()
        .map(|b| match b {
            0..=0x7f => Some(*b as char),
            b => TEXT_TABLE.chars().nth(usize::from(b - 0x80)),
        })
        .collect()
}

/// `HH:MM` as minutes since midnight, if written exactly so.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && format!("{h:02}:{m:02}") == s).then_some(h * 60 + m)
}

fn hex16(d: &DeviceId) -> Result<[u8; 16], SmsError> {
    let mut b = [0u8; 16];
    hex::decode_to_slice(d.as_str(), &mut b).map_err(|_| unpackable("device id"))?;
    Ok(b)
}

fn device(b: [u8; 16]) -> Result<DeviceId, SmsError> {
    DeviceId::try_from(hex::encode(b)).map_err(SmsError::Malformed)
}

pub(super) fn u48(r: &mut Reader<'_>) -> Result<u64, SmsError> {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&r.array::<6>()?);
    Ok(u64::from_be_bytes(b))
}

fn short_text(out: &mut Vec<u8>, s: &str) -> Result<(), SmsError> {
    out.push(u8::try_from(s.len()).map_err(|_| unpackable("a name over 255 bytes"))?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn long_text(out: &mut Vec<u8>, b: &[u8]) -> Result<(), SmsError> {
    let len = u16::try_from(b.len()).map_err(|_| unpackable("over 64 KiB of answers"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// Reads fixed-size pieces; running out is a malformed message.
pub(super) struct Reader<'a> {
    pub(super) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], SmsError> {
        if self.rest.len() < n {
            return Err(SmsError::Malformed("the message ends early".into()));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], SmsError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    pub(super) fn u8(&mut self) -> Result<u8, SmsError> {
        Ok(self.take(1)?[0])
    }

    fn short_text(&mut self) -> Result<String, SmsError> {
        let len = usize::from(self.u8()?);
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| SmsError::Malformed("a name is not UTF-8".into()))
    }

    fn long_text(&mut self) -> Result<&'a [u8], SmsError> {
        let len = usize::from(u16::from_be_bytes(self.array()?));
        self.take(len)
    }

    pub(super) fn end(&self) -> Result<(), SmsError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SmsError::Malformed(format!(
                "{} bytes after the signature",
                self.rest.len()
            )))
        }
    }
}

/// The packer's check: the same context, with the form it packed by.
struct FormsOf<'a>(&'a dyn Context, Option<&'a FormDefinition>);

impl Context for FormsOf<'_> {
    fn org(&self) -> Option<&str> {
        self.0.org()
    }
    fn form(&self, id: &str, version: u32) -> Option<FormDefinition> {
        self.1
            .filter(|f| f.id == id && f.version == version)
            .cloned()
            .or_else(|| self.0.form(id, version))
    }
}

/// Heartbeats need nothing from the receiver.
struct NoContext;

impl Context for NoContext {
    fn org(&self) -> Option<&str> {
        None
    }
    fn form(&self, _: &str, _: u32) -> Option<FormDefinition> {
        None
    }
}
