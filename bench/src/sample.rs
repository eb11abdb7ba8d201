//! The record every benchmark saves, sends or verifies: a voting checklist
//! of typical size (about 440 bytes of body).

use observer_core::record::NewRecord;

pub fn observation(station: &str, n: u64) -> NewRecord {
    NewRecord::builder(station, "voting", 3, "checklist")
        .payload(serde_json::json!({
            "n": n,
            "queue_length": 14,
            "ballot_box_sealed": true,
            "unauthorised_persons": false,
            "note": "voters photographed their ballots; commission chair warned twice",
        }))
        .build()
        .expect("valid sample")
}
