//! Inclusion and consistency proof checks, on `ct-merkle`.
//!
//! This module owns the translation from proof files to `ct-merkle`'s verifier: the leaf hash is
//! computed here explicitly as SHA-256(0x00 ‖ envelope bytes) and the tree size always comes from
//! the signed checkpoint (a proof alone does not fix the size). Sizes and indexes are input, so
//! they are checked before `ct-merkle` (which asserts on out-of-range numbers) sees them; it must
//! never accept a proof with one hash more or one hash fewer than the tree shape requires.

use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// The largest tree size checked: 2⁶². `ct-merkle` handles up to 2⁶³; the store never gets near.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// Why a proof does not hold.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A tree size above [`MAX_TREE_SIZE`].
    #[error("tree size {0} is above the limit of {max}", max = MAX_TREE_SIZE)]
    TooLarge(u64),
    /// A leaf index at or past the tree size.
    #[error("leaf {index} is not in a tree of size {size}")]
    NotInTree {
        /// The leaf index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// An inclusion proof with more or fewer hashes than the tree shape needs.
    #[error("the proof has {got} hashes but leaf {index} of a tree of size {size} needs {want}")]
    InclusionLength {
        /// The leaf index.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// Hashes in the proof.
        got: usize,
        /// Hashes the shape needs.
        want: usize,
    },
    /// The inclusion proof does not hash up to the root.
    #[error("the proof for leaf {index} does not lead to the checkpoint root")]
    InclusionMismatch {
        /// The leaf index.
        index: u64,
    },
    /// The new tree is smaller than the old one.
    #[error("the new size {new} is smaller than the old size {old}")]
    Shrunk {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// A consistency proof with more or fewer hashes than the two sizes need.
    #[error("the proof has {got} hashes but sizes {old} to {new} need {want}")]
    ConsistencyLength {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes need.
        want: usize,
    },
    /// The consistency proof does not give both roots.
    #[error("the proof does not lead from the root at size {old} to the root at size {new}")]
    ConsistencyMismatch {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// A size-0 tree whose root is not SHA-256 of nothing.
    #[error("an empty tree has root {0}, not the hash of nothing")]
    EmptyRoot(String),
    /// Equal sizes, different roots.
    #[error("sizes {size} are equal but the roots differ")]
    SameSizeDifferentRoot {
        /// The size of both trees.
        size: u64,
    },
}

/// `SHA-256(0x00 ‖ envelope)`: the leaf of one envelope.
pub fn leaf_hash(envelope: &[u8]) -> Digest32 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(envelope);
    h.finalize().into()
}

/// The root of the empty tree.
pub fn empty_root() -> Digest32 {
    Sha256::digest(b"").into()
}

fn root(hash: &Digest32, size: u64) -> RootHash<Sha256> {
    RootHash::new((*hash).into(), size)
}

/// Checks that `envelope` is leaf `index` of the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    root_hash: &Digest32,
    size: u64,
    index: u64,
    envelope: &[u8],
    proof: &[Digest32],
) -> Result<(), ProofError> {
    if size > MAX_TREE_SIZE {
        return Err(ProofError::TooLarge(size));
    }
    if index >= size {
        return Err(ProofError::NotInTree { index, size });
    }
    // Checked above: 0 <= index < size <= 2⁶², so this cannot panic.
    let want = ct_merkle::indices_for_inclusion_proof(size, index).len();
    if proof.len() != want {
        return Err(ProofError::InclusionLength {
            index,
            size,
            got: proof.len(),
            want,
        });
    }
    let proof = InclusionProof::<Sha256>::from_digests(proof.iter().map(|d| d.into()));
    root(root_hash, size)
        .verify_inclusion(&envelope, index, &proof)
        .map_err(|_| ProofError::InclusionMismatch { index })
}

/// Checks that the leaf whose hash is `leaf` is leaf `index` of the tree of `size` leaves with
/// root `root`: for a leaf a bundle withholds, whose envelope the checker never sees. The
/// envelope-bytes path above goes through `ct-merkle`, which hashes the leaf itself; this one
/// follows RFC 9162 §2.1.3.2 directly (tests check that the two agree).
pub fn verify_inclusion_of_leaf_hash(
    root_hash: &Digest32,
    size: u64,
    index: u64,
    leaf: &Digest32,
    proof: &[Digest32],
) -> Result<(), ProofError> {
    if size > MAX_TREE_SIZE {
        return Err(ProofError::TooLarge(size));
    }
    if index >= size {
        return Err(ProofError::NotInTree { index, size });
    }
    let want = ct_merkle::indices_for_inclusion_proof(size, index).len();
    if proof.len() != want {
        return Err(ProofError::InclusionLength {
            index,
            size,
            got: proof.len(),
            want,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::InclusionMismatch { index });
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || r != *root_hash {
        return Err(ProofError::InclusionMismatch { index });
    }
    Ok(())
}

fn node(left: &Digest32, right: &Digest32) -> Digest32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root`. From an empty tree the proof is empty and the old root must be
/// the empty root; between equal sizes the proof is empty and the roots equal.
pub fn verify_consistency(
    old: u64,
    old_root: &Digest32,
    new: u64,
    new_root: &Digest32,
    proof: &[Digest32],
) -> Result<(), ProofError> {
    if new > MAX_TREE_SIZE {
        return Err(ProofError::TooLarge(new));
    }
    if old > new {
        return Err(ProofError::Shrunk { old, new });
    }
    if old == 0 {
        if !proof.is_empty() {
            return Err(ProofError::ConsistencyLength {
                old,
                new,
                got: proof.len(),
                want: 0,
            });
        }
        if *old_root != empty_root() {
            return Err(ProofError::EmptyRoot(base64_of(old_root)));
        }
        return Ok(());
    }
    // Checked above: 1 <= old <= new <= 2⁶².
    let want = ct_merkle::indices_for_consistency_proof(old, new - old).len();
    if proof.len() != want {
        return Err(ProofError::ConsistencyLength {
            old,
            new,
            got: proof.len(),
            want,
        });
    }
    if old == new && old_root != new_root {
        return Err(ProofError::SameSizeDifferentRoot { size: new });
    }
    let proof = ConsistencyProof::<Sha256>::from_digests(proof.iter().map(|d| d.into()));
    root(new_root, new)
        .verify_consistency(&root(old_root, old), &proof)
        .map_err(|_| ProofError::ConsistencyMismatch { old, new })
}

pub(crate) fn base64_of(d: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(d)
}
