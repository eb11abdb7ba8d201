//! The coordinator's log proofs on the wire (`GET /v1/log/...`). They need
//! no signature of their own: each is checked against a tree head the
//! coordinator signed (a checkpoint or a receipt), and a proof that does
//! not lead to that head proves nothing.

use serde::{Deserialize, Serialize};

use crate::record::Sha256Digest;

/// Leaf `index` is in the tree of `size` leaves: the RFC 6962 audit path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The leaf's index.
    pub index: u64,
    /// The tree's size.
    pub size: u64,
    /// The audit path, from the leaf up.
    pub proof: Vec<Sha256Digest>,
}

/// The tree of `to` leaves extends the tree of its first `from` leaves:
/// the RFC 6962 consistency proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof's hashes.
    pub proof: Vec<Sha256Digest>,
}
