//! Inclusion and consistency proofs of the log (RFC 6962 §2.1.1-2.1.2 to
//! make them, RFC 9162 §2.1.3-2.1.4 to check them), so that a phone, a
//! witness or an outside verifier can hold the coordinator to its log
//! without trusting it: a record is in the tree a signed head names, and a
//! later head extends an earlier one instead of rewriting it.
//!
//! A [`ProofPlan`] is the RFC's recursion once, as the leaf ranges whose
//! hashes make the proof: hashed here from every leaf, and in `stored.rs`
//! from the nodes a database keeps.
//!
//! The checks are the RFC's algorithms over hashes only; they are tested
//! against transparency-dev's published vectors
//! (`tests/vectors/merkle-proofs.json`) and against the proofs made here
//! for every pair of sizes up to a few dozen leaves.

use super::node_hash;
use crate::record::Sha256Digest;

/// Why a proof does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexBeyondSize { index: u64, size: u64 },
    /// The sizes cannot be proved consistent (the second is smaller, or
    /// the first is empty: every tree extends the empty one).
    #[error("no consistency proof exists from size {from} to size {to}")]
    Sizes { from: u64, to: u64 },
    /// The proof has more hashes than these sizes need.
    #[error("the proof has more hashes than a tree of these sizes needs")]
    TooLong,
    /// The proof has fewer hashes than these sizes need.
    #[error("the proof has fewer hashes than a tree of these sizes needs")]
    TooShort,
    /// The proof leads to another root: the leaf is not in the tree, or
    /// the later tree does not extend the earlier one.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// The Merkle tree hash of `leaves` (leaf hashes), RFC 6962 §2.1.
pub fn tree_hash(leaves: &[Sha256Digest]) -> Sha256Digest {
    match leaves.len() {
        0 => Sha256Digest::of(b""),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&tree_hash(&leaves[..k]), &tree_hash(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 6962
/// §2.1.1), `None` when the index is outside the tree.
pub fn inclusion_proof(leaves: &[Sha256Digest], index: u64) -> Option<Vec<Sha256Digest>> {
    let plan = ProofPlan::inclusion(index, leaves.len() as u64).ok()?;
    Some(plan.hashed_from(leaves))
}

/// The proof that the tree of `leaves` extends its first `size` leaves
/// (RFC 6962 §2.1.2), `None` when no such proof exists.
pub fn consistency_proof(leaves: &[Sha256Digest], size: u64) -> Option<Vec<Sha256Digest>> {
    let plan = ProofPlan::consistency(size, leaves.len() as u64).ok()?;
    Some(plan.hashed_from(leaves))
}

/// A proof to be made: the subtree hashes it consists of, as leaf ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    /// `[start, end)` of each hash of the proof, in proof order.
    pub(super) ranges: Vec<(u64, u64)>,
}

impl ProofPlan {
    /// The proof's hashes, from every leaf of the tree.
    fn hashed_from(&self, leaves: &[Sha256Digest]) -> Vec<Sha256Digest> {
        self.ranges
            .iter()
            .map(|&(s, e)| tree_hash(&leaves[s as usize..e as usize]))
            .collect()
    }

    /// The audit path of leaf `index` in the tree of `size` leaves
    /// (RFC 6962 §2.1.1).
    pub fn inclusion(index: u64, size: u64) -> Result<Self, ProofError> {
        fn path(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
            if end - start <= 1 {
                return;
            }
            let k = split(end - start);
            if m < k {
                path(m, start, start + k, out);
                out.push((start + k, end));
            } else {
                path(m - k, start + k, end, out);
                out.push((start, start + k));
            }
        }
        if index >= size {
            return Err(ProofError::IndexBeyondSize { index, size });
        }
        let mut ranges = Vec::new();
        path(index, 0, size, &mut ranges);
        Ok(Self { ranges })
    }

    /// The proof that the tree of `to` leaves extends its first `from`
    /// leaves (RFC 6962 §2.1.2).
    pub fn consistency(from: u64, to: u64) -> Result<Self, ProofError> {
        fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
            if m == end - start {
                if !whole {
                    out.push((start, end));
                }
                return;
            }
            let k = split(end - start);
            if m <= k {
                subproof(m, start, start + k, whole, out);
                out.push((start + k, end));
            } else {
                subproof(m - k, start + k, end, false, out);
                out.push((start, start + k));
            }
        }
        if from == 0 || from > to {
            return Err(ProofError::Sizes { from, to });
        }
        let mut ranges = Vec::new();
        subproof(from, 0, to, true, &mut ranges);
        Ok(Self { ranges })
    }
}

/// Checks that `leaf` (a leaf hash) is leaf `index` of the tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Sha256Digest,
    proof: &[Sha256Digest],
    root: &Sha256Digest,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::TooLong);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        Err(ProofError::TooShort)
    } else if r != *root {
        Err(ProofError::RootMismatch)
    } else {
        Ok(())
    }
}

/// Checks that the tree of `to` leaves with root `to_root` extends the
/// tree of `from` leaves with root `from_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Sha256Digest,
    to_root: &Sha256Digest,
    proof: &[Sha256Digest],
) -> Result<(), ProofError> {
    if from == 0 || to < from {
        return Err(ProofError::Sizes { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::TooLong);
        }
        return if from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::TooShort);
    }
    // A first tree that is a whole subtree is its own first hash.
    let mut path: Vec<Sha256Digest> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::TooLong);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        Err(ProofError::TooShort)
    } else if fr != *from_root || sr != *to_root {
        Err(ProofError::RootMismatch)
    } else {
        Ok(())
    }
}
