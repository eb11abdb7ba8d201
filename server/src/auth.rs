//! Who is speaking: a device proves itself by a heartbeat signed with its
//! enrolled key. The decision lives here, without HTTP; the API maps each
//! [`AuthError`] to its status and code.

use observer_core::protocol::{HEARTBEAT_DOMAIN, Heartbeat, Signed};
use observer_core::record::limits::MAX_SEQ;

use crate::rate::{Limited, RateLimits};
use crate::storage::{DeviceInfo, Storage, StorageError};

/// Why a request's heartbeat does not identify a device that may speak.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The heartbeat is not JSON of the right shape.
    #[error("the heartbeat is not valid: {0}")]
    Malformed(String),
    /// No such device is enrolled here.
    #[error("device {0} is not enrolled with this coordinator")]
    UnknownDevice(observer_core::identity::DeviceId),
    /// The heartbeat does not verify under the device's enrolled key, or
    /// names another device than the one that signed it.
    #[error("{0}")]
    BadHeartbeat(String),
    /// Its seq is beyond what every client can represent.
    #[error("seq {0} is over the limit of 2^53")]
    SeqTooLarge(u64),
    /// The coordinator revoked the device.
    #[error("the coordinator revoked this device")]
    Revoked,
    /// The device is over its request rate.
    #[error("too many requests from this device")]
    RateLimited(Limited),
    /// The database could not be asked.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The heartbeat's device, enrolled (revoked or not), with the heartbeat
/// signed by its enrolled key. Only once the signature verifies is the
/// device's rate counted: a claim alone must never use up a victim's
/// allowance.
pub fn authenticate(
    storage: &dyn Storage,
    rates: &RateLimits,
    heartbeat: &Signed,
) -> Result<(DeviceInfo, Heartbeat), AuthError> {
    let claimed: Heartbeat =
        serde_json::from_slice(&heartbeat.body).map_err(|e| AuthError::Malformed(e.to_string()))?;
    let device = storage
        .device(&claimed.device)?
        .ok_or(AuthError::UnknownDevice(claimed.device))?;
    let heartbeat: Heartbeat = heartbeat
        .open("heartbeat", HEARTBEAT_DOMAIN, &device.key)
        .map_err(|e| AuthError::BadHeartbeat(e.to_string()))?;
    if heartbeat.device != device.id {
        return Err(AuthError::BadHeartbeat(
            "the heartbeat names another device than the one that signed it".into(),
        ));
    }
    if heartbeat.seq > MAX_SEQ {
        return Err(AuthError::SeqTooLarge(heartbeat.seq));
    }
    rates.device(&device.id).map_err(AuthError::RateLimited)?;
    Ok((device, heartbeat))
}

/// [`authenticate`], refusing a revoked device.
pub fn authenticate_active(
    storage: &dyn Storage,
    rates: &RateLimits,
    heartbeat: &Signed,
) -> Result<(DeviceInfo, Heartbeat), AuthError> {
    let (device, hb) = authenticate(storage, rates, heartbeat)?;
    if device.revoked_at_ms.is_some() {
        return Err(AuthError::Revoked);
    }
    Ok((device, hb))
}
