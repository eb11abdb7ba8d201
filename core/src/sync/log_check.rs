//! Holding the coordinator to its log at every sync (`docs/protocol.md`,
//! "The phone holds the coordinator to its log"). The phone keeps the
//! receipt of the newest tree head it verified (its anchor); each sync asks
//! for the proof that the new receipt's head extends it, and for the
//! inclusion of a few of its delivered records, drawn at random from its
//! receipts; nothing is marked delivered until both verify. A coordinator
//! that dropped or rewrote records after signing for them cannot answer
//! with proofs that do: the phone stops, and keeps both signed heads and
//! the failed proofs as evidence.

use ring::rand::{SecureRandom as _, SystemRandom};

use crate::identity::PublicKey;
use crate::merkle::{
    Checkpoint, ProofError, TreeHead, TrustedWitness, leaf_hash, origin_of, verify_consistency,
    verify_inclusion,
};
use crate::protocol::{LogProofs, RECEIPT_DOMAIN, Receipt, Signed, WitnessedProof, limits};
use crate::record::RecordId;
use crate::store::{LogFault, Store};

use super::SyncError;

/// Delivered records whose inclusion each sync asks to be proved.
pub const PROVE_PER_SYNC: usize = 4;

/// What a sync asks of the log, and what it checks the answer against.
#[derive(Debug, Default)]
pub(super) struct LogAsk {
    /// The anchor: the receipt the phone holds and its head.
    anchor: Option<(Signed, TreeHead)>,
    /// Delivered records to prove: leaf index and id.
    sample: Vec<(u64, RecordId)>,
    /// The coordinator's log key and name, for witnessed checkpoints.
    coordinator: Option<PublicKey>,
    /// The witnesses the coordinator names; a checkpoint is witnessed
    /// when every one of them cosigned it.
    witnesses: Vec<TrustedWitness>,
    /// The size of the newest witnessed checkpoint held.
    witnessed: Option<u64>,
}

/// What a check verified.
#[derive(Debug, Default)]
pub(super) struct Checked {
    /// Proofs verified.
    pub verified: u64,
    /// A newer witnessed checkpoint the receipt's head extends: its size
    /// and the signed note, to keep.
    pub witnessed: Option<(u64, String)>,
}

/// Why the answer does not hold the coordinator to its log.
#[derive(Debug, thiserror::Error)]
pub enum LogProblem {
    /// The new head is smaller than one the coordinator signed before.
    #[error("the log shrank from {held} records to {answered}")]
    Shrank { held: u64, answered: u64 },
    /// A proof the phone asked for is not in the answer.
    #[error("the coordinator did not prove {0}")]
    Unproved(String),
    /// The receipt's head does not extend the checkpoint the witnesses
    /// cosigned: the coordinator shows this phone another history than
    /// the one it showed them.
    #[error(
        "the log of {answered} records does not extend the one of {witnessed} its witnesses cosigned ({error})"
    )]
    Unwitnessed {
        witnessed: u64,
        answered: u64,
        error: ProofError,
    },
    /// The new head does not extend the held one.
    #[error(
        "the log of {answered} records does not extend the one of {held} it signed before ({error})"
    )]
    Inconsistent {
        held: u64,
        answered: u64,
        error: ProofError,
    },
    /// A delivered record is not in the new head's tree.
    #[error("record {id} (log index {index}) is not in the log any more ({error})")]
    Dropped {
        id: RecordId,
        index: u64,
        error: ProofError,
    },
}

impl LogProblem {
    /// A short, stable name for logs (no record id, no size).
    pub fn kind(&self) -> &'static str {
        match self {
            LogProblem::Shrank { .. } => "shrank",
            LogProblem::Unproved(_) => "unproved",
            LogProblem::Inconsistent { .. } => "inconsistent",
            LogProblem::Dropped { .. } => "dropped",
            LogProblem::Unwitnessed { .. } => "unwitnessed",
        }
    }
}

impl LogAsk {
    /// The anchor and `sample`.
    fn with(
        store: &Store,
        coordinator: &PublicKey,
        sample: Vec<(u64, RecordId)>,
    ) -> Result<Self, SyncError> {
        let anchor = store
            .log_anchor()?
            .and_then(|s| opened(&s, coordinator).map(|r| (s, r.tree)));
        let witnesses: Vec<TrustedWitness> = store
            .enrollment()
            .map(|e| e.witnesses)
            .unwrap_or_default()
            .iter()
            .filter_map(|vkey| TrustedWitness::from_vkey(vkey).ok())
            .collect();
        let witnessed = match witnesses.is_empty() {
            true => None,
            false => Some(
                store
                    .log_witnessed()?
                    .and_then(|note| {
                        let origin = origin_of(coordinator);
                        Checkpoint::open(note.as_bytes(), &origin, coordinator).ok()
                    })
                    .map_or(0, |c| c.head.size),
            ),
        };
        Ok(Self {
            anchor,
            sample,
            coordinator: Some(*coordinator),
            witnesses,
            witnessed,
        })
    }

