//! Evidence media on the coordinator: content-addressed files, received
//! resumably and checked against their SHA-256 before they count.
//!
//! `MEDIA_DIR/partial/<sha256>.<device>` grows as bytes arrive from that
//! device (appended as each piece of a request body arrives, so a cut
//! connection keeps everything that reached the server); its length is how
//! much the server holds of that device's upload. When it reaches the size
//! the device's own signed record declared, the file is hashed: a match
//! moves it to `MEDIA_DIR/<first two hex digits>/<sha256>` (stored once,
//! whoever sent it), a mismatch deletes it. One partial file per device
//! means no device can write into, stall or poison another's upload.

pub mod objects;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use observer_core::identity::DeviceId;
use observer_core::record::Sha256Digest;
use serde::Serialize;

/// Largest piece of media one request may carry.
pub const MAX_PUT_BYTES: usize = 8 * 1024 * 1024;

/// Where evidence media are kept: a directory (the embedded default; with
/// several nodes, one they all mount), or object storage.
pub enum Media {
    Files(Arc<MediaFiles>),
    Objects(objects::ObjectMedia),
}

/// A media file's bytes as they are read, for the workspace to show.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// Bytes read from a media file at a time when it is shown.
const READ_PIECE: usize = 64 * 1024;

impl Media {
    /// A complete file's size and bytes as they stream (never a partial
    /// upload); `None` when it is not held whole.
    pub async fn read_complete(
        &self,
        sha256: &Sha256Digest,
    ) -> std::io::Result<Option<(u64, ByteStream)>> {
        match self {
            Media::Files(files) => {
                let file = match tokio::fs::File::open(files.path(sha256)).await {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                let size = file.metadata().await?.len();
                let stream = futures_util::stream::try_unfold(file, |mut file| async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut piece = vec![0u8; READ_PIECE];
                    let n = file.read(&mut piece).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    piece.truncate(n);
                    Ok(Some((bytes::Bytes::from(piece), file)))
                });
                Ok(Some((size, Box::pin(stream))))
            }
            Media::Objects(objects) => objects
                .read_complete(sha256)
                .await
                .map_err(std::io::Error::other),
        }
    }
}

/// What the server holds of one media file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MediaState {
    /// The size the referencing record declared.
    pub bytes: u64,
    /// Bytes held so far (all of them once complete).
    pub received: u64,
    /// Whether all bytes arrived and their SHA-256 matched.
    pub complete: bool,
}

type WriterKey = (DeviceId, Sha256Digest);
type WriterLocks = Mutex<HashMap<WriterKey, Arc<tokio::sync::Mutex<()>>>>;

/// The media directory, with one lock per upload being received (an
/// entry lives only while a request for it does).
pub struct MediaFiles {
    dir: PathBuf,
    locks: Arc<WriterLocks>,
}

/// The right to wait for, then hold, one upload's lock; its map entry goes
/// when the last request for that upload ends.
pub struct Writer {
    key: WriterKey,
    lock: Arc<tokio::sync::Mutex<()>>,
    locks: Arc<WriterLocks>,
}

