//! The encrypted media file: writing while importing, reading while
//! uploading (see the module docs of `crate::media`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ring::digest::{Context, SHA256};

use super::{MediaError, CHUNK};
use crate::at_rest::{DataKey, OVERHEAD};
use crate::record::Sha256Digest;

const MAGIC: &[u8; 8] = b"OBSMED1\n";
/// Bytes of the random file id in the header.
pub(crate) const FILE_ID_LEN: usize = 16;
const HEADER: u64 = (MAGIC.len() + FILE_ID_LEN) as u64;

fn context(file_id: &[u8; FILE_ID_LEN], index: u64, last: bool) -> [u8; 46] {
    let mut c = [0u8; 46];
    c[..17].copy_from_slice(b"observer/media/v1");
    c[17..20].copy_from_slice(b"\0id");
    c[20..36].copy_from_slice(file_id);
    c[36..44].copy_from_slice(&index.to_be_bytes());
    c[44] = b'L';
    c[45] = u8::from(last);
    c
}

/// Streams plaintext into an encrypted media file, hashing it on the way.
pub(crate) struct MediaWriter<'k> {
    file: File,
    path: PathBuf,
    key: &'k DataKey,
    file_id: [u8; FILE_ID_LEN],
    index: u64,
    pending: Vec<u8>,
    sealed: Vec<u8>,
    hasher: Context,
    size: u64,
}

impl<'k> MediaWriter<'k> {
    /// Starts a new file at `path` (created, must not exist).
    pub(crate) fn create(
        path: PathBuf,
        key: &'k DataKey,
        file_id: [u8; FILE_ID_LEN],
    ) -> Result<Self, MediaError> {
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| MediaError::write(path.clone(), e))?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&file_id);
        file.write_all(&header)
            .map_err(|e| MediaError::write(path.clone(), e))?;
        Ok(Self {
            file,
            path,
            key,
            file_id,
            index: 0,
            pending: Vec::with_capacity(2 * CHUNK),
            sealed: Vec::with_capacity(CHUNK + OVERHEAD),
            hasher: Context::new(&SHA256),
            size: 0,
        })
    }

    fn seal_chunk(&mut self, len: usize, last: bool) -> Result<(), MediaError> {
        self.sealed.clear();
        self.key
            .seal_into(
                &context(&self.file_id, self.index, last),
                &self.pending[..len],
                &mut self.sealed,
            )
            .map_err(|_| MediaError::Store(crate::store::StoreError::NoRandomness))?;
        self.file
            .write_all(&self.sealed)
            .map_err(|e| MediaError::write(self.path.clone(), e))?;
        self.pending.drain(..len);
        self.index += 1;
        Ok(())
    }

    /// Appends plaintext. A full chunk is sealed only once more data
    /// follows it, so the last chunk is always known to be the last.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), MediaError> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.pending.extend_from_slice(data);
        while self.pending.len() > CHUNK {
            self.seal_chunk(CHUNK, false)?;
        }
        Ok(())
    }

    /// Seals the last chunk, syncs the file, returns its SHA-256 and size.
    pub(crate) fn finish(mut self) -> Result<(Sha256Digest, u64), MediaError> {
        let len = self.pending.len();
        self.seal_chunk(len, true)?;
        self.file
            .sync_all()
            .map_err(|e| MediaError::write(self.path.clone(), e))?;
        let digest: [u8; 32] = self
            .hasher
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        Ok((Sha256Digest::from_bytes(digest), self.size))
    }
}

/// Reads an encrypted media file back, chunk by chunk, from any offset;
/// every chunk is authenticated before a byte of it is returned.
pub(crate) struct MediaReader<'k> {
    file: File,
    key: &'k DataKey,
    file_id: [u8; FILE_ID_LEN],
    size: u64,
    sha256: Sha256Digest,
    index: u64,
    buf: Vec<u8>,
    plain: std::ops::Range<usize>,
}

impl<'k> MediaReader<'k> {
    /// Opens the file of `sha256` (`size` plaintext bytes).
    pub(crate) fn open(
        mut file: File,
        key: &'k DataKey,
        sha256: Sha256Digest,
        size: u64,
    ) -> Result<Self, MediaError> {
        let corrupt = || MediaError::Corrupt { sha256, offset: 0 };
        let mut header = [0u8; HEADER as usize];
        file.read_exact(&mut header).map_err(|_| corrupt())?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(corrupt());
        }
        let file_id = header[MAGIC.len()..].try_into().expect("header length");
        Ok(Self {
            file,
            key,
            file_id,
            size,
            sha256,
            index: 0,
            buf: Vec::with_capacity(CHUNK + OVERHEAD),
            plain: 0..0,
        })
    }

    /// Positions the reader at plaintext byte `offset`.
    pub(crate) fn seek(&mut self, offset: u64) -> Result<(), MediaError> {
        let offset = offset.min(self.size);
        self.index = offset / CHUNK as u64;
        self.file
            .seek(SeekFrom::Start(
                HEADER + self.index * (CHUNK + OVERHEAD) as u64,
            ))
            .map_err(|_| MediaError::Corrupt {
                sha256: self.sha256,
                offset,
            })?;
        self.plain = 0..0;
        if offset < self.size {
            self.load()?;
            self.plain.start += (offset % CHUNK as u64) as usize;
        } else {
            // At the end: nothing more to load.
            self.index = self.size.div_ceil(CHUNK as u64);
        }
        Ok(())
    }

    fn load(&mut self) -> Result<(), MediaError> {
        let start = self.index * CHUNK as u64;
        let len = (self.size - start).min(CHUNK as u64) as usize;
        let last = start + len as u64 >= self.size;
        let corrupt = MediaError::Corrupt {
            sha256: self.sha256,
            offset: start,
        };
        self.buf.resize(len + OVERHEAD, 0);
        if self.file.read_exact(&mut self.buf).is_err() {
            return Err(corrupt);
        }
        let plain = self
            .key
            .open_in_place(&context(&self.file_id, self.index, last), &mut self.buf)
            .map_err(|_| MediaError::Corrupt {
                sha256: self.sha256,
                offset: start,
            })?;
        let n = plain.len();
        // nonce is first; the plaintext sits right after it.
        let at = crate::at_rest::NONCE_AT;
        self.plain = at..at + n;
        self.index += 1;
        Ok(())
    }

    /// Fills `out` with up to `max` next plaintext bytes; returns how many
    /// (0 at the end).
    pub(crate) fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, MediaError> {
        let mut n = 0;
        while n < max {
            if self.plain.is_empty() {
                if self.index * (CHUNK as u64) >= self.size {
                    break;
                }
                self.load()?;
            }
            let take = (max - n).min(self.plain.len());
            out.extend_from_slice(&self.buf[self.plain.start..self.plain.start + take]);
            self.plain.start += take;
            n += take;
        }
        Ok(n)
    }
}
