//! The ingest decision, without HTTP: a batch from one enrolled device is
//! verified record by record, committed in one storage transaction, and
//! answered with a receipt signed by the coordinator's key. The API only
//! parses the request and maps a [`Settled`] or [`IngestError`] to a
//! response.

mod filing;
mod group;
mod verify;

pub use filing::FormCache;
pub use group::{GroupCommit, GroupLimits};
pub use verify::{check_record, check_sealed, open_sealed};

use observer_core::identity::{SigningKey, Verifier};
use observer_core::protocol::{
    Ack, Batch, Heartbeat, RECEIPT_DOMAIN, Receipt, RejectReason, Rejection, SealedBatch, Signed,
    WireRecord, limits::MAX_BATCH_RECORDS,
};
use observer_core::record::VerifiedRecord;
use observer_core::seal::{OrgSecretKey, SealedRecord};

use crate::auth::{AuthError, authenticate};
use crate::rate::RateLimits;
use crate::storage::{
    DeviceInfo, Incoming, IngestBatch, IngestResult, Outcome, Storage, StorageError,
};

/// Everything a batch is decided with.
pub struct Ingest<'a> {
    /// The database.
    pub storage: &'a dyn Storage,
    /// Per-device request rates (counted once a heartbeat verifies).
    pub rates: &'a RateLimits,
    /// The organisation id records must be signed for.
    pub org: &'a str,
    /// The coordinator's receipt-signing key.
    pub key: &'a SigningKey,
    /// The organisation's key, to open sealed records.
    pub seal: &'a OrgSecretKey,
    /// Parsed forms, to re-validate answers.
    pub forms: &'a FormCache,
}

/// Why a batch was not settled at all (no receipt).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// More records than one batch may hold.
    #[error("{count} records in one batch, over the limit of {MAX_BATCH_RECORDS}")]
    TooManyRecords { count: usize },
    /// A sealed batch must hold 1 to [`MAX_BATCH_RECORDS`] records.
    #[error("a sealed batch holds 1 to {MAX_BATCH_RECORDS} records, not {count}")]
    BadSealedBatch { count: usize },
    /// The heartbeat did not identify a device.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A sealed batch in which no record opened and verified as a record
    /// of an enrolled device: the sender stays anonymous, nothing changes.
    #[error("no record in this batch opened and verified as a record of an enrolled device")]
    NothingVerified,
    /// The database failed; nothing was acknowledged.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How a settled batch is to be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some records were stored or already held.
    Stored,
    /// The device is revoked: it learns so, with the receipt saying what
    /// was kept and what quarantined.
    DeviceRevoked,
    /// Every record was refused; the sentence names the first refusal.
    AllRefused(String),
}

/// A batch committed and its signed receipt.
#[derive(Debug)]
pub struct Settled {
    /// The receipt (what the signature covers).
    pub receipt: Receipt,
    /// The receipt signed by the coordinator's key.
    pub signed: Signed,
    /// How to answer.
    pub verdict: Verdict,
}

/// A batch verified and ready for the group commit: what is to be stored,
/// and what was refused before storage (bad signatures and the like).
#[derive(Debug)]
pub struct Prepared {
    /// The sender, as enrolled when the batch arrived.
    device: DeviceInfo,
    /// What goes to storage.
    batch: IngestBatch,
    /// Each verified record's position in the request.
    positions: Vec<usize>,
    /// Records refused before storage.
    rejected: Vec<Rejection>,
}

impl Prepared {
    /// The sender, as enrolled when the batch arrived.
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }
}

