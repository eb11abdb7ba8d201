//! Removing location and device tags from JPEG photos as they are
//! imported, in a stream.
//!
//! A JPEG is a sequence of segments (`FF xx`, a 2-byte length, the
//! payload) up to the start of scan (`FF DA`), after which the compressed
//! image runs to the end. Location (GPS), camera serial numbers and the like
//! live in APP1 segments: EXIF (`Exif\0\0`) and XMP
//! (`http://ns.adobe.com/xap/1.0/\0`). This reader copies every segment but
//! those, then the image data untouched, holding at most one segment
//! (64 KiB) in memory. *Departure from a crate:* `img-parts` does the same
//! edit on a whole file in memory; importing must stay within a fixed
//! memory budget whatever the file (`docs/architecture.md`). Dropping EXIF
//! also drops the orientation tag: apps rotate the pixels before import, as
//! camera apps that strip metadata do.

use std::io::{self, Read};

/// `true` if an APP1 payload holds EXIF or XMP metadata.
fn is_metadata(payload: &[u8]) -> bool {
    payload.starts_with(b"Exif\0\0") || payload.starts_with(b"http://ns.adobe.com/xap/1.0/\0")
}

enum State {
    Start,
    Segments,
    Image,
}

/// A reader over a JPEG that leaves out its EXIF and XMP segments.
pub struct JpegScrubber<R> {
    inner: R,
    state: State,
    pending: Vec<u8>,
    at: usize,
}

/// Wraps `inner`, a JPEG, so that reading it yields the same JPEG without
/// EXIF or XMP metadata. Reading fails with `InvalidData` if `inner` is not
/// a JPEG or its segments are malformed (then nothing is imported: a photo
/// whose tags cannot be removed is not silently kept with them).
pub fn scrub_jpeg<R: Read>(inner: R) -> JpegScrubber<R> {
    JpegScrubber {
        inner,
        state: State::Start,
        pending: Vec::new(),
        at: 0,
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a well-formed JPEG: {what}"),
    )
}

impl<R: Read> JpegScrubber<R> {
    fn read_byte(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next segment into `pending` (or skips it, if it is
    /// metadata); switches to copying at the start of scan.
    fn next_segment(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.at = 0;
        let mut marker = match self.read_byte()? {
            Some(0xFF) => 0xFF,
            Some(_) => return Err(bad("expected a segment marker")),
            None => return Err(bad("it ends before its image data")),
        };
        // Fill bytes (FF FF ...) may precede a marker.
        while marker == 0xFF {
            marker = self.read_byte()?.ok_or_else(|| bad("truncated marker"))?;
        }
        self.pending.extend_from_slice(&[0xFF, marker]);
        match marker {
            // Start of scan (the image data follows) or end of image: copy
            // the rest as is.
            0xDA | 0xD9 => {
                self.state = State::Image;
                return Ok(());
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD8 => return Ok(()),
            _ => {}
        }
        let mut len = [0u8; 2];
        self.inner
            .read_exact(&mut len)
            .map_err(|_| bad("truncated segment length"))?;
        let len = u16::from_be_bytes(len) as usize;
        if len < 2 {
            return Err(bad("segment length below 2"));
        }
        let mut payload = vec![0u8; len - 2];
        self.inner
            .read_exact(&mut payload)
            .map_err(|_| bad("truncated segment"))?;
        if marker == 0xE1 && is_metadata(&payload) {
            self.pending.clear();
            return Ok(());
        }
        self.pending.extend_from_slice(&(len as u16).to_be_bytes());
        self.pending.extend_from_slice(&payload);
        Ok(())
    }
}

impl<R: Read> Read for JpegScrubber<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.pending.len() {
                let n = (self.pending.len() - self.at).min(out.len());
                out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            match self.state {
                State::Start => {
                    let mut soi = [0u8; 2];
                    self.inner
                        .read_exact(&mut soi)
                        .map_err(|_| bad("shorter than a JPEG header"))?;
                    if soi != [0xFF, 0xD8] {
                        return Err(bad("it does not start with FF D8"));
                    }
                    self.pending = soi.to_vec();
                    self.at = 0;
                    self.state = State::Segments;
                }
                State::Segments => self.next_segment()?,
                State::Image => return self.inner.read(out),
            }
        }
    }
}

/// A small JPEG with and without its EXIF and XMP segments (for tests):
/// SOI, JFIF, EXIF with a GPS marker, XMP with a location, a quantisation
/// table, start of scan, image data (with FF 00 stuffing and a restart
/// marker), EOI.
#[cfg(test)]
pub(crate) fn test_photo() -> (Vec<u8>, Vec<u8>) {
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }
    let jfif = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let exif = segment(0xE1, b"Exif\0\0GPS-MARKER 43.2389N 76.8897E SERIAL-MARKER");
    let xmp = segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>XMP-LOCATION-MARKER</x:xmpmeta>",
    );
    let dqt = segment(0xDB, &[0u8; 65]);
    let scan = [
        &[0xFF, 0xDA][..],
        &[0x00, 0x08, 1, 1, 0, 0, 0x3F, 0],
        &[
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xE1, 0x00, 0x10,
        ],
        &[0xFF, 0xD9],
    ]
    .concat();
    let with = [&[0xFF, 0xD8][..], &jfif, &exif, &xmp, &dqt, &scan].concat();
    let without = [&[0xFF, 0xD8][..], &jfif, &dqt, &scan].concat();
    (with, without)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(bytes: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut r = scrub_jpeg(bytes);
        let mut out = Vec::new();
        let mut buf = vec![0u8; piece];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn exif_and_xmp_go_and_everything_else_stays_byte_for_byte() {
        let (with, without) = test_photo();
        for piece in [1, 3, 7, 64 * 1024] {
            assert_eq!(scrub(&with, piece).unwrap(), without, "reads of {piece}");
        }
        // Nothing to remove: unchanged.
        assert_eq!(scrub(&without, 5).unwrap(), without);
    }

    #[test]
    fn what_is_not_a_jpeg_is_refused_not_passed_through() {
        let (with, _) = test_photo();
        for bad in [
            &b"GIF89a"[..],
            &[0xFF],
            &with[..20],
            &[0xFF, 0xD8, 0x00, 0x00],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01],
        ] {
            let e = scrub(bad, 4).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
    }
}
