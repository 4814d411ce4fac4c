//! The stored-hash layout and proof generation of an append-only RFC 6962 tree.
//!
//! The layout and algorithms follow Go's `golang.org/x/mod/sumdb/tlog` (after Crosby and
//! Wallach): only hashes of *complete* subtrees are stored, each written once, by the append of
//! the leaf that completes it, at a dense index ([`stored_hash_index`]); a leaf adds one hash
//! plus one per subtree it completes, about two per leaf. The tree hash at any size and every
//! proof are computed from those hashes, read through [`HashReader`].
//!
//! This module must never do I/O itself and never panic on its inputs: sizes and indexes are
//! checked against [`MAX_TREE_SIZE`] first, and a reader that answers with the wrong number of
//! hashes is an error, not a crash.

use std::error::Error as StdError;

use crate::hash::{EMPTY_ROOT, Hash, node_hash};

/// The largest tree size accepted: 2⁶², so every stored-hash index (below 2 × size) and every
/// sum in the tree arithmetic fits in a `u64` with room to spare.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// What can go wrong computing hashes and proofs.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A tree size above [`MAX_TREE_SIZE`].
    #[error("tree size {size} is above the limit of {max}", max = MAX_TREE_SIZE)]
    TooLarge {
        /// The size asked for.
        size: u64,
    },
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexNotInTree {
        /// The 0-based leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// Consistency sizes outside `1 <= old <= new`.
    #[error("a consistency proof needs 1 <= old size <= new size, not {old} and {new}")]
    BadSizes {
        /// The older tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
    },
    /// A stored-hash coordinate whose leaves lie beyond [`MAX_TREE_SIZE`].
    #[error("the stored hash of level {level} index {index} lies beyond the size limit")]
    Overflow {
        /// The subtree's level (0 for leaves).
        level: u8,
        /// The subtree's index within its level.
        index: u64,
    },
    /// The reader answered with a different number of hashes than asked for.
    #[error("the hash reader returned {got} hashes for {asked} indexes")]
    WrongCount {
        /// How many were asked for.
        asked: usize,
        /// How many came back.
        got: usize,
    },
    /// The reader failed.
    #[error("reading stored hashes failed")]
    Read(#[source] Box<dyn StdError + Send + Sync>),
}

/// Reads stored hashes by their [`stored_hash_index`]. The store implements it over its own
/// storage; a slice or `Vec` of hashes laid out by index implements it for tests and
/// in-memory use.
pub trait HashReader {
    /// What a failed read reports.
    type Error: StdError + Send + Sync + 'static;

    /// Returns one hash per index, in the order asked (indexes come sorted ascending).
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

/// A stored hash an in-memory reader does not hold.
#[derive(Debug, thiserror::Error)]
#[error("no stored hash at index {0}")]
pub struct MissingHash(pub u64);

impl HashReader for [Hash] {
    type Error = MissingHash;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|u| self.get(u))
                    .copied()
                    .ok_or(MissingHash(i))
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    type Error = MissingHash;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
        self.as_slice().read_hashes(indexes)
    }
}

/// A [`HashReader`] backed by a closure, e.g. over a sled tree.
pub struct FnReader<F>(pub F);

impl<F, E> HashReader for FnReader<F>
where
    F: Fn(&[u64]) -> Result<Vec<Hash>, E>,
    E: StdError + Send + Sync + 'static,
{
    type Error = E;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, E> {
        (self.0)(indexes)
    }
}