    /// The anchor and a fresh sample, from what `store` keeps: receipts
    /// that do not open under `coordinator` (another coordinator's, or
    /// damaged) are not used.
    pub(super) fn sampled(store: &Store, coordinator: &PublicKey) -> Result<Self, SyncError> {
        let random = SystemRandom::new();
        let mut sample = Vec::with_capacity(PROVE_PER_SYNC);
        for stored in store.receipt_sample(PROVE_PER_SYNC)? {
            let Some(receipt) = opened_stored(&stored.bytes, coordinator) else {
                continue;
            };
            let acks: Vec<_> = receipt
                .accepted
                .iter()
                .chain(&receipt.already)
                .filter(|a| a.index < receipt.tree.size)
                .collect();
            if acks.is_empty() {
                continue;
            }
            let mut pick = [0u8; 8];
            if random.fill(&mut pick).is_err() {
                continue;
            }
            let ack = acks[(u64::from_le_bytes(pick) % acks.len() as u64) as usize];
            if !sample.iter().any(|&(i, _)| i == ack.index) {
                sample.push((ack.index, ack.id));
            }
        }
        Self::with(store, coordinator, sample)
    }

    /// `log_have` of the request.
    pub(super) fn have(&self) -> Option<u64> {
        self.anchor.as_ref().map(|(_, head)| head.size)
    }

    /// `log_prove` of the request.
    pub(super) fn prove(&self) -> Vec<u64> {
        self.sample.iter().map(|&(i, _)| i).collect()
    }

    /// `log_witnessed` of the request: asked by a phone told of witnesses.
    pub(super) fn witnessed_have(&self) -> Option<u64> {
        self.witnessed
    }

    /// A witnessed checkpoint that came with `new`: kept if the coordinator
    /// signed it, every named witness cosigned it, it is newer than the
    /// one held, and `new` extends it. One that is not cosigned by all
    /// is not taken (a witness may be down); one that `new` does not
    /// extend is a split view.
    fn witnessed(
        &self,
        new: &TreeHead,
        w: &WitnessedProof,
    ) -> Result<Option<(u64, String)>, LogProblem> {
        let (Some(coordinator), Some(held)) = (&self.coordinator, self.witnessed) else {
            return Ok(None);
        };
        let note = w.checkpoint.as_bytes();
        let Ok(checkpoint) = Checkpoint::open(note, &origin_of(coordinator), coordinator) else {
            return Ok(None);
        };
        let head = checkpoint.head;
        let all = self
            .witnesses
            .iter()
            .all(|t| matches!(t.cosigned_at(note), Ok(Some(_))));
        if !all || head.size <= held || head.size > new.size {
            return Ok(None);
        }
        let unwitnessed = |error| LogProblem::Unwitnessed {
            witnessed: head.size,
            answered: new.size,
            error,
        };
        if head.size == new.size {
            if head.root != new.root {
                return Err(unwitnessed(ProofError::RootMismatch));
            }
        } else {
            let p = w
                .consistency
                .as_ref()
                .filter(|p| p.from == head.size && p.to == new.size)
                .ok_or_else(|| {
                    LogProblem::Unproved(format!(
                        "that its log of {} records extends the one of {} its witnesses cosigned",
                        new.size, head.size
                    ))
                })?;
            verify_consistency(head.size, new.size, &head.root, &new.root, &p.proof)
                .map_err(unwitnessed)?;
        }
        Ok(Some((head.size, w.checkpoint.clone())))
    }

    /// Checks the proofs that came with `answered` (already verified as
    /// the coordinator's) against the anchor and the sample; returns how
    /// many proofs verified.
    pub(super) fn check(
        &self,
        answered: &Receipt,
        proofs: Option<&LogProofs>,
    ) -> Result<Checked, LogProblem> {
        let new = answered.tree;
        let mut verified = 0;
        let none = LogProofs::default();
        let proofs = proofs.unwrap_or(&none);
        if let Some((_, held)) = &self.anchor {
            if new.size < held.size {
                return Err(LogProblem::Shrank {
                    held: held.size,
                    answered: new.size,
                });
            }
            if held.size > 0 {
                let p = proofs
                    .consistency
                    .as_ref()
                    .filter(|p| p.from == held.size && p.to == new.size)
                    .ok_or_else(|| {
                        LogProblem::Unproved(format!(
                            "that its log of {} records extends the one of {} it signed before",
                            new.size, held.size
                        ))
                    })?;
                verify_consistency(held.size, new.size, &held.root, &new.root, &p.proof).map_err(
                    |error| LogProblem::Inconsistent {
                        held: held.size,
                        answered: new.size,
                        error,
                    },
                )?;
                verified += 1;
            }
        }
        for &(index, id) in &self.sample {
            let dropped = |error| LogProblem::Dropped { id, index, error };
            if index >= new.size {
                return Err(dropped(ProofError::IndexBeyondSize {
                    index,
                    size: new.size,
                }));
            }
            let p = proofs
                .inclusion
                .iter()
                .find(|p| p.index == index && p.size == new.size)
                .ok_or_else(|| {
                    LogProblem::Unproved(format!(
                        "that record {id} (log index {index}) is still in its log"
                    ))
                })?;
            verify_inclusion(
                index,
                new.size,
                &leaf_hash(id.as_bytes()),
                &p.proof,
                &new.root,
            )
            .map_err(dropped)?;
            verified += 1;
        }
        let witnessed = match &proofs.witnessed {
            Some(w) => self.witnessed(&new, w)?,
            None => None,
        };
        if witnessed.is_some() {
            verified += 1;
        }
        Ok(Checked {
            verified,
            witnessed,
        })
    }

