//! Size limits on everything a record carries. The server enforces the same
//! numbers, so a record the phone accepts is never refused for its size.

/// Largest payload (form answers), serialised as compact JSON.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest body, all fields included. Checked before parsing anything.
pub const MAX_BODY_BYTES: usize = 96 * 1024;
/// Most attachments one record may reference.
pub const MAX_ATTACHMENTS: usize = 32;
/// Largest attachment a record may reference (2 GiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Longest station id, form id or kind, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest MIME type, in bytes.
pub const MAX_MIME_BYTES: usize = 127;
/// Highest seq a record may carry: 2^53, the largest integer every JSON
/// reader holds exactly, and far beyond any phone's lifetime of records.
/// Beyond it a seq would be stored or summed wrongly somewhere.
pub const MAX_SEQ: u64 = 1 << 53;
