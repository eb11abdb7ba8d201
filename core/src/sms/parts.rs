//! SMS parts: a packed message as text in the GSM 7-bit alphabet, cut into
//! parts of one segment each, and put back together in any order.
//!
//! Each part is a single 160-character segment that stands alone (no
//! reliance on the network's concatenation headers, which gateways strip
//! or reorder): `O1`, the message id (3 characters: the first bytes of the
//! message's SHA-256), the part's index and the number of parts (1 each),
//! a check character over the part, then up to 152 characters of the
//! message in base 111. The alphabet is the GSM 03.38 basic set without
//! the characters gateways and handsets treat specially (`@`, line feed,
//! carriage return, escape, space, `Ç`, the Greek capitals), so no part
//! ever falls back to UCS-2 (70 characters a segment).

use super::SmsError;

/// The 111 characters of the base-111 text, in value order.
pub const ALPHABET: &str = "!\"#$%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz£¥èéùìòØøÅåÆæßÉ¤¡ÄÖÑܧ¿äöñüà";

/// What every part starts with: Observer, SMS format 1.
pub const PART_MAGIC: &str = "O1";

/// Characters in one segment of GSM 7-bit text.
pub const SEGMENT_CHARS: usize = 160;

/// Characters of the part header: magic, id, index, count, check.
const HEADER_CHARS: usize = 2 + 3 + 1 + 1 + 1;

/// Message characters in one part.
pub const DATA_CHARS: usize = SEGMENT_CHARS - HEADER_CHARS;

/// Most parts in one message: a record that needs more goes by the
/// internet or a relay bundle.
pub const MAX_PARTS: usize = 16;

fn alphabet() -> &'static [char] {
    static CHARS: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    CHARS.get_or_init(|| ALPHABET.chars().collect())
}

fn digit(c: char) -> Option<usize> {
    alphabet().iter().position(|a| *a == c)
}

/// One received part, its check character verified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// The message it belongs to (3 characters).
    pub message: String,
    /// Its position, from 0.
    pub index: usize,
    /// How many parts the message has.
    pub total: usize,
    /// Its share of the message text.
    pub data: String,
}

/// The message id: the SHA-256 of the packed bytes, as 3 characters.
fn message_id(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let n = alphabet().len() as u32;
    let mut v = u32::from_be_bytes(d.as_ref()[..4].try_into().expect("4 bytes")) % (n * n * n);
    let mut id = String::new();
    for _ in 0..3 {
        id.push(alphabet()[(v % n) as usize]);
        v /= n;
    }
    id
}

/// The check character over everything else in the part.
fn check(head_and_data: &str) -> char {
    let d = ring::digest::digest(&ring::digest::SHA256, head_and_data.as_bytes());
    let v = u16::from_be_bytes([d.as_ref()[0], d.as_ref()[1]]) as usize;
    alphabet()[v % alphabet().len()]
}

/// Cuts a packed message into parts.
pub fn split(bytes: &[u8]) -> Result<Vec<String>, SmsError> {
    let text: Vec<char> = base_x::encode(ALPHABET, bytes).chars().collect();
    let chunks: Vec<&[char]> = text.chunks(DATA_CHARS).collect();
    if chunks.len() > MAX_PARTS {
        return Err(SmsError::TooLong {
            parts: chunks.len(),
        });
    }
    let id = message_id(bytes);
    let total = alphabet()[chunks.len()];
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut part = format!("{PART_MAGIC}{id}{}{total}", alphabet()[i]);
            let data: String = chunk.iter().collect();
            let c = check(&format!("{part}{data}"));
            part.push(c);
            part.push_str(&data);
            part
        })
        .collect())
}

/// Reads one received SMS as a part. Whitespace a gateway added at either
/// end is ignored; anything else out of place refuses it.
pub fn parse(text: &str) -> Result<Part, SmsError> {
    let text = text.trim();
    let chars: Vec<char> = text.chars().collect();
    if !text.starts_with(PART_MAGIC) || chars.len() <= HEADER_CHARS {
        return Err(SmsError::NotAPart);
    }
    if chars.len() > SEGMENT_CHARS {
        return Err(SmsError::Malformed(format!(
            "{} characters, over one segment",
            chars.len()
        )));
    }
    if let Some(c) = chars[2..].iter().find(|c| digit(**c).is_none()) {
        return Err(SmsError::Malformed(format!(
            "the character {c:?} is not in the alphabet"
        )));
    }
    let index = digit(chars[5]).expect("checked");
    let total = digit(chars[6]).expect("checked");
    if total == 0 || total > MAX_PARTS || index >= total {
        return Err(SmsError::Malformed(format!(
            "part {} of {total}",
            index + 1
        )));
    }
    let head: String = chars[..7].iter().collect();
    let data: String = chars[HEADER_CHARS..].iter().collect();
    if check(&format!("{head}{data}")) != chars[7] {
        return Err(SmsError::AlteredPart {
            index: index + 1,
            total,
        });
    }
    Ok(Part {
        message: chars[2..5].iter().collect(),
        index,
        total,
        data,
    })
}

/// Puts a message back together from its parts, in any order; a part
/// received twice counts once. Fails naming the parts still missing.
pub fn join(parts: &[Part]) -> Result<Vec<u8>, SmsError> {
    let first = parts.first().ok_or(SmsError::Incomplete {
        missing: Vec::new(),
    })?;
    let mut slots: Vec<Option<&str>> = vec![None; first.total];
    for p in parts {
        if p.message != first.message || p.total != first.total {
            return Err(SmsError::Malformed("parts of different messages".into()));
        }
        match slots[p.index] {
            Some(d) if d != p.data => {
                return Err(SmsError::Malformed(format!(
                    "two different copies of part {}",
                    p.index + 1
                )));
            }
            _ => slots[p.index] = Some(&p.data),
        }
    }
    let missing: Vec<usize> = (0..first.total)
        .filter(|i| slots[*i].is_none())
        .map(|i| i + 1)
        .collect();
    if !missing.is_empty() {
        return Err(SmsError::Incomplete { missing });
    }
    let text: String = slots.into_iter().map(|s| s.expect("complete")).collect();
    let bytes = base_x::decode(ALPHABET, &text)
        .map_err(|_| SmsError::Malformed("not base-111 text".into()))?;
    // The id is the message's hash: a message put together from the
    // wrong parts, or altered past the check characters, is refused here.
    if message_id(&bytes) != first.message {
        return Err(SmsError::Malformed(
            "the parts do not make the message they name".into(),
        ));
    }
    Ok(bytes)
}

/// Whether `text` is GSM 03.38 basic-alphabet text: one segment holds 160
/// such characters (UCS-2 would hold 70).
pub fn is_gsm7(text: &str) -> bool {
    const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑܧ¿abcdefghijklmnopqrstuvwxyzäöñüà";
    text.chars().all(|c| GSM7_BASIC.contains(c))
}
