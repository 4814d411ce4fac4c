//! Known answers of RFC 6962 (the reference tree of transparency-dev/merkle's `testonly`
//! package: eight leaves, its roots and proofs) for the producer side, plus the stored-hash
//! layout against a naive recursive tree hash.

use proptest::prelude::*;
use tlog::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, node_hash, stored_hash_count,
    stored_hash_index, stored_hashes_for_leaf, tree_hash,
};

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

/// Roots of the reference tree by size 0..=8.
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

/// (size, leaf index, proof).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (1, 0, &[]),
    (
        2,
        0,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        2,
        1,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        3,
        2,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        5,
        1,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        8,
        0,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        8,
        5,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

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
