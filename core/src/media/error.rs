use std::path::PathBuf;

use crate::record::Sha256Digest;
use crate::store::StoreError;

/// Why importing or reading media failed. On any import error nothing was
/// stored: the partial file is removed and no record changes.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file to import cannot be opened or read.
    #[error("cannot read {path}: {source}; check that the file exists and the app may read it")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than a record may reference.
    #[error("the file is {bytes} bytes, over the limit of {limit}; record a shorter clip")]
    TooLarge { bytes: u64, limit: u64 },
    /// A file imported as a JPEG whose metadata cannot be removed because
    /// it is not a well-formed JPEG.
    #[error(
        "{path} is not a well-formed JPEG ({detail}), so its location tags cannot be removed; import it with its tags kept, or as another type"
    )]
    BadJpeg { path: PathBuf, detail: String },
    /// The MIME type is not `type/subtype`.
    #[error("{0:?} is not a MIME type (type/subtype)")]
    BadMime(String),
    /// The disk filled during import.
    #[error("the disk is full; nothing was imported. Free space and import again")]
    DiskFull,
    /// Writing the encrypted copy failed.
    #[error("cannot write the encrypted copy in {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored chunk does not decrypt: altered on disk, or truncated.
    #[error(
        "the stored copy of {sha256} is damaged at byte {offset}: it was altered or truncated on this phone and will not be sent as genuine"
    )]
    Corrupt { sha256: Sha256Digest, offset: u64 },
    /// No media with this hash in the store.
    #[error("no media {0} on this phone")]
    Unknown(Sha256Digest),
    /// The app stopped the import; nothing was stored.
    #[error("the import was stopped; nothing was stored")]
    Cancelled,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MediaError {
    pub(crate) fn write(path: PathBuf, source: std::io::Error) -> Self {
        // ENOSPC (28) and EDQUOT (122) on Linux and Android; iOS reports
        // ENOSPC too.
        if matches!(source.raw_os_error(), Some(28) | Some(122))
            || source.kind() == std::io::ErrorKind::StorageFull
        {
            MediaError::DiskFull
        } else {
            MediaError::Write { path, source }
        }
    }
}

impl From<rusqlite::Error> for MediaError {
    fn from(e: rusqlite::Error) -> Self {
        MediaError::Store(e.into())
    }
}
