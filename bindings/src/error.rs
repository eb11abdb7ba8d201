//! One flat error for the apps: each variant is a different thing to tell
//! the user, and carries the core's message (which says what to do).

use observer_core::media::MediaError;
use observer_core::protocol::ProtocolError;
use observer_core::record::RecordError;
use observer_core::store::StoreError;
use observer_core::sync::{RetryKind, SyncError};

/// What went wrong, by what the app should do about it. Flat on the foreign
/// side: Kotlin `ObserverException.Offline` (Swift `ObserverError.Offline`)
/// whose message is the sentence to show.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum ObserverError {
    /// The input is invalid (a form value, a code, an id): fix it and retry.
    #[error("{message}")]
    InvalidInput { message: String },
    /// Sync needs an enrollment first: scan the coordinator's code.
    #[error("{message}")]
    NotEnrolled { message: String },
    /// The server is not the enrolled coordinator (interception?): do not
    /// retry on this network; tell the coordinator.
    #[error("{message}")]
    IdentityNotConfirmed { message: String },
    /// No connection or a timeout: records stay queued; retry later.
    #[error("{message}")]
    Offline { message: String },
    /// The coordinator is busy, restarting or limiting this phone (the
    /// core already waited and retried): records stay queued; retry later.
    #[error("{message}")]
    ServerBusy { message: String },
    /// The app stopped the call (`CancelToken.cancel`): records are pending
    /// or delivered, a media import left nothing behind.
    #[error("{message}")]
    Cancelled { message: String },
    /// The coordinator refused (a used or expired code, say).
    #[error("{message}")]
    Refused { message: String },
    /// The coordinator revoked this device.
    #[error("{message}")]
    Revoked { message: String },
    /// The coordinator's log failed its proofs: records it acknowledged
    /// were dropped or its history rewritten. Nothing was marked
    /// delivered; the evidence is kept. Do not retry: tell the
    /// organisation.
    #[error("{message}")]
    LogRewritten { message: String },
    /// Stored records were deleted, altered or reordered.
    #[error("{message}")]
    Tampered { message: String },
    /// The data was wiped on purpose (panic wipe): offer to deliver the
    /// sealed outbox and to start over.
    #[error("{message}")]
    Wiped { message: String },
    /// The platform key store cannot unlock the device key.
    #[error("{message}")]
    KeyUnavailable { message: String },
    /// The storage failed (not writable, full, damaged, from a newer app).
    #[error("{message}")]
    Storage { message: String },
}

/// A platform key store failure, reported by the app's implementation.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KeyStoreFailure {
    /// The key store refused or failed.
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeyStoreFailure::Failed { reason: e.reason }
    }
}

impl From<RecordError> for ObserverError {
    fn from(e: RecordError) -> Self {
        ObserverError::InvalidInput {
            message: e.to_string(),
        }
    }
}

impl From<ProtocolError> for ObserverError {
    fn from(e: ProtocolError) -> Self {
        ObserverError::InvalidInput {
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for ObserverError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::Record(_) | StoreError::UnknownSupersedes(_) | StoreError::Form(_) => {
                ObserverError::InvalidInput { message }
            }
            StoreError::Tampered(_) => ObserverError::Tampered { message },
            StoreError::Relay(observer_core::relay::RelayError::NoSealKey) => {
                ObserverError::NotEnrolled { message }
            }
            // A bundle that is damaged, cut, foreign or this phone's own:
            // ask for the file again.
            StoreError::Relay(_) => ObserverError::InvalidInput { message },
            StoreError::Sms(observer_core::sms::SmsError::NotEnrolled) => {
                ObserverError::NotEnrolled { message }
            }
            // A record too large or not packable for SMS (send it
            // otherwise), or a text that is not the coordinator's receipt.
            StoreError::Sms(_) => ObserverError::InvalidInput { message },
            StoreError::Revoked => ObserverError::Revoked { message },
            StoreError::Wiped { .. } => ObserverError::Wiped { message },
            StoreError::KeyUnavailable(_) | StoreError::KeyMissing => {
                ObserverError::KeyUnavailable { message }
            }
            _ => ObserverError::Storage { message },
        }
    }
}

impl From<MediaError> for ObserverError {
    fn from(e: MediaError) -> Self {
        let message = e.to_string();
        match e {
            MediaError::Unreadable { .. }
            | MediaError::TooLarge { .. }
            | MediaError::BadMime(_)
            | MediaError::BadJpeg { .. } => ObserverError::InvalidInput { message },
            MediaError::Corrupt { .. } => ObserverError::Tampered { message },
            MediaError::Store(s) => s.into(),
            MediaError::Cancelled => ObserverError::Cancelled { message },
            MediaError::DiskFull | MediaError::Write { .. } | MediaError::Unknown(_) => {
                ObserverError::Storage { message }
            }
        }
    }
}

impl From<SyncError> for ObserverError {
    fn from(e: SyncError) -> Self {
        let message = e.to_string();
        match e {
            SyncError::NotEnrolled => ObserverError::NotEnrolled { message },
            SyncError::IdentityNotConfirmed { .. } | SyncError::BadReceipt(_) => {
                ObserverError::IdentityNotConfirmed { message }
            }
            SyncError::Cancelled => ObserverError::Cancelled { message },
            SyncError::Network(_) => ObserverError::Offline { message },
            // The same decision as the core's retry loop: a 429 or a 5xx is
            // "later", never "refused".
            SyncError::Refused { .. } => match e.retry_kind() {
                RetryKind::Offline => ObserverError::Offline { message },
                RetryKind::Busy { .. } => ObserverError::ServerBusy { message },
                RetryKind::Never => ObserverError::Refused { message },
            },
            SyncError::Revoked => ObserverError::Revoked { message },
            SyncError::LogRewritten(_) => ObserverError::LogRewritten { message },
            SyncError::Store(s) => s.into(),
            SyncError::Media(m) => m.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 429 or 503 that the core retries must not reach the app as a
    /// refusal (the app would tell the observer to give up).
    #[test]
    fn the_apps_hear_the_same_retry_decision_as_the_core() {
        let refused = |status| SyncError::Refused {
            status,
            code: "c".into(),
            message: "m".into(),
            retry_after_secs: Some(2),
        };
        assert!(matches!(
            refused(429).into(),
            ObserverError::ServerBusy { .. }
        ));
        assert!(matches!(
            refused(503).into(),
            ObserverError::ServerBusy { .. }
        ));
        assert!(matches!(refused(410).into(), ObserverError::Refused { .. }));
        assert!(matches!(
            SyncError::Network("cut".into()).into(),
            ObserverError::Offline { .. }
        ));
        assert!(matches!(
            SyncError::Cancelled.into(),
            ObserverError::Cancelled { .. }
        ));
    }
}
