//! Evidence media on the phone: files encrypted in chunks under the store's
//! data key, read back (and checked) chunk by chunk.
//!
//! A media file is `MAGIC || file id (16 random bytes)` followed by chunks of
//! [`CHUNK`] plaintext bytes (the last one shorter), each `nonce || ct ||
//! tag` sealed with ChaCha20-Poly1305 under the data key, with the file id,
//! the chunk's index and whether it is the last as associated data. So a
//! chunk cannot be altered, moved within the file, moved to another file, or
//! dropped from the end without the read failing at that chunk. The file's
//! name is its random id: neither the name nor the bytes tell which photo or
//! video it is (a readable SHA-256 would confirm possession of a known
//! file). Memory use is one chunk, whatever the file's size.

mod error;
mod file;
mod jpeg;

pub use error::MediaError;
pub(crate) use file::{FILE_ID_LEN, MediaReader, MediaWriter};
#[cfg(test)]
pub(crate) use jpeg::test_photo as jpeg_test_photo;
pub use jpeg::{JpegScrubber, scrub_jpeg};

/// Plaintext bytes per encrypted chunk.
pub const CHUNK: usize = 64 * 1024;

/// What an import does with a JPEG photo's location and device tags (EXIF
/// and XMP): removed unless the observer keeps them on purpose. Either way
/// the hash that is signed is of the bytes stored and uploaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PhotoTags {
    /// Remove them (the default: a location can identify the observer).
    #[default]
    Remove,
    /// Keep the file exactly as it is.
    Keep,
}

/// The largest media file (as for an attachment reference: 2 GiB).
pub const MAX_MEDIA_BYTES: u64 = crate::record::limits::MAX_ATTACHMENT_BYTES;

/// The MIME type an evidence file's extension names (what phones' cameras
/// and recorders write); anything else is opaque bytes.
pub fn mime_for_file(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "heic" => "image/heic",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "3gp" => "video/3gpp",
        "webm" => "video/webm",
        "m4a" | "aac" => "audio/mp4",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}
