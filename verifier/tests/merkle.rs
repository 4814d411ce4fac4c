//! The checker's proof verification: RFC 6962 known answers (the reference tree of
//! transparency-dev/merkle: eight leaves, its roots and proofs), the mutation classes of
//! transparency-dev's test corpus applied to every known answer, and agreement with the
//! producer (`tlog`, a separate implementation) for every tree size 1..=64.

use proptest::prelude::*;
use verifier::merkle::{Digest32, ProofError, empty_root, verify_consistency, verify_inclusion};

include!("../../fixtures/proofs/rfc6962_vectors.rs");

fn d(s: &str) -> Digest32 {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn leaf(i: u64) -> Vec<u8> {
    hex::decode(LEAVES[i as usize]).unwrap()
}

fn proof(p: &[&str]) -> Vec<Digest32> {
    p.iter().map(|s| d(s)).collect()
}

/// Every way transparency-dev's corpus bends an inclusion case; each must be refused.
fn inclusion_mutations(
    size: u64,
    index: u64,
    root: Digest32,
    p: &[Digest32],
) -> Vec<(String, u64, u64, Digest32, Vec<Digest32>)> {
    let mut out = Vec::new();
    let mut push = |what: &str, s: u64, i: u64, r: Digest32, q: Vec<Digest32>| {
        out.push((what.to_owned(), s, i, r, q))
    };
    push("index + 1", size, index + 1, root, p.to_vec());
    if index > 0 {
        push("index - 1", size, index - 1, root, p.to_vec());
    }
    push("index xor 2", size, index ^ 2, root, p.to_vec());
    push("size * 2", size * 2, index, root, p.to_vec());
    push("size / 2", size / 2, index, root, p.to_vec());
    // Not "size + 1": for some leaves a tree one larger has the same proof shape and the same
    // root computation, which is why the size must come from the signed checkpoint, never from
    // the proof.
    push("empty root", size, index, empty_root(), p.to_vec());
    push("other root", size, index, [0x42; 32], p.to_vec());
    push(
        "preceding garbage",
        size,
        index,
        root,
        [vec![[0u8; 32]], p.to_vec()].concat(),
    );
    push(
        "trailing garbage",
        size,
        index,
        root,
        [p.to_vec(), vec![[0u8; 32]]].concat(),
    );
    push(
        "trailing root",
        size,
        index,
        root,
        [p.to_vec(), vec![root]].concat(),
    );
    push(
        "preceding root",
        size,
        index,
        root,
        [vec![root], p.to_vec()].concat(),
    );
    for (k, _) in p.iter().enumerate() {
        let mut q = p.to_vec();
        q[k][3] ^= 1;
        push("flipped bit", size, index, root, q);
        let mut q = p.to_vec();
        q.remove(k);
        push("removed element", size, index, root, q);
        let mut q = p.to_vec();
        q.insert(k, [0x11; 32]);
        push("inserted element", size, index, root, q);
    }
    out
}

#[test]
fn inclusion_known_answers_and_their_mutations() {
    for &(size, index, p) in INCLUSION {
        let root = d(ROOTS[size as usize]);
        let p = proof(p);
        verify_inclusion(&root, size, index, &leaf(index), &p)
            .unwrap_or_else(|e| panic!("size {size} leaf {index}: {e}"));
        // The wrong leaf.
        assert!(verify_inclusion(&root, size, index, b"not a leaf", &p).is_err());
        for (what, s, i, r, q) in inclusion_mutations(size, index, root, &p) {
            // The leaf data at the mutated index, when there is one, so only the proof can fail.
            let data = if i < 8 { leaf(i) } else { leaf(index) };
            assert!(
                verify_inclusion(&r, s, i, &data, &q).is_err(),
                "size {size} leaf {index}: {what} accepted"
            );
        }
    }
}

#[test]
fn consistency_known_answers_and_their_mutations() {
    for &(old, new, p) in CONSISTENCY {
        let (r1, r2) = (d(ROOTS[old as usize]), d(ROOTS[new as usize]));
        let p = proof(p);
        verify_consistency(old, &r1, new, &r2, &p)
            .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
        let mut bad: Vec<(String, u64, Digest32, u64, Digest32, Vec<Digest32>)> = vec![
            ("wrong root1".into(), old, [7; 32], new, r2, p.clone()),
            ("wrong root2".into(), old, r1, new, [7; 32], p.clone()),
            ("size2 * 2".into(), old, r1, new * 2, r2, p.clone()),
            ("size2 / 2".into(), old, r1, new / 2, r2, p.clone()),
            ("size1 + 1".into(), old + 1, r1, new, r2, p.clone()),
            ("size1 xor 2".into(), old ^ 2, r1, new, r2, p.clone()),
            (
                "trailing garbage".into(),
                old,
                r1,
                new,
                r2,
                [p.clone(), vec![[0; 32]]].concat(),
            ),
            (
                "preceding garbage".into(),
                old,
                r1,
                new,
                r2,
                [vec![[0; 32]], p.clone()].concat(),
            ),
            (
                "trailing root1".into(),
                old,
                r1,
                new,
                r2,
                [p.clone(), vec![r1]].concat(),
            ),
            (
                "preceding root2".into(),
                old,
                r1,
                new,
                r2,
                [vec![r2], p.clone()].concat(),
            ),
        ];
        if old > 1 {
            bad.push(("size1 - 1".into(), old - 1, r1, new, r2, p.clone()));
        }
        if old != new {
            bad.push(("swapped roots".into(), old, r2, new, r1, p.clone()));
            bad.push(("empty proof".into(), old, r1, new, r2, Vec::new()));
        }
        for k in 0..p.len() {
            let mut q = p.clone();
            q[k][31] ^= 0x80;
            bad.push((format!("flipped element {k}"), old, r1, new, r2, q));
            let mut q = p.clone();
            q.remove(k);
            bad.push((format!("removed element {k}"), old, r1, new, r2, q));
        }
        for (what, o, a, n, b, q) in bad {
            assert!(
                verify_consistency(o, &a, n, &b, &q).is_err(),
                "{old} -> {new}: {what} accepted"
            );
        }
    }
}

#[test]
fn edge_cases_are_errors_not_panics() {
    let r = d(ROOTS[1]);
    assert_eq!(
        verify_inclusion(&r, 0, 0, b"", &[]),
        Err(ProofError::NotInTree { index: 0, size: 0 })
    );
    assert!(matches!(
        verify_inclusion(&r, u64::MAX, 1, b"", &[]),
        Err(ProofError::TooLarge(_))
    ));
    assert!(matches!(
        verify_inclusion(&r, 1 << 62, (1 << 62) - 1, b"", &[]),
        Err(ProofError::InclusionLength { .. })
    ));
    assert!(matches!(
        verify_consistency(2, &r, 1, &r, &[]),
        Err(ProofError::Shrunk { .. })
    ));
    assert!(matches!(
        verify_consistency(1, &r, u64::MAX, &r, &[]),
        Err(ProofError::TooLarge(_))
    ));
    // From the empty tree: nothing to prove, but the old root must be the empty root.
    assert_eq!(verify_consistency(0, &empty_root(), 5, &r, &[]), Ok(()));
    assert!(verify_consistency(0, &r, 5, &r, &[]).is_err());
    assert!(verify_consistency(0, &empty_root(), 5, &r, &[r]).is_err());
    // Same size, different roots.
    assert!(verify_consistency(3, &r, 3, &d(ROOTS[2]), &[]).is_err());
}

// ---- agreement with the producer --------------------------------------------------------

struct Tree {
    leaves: Vec<Vec<u8>>,
    stored: Vec<tlog::Hash>,
}

fn tree(n: u64) -> Tree {
    let mut t = Tree {
        leaves: Vec::new(),
        stored: Vec::new(),
    };
    for i in 0..n {
        let data = format!("envelope {i}").into_bytes();
        let new = tlog::stored_hashes_for_leaf(i, tlog::leaf_hash(&data), &t.stored).unwrap();
        t.stored.extend(new);
        t.leaves.push(data);
    }
    t
}

fn digests(p: &[tlog::Hash]) -> Vec<Digest32> {
    p.iter().map(|h| h.0).collect()
}

#[test]
fn producer_inclusion_proofs_verify_for_every_leaf_of_sizes_1_to_64() {
    let t = tree(64);
    let mut checked = 0;
    for size in 1..=64u64 {
        let root = tlog::tree_hash(size, &t.stored).unwrap().0;
        for index in 0..size {
            let p = digests(&tlog::inclusion_proof(size, index, &t.stored).unwrap());
            let data = &t.leaves[index as usize];
            verify_inclusion(&root, size, index, data, &p)
                .unwrap_or_else(|e| panic!("size {size} leaf {index}: {e}"));
            // Any flipped byte of any element, an element more or fewer, another leaf: refused.
            for k in 0..p.len() {
                for byte in 0..32 {
                    let mut q = p.clone();
                    q[k][byte] ^= 0x01;
                    assert!(verify_inclusion(&root, size, index, data, &q).is_err());
                }
                let mut q = p.clone();
                q.remove(k);
                assert!(verify_inclusion(&root, size, index, data, &q).is_err());
            }
            let mut q = p.clone();
            q.push(root);
            assert!(verify_inclusion(&root, size, index, data, &q).is_err());
            let mut flipped = data.clone();
            flipped[0] ^= 0x01;
            assert!(verify_inclusion(&root, size, index, &flipped, &p).is_err());
            let mut bad_root = root;
            bad_root[0] ^= 0x01;
            assert!(verify_inclusion(&bad_root, size, index, data, &p).is_err());
            checked += 1;
        }
    }
    assert_eq!(checked, 64 * 65 / 2);
}

#[test]
fn producer_consistency_proofs_verify_for_every_pair_of_sizes_1_to_64() {
    let t = tree(64);
    let roots: Vec<Digest32> = (0..=64)
        .map(|s| tlog::tree_hash(s, &t.stored).unwrap().0)
        .collect();
    assert_eq!(roots[0], empty_root());
    for new in 1..=64u64 {
        for old in 1..=new {
            let p = digests(&tlog::consistency_proof(new, old, &t.stored).unwrap());
            let (r1, r2) = (roots[old as usize], roots[new as usize]);
            verify_consistency(old, &r1, new, &r2, &p)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            for k in 0..p.len() {
                for byte in [0, 13, 31] {
                    let mut q = p.clone();
                    q[k][byte] ^= 0x20;
                    assert!(
                        verify_consistency(old, &r1, new, &r2, &q).is_err(),
                        "{old} -> {new} element {k}"
                    );
                }
                let mut q = p.clone();
                q.remove(k);
                assert!(verify_consistency(old, &r1, new, &r2, &q).is_err());
            }
            let mut q = p.clone();
            q.push([0; 32]);
            assert!(verify_consistency(old, &r1, new, &r2, &q).is_err());
            if old < new {
                // The proof does not carry over to a neighbouring old size.
                assert!(verify_consistency(old, &roots[old as usize - 1], new, &r2, &p).is_err());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Larger trees: a random leaf of a random size, and a random older size.
    #[test]
    fn producer_and_checker_agree_on_larger_trees(size in 1u64..3000, a in any::<u64>(), b in any::<u64>()) {
        let t = tree(size);
        let root = tlog::tree_hash(size, &t.stored).unwrap().0;
        let index = a % size;
        let p = digests(&tlog::inclusion_proof(size, index, &t.stored).unwrap());
        prop_assert!(verify_inclusion(&root, size, index, &t.leaves[index as usize], &p).is_ok());
        prop_assert!(verify_inclusion(&root, size, (index + 1) % size, &t.leaves[index as usize], &p).is_err() || size == 1);
        let old = 1 + b % size;
        let old_root = tlog::tree_hash(old, &t.stored).unwrap().0;
        let p = digests(&tlog::consistency_proof(size, old, &t.stored).unwrap());
        prop_assert!(verify_consistency(old, &old_root, size, &root, &p).is_ok());
    }
}
