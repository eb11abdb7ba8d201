//! The log's proofs against transparency-dev's published vectors
//! (`tests/vectors/merkle-proofs.json`, copied unchanged from
//! transparency-dev/merkle's `testdata`), and the proofs this crate makes
//! against the checks, for every leaf and every pair of sizes of small
//! trees.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use observer_core::merkle::{
    ProofError, consistency_proof, inclusion_proof, leaf_hash, tree_hash, verify_consistency,
    verify_inclusion,
};
use observer_core::record::Sha256Digest;
use serde_json::Value;

fn vectors() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/merkle-proofs.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A hash from the vectors; `None` for the deliberately malformed ones
/// (not 32 bytes), which no Observer type can even hold.
fn hash(v: &Value) -> Option<Sha256Digest> {
    let bytes = STANDARD.decode(v.as_str()?).ok()?;
    Some(Sha256Digest::from_bytes(bytes.try_into().ok()?))
}

fn proof(v: &Value) -> Option<Vec<Sha256Digest>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

/// Runs `check` on every published case of `kind` and asserts that it
/// fails exactly where the case says it must. `check` answers `None` for
/// a case whose hashes are not 32 bytes: those are refused before any
/// check (no Observer type holds one), so they are counted, not judged.
fn agrees_with_every_published_case(
    kind: &str,
    check: impl Fn(&Value) -> Option<Result<(), ProofError>>,
) {
    let v = vectors();
    let cases = v[kind].as_array().unwrap();
    assert!(cases.len() > 90);
    let (mut held, mut unparsed) = (0, 0);
    for c in cases {
        let Some(verdict) = check(c) else {
            unparsed += 1;
            continue;
        };
        assert_eq!(
            verdict.is_err(),
            c["wantErr"].as_bool().unwrap(),
            "{}: {verdict:?}",
            c["file"]
        );
        held += usize::from(verdict.is_ok());
    }
    assert!(held >= 4, "the happy paths hold");
    assert!(unparsed < 30, "{unparsed}");
}

#[test]
fn inclusion_checks_agree_with_every_published_case() {
    agrees_with_every_published_case("inclusion", |c| {
        Some(verify_inclusion(
            c["leafIdx"].as_u64().unwrap(),
            c["treeSize"].as_u64().unwrap(),
            &hash(&c["leafHash"])?,
            &proof(&c["proof"])?,
            &hash(&c["root"])?,
        ))
    });
}

#[test]
fn consistency_checks_agree_with_every_published_case() {
    // One published case expects a pair of equal 12-byte "roots" to pass;
    // here they cannot even be read.
    agrees_with_every_published_case("consistency", |c| {
        Some(verify_consistency(
            c["size1"].as_u64().unwrap(),
            c["size2"].as_u64().unwrap(),
            &hash(&c["root1"])?,
            &hash(&c["root2"])?,
            &proof(&c["proof"])?,
        ))
    });
}

/// The published happy paths are exactly the proofs made here from the
/// reference leaves (RFC 6962's test data: the eight leaves below).
#[test]
fn made_proofs_equal_the_published_ones() {
    let leaves: Vec<Sha256Digest> = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| leaf_hash(&hex::decode(h).unwrap()))
    .collect();
    let v = vectors();
    let mut compared = 0;
    for c in v["inclusion"].as_array().unwrap() {
        if !c["file"].as_str().unwrap().ends_with("happy-path.json") {
            continue;
        }
        let size = c["treeSize"].as_u64().unwrap() as usize;
        let made = inclusion_proof(&leaves[..size], c["leafIdx"].as_u64().unwrap()).unwrap();
        assert_eq!(Some(made), proof(&c["proof"]), "{}", c["file"]);
        assert_eq!(Some(tree_hash(&leaves[..size])), hash(&c["root"]));
        compared += 1;
    }
    for c in v["consistency"].as_array().unwrap() {
        if !c["file"].as_str().unwrap().ends_with("happy-path.json") {
            continue;
        }
        let (s1, s2) = (c["size1"].as_u64().unwrap(), c["size2"].as_u64().unwrap());
        let made = consistency_proof(&leaves[..s2 as usize], s1).unwrap();
        assert_eq!(Some(made), proof(&c["proof"]), "{}", c["file"]);
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
}

/// Every proof made for small trees checks, and every altered one fails:
/// another leaf, another index, a hash flipped, a hash dropped or added.
#[test]
fn made_proofs_check_and_altered_ones_fail() {
    let leaves: Vec<Sha256Digest> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let other = leaf_hash(b"not in the log");
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let root = tree_hash(tree);
        for index in 0..size as u64 {
            let p = inclusion_proof(tree, index).unwrap();
            let leaf = &tree[index as usize];
            assert_eq!(
                verify_inclusion(index, size as u64, leaf, &p, &root),
                Ok(())
            );
            assert!(verify_inclusion(index, size as u64, &other, &p, &root).is_err());
            if size > 1 {
                let next = (index + 1) % size as u64;
                assert!(
                    verify_inclusion(next, size as u64, leaf, &p, &root).is_err(),
                    "size {size} index {index}"
                );
                let mut flipped = p.clone();
                flipped[0] = other;
                assert!(verify_inclusion(index, size as u64, leaf, &flipped, &root).is_err());
                assert!(verify_inclusion(index, size as u64, leaf, &p[1..], &root).is_err());
            }
            let mut longer = p.clone();
            longer.push(other);
            assert_eq!(
                verify_inclusion(index, size as u64, leaf, &longer, &root),
                Err(ProofError::TooLong)
            );
        }
        assert_eq!(inclusion_proof(tree, size as u64), None);
        assert_eq!(
            verify_inclusion(size as u64, size as u64, &tree[0], &[], &root),
            Err(ProofError::IndexBeyondSize {
                index: size as u64,
                size: size as u64
            })
        );
        for from in 1..=size {
            let old = tree_hash(&leaves[..from]);
            let p = consistency_proof(tree, from as u64).unwrap();
            assert_eq!(
                verify_consistency(from as u64, size as u64, &old, &root, &p),
                Ok(()),
                "{from} -> {size}"
            );
            if from < size {
                // A rewritten history: the old tree with one leaf changed.
                let mut forged = leaves[..from].to_vec();
                forged[from - 1] = other;
                let forged_root = tree_hash(&forged);
                assert!(
                    verify_consistency(from as u64, size as u64, &forged_root, &root, &p).is_err()
                );
                assert!(
                    verify_consistency(from as u64, size as u64, &old, &root, &p[1..]).is_err()
                );
                let mut longer = p.clone();
                longer.push(other);
                assert!(
                    verify_consistency(from as u64, size as u64, &old, &root, &longer).is_err()
                );
            }
        }
        assert_eq!(consistency_proof(tree, 0), None);
        assert_eq!(
            verify_consistency(0, size as u64, &root, &root, &[]),
            Err(ProofError::Sizes {
                from: 0,
                to: size as u64
            })
        );
        assert_eq!(consistency_proof(tree, size as u64 + 1), None);
    }
}
