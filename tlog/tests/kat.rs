//! Known answers of RFC 6962 (the reference tree of transparency-dev/merkle's `testonly`
//! package: eight leaves, its roots and proofs) for the producer side, plus the stored-hash
//! layout against a naive recursive tree hash.

use proptest::prelude::*;
use tlog::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, node_hash, stored_hash_count,
    stored_hash_index, stored_hashes_for_leaf, tree_hash,
};

include!("../../fixtures/proofs/rfc6962_vectors.rs");

fn h(s: &str) -> Hash {
    Hash(hex::decode(s).unwrap().try_into().unwrap())
}

/// Appends every leaf as the store would: the hashes of each append go at
/// `stored_hash_index(0, n)` onward, which must be the end of the storage so far.
fn build(leaves: &[Vec<u8>]) -> Vec<Hash> {
    let mut stored: Vec<Hash> = Vec::new();
    for (n, data) in leaves.iter().enumerate() {
        let n = n as u64;
        assert_eq!(stored_hash_index(0, n).unwrap(), stored.len() as u64);
        let new = stored_hashes_for_leaf(n, leaf_hash(data), &stored).unwrap();
        stored.extend(new);
        assert_eq!(stored_hash_count(n + 1).unwrap(), stored.len() as u64);
    }
    stored
}

fn reference() -> Vec<Hash> {
    build(&LEAVES.map(|l| hex::decode(l).unwrap()))
}

/// RFC 6962 MTH, straight from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => tlog::EMPTY_ROOT,
        1 => leaves[0],
        n => {
            // k: the largest power of two below n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

#[test]
fn roots_match_rfc6962_reference() {
    let stored = reference();
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(
            tree_hash(size as u64, &stored).unwrap(),
            h(root),
            "size {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_reference() {
    let stored = reference();
    for &(size, index, proof) in INCLUSION {
        let want: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            inclusion_proof(size, index, &stored).unwrap(),
            want,
            "size {size} leaf {index}"
        );
    }
}

#[test]
fn consistency_proofs_match_reference() {
    let stored = reference();
    for &(old, new, proof) in CONSISTENCY {
        let want: Vec<Hash> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            consistency_proof(new, old, &stored).unwrap(),
            want,
            "{old} -> {new}"
        );
    }
}

#[test]
fn about_two_stored_hashes_per_leaf() {
    // Each complete subtree once: 2n - 1 hashes for n a power of two, never more than 2n.
    for n in 1..=1024u64 {
        let count = stored_hash_count(n).unwrap();
        assert!(count < 2 * n, "{n}: {count}");
        if n.is_power_of_two() {
            assert_eq!(count, 2 * n - 1);
        }
    }
}

proptest! {
    #[test]
    fn tree_hash_is_the_rfc_definition(leaves in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..70)) {
        let stored = build(&leaves);
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        for size in 0..=leaves.len() {
            prop_assert_eq!(tree_hash(size as u64, &stored).unwrap(), naive_root(&hashes[..size]));
        }
    }
}