impl Ingest<'_> {
    /// A batch of records in the clear (and sealed ones) under a heartbeat,
    /// verified, committed alone and answered.
    pub fn batch(&self, batch: &Batch) -> Result<Settled, IngestError> {
        let prepared = self.prepare_batch(batch)?;
        self.commit_alone(prepared)
    }

    /// A wiped phone's sealed outbox, verified, committed alone and answered.
    pub fn sealed_outbox(&self, batch: &SealedBatch) -> Result<Settled, IngestError> {
        let prepared = self.prepare_sealed(batch)?;
        self.commit_alone(prepared)
    }

    /// A record that arrived by SMS (see [`crate::sms`]): no heartbeat and
    /// no seal; it proves itself by its device's signature. The device it
    /// names is only looked up here (the signature is checked against that
    /// device's enrolled key); a device not enrolled gets the same answer
    /// as a sealed batch of one: nothing verified, nothing changed.
    pub fn sms_record(&self, wire: &WireRecord) -> Result<Settled, IngestError> {
        #[derive(serde::Deserialize)]
        struct Names {
            device: observer_core::identity::DeviceId,
        }
        let names: Names =
            serde_json::from_slice(&wire.body).map_err(|_| IngestError::NothingVerified)?;
        let device = self
            .storage
            .device(&names.device)?
            .ok_or(IngestError::NothingVerified)?;
        let prepared = self.prepare(device, None, std::slice::from_ref(wire), &[])?;
        self.commit_alone(prepared)
    }

    /// A heartbeat that arrived by SMS, kept as a sync of no records is.
    pub fn sms_heartbeat(&self, heartbeat: &Signed) -> Result<Settled, IngestError> {
        let (device, heartbeat) = authenticate(self.storage, self.rates, heartbeat)?;
        let prepared = self.prepare(device, Some(heartbeat), &[], &[])?;
        self.commit_alone(prepared)
    }

    fn commit_alone(&self, prepared: Prepared) -> Result<Settled, IngestError> {
        let now = now_ms();
        let result = self
            .storage
            .ingest_group(&[&prepared.batch], now)?
            .pop()
            .ok_or_else(|| StorageError::Database("a group commit answered no batch".into()))?;
        Ok(self.settle(prepared, result, now))
    }

    /// Checks a batch of records in the clear (and sealed ones) under a
    /// heartbeat: everything short of storing it.
    pub fn prepare_batch(&self, batch: &Batch) -> Result<Prepared, IngestError> {
        let count = batch.records.len() + batch.sealed.len();
        if count > MAX_BATCH_RECORDS {
            return Err(IngestError::TooManyRecords { count });
        }
        let (device, heartbeat) = authenticate(self.storage, self.rates, &batch.heartbeat)?;
        self.prepare(device, Some(heartbeat), &batch.records, &batch.sealed)
    }

    /// A wiped phone's sealed outbox: no heartbeat (its key is gone). Each
    /// record proves itself once opened, and every record must be labelled
    /// with the same enrolled device. Until one does, the sender is
    /// anonymous: an unknown device and records that do not open get the
    /// same answer, and nothing is stored or touched.
    pub fn prepare_sealed(&self, batch: &SealedBatch) -> Result<Prepared, IngestError> {
        let count = batch.sealed.len();
        if count == 0 || count > MAX_BATCH_RECORDS {
            return Err(IngestError::BadSealedBatch { count });
        }
        let device = self
            .storage
            .device(&batch.sealed[0].device)?
            .ok_or(IngestError::NothingVerified)?;
        self.prepare(device, None, &[], &batch.sealed)
    }

    /// Checks records in the clear and sealed ones (opened here) from one
    /// enrolled `device`.
    fn prepare(
        &self,
        device: DeviceInfo,
        heartbeat: Option<Heartbeat>,
        records: &[WireRecord],
        sealed: &[SealedRecord],
    ) -> Result<Prepared, IngestError> {
        let mut verified = Vec::with_capacity(records.len() + sealed.len());
        let mut positions = Vec::with_capacity(records.len() + sealed.len());
        let mut rejected = Vec::new();
        let key = Verifier::new(device.key);
        let mut arrived = |i: usize, r: VerifiedRecord, s: Option<&SealedRecord>| {
            self.forms
                .check(self.storage, &r, &device.stations)
                .map(|check| {
                    verified.push(Incoming {
                        record: r,
                        check,
                        sealed: s.cloned(),
                    });
                    positions.push(i);
                })
        };
        for (i, w) in records.iter().enumerate() {
            match check_record(i, w, &key, self.org) {
                Ok(r) => arrived(i, r, None)?,
                Err(r) => rejected.push(r),
            }
        }
        for (j, s) in sealed.iter().enumerate() {
            let i = records.len() + j;
            match open_sealed(i, s, self.seal, &device.id)
                .and_then(|w| check_sealed(i, s, check_record(i, &w, &key, self.org)?))
            {
                Ok(r) => arrived(i, r, Some(s))?,
                Err(r) => rejected.push(r),
            }
        }
        if heartbeat.is_none() && verified.is_empty() {
            return Err(IngestError::NothingVerified);
        }
        Ok(Prepared {
            batch: IngestBatch {
                device: device.id.clone(),
                heartbeat,
                records: verified,
            },
            device,
            positions,
            rejected,
        })
    }

    /// The receipt for a prepared batch once its group is durable, signed.
    pub fn settle(&self, prepared: Prepared, result: IngestResult, now: i64) -> Settled {
        let Prepared {
            device,
            batch,
            positions,
            mut rejected,
        } = prepared;
        let mut accepted = Vec::new();
        let mut already = Vec::new();
        for ((incoming, outcome), position) in
            batch.records.iter().zip(&result.outcomes).zip(positions)
        {
            let rec = &incoming.record;
            let ack = |index| Ack {
                id: rec.id,
                seq: rec.body.seq,
                index,
            };
            match *outcome {
                Outcome::Accepted { index } => accepted.push(ack(index)),
                Outcome::Already { index } => already.push(ack(index)),
                Outcome::Quarantined => {
                    tracing::warn!(device = %device.id, seq = rec.body.seq, "record from a revoked device quarantined");
                    rejected.push(Rejection {
                        position,
                        id: rec.id,
                        reason: RejectReason::Quarantined,
                        detail: format!(
                            "the coordinator revoked this device; record {} arrived after its last record before revocation and is kept in quarantine",
                            rec.body.seq
                        ),
                    })
                }
                Outcome::Conflict { existing } => {
                    tracing::warn!(device = %device.id, seq = rec.body.seq, "fork: a second record for a seq already held, kept aside");
                    rejected.push(Rejection {
                        position,
                        id: rec.id,
                        reason: RejectReason::Conflict,
                        detail: format!(
                            "record {} of this device is already held with id {existing}; this one is kept aside for the coordinator",
                            rec.body.seq
                        ),
                    })
                }
            }
        }
        rejected.sort_by_key(|r| r.position);
        let receipt = Receipt {
            org: self.org.to_string(),
            device: device.id,
            server_time_ms: now,
            accepted,
            already,
            rejected,
            tree: result.tree,
        };
        let signed = Signed::sign(RECEIPT_DOMAIN, &receipt, self.key);
        let verdict = if device.revoked_at_ms.is_some() {
            Verdict::DeviceRevoked
        } else if receipt.accepted.is_empty()
            && receipt.already.is_empty()
            && !receipt.rejected.is_empty()
        {
            let first = &receipt.rejected[0];
            Verdict::AllRefused(format!(
                "every record was refused; the first ({}) because {}: {}",
                first.id,
                first.reason.code(),
                first.detail
            ))
        } else {
            Verdict::Stored
        };
        Settled {
            receipt,
            signed,
            verdict,
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests;