impl Writer {
    /// Waits for the upload's lock.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

/// How a finished file checked out.
pub enum Finished {
    /// The hash matched; the file is stored.
    Stored,
    /// The hash did not match; the partial file was deleted.
    Mismatch(Sha256Digest),
}

impl MediaFiles {
    /// Media under `dir` (created if missing).
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("partial"))?;
        Ok(Self {
            dir,
            locks: Arc::default(),
        })
    }

    /// The lock that serialises one device's writes to one file.
    pub fn writer(&self, device: &DeviceId, sha256: &Sha256Digest) -> Writer {
        let key = (device.clone(), *sha256);
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        Writer {
            key,
            lock,
            locks: self.locks.clone(),
        }
    }

    /// Uploads with a lock entry now (none once their requests end).
    pub fn writers(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Where a complete file lives.
    pub fn path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(relative_path(sha256))
    }

    /// Where `device`'s upload of a file grows.
    pub fn partial(&self, device: &DeviceId, sha256: &Sha256Digest) -> PathBuf {
        self.dir
            .join("partial")
            .join(format!("{sha256}.{}", device.as_str()))
    }

    /// Bytes held of `device`'s upload of `sha256`, given the size its
    /// record declared.
    pub fn state(&self, device: &DeviceId, sha256: &Sha256Digest, bytes: u64) -> MediaState {
        if self.path(sha256).exists() {
            return MediaState {
                bytes,
                received: bytes,
                complete: true,
            };
        }
        let received = std::fs::metadata(self.partial(device, sha256)).map_or(0, |m| m.len());
        MediaState {
            bytes,
            received,
            complete: false,
        }
    }

    /// Hashes `device`'s partial file once all bytes are there: stores it,
    /// or deletes it on a mismatch.
    pub fn finish(&self, device: &DeviceId, sha256: &Sha256Digest) -> std::io::Result<Finished> {
        let partial = self.partial(device, sha256);
        let found = hash_file(&partial)?;
        if found != *sha256 {
            std::fs::remove_file(&partial)?;
            return Ok(Finished::Mismatch(found));
        }
        let dest = self.path(sha256);
        let parent = dest.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        std::fs::rename(&partial, &dest)?;
        std::fs::File::open(parent)?.sync_all()?;
        Ok(Finished::Stored)
    }

    /// Re-hashes every stored file: how many were checked, and the ones
    /// whose bytes no longer match their name (altered on the server's disk).
    pub fn verify_all(&self) -> std::io::Result<(u64, Vec<(Sha256Digest, Sha256Digest)>)> {
        let mut bad = Vec::new();
        let mut count = 0;
        for shard in std::fs::read_dir(&self.dir)? {
            let shard = shard?.path();
            if !shard.is_dir() || shard.file_name().is_some_and(|n| n == "partial") {
                continue;
            }
            for f in std::fs::read_dir(&shard)? {
                let path = f?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Ok(expected) = name.parse::<Sha256Digest>() else {
                    continue;
                };
                count += 1;
                let found = hash_file(&path)?;
                if found != expected {
                    bad.push((expected, found));
                }
            }
        }
        Ok((count, bad))
    }
}

/// SHA-256 of a file, read in 1 MiB pieces.
pub fn hash_file(path: &Path) -> std::io::Result<Sha256Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(Sha256Digest::from_bytes(
        ctx.finish().as_ref().try_into().expect("32 bytes"),
    ))
}

/// Where a complete file lives under the media directory:
/// `<first two hex digits>/<sha256>`.
pub fn relative_path(sha256: &Sha256Digest) -> PathBuf {
    let hex = sha256.to_string();
    PathBuf::from(&hex[..2]).join(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock map holds an entry only while a request for that upload
    /// lives (a flood of requests once grew it for good).
    #[tokio::test]
    async fn a_writers_entry_lives_only_as_long_as_its_requests() {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::new(dir.path().to_path_buf()).unwrap();
        let device = DeviceId::try_from("0".repeat(32)).unwrap();
        let sha = Sha256Digest::of(b"clip");
        let first = files.writer(&device, &sha);
        let second = files.writer(&device, &sha);
        assert_eq!(files.writers(), 1, "one entry per upload");
        let held = first.lock().await;
        assert!(second.lock.try_lock().is_err(), "one writer at a time");
        drop(held);
        drop(first);
        assert_eq!(files.writers(), 1, "still wanted by the second request");
        drop(second);
        assert_eq!(files.writers(), 0, "gone with its last request");
        for i in 0..1000u32 {
            drop(files.writer(&device, &Sha256Digest::of(&i.to_le_bytes())));
        }
        assert_eq!(files.writers(), 0);
    }
}