/// Where the hash of the complete subtree `(level, n)` — leaves `n·2^level .. (n+1)·2^level` —
/// is stored. Level 0's n'th hash sits at n + n/2 + n/4 + …; level L's n'th hash is written
/// right after level L−1's (2n+1)'th.
pub fn stored_hash_index(level: u8, n: u64) -> Result<u64, TreeError> {
    let overflow = || TreeError::Overflow { level, index: n };
    // m = (n << level) + 2^level − 1, the last leaf under (level, n); it must lie inside the
    // size limit, which also keeps every sum below 2⁶³.
    let mut m = n;
    for _ in 0..level {
        m = m
            .checked_mul(2)
            .and_then(|x| x.checked_add(1))
            .ok_or_else(overflow)?;
    }
    if m >= MAX_TREE_SIZE {
        return Err(overflow());
    }
    // Level 0's m'th hash sits at m + m/2 + m/4 + …; level L's n'th hash L places after it.
    let mut i = 0u64;
    while m > 0 {
        i += m;
        m >>= 1;
    }
    Ok(i + u64::from(level))
}

/// The inverse of [`stored_hash_index`]: `(level, n)` of a stored index.
pub fn split_stored_hash_index(index: u64) -> Result<(u8, u64), TreeError> {
    // stored_hash_index(0, n) < 2n, so the n we want is in [index/2, index/2 + log₂ index].
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n)?;
    debug_assert!(index_n <= index);
    loop {
        // Leaf n+1 adds 1 + trailing_zeros(n+2) hashes after leaf n's first; with n below the
        // size limit these sums cannot overflow.
        let next = index_n + 1 + u64::from((n + 1).trailing_zeros());
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    // The hash was written with leaf n: one of (0, n), (1, n/2), (2, n/4), …
    let level =
        u8::try_from(index - index_n).map_err(|_| TreeError::Overflow { level: 0, index })?;
    Ok((level, n >> level))
}

/// How many hashes are stored for a tree of `size` leaves.
pub fn stored_hash_count(size: u64) -> Result<u64, TreeError> {
    check_size(size)?;
    if size == 0 {
        return Ok(0);
    }
    let mut count = stored_hash_index(0, size - 1)? + 1;
    let mut i = size - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    Ok(count)
}

