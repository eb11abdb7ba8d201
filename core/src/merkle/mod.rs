//! The coordinator's append-only log: RFC 6962 Merkle tree hashing.
//!
//! Leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || left ||
//! right)`, and the tree of `n` leaves splits at the largest power of two
//! below `n`. [`Frontier`] appends in O(log n) memory and time, which is all
//! a server needs to issue signed tree heads; checked against the
//! transparency-dev / certificate-transparency test vectors. `proof.rs`
//! makes and checks inclusion and consistency proofs; `stored.rs` makes
//! them from the nodes a coordinator's database keeps; `checkpoint.rs`
//! and `cosignature.rs` are the signed heads and witnesses' cosignatures.

mod checkpoint;
mod cosignature;
mod proof;
mod stored;

pub use checkpoint::{Checkpoint, CheckpointError, origin_of};
pub use cosignature::{CosignatureError, TrustedWitness, Witness};
pub use proof::{
    ProofError, ProofPlan, consistency_proof, inclusion_proof, tree_hash, verify_consistency,
    verify_inclusion,
};
pub use stored::{MissingNode, NodeId, STRIDE, stored_nodes};

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::record::Sha256Digest;

/// Hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Sha256Digest {
    let mut c = Context::new(&SHA256);
    c.update(&[0x00]);
    c.update(data);
    digest(c)
}

/// Hash of an interior node.
pub fn node_hash(left: &Sha256Digest, right: &Sha256Digest) -> Sha256Digest {
    let mut c = Context::new(&SHA256);
    c.update(&[0x01]);
    c.update(left.as_bytes());
    c.update(right.as_bytes());
    digest(c)
}

fn digest(c: Context) -> Sha256Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    Sha256Digest::from_bytes(out)
}

/// The roots of the perfect subtrees that make up a tree of `size` leaves,
/// largest first: enough to append and to compute the root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    size: u64,
    /// `(height, root)` of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(u32, Sha256Digest)>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its hash, from [`leaf_hash`]); returns its index.
    pub fn push(&mut self, leaf: Sha256Digest) -> u64 {
        self.push_with(leaf, |_, _| {})
    }

    /// [`Frontier::push`], handing `completed` each perfect subtree (above
    /// the leaves) that this leaf completes, smallest first.
    fn push_with(
        &mut self,
        leaf: Sha256Digest,
        mut completed: impl FnMut(NodeId, Sha256Digest),
    ) -> u64 {
        let index = self.size;
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.subtrees.last() {
            if h != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (h + 1, node_hash(&left, &node.1));
            let id = NodeId {
                level: node.0,
                index: index >> node.0,
            };
            completed(id, node.1);
        }
        self.subtrees.push(node);
        self.size += 1;
        index
    }

    /// The Merkle tree hash of all leaves so far (SHA-256 of nothing when
    /// empty, as RFC 6962 defines).
    pub fn root(&self) -> Sha256Digest {
        let mut it = self.subtrees.iter().rev();
        match it.next() {
            None => Sha256Digest::of(b""),
            Some(&(_, last)) => it.fold(last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

/// A tree size and its root: what a receipt commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of leaves.
    pub size: u64,
    /// Merkle tree hash.
    pub root: Sha256Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves and roots published with RFC 6962's reference
    /// implementation (certificate-transparency / transparency-dev).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_reference_vectors_at_every_size() {
        let mut f = Frontier::new();
        assert_eq!(f.root().to_string(), ROOTS[0]);
        for (i, leaf) in LEAVES.iter().enumerate() {
            assert_eq!(f.push(leaf_hash(&hex::decode(leaf).unwrap())), i as u64);
            assert_eq!(f.root().to_string(), ROOTS[i + 1], "size {}", i + 1);
        }
    }

    /// The frontier agrees with the recursive definition for many sizes.
    #[test]
    fn frontier_matches_the_recursive_definition() {
        fn mth(leaves: &[Sha256Digest]) -> Sha256Digest {
            match leaves.len() {
                0 => Sha256Digest::of(b""),
                1 => leaves[0],
                n => {
                    // The largest power of two below n.
                    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        let mut f = Frontier::new();
        let mut all = Vec::new();
        for i in 0u32..70 {
            let l = leaf_hash(&i.to_be_bytes());
            all.push(l);
            f.push(l);
            assert_eq!(f.root(), mth(&all), "size {}", i + 1);
        }
    }
}
