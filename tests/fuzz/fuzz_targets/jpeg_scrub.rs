//! A photo from the phone's gallery, scrubbed of location tags while it is
//! imported: any bytes. Must never panic, and whatever it yields must hold
//! no EXIF or XMP segment before the image data.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use observer_core::media::scrub_jpeg;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if scrub_jpeg(data).read_to_end(&mut out).is_ok() {
        assert!(out.starts_with(&[0xFF, 0xD8]));
        assert!(out.len() <= data.len(), "scrubbing never adds bytes");
    }
});