/// The hashes to store when appending leaf `n` (0-based) whose leaf hash is `leaf`: the leaf
/// hash first, then one node hash per subtree the leaf completes. They go at consecutive indexes
/// from `stored_hash_index(0, n)`. Reads at most log₂ n earlier hashes.
pub fn stored_hashes_for_leaf<R: HashReader + ?Sized>(
    n: u64,
    leaf: Hash,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    let size = n
        .checked_add(1)
        .ok_or(TreeError::TooLarge { size: u64::MAX })?;
    check_size(size)?;
    // Each trailing 1 bit of n completes a subtree whose left sibling was stored earlier.
    let m = size.trailing_zeros() as u8;
    let mut indexes = Vec::with_capacity(usize::from(m));
    for i in (0..m).rev() {
        // n >> i is odd, so (n >> i) - 1 is the left sibling at level i.
        indexes.push(stored_hash_index(i, (n >> i) - 1)?);
    }
    let old = read(reader, &indexes)?;
    let mut hashes = Vec::with_capacity(old.len() + 1);
    let mut h = leaf;
    hashes.push(h);
    for left in old.iter().rev() {
        h = node_hash(left, &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The root of the tree of `size` leaves (RFC 6962 MTH), from at most 1 + log₂ size stored
/// hashes.
pub fn tree_hash<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Hash, TreeError> {
    check_size(size)?;
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let mut indexes = Vec::new();
    sub_tree_index(0, size, &mut indexes)?;
    let hashes = read(reader, &indexes)?;
    let mut cur = Cursor::new(&hashes);
    let h = sub_tree_hash(0, size, &mut cur)?;
    cur.finish()?;
    Ok(h)
}

/// The inclusion proof (RFC 6962 PATH, leaf to root) of leaf `index` in the tree of `size`.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    size: u64,
    index: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_size(size)?;
    if index >= size {
        return Err(TreeError::IndexNotInTree { index, size });
    }
    let mut indexes = Vec::new();
    leaf_proof_index(0, size, index, &mut indexes)?;
    let hashes = read(reader, &indexes)?;
    let mut cur = Cursor::new(&hashes);
    let mut proof = Vec::new();
    leaf_proof(0, size, index, &mut cur, &mut proof)?;
    cur.finish()?;
    Ok(proof)
}

/// The consistency proof (RFC 6962 PROOF) that the tree of `old` leaves is a prefix of the tree
/// of `new` leaves; `1 <= old <= new`.
pub fn consistency_proof<R: HashReader + ?Sized>(
    new: u64,
    old: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError> {
    check_size(new)?;
    if old == 0 || old > new {
        return Err(TreeError::BadSizes { old, new });
    }
    let mut indexes = Vec::new();
    tree_proof_index(0, new, old, &mut indexes)?;
    let hashes = read(reader, &indexes)?;
    let mut cur = Cursor::new(&hashes);
    let mut proof = Vec::new();
    tree_proof(0, new, old, &mut cur, &mut proof)?;
    cur.finish()?;
    Ok(proof)
}

fn check_size(size: u64) -> Result<(), TreeError> {
    if size > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge { size });
    }
    Ok(())
}

fn read<R: HashReader + ?Sized>(reader: &R, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader
        .read_hashes(indexes)
        .map_err(|e| TreeError::Read(Box::new(e)))?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::WrongCount {
            asked: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Hashes handed out in the order their indexes were asked for. Running out, or having some
/// left over, means the index math and the hash math disagree: an error, never a panic.
struct Cursor<'a> {
    hashes: &'a [Hash],
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(hashes: &'a [Hash]) -> Self {
        Cursor { hashes, next: 0 }
    }

    fn take(&mut self) -> Result<Hash, TreeError> {
        let h = self
            .hashes
            .get(self.next)
            .copied()
            .ok_or(TreeError::WrongCount {
                asked: self.next + 1,
                got: self.hashes.len(),
            })?;
        self.next += 1;
        Ok(h)
    }

    fn finish(self) -> Result<(), TreeError> {
        if self.next != self.hashes.len() {
            return Err(TreeError::WrongCount {
                asked: self.next,
                got: self.hashes.len(),
            });
        }
        Ok(())
    }
}

/// k = the largest power of two strictly below `n` (n ≥ 2), and its log₂.
fn maxpow2(n: u64) -> (u64, u8) {
    debug_assert!(n >= 2);
    let l = (n - 1).ilog2() as u8;
    (1 << l, l)
}

/// The stored indexes whose hashes make up the subtree of leaves `[lo, hi)`: the maximal
/// complete subtrees from the left, largest first.
fn sub_tree_index(mut lo: u64, hi: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        debug_assert_eq!(lo & (k - 1), 0);
        need.push(stored_hash_index(level, lo >> level)?);
        lo += k;
    }
    Ok(())
}

/// The hash of leaves `[lo, hi)` from the hashes [`sub_tree_index`] asked for.
fn sub_tree_hash(mut lo: u64, hi: u64, cur: &mut Cursor<'_>) -> Result<Hash, TreeError> {
    let mut parts = Vec::new();
    while lo < hi {
        let (k, _) = maxpow2(hi - lo + 1);
        parts.push(cur.take()?);
        lo += k;
    }
    let mut h = parts
        .pop()
        .ok_or(TreeError::WrongCount { asked: 1, got: 0 })?;
    while let Some(left) = parts.pop() {
        h = node_hash(&left, &h);
    }
    Ok(h)
}

fn leaf_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    debug_assert!(lo <= n && n < hi);
    if lo + 1 == hi {
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need)?;
        sub_tree_index(lo + k, hi, need)
    } else {
        sub_tree_index(lo, lo + k, need)?;
        leaf_proof_index(lo + k, hi, n, need)
    }
}

/// RFC 6962 §2.1.1 PATH(n, D[lo:hi]): the sibling hashes from the leaf up.
fn leaf_proof(
    lo: u64,
    hi: u64,
    n: u64,
    cur: &mut Cursor<'_>,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if lo + 1 == hi {
        // The verifier knows the leaf hash.
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    let th = if n < lo + k {
        leaf_proof(lo, lo + k, n, cur, proof)?;
        sub_tree_hash(lo + k, hi, cur)?
    } else {
        let th = sub_tree_hash(lo, lo + k, cur)?;
        leaf_proof(lo + k, hi, n, cur, proof)?;
        th
    };
    proof.push(th);
    Ok(())
}

