//! Received SMS texts as the coordinator's gateway hands them over: each
//! line one text, parsed as a part, the parts joined and the message
//! unpacked with the shipped forms. Must never panic; a message that
//! unpacks must pack back to the same bytes when it is a heartbeat, and
//! to bytes that unpack to the same record when it is a record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_core::sms::{self, Forms, Unpacked};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<sms::Part> = text.lines().filter_map(|l| sms::parse(l).ok()).collect();
    let Ok(bytes) = sms::join(&parts) else {
        return;
    };
    let forms = Forms::shipped(Some("org"));
    match sms::unpack(&bytes, &forms) {
        Ok(Unpacked::Heartbeat(hb)) => {
            if let Ok(again) = sms::pack_heartbeat(&hb) {
                assert_eq!(sms::unpack(&again, &forms).unwrap(), Unpacked::Heartbeat(hb));
            }
        }
        Ok(Unpacked::Record(env)) => {
            if let Ok(again) = sms::pack_record(&env, &forms, None) {
                assert_eq!(sms::unpack(&again, &forms).unwrap(), Unpacked::Record(env));
            }
        }
        Err(_) => {}
    }
});