    /// The evidence of a failed check.
    pub(super) fn fault(
        &self,
        answered: &Signed,
        proofs: Option<LogProofs>,
        problem: &LogProblem,
    ) -> LogFault {
        LogFault {
            detected_at_ms: chrono::Utc::now().timestamp_millis(),
            held: self.anchor.as_ref().map(|(s, _)| s.clone()),
            answered: answered.clone(),
            proofs,
            problem: problem.to_string(),
        }
    }
}

/// A receipt opened under the coordinator's key.
fn opened(signed: &Signed, coordinator: &PublicKey) -> Option<Receipt> {
    signed.open("receipt", RECEIPT_DOMAIN, coordinator).ok()
}

/// A receipt as the store keeps it (its signed JSON), opened under the
/// coordinator's key: `None` for another coordinator's or a damaged one.
fn opened_stored(bytes: &[u8], coordinator: &PublicKey) -> Option<Receipt> {
    serde_json::from_slice::<Signed>(bytes)
        .ok()
        .and_then(|s| opened(&s, coordinator))
}

/// What an audit of every delivered record found (all of it held).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogAudit {
    /// Delivered records proved in the coordinator's log.
    pub records_proved: u64,
    /// The size of the log head they were last proved under.
    pub size: u64,
}

/// Every record this phone delivered, by log index, from its receipts.
fn delivered(store: &Store, coordinator: &PublicKey) -> Result<Vec<(u64, RecordId)>, SyncError> {
    let mut all = std::collections::BTreeMap::new();
    for stored in store.receipts()? {
        let Some(receipt) = opened_stored(&stored.bytes, coordinator) else {
            continue;
        };
        for ack in receipt.accepted.iter().chain(&receipt.already) {
            if ack.index < receipt.tree.size {
                all.insert(ack.index, ack.id);
            }
        }
    }
    Ok(all.into_iter().collect())
}

/// Proves every record this phone delivered still in the coordinator's
/// log, on demand (a coordinator's dispute, before the phone is handed
/// back): contacts with no records, each asking the inclusion of up to
/// [`limits::MAX_LOG_PROVE`] of them and the consistency from the head
/// held, checked as at every sync; any failure is the sync's
/// [`SyncError::LogRewritten`], with its evidence kept. A coordinator of
/// protocol version 1 serves no proofs: refused as such.
pub fn audit_log(store: &Store, opts: &super::SyncOptions) -> Result<LogAudit, SyncError> {
    let enrollment = store.enrollment().ok_or(SyncError::NotEnrolled)?;
    let conn = opts
        .link
        .connection(&enrollment.url, enrollment.tls_sha256, opts.timeout)?;
    let all = delivered(store, &enrollment.coordinator)?;
    let mut summary = super::SyncSummary::default();
    let mut audit = LogAudit::default();
    // One contact even with nothing delivered: the head is still proved.
    let mut chunks: Vec<&[(u64, RecordId)]> = all.chunks(limits::MAX_LOG_PROVE).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for chunk in chunks {
        opts.cancel.check()?;
        let ask = LogAsk::with(store, &enrollment.coordinator, chunk.to_vec())?;
        super::send_batch(store, &conn, &enrollment, &[], &mut summary, ask)?;
        if conn.v1_only.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(SyncError::Refused {
                status: 404,
                code: "log_proofs_unsupported".into(),
                message: "this coordinator (protocol version 1) serves no log proofs".into(),
                retry_after_secs: None,
            });
        }
        audit.records_proved += chunk.len() as u64;
    }
    audit.size = store
        .log_anchor()?
        .and_then(|s| opened(&s, &enrollment.coordinator))
        .map_or(0, |r| r.tree.size);
    tracing::info!(
        records_proved = audit.records_proved,
        size = audit.size,
        "every delivered record proved in the coordinator's log"
    );
    Ok(audit)
}
