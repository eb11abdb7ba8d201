//! Evidence media in the store: import (streamed, hashed, encrypted,
//! stored once), listing, reading back for upload, delivery state.

use std::path::{Path, PathBuf};

use chrono::Utc;
use ring::rand::{SecureRandom as _, SystemRandom};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::wipe::sync_dir;
use super::{Store, StoreError};
use crate::cancel::Cancel;
use crate::media::{
    FILE_ID_LEN, MAX_MEDIA_BYTES, MediaError, MediaReader, MediaWriter, PhotoTags, scrub_jpeg,
};
use crate::record::{Mime, Sha256Digest};

/// The media directory inside the store directory.
pub const MEDIA_DIR: &str = "media";

/// A media file the store holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MediaInfo {
    /// SHA-256 of its bytes: what a record's attachment names.
    pub sha256: Sha256Digest,
    /// Its size.
    pub bytes: u64,
    /// Its MIME type.
    pub mime: String,
    /// Whether the coordinator confirmed it holds all of it, hash checked.
    pub delivered: bool,
}

/// What an import gives back: the reference for a record's attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportedMedia {
    /// SHA-256 of the bytes as stored and uploaded.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub bytes: u64,
    /// MIME type.
    pub mime: String,
    /// False if the same bytes were already stored (kept once).
    pub new: bool,
}

/// A row's encrypted part: `sha256 || size || file id || mime`.
struct Row {
    sha256: Sha256Digest,
    bytes: u64,
    file_id: [u8; FILE_ID_LEN],
    mime: String,
}

fn row_context() -> &'static [u8] {
    b"observer/store/v4\0media"
}

impl Row {
    fn encrypt(&self, store: &Store) -> Result<Vec<u8>, StoreError> {
        let mut plain = self.sha256.as_bytes().to_vec();
        plain.extend_from_slice(&self.bytes.to_be_bytes());
        plain.extend_from_slice(&self.file_id);
        plain.extend_from_slice(self.mime.as_bytes());
        Ok(store.vault.encrypt(row_context(), &plain)?)
    }

    fn open(store: &Store, blob: &[u8]) -> Result<Self, StoreError> {
        let unreadable = || StoreError::Unreadable {
            what: "a media entry".into(),
        };
        let plain = store
            .vault
            .decrypt(row_context(), blob)
            .map_err(|_| unreadable())?;
        let (sha, rest) = plain.split_first_chunk::<32>().ok_or_else(unreadable)?;
        let (bytes, rest) = rest.split_first_chunk::<8>().ok_or_else(unreadable)?;
        let (file_id, mime) = rest
            .split_first_chunk::<FILE_ID_LEN>()
            .ok_or_else(unreadable)?;
        Ok(Self {
            sha256: Sha256Digest::from_bytes(*sha),
            bytes: u64::from_be_bytes(*bytes),
            file_id: *file_id,
            mime: String::from_utf8(mime.to_vec()).map_err(|_| unreadable())?,
        })
    }
}

