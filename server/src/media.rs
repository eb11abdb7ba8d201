//! Evidence media on the coordinator: content-addressed files, received
//! resumably and checked against their SHA-256 before they count.
//!
//! `MEDIA_DIR/partial/<sha256>` grows as bytes arrive (appended as each
//! piece of a request body arrives, so a cut connection keeps everything
//! that reached the server); its length is how much the server holds. When
//! it reaches the size a signed record declared, the file is hashed: a match
//! moves it to `MEDIA_DIR/<first two hex digits>/<sha256>` (stored once,
//! whoever sent it), a mismatch deletes it. Nobody needs a key to upload:
//! the server only accepts bytes for a hash that a record it holds
//! references, and only bytes that hash to it count.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use observer_core::record::Sha256Digest;
use serde::Serialize;

/// Largest piece of media one request may carry.
pub const MAX_PUT_BYTES: usize = 8 * 1024 * 1024;

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

/// The media directory, with one lock per file being received.
pub struct MediaFiles {
    dir: PathBuf,
    locks: Mutex<HashMap<Sha256Digest, Arc<tokio::sync::Mutex<()>>>>,
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
            locks: Mutex::default(),
        })
    }

    /// The lock that serialises writes to one file.
    pub fn lock(&self, sha256: &Sha256Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(*sha256)
            .or_default()
            .clone()
    }

    /// Where a complete file lives.
    pub fn path(&self, sha256: &Sha256Digest) -> PathBuf {
        let hex = sha256.to_string();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Where a file being received grows.
    pub fn partial(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join("partial").join(sha256.to_string())
    }

    /// Bytes held of `sha256`, given the size its record declared.
    pub fn state(&self, sha256: &Sha256Digest, bytes: u64) -> MediaState {
        if self.path(sha256).exists() {
            return MediaState {
                bytes,
                received: bytes,
                complete: true,
            };
        }
        let received = std::fs::metadata(self.partial(sha256)).map_or(0, |m| m.len());
        MediaState {
            bytes,
            received,
            complete: false,
        }
    }

    /// Hashes the partial file once all bytes are there: stores it, or
    /// deletes it on a mismatch.
    pub fn finish(&self, sha256: &Sha256Digest) -> std::io::Result<Finished> {
        let partial = self.partial(sha256);
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
