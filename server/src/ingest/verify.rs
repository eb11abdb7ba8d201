//! One record of a batch: its size, its signature by the sending device's
//! enrolled key, its organisation; a sealed one opened with the
//! organisation's key and held to its label.

use observer_core::identity::{DeviceId, Verifier};
use observer_core::protocol::{RejectReason, Rejection, WireRecord};
use observer_core::record::{
    RecordId, VerifiedRecord, VerifyError, limits::MAX_BODY_BYTES, verify_envelope_by,
};
use observer_core::seal::{OrgSecretKey, SealedRecord};

/// A checked record, or why it was refused.
pub fn check_record(
    position: usize,
    wire: &WireRecord,
    key: &Verifier,
    org: &str,
) -> Result<VerifiedRecord, Rejection> {
    let reject = |reason, detail: String| Rejection {
        position,
        id: RecordId::of(&wire.body),
        reason,
        detail,
    };
    if wire.body.len() > MAX_BODY_BYTES {
        return Err(reject(
            RejectReason::TooLarge,
            format!(
                "{} bytes, over the limit of {MAX_BODY_BYTES}",
                wire.body.len()
            ),
        ));
    }
    let env = wire.envelope().ok_or_else(|| {
        reject(
            RejectReason::Malformed,
            "the signature is not 64 bytes".into(),
        )
    })?;
    let rec = verify_envelope_by(&env, key).map_err(|e| {
        let reason = match e {
            VerifyError::BadSignature => RejectReason::BadSignature,
            VerifyError::TooLarge { .. } => RejectReason::TooLarge,
            VerifyError::WrongDevice { .. } => RejectReason::WrongDevice,
            _ => RejectReason::Malformed,
        };
        reject(reason, e.to_string())
    })?;
    match &rec.body.org {
        Some(o) if o != org => Err(reject(
            RejectReason::WrongOrg,
            format!("signed for organisation {o:?}, this server is {org:?}"),
        )),
        _ => Ok(rec),
    }
}

/// Opens a sealed record sent by `device` with the organisation's key.
pub fn open_sealed(
    position: usize,
    s: &SealedRecord,
    org: &OrgSecretKey,
    device: &DeviceId,
) -> Result<WireRecord, Rejection> {
    let reject = |detail: String| Rejection {
        position,
        id: RecordId::of(&s.ct),
        reason: RejectReason::Unopenable,
        detail,
    };
    if s.device != *device {
        return Err(reject(format!(
            "labelled for device {}, sent by {device}",
            s.device
        )));
    }
    s.open(org)
        .map(|env| (&env).into())
        .map_err(|e| reject(e.to_string()))
}

/// A sealed record's contents must be the record its label names.
pub fn check_sealed(
    position: usize,
    s: &SealedRecord,
    rec: VerifiedRecord,
) -> Result<VerifiedRecord, Rejection> {
    if rec.body.seq != s.seq || rec.body.device != s.device {
        return Err(Rejection {
            position,
            id: rec.id,
            reason: RejectReason::Unopenable,
            detail: format!(
                "labelled as record {} of {}, but holds record {} of {}",
                s.seq, s.device, rec.body.seq, rec.body.device
            ),
        });
    }
    Ok(rec)
}
