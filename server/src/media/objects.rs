//! Evidence media in object storage (S3 or any S3-compatible store),
//! through the `object_store` crate, for several server nodes.
//!
//! Object storage has no append, so an upload is kept as pieces:
//! `PREFIX/partial/<sha256>.<device>/<offset as 16 hex digits>`, one object
//! per request (the bytes that arrived, also from a cut connection). What
//! the store holds of an upload is the run of pieces that follow each other
//! from offset 0. Each piece is written with `PutMode::Create` (S3's
//! `If-None-Match: *`): if two nodes receive the same upload at once, both
//! write at the offset they found and only one succeeds; the other is told
//! to resume from what is held. No lock between nodes is needed. When the
//! pieces reach the declared size they are streamed, in order, through
//! SHA-256 into one multipart upload of `PREFIX/<first two hex>/<sha256>`
//! (the same content address as on a disk); a mismatch aborts it and drops
//! the pieces.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, WriteMultipart};
use observer_core::identity::DeviceId;
use observer_core::record::Sha256Digest;

use super::{Finished, MediaState};

/// Why object storage could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The URL or the credentials in the environment are not usable.
    #[error("the media store {url}: {source}")]
    Config {
        url: String,
        #[source]
        source: object_store::Error,
    },
    /// The store refused or failed a request.
    #[error("the media store: {0}")]
    Store(#[from] object_store::Error),
}

/// What appending one piece did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// The piece is stored.
    Stored,
    /// Another node stored a piece at this offset first: resume from what
    /// is held now.
    Raced,
}

/// Media in an object store under a prefix.
pub struct ObjectMedia {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ObjectMedia {
    /// `s3://BUCKET/PREFIX`, with the endpoint, region and credentials from
    /// the usual `AWS_*` variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP` for a store
    /// on a private network without TLS).
    pub fn open(url: &str) -> Result<Self, ObjectError> {
        let config = |source| ObjectError::Config {
            url: url.to_string(),
            source,
        };
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            config(object_store::Error::Generic {
                store: "S3",
                source: "write it as s3://BUCKET/PREFIX".into(),
            })
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .map_err(config)?;
        Ok(Self::with_store(Arc::new(store), Path::from(prefix)))
    }

    /// Media in `store` under `prefix` (tests give an in-memory store).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix }
    }

    fn complete_path(&self, sha256: &Sha256Digest) -> Path {
        let hex = sha256.to_string();
        self.prefix.child(&hex[..2]).child(hex)
    }

    fn pieces_dir(&self, device: &DeviceId, sha256: &Sha256Digest) -> Path {
        self.prefix
            .child("partial")
            .child(format!("{sha256}.{}", device.as_str()))
    }

