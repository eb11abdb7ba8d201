//! Proofs made from what a coordinator's database keeps, in O(log n)
//! reads: the leaves (one per record, `leaf_hash(id)`) and the roots of
//! the perfect subtrees at every [`STRIDE`]-th level, which the log
//! appends as its frontier merges them ([`Frontier::push_keeping`]).
//!
//! Why not every level: a node per level costs one more database row per
//! record (about as many as the records themselves) on the election-night
//! ingest path; a node at every fourth level costs one row per fifteen
//! records, and any perfect subtree is then at most `2^(STRIDE-1)` stored
//! hashes away. An inclusion proof at ten million leaves reads at most
//! 24 × 8 hashes, in one query.
//!
//! Making a proof is two steps with the database in between: a
//! [`ProofPlan`] (`proof.rs`) names the stored hashes it needs ([`ProofPlan::needs`]),
//! the storage reads them, and [`ProofPlan::assemble`] hashes them into the
//! RFC 6962 proof, the same bytes [`super::inclusion_proof`] and
//! [`super::consistency_proof`] make from every leaf.

use std::collections::HashMap;

use super::{Frontier, ProofPlan, node_hash};
use crate::record::Sha256Digest;

/// Every `STRIDE`-th level of the tree is stored (level 0, the leaves,
/// lives in the records themselves).
pub const STRIDE: u32 = 4;

/// A perfect subtree of the log: it covers leaves `index << level` up to
/// `(index + 1) << level`. Level 0 is a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    /// Whether the storage keeps this node (leaves are kept as records).
    pub fn is_stored(self) -> bool {
        self.level.is_multiple_of(STRIDE)
    }
}

/// How many nodes above the leaves a log of `size` leaves keeps: the
/// storage compares it with what it holds to know that nothing is missing.
pub fn stored_nodes(size: u64) -> u64 {
    (1..)
        .map(|k| STRIDE * k)
        .take_while(|&level| level < 64)
        .map(|level| size >> level)
        .take_while(|&n| n > 0)
        .sum()
}

impl Frontier {
    /// [`Frontier::push`], adding to `kept` each perfect subtree this leaf
    /// completes at a stored level above the leaves: what the storage
    /// writes beside the record, in the same transaction.
    pub fn push_keeping(
        &mut self,
        leaf: Sha256Digest,
        kept: &mut Vec<(NodeId, Sha256Digest)>,
    ) -> u64 {
        self.push_with(leaf, |id, hash| {
            if id.is_stored() {
                kept.push((id, hash));
            }
        })
    }
}

/// A stored hash the storage did not have: the log's nodes are damaged or
/// the proof was asked beyond the log's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the log's node at level {} index {} is not stored", .0.level, .0.index)]
pub struct MissingNode(pub NodeId);

impl ProofPlan {
    /// The stored hashes (leaves at level 0, nodes at stored levels) the
    /// proof is made of, sorted and each once: one read of the storage.
    pub fn needs(&self) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self
            .ranges
            .iter()
            .flat_map(|&(s, e)| perfect_subtrees(s, e))
            .flat_map(stored_below)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The proof's hashes, from the stored hashes [`ProofPlan::needs`]
    /// named (more may be given).
    pub fn assemble(
        &self,
        stored: &HashMap<NodeId, Sha256Digest>,
    ) -> Result<Vec<Sha256Digest>, MissingNode> {
        self.ranges
            .iter()
            .map(|&(s, e)| {
                let parts = perfect_subtrees(s, e)
                    .map(|id| subtree_hash(id, stored))
                    .collect::<Result<Vec<_>, _>>()?;
                // A range of the RFC's recursion is its perfect subtrees
                // from the largest, joined from the right.
                let mut it = parts.into_iter().rev();
                let last = it.next().expect("a range of a proof is never empty");
                Ok(it.fold(last, |acc, left| node_hash(&left, &acc)))
            })
            .collect()
    }
}

/// The perfect subtrees that make up leaves `[start, end)`, largest first,
/// each as large as its alignment allows.
fn perfect_subtrees(start: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while level > 0 && (1u64 << level) > end - at {
            level -= 1;
        }
        let id = NodeId {
            level,
            index: at >> level,
        };
        at += 1 << level;
        Some(id)
    })
}

/// The stored nodes a perfect subtree is made of: itself when stored,
/// otherwise its descendants at the stored level below it.
fn stored_below(id: NodeId) -> impl Iterator<Item = NodeId> {
    let up = id.level % STRIDE;
    let level = id.level - up;
    let first = id.index << up;
    (first..first + (1 << up)).map(move |index| NodeId { level, index })
}

