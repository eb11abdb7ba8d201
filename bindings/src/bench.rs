//! A hook for `bench/ffi.sh` only (feature `bench`, never in an app build):
//! the same save as `ObserverCore::save`, timed inside Rust, callable from
//! the JVM through plain JNA. The Kotlin benchmark alternates one save
//! through the generated Kotlin API with one save timed here, in one
//! process on one disk, so the difference is the boundary's cost and not
//! fsync drift between separate runs.

use std::ffi::{CStr, c_char};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::{KeyStoreFailure, NewObservation, ObserverCore, PlatformKeyStore};

static CORE: OnceLock<Arc<ObserverCore>> = OnceLock::new();

/// A wrap that changes nothing: the benchmark times saves, not a key store.
struct Plain;

impl PlatformKeyStore for Plain {
    fn wrap(&self, s: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure> {
        Ok(s)
    }
    fn unwrap(&self, w: Vec<u8>) -> Result<Vec<u8>, KeyStoreFailure> {
        Ok(w)
    }
    fn destroy_key(&self) -> Result<(), KeyStoreFailure> {
        Ok(())
    }
}

/// The observation both sides save (the Kotlin side builds the same one).
fn observation() -> NewObservation {
    NewObservation {
        station: "KZ-ALA-0042".into(),
        form_id: "voting".into(),
        form_version: 3,
        kind: "checklist".into(),
        payload_json: r#"{"ballot_box_sealed":true,"note":"voters photographed their ballots; commission chair warned twice","queue_length":14,"unauthorised_persons":false}"#.into(),
        attachments: vec![],
        supersedes: None,
    }
}

/// Opens the Rust side's store in `dir` (UTF-8, NUL-terminated). Returns 0,
/// or -1 on any failure.
///
/// # Safety
/// `dir` must be a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn observer_bench_open(dir: *const c_char) -> i32 {
    std::panic::catch_unwind(|| {
        // SAFETY: the caller passes a NUL-terminated string.
        let dir = unsafe { CStr::from_ptr(dir) }
            .to_string_lossy()
            .into_owned();
        match ObserverCore::open(dir, Arc::new(Plain)) {
            Ok(core) => {
                let _ = CORE.set(core);
                0
            }
            Err(_) => -1,
        }
    })
    .unwrap_or(-1)
}

/// One save through `ObserverCore::save`, timed inside Rust: nanoseconds,
/// or -1 on any failure.
#[no_mangle]
pub extern "C" fn observer_bench_save_ns() -> i64 {
    std::panic::catch_unwind(|| {
        let Some(core) = CORE.get() else { return -1 };
        let obs = observation();
        let t0 = Instant::now();
        match core.save(obs) {
            Ok(_) => t0.elapsed().as_nanos() as i64,
            Err(_) => -1,
        }
    })
    .unwrap_or(-1)
}