    /// The pieces that follow each other from offset 0, in order, and how
    /// many bytes they hold together.
    async fn pieces(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
    ) -> Result<(Vec<Path>, u64), ObjectError> {
        let dir = self.pieces_dir(device, sha256);
        let mut found: Vec<(u64, Path, u64)> = Vec::new();
        let mut listing = self.store.list(Some(&dir));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(offset) = meta
                .location
                .filename()
                .and_then(|n| u64::from_str_radix(n, 16).ok())
            {
                found.push((offset, meta.location, meta.size));
            }
        }
        found.sort_by_key(|(offset, _, _)| *offset);
        let mut held = 0;
        let mut run = Vec::new();
        for (offset, path, size) in found {
            if offset != held {
                break;
            }
            held += size;
            run.push(path);
        }
        Ok((run, held))
    }

    /// Bytes held of `device`'s upload of `sha256`.
    pub async fn state(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
        bytes: u64,
    ) -> Result<MediaState, ObjectError> {
        match self.store.head(&self.complete_path(sha256)).await {
            Ok(_) => {
                return Ok(MediaState {
                    bytes,
                    received: bytes,
                    complete: true,
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (_, received) = self.pieces(device, sha256).await?;
        Ok(MediaState {
            bytes,
            received,
            complete: false,
        })
    }

    /// Stores `piece` as the bytes from `offset` (which the caller checked
    /// is what was held).
    pub async fn append(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
        offset: u64,
        piece: Bytes,
    ) -> Result<Appended, ObjectError> {
        if piece.is_empty() {
            return Ok(Appended::Stored);
        }
        let path = self
            .pieces_dir(device, sha256)
            .child(format!("{offset:016x}"));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from_bytes(piece), opts)
            .await
        {
            Ok(_) => Ok(Appended::Stored),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Appended::Raced),
            Err(e) => Err(e.into()),
        }
    }

    /// A complete object's size and bytes as they stream; `None` when it
    /// is not held whole.
    pub async fn read_complete(
        &self,
        sha256: &Sha256Digest,
    ) -> Result<Option<(u64, super::ByteStream)>, ObjectError> {
        match self.store.get(&self.complete_path(sha256)).await {
            Ok(got) => {
                let size = got.meta.size;
                let stream = got.into_stream().map(|c| c.map_err(std::io::Error::other));
                Ok(Some((size, Box::pin(stream))))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the pieces through SHA-256 into the content-addressed
    /// object; a mismatch aborts it. The pieces go either way.
    pub async fn finish(
        &self,
        device: &DeviceId,
        sha256: &Sha256Digest,
    ) -> Result<Finished, ObjectError> {
        let (pieces, _) = self.pieces(device, sha256).await?;
        let upload = self
            .store
            .put_multipart(&self.complete_path(sha256))
            .await?;
        let mut writer = WriteMultipart::new(upload);
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for piece in &pieces {
            let mut stream = self.store.get(piece).await?.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                ctx.update(&chunk);
                writer.wait_for_capacity(4).await?;
                writer.put(chunk);
            }
        }
        let found = Sha256Digest::from_bytes(ctx.finish().as_ref().try_into().expect("32 bytes"));
        let outcome = if found == *sha256 {
            writer.finish().await?;
            Finished::Stored
        } else {
            writer.abort().await?;
            Finished::Mismatch(found)
        };
        for piece in &pieces {
            match self.store.delete(piece).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(outcome)
    }

    /// Re-hashes every stored object: how many were checked, and those
    /// whose bytes no longer match their name.
    pub async fn verify_all(
        &self,
    ) -> Result<(u64, Vec<(Sha256Digest, Sha256Digest)>), ObjectError> {
        let partial = self.prefix.child("partial");
        let mut listing = self.store.list(Some(&self.prefix));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.location.prefix_matches(&partial) {
                continue;
            }
            if let Some(expected) = meta
                .location
                .filename()
                .and_then(|n| n.parse::<Sha256Digest>().ok())
            {
                names.push((meta.location, expected));
            }
        }
        let mut bad = Vec::new();
        for (path, expected) in &names {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            let mut stream = self.store.get(path).await?.into_stream();
            while let Some(chunk) = stream.next().await {
                ctx.update(&chunk?);
            }
            let found =
                Sha256Digest::from_bytes(ctx.finish().as_ref().try_into().expect("32 bytes"));
            if found != *expected {
                bad.push((*expected, found));
            }
        }
        Ok((names.len() as u64, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> ObjectMedia {
        ObjectMedia::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("evidence"),
        )
    }

    #[tokio::test]
    async fn pieces_resume_race_and_finish_into_the_content_address() {
        let m = media();
        let device = DeviceId::try_from("0".repeat(32)).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sha = Sha256Digest::of(&data);
        let len = data.len() as u64;
        assert_eq!(m.state(&device, &sha, len).await.unwrap().received, 0);
        let first = Bytes::copy_from_slice(&data[..30_000]);
        assert_eq!(
            m.append(&device, &sha, 0, first.clone()).await.unwrap(),
            Appended::Stored
        );
        // A second node that found the same offset loses the race.
        assert_eq!(
            m.append(&device, &sha, 0, first).await.unwrap(),
            Appended::Raced
        );
        assert_eq!(m.state(&device, &sha, len).await.unwrap().received, 30_000);
        m.append(
            &device,
            &sha,
            30_000,
            Bytes::copy_from_slice(&data[30_000..]),
        )
        .await
        .unwrap();
        assert_eq!(m.state(&device, &sha, len).await.unwrap().received, len);
        assert!(matches!(
            m.finish(&device, &sha).await.unwrap(),
            Finished::Stored
        ));
        assert!(m.state(&device, &sha, len).await.unwrap().complete);
        let stored = m.store.get(&m.complete_path(&sha)).await.unwrap();
        assert_eq!(stored.bytes().await.unwrap().as_ref(), data.as_slice());
        assert_eq!(m.verify_all().await.unwrap(), (1, vec![]));
        assert_eq!(m.pieces(&device, &sha).await.unwrap().1, 0, "pieces gone");
    }

    #[tokio::test]
    async fn a_mismatch_stores_nothing_and_drops_the_pieces() {
        let m = media();
        let device = DeviceId::try_from("1".repeat(32)).unwrap();
        let sha = Sha256Digest::of(b"what was declared");
        m.append(&device, &sha, 0, Bytes::from_static(b"something else"))
            .await
            .unwrap();
        assert!(matches!(
            m.finish(&device, &sha).await.unwrap(),
            Finished::Mismatch(_)
        ));
        let s = m.state(&device, &sha, 14).await.unwrap();
        assert_eq!((s.received, s.complete), (0, false));
        assert_eq!(m.verify_all().await.unwrap(), (0, vec![]));
    }
}
