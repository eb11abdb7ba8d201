//! A scanned QR code: any text. Must parse or give a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_core::protocol::EnrollmentCode;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = EnrollmentCode::parse(text) {
            // What parses must print back to something that parses the same.
            let again = EnrollmentCode::parse(&code.to_text()).expect("round trip");
            assert_eq!(again, code);
        }
    }
});
