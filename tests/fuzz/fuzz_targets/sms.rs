//! Received SMS texts as the coordinator's gateway hands them over: each
//! line one text, parsed as a part, the parts joined and the message
//! unpacked with the shipped forms. Must never panic; a message that
//! unpacks must pack back to the same bytes when it is a heartbeat, and
//! to bytes that unpack to the same record when it is a record. The same
//! bytes read as the coordinator's receipt (as a phone reads a text from
//! the gateway) must pack back to themselves when they rebuild.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer_core::identity::DeviceId;
use observer_core::record::RecordId;
use observer_core::sms::{self, Forms, ReceiptContext, Unpacked};

/// A phone that holds a record at every seq.
struct Phone(DeviceId);

impl ReceiptContext for Phone {
    fn org(&self) -> &str {
        "org"
    }
    fn device(&self) -> &DeviceId {
        &self.0
    }
    fn record_id(&self, seq: u64) -> Option<RecordId> {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&seq.to_be_bytes());
        Some(RecordId::from_bytes(b))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<sms::Part> = text.lines().filter_map(|l| sms::parse(l).ok()).collect();
    let Ok(bytes) = sms::join(&parts) else {
        return;
    };
    let phone = Phone(DeviceId::try_from("00112233445566778899aabbccddeeff".to_string()).unwrap());
    if let Ok(receipt) = sms::unpack_receipt(&bytes, &phone) {
        assert_eq!(sms::pack_receipt(&receipt).unwrap(), bytes);
    }
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