fn tree_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    debug_assert!(lo < n && n <= hi);
    if n == hi {
        if lo == 0 {
            return Ok(());
        }
        return sub_tree_index(lo, hi, need);
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need)?;
        sub_tree_index(lo + k, hi, need)
    } else {
        sub_tree_index(lo, lo + k, need)?;
        tree_proof_index(lo + k, hi, n, need)
    }
}

/// RFC 6962 §2.1.2 SUBPROOF(n, D[lo:hi], lo == 0).
fn tree_proof(
    lo: u64,
    hi: u64,
    n: u64,
    cur: &mut Cursor<'_>,
    proof: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    if n == hi {
        if lo == 0 {
            // The old tree itself: the verifier knows its root.
            return Ok(());
        }
        proof.push(sub_tree_hash(lo, hi, cur)?);
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    let th = if n <= lo + k {
        tree_proof(lo, lo + k, n, cur, proof)?;
        sub_tree_hash(lo + k, hi, cur)?
    } else {
        let th = sub_tree_hash(lo, lo + k, cur)?;
        tree_proof(lo + k, hi, n, cur, proof)?;
        th
    };
    proof.push(th);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_index_matches_go_layout() {
        // Leaves 0,1 then node (1,0), leaf 2, leaf 3, (1,1), (2,0), leaf 4 …
        let want = [
            (0, 0, 0),
            (0, 1, 1),
            (1, 0, 2),
            (0, 2, 3),
            (0, 3, 4),
            (1, 1, 5),
            (2, 0, 6),
            (0, 4, 7),
        ];
        for (level, n, index) in want {
            assert_eq!(
                stored_hash_index(level, n).unwrap(),
                index,
                "({level}, {n})"
            );
            assert_eq!(split_stored_hash_index(index).unwrap(), (level, n));
        }
    }

    #[test]
    fn split_inverts_index_for_the_first_thousand() {
        for index in 0..1000 {
            let (level, n) = split_stored_hash_index(index).unwrap();
            assert_eq!(stored_hash_index(level, n).unwrap(), index);
        }
    }

    #[test]
    fn oversized_inputs_are_errors_not_panics() {
        assert!(matches!(
            stored_hash_index(63, 1),
            Err(TreeError::Overflow { .. })
        ));
        assert!(matches!(
            stored_hash_index(0, u64::MAX),
            Err(TreeError::Overflow { .. })
        ));
        assert!(matches!(
            stored_hash_count(u64::MAX),
            Err(TreeError::TooLarge { .. })
        ));
        let none: Vec<Hash> = Vec::new();
        assert!(matches!(
            tree_hash(u64::MAX, &none),
            Err(TreeError::TooLarge { .. })
        ));
        assert!(matches!(
            inclusion_proof(3, 3, &none),
            Err(TreeError::IndexNotInTree { index: 3, size: 3 })
        ));
        assert!(matches!(
            consistency_proof(3, 0, &none),
            Err(TreeError::BadSizes { .. })
        ));
        assert!(matches!(
            consistency_proof(3, 4, &none),
            Err(TreeError::BadSizes { .. })
        ));
        assert!(matches!(
            stored_hashes_for_leaf(u64::MAX, Hash::default(), &none),
            Err(TreeError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_short_reader_is_an_error() {
        let short = FnReader(|_: &[u64]| -> Result<Vec<Hash>, MissingHash> { Ok(Vec::new()) });
        assert!(matches!(
            tree_hash(3, &short),
            Err(TreeError::WrongCount { asked: 2, got: 0 })
        ));
        let missing: Vec<Hash> = vec![Hash::default()];
        assert!(matches!(tree_hash(2, &missing), Err(TreeError::Read(_))));
    }
}