/// The hash of a perfect subtree from the stored nodes below it.
fn subtree_hash(
    id: NodeId,
    stored: &HashMap<NodeId, Sha256Digest>,
) -> Result<Sha256Digest, MissingNode> {
    let mut row = stored_below(id)
        .map(|n| stored.get(&n).copied().ok_or(MissingNode(n)))
        .collect::<Result<Vec<_>, _>>()?;
    while row.len() > 1 {
        row = row.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    Ok(row[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{
        ProofError, consistency_proof, inclusion_proof, leaf_hash, tree_hash, verify_consistency,
        verify_inclusion,
    };

    /// A log of `n` leaves as a database holds it: the leaves and the
    /// nodes `push_keeping` handed over.
    fn stored_log(n: u64) -> (Vec<Sha256Digest>, HashMap<NodeId, Sha256Digest>, Frontier) {
        let mut f = Frontier::new();
        let mut leaves = Vec::new();
        let mut stored = HashMap::new();
        let mut kept = Vec::new();
        for i in 0..n {
            let l = leaf_hash(&i.to_be_bytes());
            leaves.push(l);
            stored.insert(NodeId { level: 0, index: i }, l);
            assert_eq!(f.push_keeping(l, &mut kept), i);
        }
        for (id, h) in kept {
            assert!(stored.insert(id, h).is_none(), "{id:?} kept twice");
        }
        (leaves, stored, f)
    }

    #[test]
    fn the_kept_nodes_are_the_stored_levels_perfect_subtrees() {
        for n in [0u64, 1, 15, 16, 17, 255, 256, 257, 300, 4096, 5000] {
            let (leaves, stored, f) = stored_log(n);
            assert_eq!(f.root(), tree_hash(&leaves), "size {n}");
            let nodes: Vec<_> = stored.iter().filter(|(id, _)| id.level > 0).collect();
            assert_eq!(nodes.len() as u64, stored_nodes(n), "size {n}");
            for (id, h) in nodes {
                assert_eq!(id.level % STRIDE, 0);
                let start = (id.index << id.level) as usize;
                let end = start + (1usize << id.level);
                assert_eq!(*h, tree_hash(&leaves[start..end]), "{id:?}");
            }
        }
    }

    #[test]
    fn proofs_from_stored_nodes_are_the_proofs_from_every_leaf() {
        let (leaves, stored, _) = stored_log(300);
        for size in 1..=leaves.len() as u64 {
            let tree = &leaves[..size as usize];
            let root = tree_hash(tree);
            for index in (0..size).step_by(if size > 80 { 7 } else { 1 }) {
                let plan = ProofPlan::inclusion(index, size).unwrap();
                let proof = plan.assemble(&stored).unwrap();
                assert_eq!(Some(proof.clone()), inclusion_proof(tree, index));
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
            }
            for from in (1..=size).step_by(if size > 80 { 5 } else { 1 }) {
                let plan = ProofPlan::consistency(from, size).unwrap();
                let proof = plan.assemble(&stored).unwrap();
                assert_eq!(Some(proof.clone()), consistency_proof(tree, from));
                let from_root = tree_hash(&leaves[..from as usize]);
                verify_consistency(from, size, &from_root, &root, &proof).unwrap();
            }
        }
    }

    #[test]
    fn a_plan_reads_only_stored_hashes_and_few_of_them() {
        let size = 10_000_000u64;
        for index in [0, 1, 4_999_999, size - 1] {
            let needs = ProofPlan::inclusion(index, size).unwrap().needs();
            assert!(needs.iter().all(|id| id.is_stored()));
            // 24 hashes, each at most 2^(STRIDE-1) stored ones away.
            assert!(needs.len() <= 24 * 8, "{} reads", needs.len());
        }
        let needs = ProofPlan::consistency(9_999_000, size).unwrap().needs();
        assert!(needs.iter().all(|id| id.is_stored()) && needs.len() <= 48 * 8);
    }

    #[test]
    fn impossible_proofs_and_missing_nodes_are_named() {
        assert_eq!(
            ProofPlan::inclusion(5, 5),
            Err(ProofError::IndexBeyondSize { index: 5, size: 5 })
        );
        assert_eq!(
            ProofPlan::consistency(0, 5),
            Err(ProofError::Sizes { from: 0, to: 5 })
        );
        assert_eq!(
            ProofPlan::consistency(6, 5),
            Err(ProofError::Sizes { from: 6, to: 5 })
        );
        assert_eq!(ProofPlan::consistency(5, 5).unwrap().needs(), vec![]);
        let (_, mut stored, _) = stored_log(64);
        let gone = NodeId { level: 4, index: 1 };
        stored.remove(&gone);
        let plan = ProofPlan::inclusion(0, 64).unwrap();
        assert!(plan.needs().contains(&gone));
        assert_eq!(plan.assemble(&stored), Err(MissingNode(gone)));
    }
}
