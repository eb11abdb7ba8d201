//! The encrypted media file: writing while importing, reading while
//! uploading (see the module docs of `crate::media`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ring::digest::{Context, SHA256};

use super::{CHUNK, MediaError};
use crate::at_rest::{DataKey, NONCE_AT, OVERHEAD};
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
///
/// Plaintext is read straight into the buffer it is encrypted in (after room
/// for the nonce), hashed there, encrypted in place and written: one copy from
/// the source, none after. Two buffers alternate so that a full chunk is
/// encrypted only once the next read shows whether it is the last.
pub(crate) struct MediaWriter<'k> {
    file: std::io::BufWriter<File>,
    path: PathBuf,
    key: &'k DataKey,
    file_id: [u8; FILE_ID_LEN],
    index: u64,
    size: u64,
}

/// A chunk buffer: `nonce || plaintext (len) || room for the tag`.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    fn new() -> Self {
        Self {
            buf: vec![0u8; CHUNK + OVERHEAD],
            len: 0,
        }
    }

    /// Fills the plaintext part from `src` until full or at its end.
    fn fill(&mut self, src: &mut dyn Read) -> std::io::Result<()> {
        self.len = 0;
        while self.len < CHUNK {
            let at = NONCE_AT + self.len;
            match src.read(&mut self.buf[at..NONCE_AT + CHUNK]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<'k> MediaWriter<'k> {
    /// Starts a new file at `path` (created, must not exist).
    pub(crate) fn create(
        path: PathBuf,
        key: &'k DataKey,
        file_id: [u8; FILE_ID_LEN],
    ) -> Result<Self, MediaError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| MediaError::write(path.clone(), e))?;
        let mut file = std::io::BufWriter::with_capacity(256 * 1024, file);
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
            size: 0,
        })
    }

    fn encrypt(&mut self, chunk: &mut Chunk, last: bool) -> Result<(), MediaError> {
        let len = chunk.len;
        self.key
            .encrypt_in_buffer(
                &context(&self.file_id, self.index, last),
                &mut chunk.buf[..len + OVERHEAD],
            )
            .map_err(|_| MediaError::Store(crate::store::StoreError::NoRandomness))?;
        self.file
            .write_all(&chunk.buf[..len + OVERHEAD])
            .map_err(|e| MediaError::write(self.path.clone(), e))?;
        self.index += 1;
        Ok(())
    }

    /// Reads all of `src` into the file; `read_err` turns a read failure
    /// into the caller's error, `progress` hears the bytes read so far (and
    /// may stop the import with an error).
    ///
    /// Two threads, so a phone's second core is used: one reads each chunk
    /// and hashes it, the other encrypts and writes the previous one. Four
    /// chunk buffers circulate between them (256 KiB in all), so memory
    /// stays flat whatever the file's size.
    pub(crate) fn import(
        mut self,
        src: &mut (dyn Read + Send),
        read_err: &(dyn Fn(std::io::Error) -> MediaError + Sync),
        progress: &mut dyn FnMut(u64) -> Result<(), MediaError>,
    ) -> Result<(Sha256Digest, u64), MediaError> {
        use std::sync::mpsc::sync_channel;
        let (full_tx, full_rx) = sync_channel::<Result<(Chunk, bool), MediaError>>(2);
        let (empty_tx, empty_rx) = sync_channel::<Chunk>(4);
        for _ in 0..4 {
            empty_tx.send(Chunk::new()).expect("room for four");
        }
        let digest = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut hasher = Context::new(&SHA256);
                let next_empty = || empty_rx.recv().ok();
                let mut cur = next_empty()?;
                if let Err(e) = cur.fill(src) {
                    let _ = full_tx.send(Err(read_err(e)));
                    return None;
                }
                loop {
                    hasher.update(&cur.buf[NONCE_AT..NONCE_AT + cur.len]);
                    if cur.len < CHUNK {
                        let _ = full_tx.send(Ok((cur, true)));
                        break;
                    }
                    let mut next = next_empty()?;
                    if let Err(e) = next.fill(src) {
                        let _ = full_tx.send(Err(read_err(e)));
                        return None;
                    }
                    let last = next.len == 0;
                    if full_tx.send(Ok((cur, last))).is_err() || last {
                        break;
                    }
                    cur = next;
                }
                Some(hasher.finish())
            });
            let written = (|| -> Result<(), MediaError> {
                while let Ok(item) = full_rx.recv() {
                    let (mut chunk, last) = item?;
                    self.size += chunk.len as u64;
                    progress(self.size)?;
                    self.encrypt(&mut chunk, last)?;
                    let _ = empty_tx.send(chunk);
                    if last {
                        return Ok(());
                    }
                }
                Err(read_err(std::io::Error::other(
                    "the reading thread stopped",
                )))
            })();
            // Unblock the reader if the writer stopped early.
            drop(full_rx);
            drop(empty_tx);
            let digest = reader.join().expect("the reading thread does not panic");
            written.map(|()| digest)
        })?;
        let digest = digest.ok_or_else(|| read_err(std::io::Error::other("read stopped")))?;
        let file = self
            .file
            .into_inner()
            .map_err(|e| MediaError::write(self.path.clone(), e.into_error()))?;
        file.sync_all()
            .map_err(|e| MediaError::write(self.path.clone(), e))?;
        let digest: [u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
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
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
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
            .decrypt_in_place(&context(&self.file_id, self.index, last), &mut self.buf)
            .map_err(|_| MediaError::Corrupt {
                sha256: self.sha256,
                offset: start,
            })?;
        let n = plain.len();
        // nonce is first; the plaintext sits right after it.
        self.plain = NONCE_AT..NONCE_AT + n;
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
