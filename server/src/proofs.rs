//! The log's checkpoint and proofs (`docs/protocol.md`, "Log proofs"),
//! made from what the storage keeps: a proof is planned, its stored hashes
//! read with the log's size in one call ([`Storage::log_hashes`]), and
//! assembled: the same few reads whatever the log's size. Nothing here
//! knows HTTP.

use observer_core::identity::SigningKey;
use std::collections::HashMap;

use observer_core::merkle::{
    Checkpoint, MissingNode, NodeId, ProofError, ProofPlan, TreeHead, origin_of,
};
use observer_core::protocol::{ConsistencyProof, InclusionProof, LogProofs, WitnessedProof};
use observer_core::record::Sha256Digest;

use crate::storage::{Storage, StorageError};

/// Why a proof was not made.
#[derive(Debug, thiserror::Error)]
pub enum ProofRefused {
    /// The proof asks about a tree larger than the log is.
    #[error("the log has {size} leaves; a tree of {asked} does not exist yet")]
    BeyondLog { asked: u64, size: u64 },
    /// No such proof exists (an index outside its tree, sizes out of order).
    #[error(transparent)]
    Impossible(#[from] ProofError),
    /// A node the proof needs is not stored: the log's nodes are damaged.
    #[error(transparent)]
    Damaged(#[from] MissingNode),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The log's head now and its signed checkpoint (C2SP `tlog-checkpoint`
/// in a `signed-note`, under the log's name [`origin_of`] the key).
pub fn checkpoint(
    storage: &dyn Storage,
    key: &SigningKey,
) -> Result<(TreeHead, Vec<u8>), StorageError> {
    let head = storage.tree_head()?;
    let note = Checkpoint {
        origin: origin_of(&key.public_key()),
        head,
    }
    .sign(key)
    .expect("a key's own origin names a log");
    Ok((head, note))
}

/// The audit path of leaf `index` in the tree of `size` leaves.
pub fn inclusion(
    storage: &dyn Storage,
    index: u64,
    size: u64,
) -> Result<InclusionProof, ProofRefused> {
    let plan = ProofPlan::inclusion(index, size)?;
    let proof = made(storage, &plan, size)?;
    Ok(InclusionProof { index, size, proof })
}

/// The proof that the tree of `to` leaves extends its first `from`.
pub fn consistency(
    storage: &dyn Storage,
    from: u64,
    to: u64,
) -> Result<ConsistencyProof, ProofRefused> {
    let plan = ProofPlan::consistency(from, to)?;
    let proof = made(storage, &plan, to)?;
    Ok(ConsistencyProof { from, to, proof })
}

/// `plan`'s hashes for a tree of `size` leaves.
fn made(
    storage: &dyn Storage,
    plan: &ProofPlan,
    size: u64,
) -> Result<Vec<Sha256Digest>, ProofRefused> {
    Ok(plan.assemble(&stored(storage, &plan.needs(), size)?)?)
}

/// The stored hashes `needs` names, for a tree of `size` leaves, which
/// must exist: the log only grows, so every node of a tree it once had
/// stays stored.
fn stored(
    storage: &dyn Storage,
    needs: &[NodeId],
    size: u64,
) -> Result<HashMap<NodeId, Sha256Digest>, ProofRefused> {
    let read = storage.log_hashes(needs)?;
    if size > read.size {
        return Err(ProofRefused::BeyondLog {
            asked: size,
            size: read.size,
        });
    }
    Ok(read.hashes)
}

/// The proofs a phone asked for with its sync (`log_have`, `log_prove`),
/// at the size of the tree head its receipt signs: one storage read for
/// all of them. What cannot be proved (a size the log no longer reaches,
/// an index beyond it) is left out, and the phone, finding it missing,
/// says the log was rewritten.
///
/// `witnessed`, the newest witnessed checkpoint, goes with the proof from
/// its size to `size` when it is no larger (a node whose receipt is older
/// than the witnessed head leaves it for the next sync).
pub fn for_sync(
    storage: &dyn Storage,
    have: Option<u64>,
    prove: &[u64],
    witnessed: Option<(TreeHead, String)>,
    size: u64,
) -> Result<LogProofs, ProofRefused> {
    let consistency = have
        .filter(|&h| h > 0)
        .and_then(|h| ProofPlan::consistency(h, size).ok().map(|p| (h, p)));
    let witnessed = witnessed.filter(|(head, _)| head.size <= size);
    let witnessed_plan = witnessed
        .as_ref()
        .map(|(head, _)| head.size)
        .filter(|&w| w > 0 && w < size)
        .and_then(|w| ProofPlan::consistency(w, size).ok().map(|p| (w, p)));
    let inclusion: Vec<(u64, ProofPlan)> = prove
        .iter()
        .filter_map(|&i| ProofPlan::inclusion(i, size).ok().map(|p| (i, p)))
        .collect();
    let mut needs: Vec<_> = consistency
        .iter()
        .map(|(_, p)| p)
        .chain(inclusion.iter().map(|(_, p)| p))
        .chain(witnessed_plan.iter().map(|(_, p)| p))
        .flat_map(ProofPlan::needs)
        .collect();
    needs.sort_unstable();
    needs.dedup();
    let hashes = stored(storage, &needs, size)?;
    // Both consistency proofs (from the phone's head, from the witnessed
    // one) end at `size` and are made from the same read.
    let to_size = |planned: Option<(u64, ProofPlan)>| {
        planned
            .map(|(from, plan)| {
                Ok::<_, MissingNode>(ConsistencyProof {
                    from,
                    to: size,
                    proof: plan.assemble(&hashes)?,
                })
            })
            .transpose()
    };
    Ok(LogProofs {
        consistency: to_size(consistency)?,
        inclusion: inclusion
            .into_iter()
            .map(|(index, plan)| {
                Ok(InclusionProof {
                    index,
                    size,
                    proof: plan.assemble(&hashes)?,
                })
            })
            .collect::<Result<_, MissingNode>>()?,
        witnessed: witnessed
            .map(|(_, checkpoint)| {
                Ok::<_, MissingNode>(WitnessedProof {
                    checkpoint,
                    consistency: to_size(witnessed_plan)?,
                })
            })
            .transpose()?,
    })
}