impl Store {
    fn media_dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(MEDIA_DIR)
    }

    fn media_tag(&self, sha256: &Sha256Digest) -> [u8; 32] {
        let mut v = b"media\0".to_vec();
        v.extend_from_slice(sha256.as_bytes());
        self.vault.tag(&v)
    }

    /// Imports the file at `path` as evidence: read once, in chunks (never
    /// whole in memory; up to 2 GiB), hashed with SHA-256 while read, and
    /// written encrypted into the store's `media/` directory. A JPEG loses
    /// its location and device tags unless `tags` is [`PhotoTags::Keep`];
    /// the hash is of what is stored and uploaded. The app may
    /// delete the original afterwards. The same bytes imported twice are
    /// stored once. `progress` hears `(bytes read, file size)` about once a
    /// MiB and at the end.
    ///
    /// On any error nothing is stored: the partial copy is removed.
    ///
    /// ```
    /// use observer_core::identity::FileKeyStore;
    /// use observer_core::media::PhotoTags;
    /// use observer_core::record::NewRecord;
    /// use observer_core::store::Store;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keys = FileKeyStore::open_or_create(dir.path().join("device.kek"))?;
    /// let store = Store::open(&dir.path().join("data"), &keys)?;
    /// let photo = dir.path().join("IMG_0001.jpg");
    /// std::fs::write(&photo, b"\xff\xd8\xff\xd9")?; // the smallest JPEG
    /// let m = store.import_media(&photo, "image/jpeg", PhotoTags::Remove, None)?;
    /// let record = NewRecord::builder("S1", "incident", 1, "incident")
    ///     .attachment(m.sha256.to_string(), m.bytes, m.mime)
    ///     .build()?;
    /// store.save(record)?;
    /// std::fs::remove_file(&photo)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn import_media(
        &self,
        path: &Path,
        mime: &str,
        tags: PhotoTags,
        progress: Option<&dyn Fn(u64, u64)>,
    ) -> Result<ImportedMedia, MediaError> {
        self.import_media_until(path, mime, tags, progress, &Cancel::default())
    }

    /// [`Store::import_media`], stopped (with [`MediaError::Cancelled`] and
    /// nothing stored) at the next chunk once `cancel` is cancelled.
    pub fn import_media_until(
        &self,
        path: &Path,
        mime: &str,
        tags: PhotoTags,
        progress: Option<&dyn Fn(u64, u64)>,
        cancel: &Cancel,
    ) -> Result<ImportedMedia, MediaError> {
        let mime = Mime::new(mime)
            .map_err(|_| MediaError::BadMime(mime.to_string()))?
            .as_str()
            .to_string();
        let scrub = mime == "image/jpeg" && tags == PhotoTags::Remove;
        let unreadable = |source: std::io::Error| {
            if scrub && source.kind() == std::io::ErrorKind::InvalidData {
                MediaError::BadJpeg {
                    path: path.to_owned(),
                    detail: source.to_string(),
                }
            } else {
                MediaError::Unreadable {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let mut src = std::fs::File::open(path).map_err(unreadable)?;
        let total = src.metadata().map_err(unreadable)?.len();
        if total > MAX_MEDIA_BYTES {
            return Err(MediaError::TooLarge {
                bytes: total,
                limit: MAX_MEDIA_BYTES,
            });
        }
        let dir = self.media_dir();
        std::fs::create_dir_all(&dir).map_err(|e| MediaError::write(dir.clone(), e))?;
        let mut file_id = [0u8; FILE_ID_LEN];
        SystemRandom::new()
            .fill(&mut file_id)
            .map_err(|_| MediaError::Store(StoreError::NoRandomness))?;
        let name = hex::encode(file_id);
        let tmp = dir.join(format!(".import-{name}"));
        let mut reported = 0u64;
        let result = MediaWriter::create(tmp.clone(), &self.vault, file_id).and_then(|w| {
            let mut scrubbed;
            let source: &mut (dyn std::io::Read + Send) = if scrub {
                scrubbed = scrub_jpeg(&mut src);
                &mut scrubbed
            } else {
                &mut src
            };
            w.import(source, &unreadable, &mut |done| {
                if cancel.is_cancelled() {
                    return Err(MediaError::Cancelled);
                }
                if done > MAX_MEDIA_BYTES {
                    return Err(MediaError::TooLarge {
                        bytes: done,
                        limit: MAX_MEDIA_BYTES,
                    });
                }
                // About once a MiB (and at the end): an app's callback may
                // cross a language boundary.
                if let Some(p) = progress
                    && (done - reported >= 1 << 20 || done >= total)
                {
                    reported = done;
                    p(done, total.max(done));
                }
                Ok(())
            })
        });
        let (sha256, bytes) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let tag = self.media_tag(&sha256);
        let conn = self.conn()?;
        let known: bool = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM media WHERE tag = ?1)")?
            .query_row([tag], |r| r.get(0))?;
        if known {
            let _ = std::fs::remove_file(&tmp);
            return Ok(ImportedMedia {
                sha256,
                bytes,
                mime,
                new: false,
            });
        }
        let row = Row {
            sha256,
            bytes,
            file_id,
            mime: mime.clone(),
        };
        let fin = dir.join(&name);
        std::fs::rename(&tmp, &fin).map_err(|e| MediaError::write(fin.clone(), e))?;
        sync_dir(&dir).map_err(|e| MediaError::write(dir.clone(), e))?;
        let inserted = conn
            .prepare_cached(
                "INSERT INTO media (tag, content, bytes, imported_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                tag,
                row.encrypt(self)?,
                bytes as i64,
                Utc::now().timestamp_millis()
            ]);
        if let Err(e) = inserted {
            let _ = std::fs::remove_file(&fin);
            return Err(MediaError::Store(e.into()));
        }
        Ok(ImportedMedia {
            sha256,
            bytes,
            mime,
            new: true,
        })
    }

    /// Every media file held, smallest first (the upload order).
    pub fn media(&self) -> Result<Vec<MediaInfo>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT content, delivered FROM media ORDER BY bytes, tag")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let row = Row::open(self, &r.get::<_, Vec<u8>>(0)?)?;
            out.push(MediaInfo {
                sha256: row.sha256,
                bytes: row.bytes,
                mime: row.mime,
                delivered: r.get(1)?,
            });
        }
        Ok(out)
    }

    /// Reads media `sha256` back, decrypting and authenticating each chunk.
    pub(crate) fn media_reader(
        &self,
        sha256: &Sha256Digest,
    ) -> Result<MediaReader<'_>, MediaError> {
        let blob: Option<Vec<u8>> = self
            .conn()?
            .prepare_cached("SELECT content FROM media WHERE tag = ?1")?
            .query_row([self.media_tag(sha256)], |r| r.get(0))
            .optional()
            .map_err(StoreError::from)?;
        let row = Row::open(self, &blob.ok_or(MediaError::Unknown(*sha256))?)?;
        let path = self.media_dir().join(hex::encode(row.file_id));
        let file = std::fs::File::open(&path).map_err(|_| MediaError::Corrupt {
            sha256: *sha256,
            offset: 0,
        })?;
        MediaReader::open(file, &self.vault, row.sha256, row.bytes)
    }

    /// Reads all of media `sha256` into `out` (for tests and export; uploads
    /// stream instead).
    pub fn read_media(&self, sha256: &Sha256Digest, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let mut r = self.media_reader(sha256)?;
        while r.read_into(out, 1 << 20)? > 0 {}
        Ok(())
    }

    /// Records that the coordinator holds all of `sha256`, hash checked.
    pub fn mark_media_delivered(&self, sha256: &Sha256Digest) -> Result<(), StoreError> {
        self.conn()?
            .prepare_cached("UPDATE media SET delivered = 1 WHERE tag = ?1")?
            .execute([self.media_tag(sha256)])?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
