//! Staged postings: a derived tree whose small appends write one sled value, not one per
//! posting.
//!
//! The posting trees (`by_child`, `by_staff`, the read models' `scopes`) add values keyed by
//! the batch's last seq that are never rewritten. A bulk import adds thousands per batch and
//! sled takes them at its per-key rate; the service's small commits (tens of events) add about
//! a hundred each, every one landing in a different node of a large tree — sled then copies
//! and rewrites a hundred nodes per commit, which measured as half the writer's time at
//! county scale (docs/service.md). So an append of few postings **stages** them: all its
//! postings go into one value `0xFD ‖ BE last seq` (the staging region sorts after every
//! posting key and before the `0xFE`/`0xFF` markers), written in the same sled batch as the
//! tree's `through` marker; once the staged postings pass `COMPACT_PAIRS` pairs or
//! `COMPACT_BYTES` bytes, one batch moves them all into their own keys and removes the staged
//! values (atomic per tree, as every write of a derived tree).
//!
//! Layout of a staged value (integers little-endian), ending with the check of the read
//! models (the first 8 bytes of SHA-256 of `key length ‖ key ‖ payload`):
//! ```text
//! repeated: u32 key length ‖ key ‖ u32 value length ‖ value
//! ```
//!
//! Readers see one tree: `get`, `scan_prefix`, `range` and `iter` merge the staged postings
//! (kept decoded in memory, grouped by key prefix, loaded on first use) with the tree's own
//! keys, in key order, and never show the staging region itself. A reader takes the staged
//! postings before it starts the tree's iterator: a compaction only moves postings from staged
//! to the tree, so a posting present when the read starts is seen (at worst twice, once from
//! each side; the merge keeps one).
//!
//! This module owns the staging region; it must never stage a key that is ever rewritten
//! (only postings keyed by their batch), and never let a read see a staged value's raw bytes.

use std::collections::BTreeSet;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use sled::IVec;

use super::{StoreError, THROUGH_KEY};

/// The first byte of a staged value's key.
const STAGE: u8 = 0xFD;
/// An append of at most this many postings is staged; a larger one (an import's batch) is
/// written to its own keys, with whatever was staged.
const STAGE_AT_MOST: usize = 2_048;
/// Staged postings are merged into the tree once they pass this many pairs …
const COMPACT_PAIRS: usize = 65_536;
/// … or this many bytes of keys and values: what every process that reads or writes the tree
/// loads once (a CLI command included), so kept to a few milliseconds' work.
const COMPACT_BYTES: usize = 4 * 1024 * 1024;
/// A merged value's payload is closed once it passes this size (far below sled's blob
/// threshold).
const MERGED_BYTES: usize = 8 * 1024;
/// A posting key ends with the batch's last seq (8 bytes) and a value number (4 bytes).
const KEY_TAIL: usize = 12;

/// How a tree's posting values are merged: concatenating payloads is the same postings for
/// every reader of these trees (they gather an id's or a prefix's seqs from every value under
/// a prefix, sorted and without repeats).
#[derive(Clone, Copy)]
pub(super) enum Values {
    /// The value is the payload (`by_child`, `by_staff`).
    Plain,
    /// The value is the payload and its check (`scopes`).
    Checked,
}

/// A key and its value.
pub(super) type Pair = (Vec<u8>, Vec<u8>);

/// A key prefix's staged postings while merging: the prefix, the last batch's seq (BE) and
/// the payloads in key order.
type Group = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// What is staged: the postings by key, and the staged values holding them.
#[derive(Default, Clone)]
struct Staged {
    /// Every staged posting: those in staged values and those still deferred.
    pairs: Postings,
    bytes: usize,
    values: Vec<Vec<u8>>,
    /// Postings of appends deferred (in `pairs`, not yet in any sled value), in order.
    deferred: Vec<Pair>,
    /// The `through` of the last deferred append (big-endian), while any is deferred.
    deferred_through: Option<Vec<u8>>,
}

/// A posting key's last `KEY_TAIL` bytes (fewer when the key is shorter: only a malformed
/// key, refused when merged), kept inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tail {
    /// Invariant: `len <= KEY_TAIL`, and `bytes[len..]` is zero (so the derived order is the
    /// slices' order).
    bytes: [u8; KEY_TAIL],
    len: u8,
}

impl Tail {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A key split into its prefix (the posting list it belongs to) and its tail (its batch).
fn split_key(key: &[u8]) -> (&[u8], Tail) {
    let cut = key.len().saturating_sub(KEY_TAIL);
    let mut bytes = [0u8; KEY_TAIL];
    bytes[..key.len() - cut].copy_from_slice(&key[cut..]);
    // `key.len() - cut <= KEY_TAIL`, so it fits a byte.
    let len = (key.len() - cut) as u8;
    (&key[..cut], Tail { bytes, len })
}

/// One prefix's staged postings: each batch's tail and value.
type List = Vec<(Tail, Vec<u8>)>;

/// Staged postings by key, grouped by prefix: a posting tree has few prefixes (1,024 buckets,
/// a school's lists) and many batches under each, and a small append adds one posting to a
/// few of them — a hash look-up and a push, where an ordered map of every key compared the
/// new key with a dozen others (measured as a tenth of the service writer's time,
/// docs/service.md).
#[derive(Default, Clone)]
struct Postings {
    /// Invariant: every list is in tail order without repeats, and not empty.
    lists: FxHashMap<Box<[u8]>, List>,
    /// Invariant: the keys of `lists`, in order (for reads of a range; kept beside the hash
    /// map because a commit looks a prefix up far more often than a read ranges over them).
    prefixes: BTreeSet<Box<[u8]>>,
    len: usize,
}

impl Postings {
    fn len(&self) -> usize {
        self.len
    }

    /// Adds or replaces the value at `key`.
    fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        let (prefix, tail) = split_key(key);
        let list = match self.lists.get_mut(prefix) {
            Some(list) => list,
            None => {
                self.prefixes.insert(prefix.into());
                self.lists.entry(prefix.into()).or_default()
            }
        };
        // Appends come in seq order, so a new batch's tail is the list's last.
        match list.last() {
            Some((last, _)) if *last < tail => list.push((tail, value)),
            None => list.push((tail, value)),
            Some(_) => match list.binary_search_by(|(t, _)| t.cmp(&tail)) {
                Ok(i) => {
                    list[i].1 = value;
                    return;
                }
                Err(i) => list.insert(i, (tail, value)),
            },
        }
        self.len += 1;
    }

    fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        let (prefix, tail) = split_key(key);
        let list = self.lists.get(prefix)?;
        let i = list.binary_search_by(|(t, _)| t.cmp(&tail)).ok()?;
        Some(&list[i].1)
    }

    /// Every posting whose key is within the bounds, in key order.
    fn range<'a>(&'a self, from: Bound<&'a [u8]>, to: Bound<&'a [u8]>) -> Vec<Pair> {
        let (start, lower) = match from {
            Bound::Included(f) | Bound::Excluded(f) => (f, Bound::Included(f)),
            Bound::Unbounded => (&[][..], Bound::Unbounded),
        };
        let upper = match to {
            Bound::Included(t) | Bound::Excluded(t) if t < start => return Vec::new(),
            Bound::Included(t) | Bound::Excluded(t) => Bound::Included(t),
            Bound::Unbounded => Bound::Unbounded,
        };
        // A key `prefix ‖ tail` is at least its prefix: a prefix above `to` has no key in range.
        let listed = self.prefixes.range::<[u8], _>((lower, upper));
        self.gathered(start, listed.map(|p| &p[..]), |k| (from, to).contains(&k))
    }

    /// Every posting whose key begins with `p`, in key order.
    fn with_prefix<'a>(&'a self, p: &'a [u8]) -> Vec<Pair> {
        let listed = self
            .prefixes
            .range::<[u8], _>((Bound::Included(p), Bound::Unbounded))
            .take_while(|q| q.starts_with(p));
        self.gathered(p, listed.map(|q| &q[..]), |k| k.starts_with(p))
    }

    /// The postings `keep` accepts of the lists `listed` and of the lists whose prefix is a
    /// shorter prefix of `start` (sorting below `start`, their keys may not), in key order.
    fn gathered<'a>(
        &'a self,
        start: &'a [u8],
        listed: impl Iterator<Item = &'a [u8]>,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Pair> {
        let shorter = (0..start.len()).map(|l| &start[..l]);
        let mut out = Vec::new();
        for prefix in shorter.chain(listed) {
            for (tail, value) in self.lists.get(prefix).into_iter().flatten() {
                let mut key = Vec::with_capacity(prefix.len() + KEY_TAIL);
                key.extend_from_slice(prefix);
                key.extend_from_slice(tail.as_slice());
                if keep(&key) {
                    out.push((key, value.clone()));
                }
            }
        }
        // Keys of prefixes of different lengths interleave: one prefix may begin another.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every prefix's list, in no particular order.
    fn lists(&self) -> impl Iterator<Item = (&[u8], &[(Tail, Vec<u8>)])> {
        self.lists.iter().map(|(p, list)| (&p[..], list.as_slice()))
    }
}

/// A derived tree with staged postings (see the module doc).
pub(super) struct StagedTree {
    tree: sled::Tree,
    name: &'static str,
    values: Values,
    /// `COMPACT_PAIRS`, lowered only by tests (`Store::set_staging_limit_for_tests`).
    compact_pairs: std::sync::atomic::AtomicUsize,
    /// `None` until first used, and after `clear`. Invariant: when `Some`, equal to what the
    /// staging region holds (every write of it goes through `apply`).
    staged: Mutex<Option<Arc<Staged>>>,
}

impl StagedTree {
    pub(super) fn new(tree: sled::Tree, name: &'static str, values: Values) -> StagedTree {
        StagedTree {
            tree,
            name,
            values,
            compact_pairs: std::sync::atomic::AtomicUsize::new(COMPACT_PAIRS),
            staged: Mutex::new(None),
        }
    }

    /// The sled tree itself, for its markers (`through`, the layout's version) only: those
    /// are never staged.
    pub(super) fn raw(&self) -> &sled::Tree {
        &self.tree
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Staged>>> {
        // Replaced whole, only after a successful write: a panic elsewhere leaves it as it was.
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The staged postings, loaded from the staging region on first use.
    fn staged(&self) -> Result<Arc<Staged>, StoreError> {
        let mut guard = self.lock();
        self.loaded(&mut guard)
    }

    fn loaded(&self, guard: &mut Option<Arc<Staged>>) -> Result<Arc<Staged>, StoreError> {
        if let Some(s) = guard {
            return Ok(s.clone());
        }
        let mut staged = Staged::default();
        for item in self.tree.scan_prefix([STAGE]) {
            let (k, v) = item?;
            let payload = super::scopes::opened(&k, &v)
                .map_err(|_| self.damage("a staged value fails its check"))?;
            for (key, value) in
                unpack(payload).ok_or_else(|| self.damage("a staged value is malformed"))?
            {
                staged.bytes += key.len() + value.len();
                staged.pairs.insert(&key, value);
            }
            staged.values.push(k.to_vec());
        }
        let staged = Arc::new(staged);
        *guard = Some(staged.clone());
        Ok(staged)
    }

    fn damage(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "index {}: {what} (the indexes are derived from the log: `careledger verify` tells \
             whether the log itself is intact)",
            self.name
        ))
    }

    /// Writes one append's postings (`postings`, keys never written before), its other values
    /// (`others`: lists, the layout's version) and the tree's `through` marker (`through`: the
    /// append's last seq, big-endian, which also names the staged value) in one sled batch,
    /// with the postings of the appends deferred before it.
    ///
    /// With `defer`, an append of few postings and no other values is not written at all:
    /// its postings join the staged ones in memory (readers see them at once) and are written
    /// with a later append's, or by `write_deferred`. The log holds them meanwhile: after a
    /// crash the tree's `through` is behind the head and opening derives them again, as for
    /// any tree behind the head (docs/store.md, "Small appends defer their postings").
    pub(super) fn apply(
        &self,
        postings: Vec<Pair>,
        others: Vec<Pair>,
        through: &[u8],
        defer: bool,
    ) -> Result<(), StoreError> {
        let mut guard = self.lock();
        self.apply_locked(&mut guard, postings, others, through, defer)
    }

    /// `apply`, the staged set's lock held by the caller.
    fn apply_locked(
        &self,
        guard: &mut Option<Arc<Staged>>,
        postings: Vec<Pair>,
        others: Vec<Pair>,
        through: &[u8],
        defer: bool,
    ) -> Result<(), StoreError> {
        let current = self.loaded(guard)?;
        let bytes: usize = postings.iter().map(|(k, v)| k.len() + v.len()).sum();
        let compact_pairs = self
            .compact_pairs
            .load(std::sync::atomic::Ordering::Relaxed);
        // At most `STAGE_AT_MOST` postings in one staged value, the deferred ones included:
        // past it the staged set is merged into the tree, which keeps the in-memory set small
        // (measured: counting this append alone, so merging only at `COMPACT_PAIRS`, was no
        // faster — docs/store.md).
        let fits = current.deferred.len() + postings.len() <= STAGE_AT_MOST
            && current.pairs.len() + postings.len() <= compact_pairs
            && current.bytes + bytes <= COMPACT_BYTES;
        if defer && others.is_empty() && fits {
            // In place unless a reader holds the staged set this instant (then copied).
            drop(current);
            let next = Arc::make_mut(guard.get_or_insert_with(Default::default));
            next.bytes += bytes;
            for (k, v) in postings {
                next.pairs.insert(&k, v.clone());
                next.deferred.push((k, v));
            }
            next.deferred_through = Some(through.to_vec());
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in others {
            batch.insert(k, v);
        }
        batch.insert(THROUGH_KEY, through);
        if postings.is_empty() && current.deferred.is_empty() {
            self.tree.apply_batch(batch)?;
            return Ok(());
        }
        if fits {
            // The deferred postings and this append's, in one staged value named by this
            // append's `through` (the last of them).
            let mut key = vec![STAGE];
            key.extend_from_slice(through);
            let value = super::scopes::sealed(&key, &pack(&current.deferred, &postings));
            batch.insert(key.as_slice(), value);
            self.tree.apply_batch(batch)?;
            drop(current);
            let next = Arc::make_mut(guard.get_or_insert_with(Default::default));
            next.bytes += bytes;
            for (k, v) in postings {
                next.pairs.insert(&k, v);
            }
            next.values.push(key);
            next.deferred.clear();
            next.deferred_through = None;
        } else {
            // `pairs` holds the deferred postings too: merged with the staged ones.
            self.merge_into(&current, &mut batch)?;
            for (k, v) in postings {
                batch.insert(k, v);
            }
            self.tree.apply_batch(batch)?;
            *guard = Some(Arc::new(Staged::default()));
        }
        Ok(())
    }

    /// Writes the postings deferred by small appends, with the `through` of the last of them
    /// and `others` (the layout's version) — nothing when none is deferred.
    pub(super) fn write_deferred(&self, others: Vec<Pair>) -> Result<(), StoreError> {
        let mut guard = self.lock();
        // Not loaded: this process deferred nothing (a read command closing loads nothing).
        let through = match guard.as_ref().map(|s| s.deferred_through.clone()) {
            Some(Some(t)) => t,
            _ => return Ok(()),
        };
        // Under the same lock: no append can write them, or defer more, in between (a marker
        // written from a `through` read before would go back).
        self.apply_locked(&mut guard, Vec::new(), others, &through, false)
    }

    /// The last seq the tree reflects: the last deferred append's, or its stored `through`.
    pub(super) fn through(&self) -> Result<u64, StoreError> {
        match &self.staged()?.deferred_through {
            Some(t) => Ok(super::super::segment::first_seq(t).unwrap_or(0)),
            None => super::index::through_of(&self.tree),
        }
    }

    /// Adds to `batch` the staged postings merged into the tree (`merged`) and the removal
    /// of the staged values that held them.
    fn merge_into(&self, staged: &Staged, batch: &mut sled::Batch) -> Result<(), StoreError> {
        for (k, v) in self.merged(staged)? {
            batch.insert(k, v);
        }
        for k in &staged.values {
            batch.remove(k.as_slice());
        }
        Ok(())
    }

    /// The staged postings as the tree keeps them: per key prefix (the key without its batch
    /// seq and value number), the payloads concatenated in key order into values of about
    /// `MERGED_BYTES`, keyed by the prefix, the last staged batch's seq and a value number.
    /// Keyed by the last batch, a merged value is read by every range of batches that reaches
    /// it (`Store::school_seqs_between` reads from a batch to the prefix's end).
    fn merged(&self, staged: &Staged) -> Result<Vec<Pair>, StoreError> {
        let mut out = Vec::new();
        let flush = |g: Group, out: &mut Vec<Pair>| {
            let (prefix, last, payloads) = g;
            let mut n: u32 = 0;
            let mut value: Vec<u8> = Vec::new();
            let emit = |value: &mut Vec<u8>, n: &mut u32, out: &mut Vec<Pair>| {
                let mut key = prefix.clone();
                key.extend_from_slice(&last);
                key.extend_from_slice(&n.to_be_bytes());
                let v = match self.values {
                    Values::Plain => std::mem::take(value),
                    Values::Checked => {
                        let v = super::scopes::sealed(&key, value);
                        value.clear();
                        v
                    }
                };
                out.push((key, v));
                *n += 1;
            };
            for p in payloads {
                if !value.is_empty() && value.len() + p.len() > MERGED_BYTES {
                    emit(&mut value, &mut n, out);
                }
                value.extend_from_slice(&p);
            }
            if !value.is_empty() {
                emit(&mut value, &mut n, out);
            }
        };
        for (prefix, list) in staged.pairs.lists() {
            let mut payloads = Vec::with_capacity(list.len());
            for (tail, v) in list {
                if tail.as_slice().len() != KEY_TAIL {
                    return Err(self.damage("a staged key is malformed"));
                }
                let payload = match self.values {
                    Values::Plain => v.as_slice(),
                    Values::Checked => {
                        let mut k = prefix.to_vec();
                        k.extend_from_slice(tail.as_slice());
                        super::scopes::opened(&k, v)?
                    }
                };
                payloads.push(payload.to_vec());
            }
            // A list is in key order: its last tail is the latest batch.
            let last = list
                .last()
                .map(|(t, _)| t.as_slice()[..8].to_vec())
                .unwrap_or_default();
            flush((prefix.to_vec(), last, payloads), &mut out);
        }
        Ok(out)
    }

    /// Merges every staged posting into the tree (before a write outside `apply`, and before
    /// the tests' damage picks a value to change).
    pub(super) fn compact(&self) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let current = self.loaded(&mut guard)?;
        if current.values.is_empty() && current.deferred.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        self.merge_into(&current, &mut batch)?;
        if let Some(t) = &current.deferred_through {
            batch.insert(THROUGH_KEY, t.as_slice());
        }
        self.tree.apply_batch(batch)?;
        *guard = Some(Arc::new(Staged::default()));
        Ok(())
    }

    /// The value at `key`.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let staged = self.staged()?;
        if let Some(v) = staged.pairs.get(key) {
            return Ok(Some(IVec::from(v.as_slice())));
        }
        Ok(self.tree.get(key)?)
    }

    /// Writes one value outside an append (tests' damage, lists): staged postings are
    /// moved to their own keys first, so the tree alone holds the truth.
    pub(super) fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        self.compact()?;
        self.tree.insert(key, value)?;
        Ok(())
    }

    /// Removes one value outside an append (see `insert`).
    pub(super) fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.compact()?;
        self.tree.remove(key)?;
        Ok(())
    }

    /// Empties the tree, staging region included.
    pub(super) fn clear(&self) -> Result<(), StoreError> {
        let mut guard = self.lock();
        self.tree.clear()?;
        *guard = Some(Arc::new(Staged::default()));
        Ok(())
    }

    /// Every key under `prefix`, staged or not, in key order.
    pub(super) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Merged, StoreError> {
        let prefix = prefix.as_ref().to_vec();
        let staged = self.staged()?;
        let extra = staged.pairs.with_prefix(&prefix);
        Ok(Merged::new(self.tree.scan_prefix(prefix), extra))
    }

    /// Every key in `range`, staged or not, in key order (never the staging region).
    pub(super) fn range(
        &self,
        range: std::ops::RangeInclusive<Vec<u8>>,
    ) -> Result<Merged, StoreError> {
        let staged = self.staged()?;
        let extra = staged.pairs.range(
            Bound::Included(range.start().as_slice()),
            Bound::Included(range.end().as_slice()),
        );
        let (from, to) = (range.start().clone(), range.end().clone());
        Ok(Merged::new(self.tree.range(from..=to), extra))
    }

    /// Every key of the tree, staged or not, in key order (never the staging region).
    pub(super) fn iter(&self) -> Result<Merged, StoreError> {
        let staged = self.staged()?;
        let extra = staged.pairs.range(Bound::Unbounded, Bound::Unbounded);
        Ok(Merged::new(self.tree.iter(), extra))
    }

    /// Merges staged postings into the tree once more than `pairs` are staged (tests: so
    /// that merging happens within a few small appends).
    pub(super) fn set_compact_pairs(&self, pairs: usize) {
        self.compact_pairs
            .store(pairs, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many postings are staged (tests).
    #[cfg(test)]
    fn staged_len(&self) -> usize {
        self.staged().map_or(0, |s| s.pairs.len())
    }
}

/// A sled iterator merged with staged postings, in key order, one item per key, the staging
/// region left out.
pub(super) struct Merged {
    tree: std::iter::Peekable<sled::Iter>,
    extra: std::iter::Peekable<std::vec::IntoIter<Pair>>,
}

impl Merged {
    fn new(tree: sled::Iter, extra: Vec<Pair>) -> Merged {
        Merged {
            tree: tree.peekable(),
            extra: extra.into_iter().peekable(),
        }
    }
}

impl Iterator for Merged {
    type Item = Result<(IVec, IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let tree_key = match self.tree.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => {
                    return self.tree.next().map(|r| r.map_err(StoreError::from));
                }
                None => None,
            };
            if tree_key.as_ref().is_some_and(|k| k.first() == Some(&STAGE)) {
                self.tree.next();
                continue;
            }
            let extra_key = self.extra.peek().map(|(k, _)| k.as_slice());
            return match (tree_key, extra_key) {
                (None, None) => None,
                (Some(t), Some(e)) if e < t.as_ref() => self.take_extra(),
                (Some(t), Some(e)) if e == t.as_ref() => {
                    // Moved by a compaction while this read ran: one of the two.
                    self.extra.next();
                    self.tree.next().map(|r| r.map_err(StoreError::from))
                }
                (Some(_), _) => self.tree.next().map(|r| r.map_err(StoreError::from)),
                (None, Some(_)) => self.take_extra(),
            };
        }
    }
}

impl Merged {
    fn take_extra(&mut self) -> Option<Result<(IVec, IVec), StoreError>> {
        self.extra
            .next()
            .map(|(k, v)| Ok((IVec::from(k), IVec::from(v))))
    }
}

/// The staged value's payload of `first`'s pairs, then `then`'s.
fn pack(first: &[Pair], then: &[Pair]) -> Vec<u8> {
    let all = || first.iter().chain(then);
    let mut out = Vec::with_capacity(all().map(|(k, v)| 8 + k.len() + v.len()).sum());
    for (k, v) in all() {
        // Keys and values of postings stay far below 4 GiB (values below 64 KiB).
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The pairs of a staged value's payload; `None` when it is cut or overlong.
fn unpack(mut p: &[u8]) -> Option<Vec<Pair>> {
    let mut out = Vec::new();
    let take = |p: &mut &[u8]| -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
        let bytes = p.get(4..4usize.checked_add(n)?)?.to_vec();
        *p = &p[4 + n..];
        Some(bytes)
    };
    while !p.is_empty() {
        let k = take(&mut p)?;
        let v = take(&mut p)?;
        out.push((k, v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    proptest::proptest! {
        /// The grouped postings read as an ordered map of every key would: keys of any
        /// length (prefixes that begin other prefixes, keys shorter than a tail), inserted in
        /// any order, some twice.
        #[test]
        fn postings_read_as_an_ordered_map_of_their_keys(
            keys in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..4), proptest::collection::vec(0u8..3, 0..14)),
                0..80,
            ),
            bounds in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..16), proptest::collection::vec(0u8..3, 0..16)),
                1..6,
            ),
        ) {
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut postings = Postings::default();
            for (i, (head, rest)) in keys.iter().enumerate() {
                let mut key = head.clone();
                key.extend_from_slice(rest);
                let value = (i as u32).to_le_bytes().to_vec();
                model.insert(key.clone(), value.clone());
                postings.insert(&key, value);
            }
            proptest::prop_assert_eq!(postings.len(), model.len());
            for (k, v) in &model {
                proptest::prop_assert_eq!(postings.get(k), Some(v));
            }
            let all: Vec<Pair> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            proptest::prop_assert_eq!(postings.range(Bound::Unbounded, Bound::Unbounded), all.clone());
            for (a, b) in &bounds {
                proptest::prop_assert_eq!(postings.get(a), model.get(a));
                let want: Vec<Pair> = all.iter().filter(|(k, _)| k.starts_with(a)).cloned().collect();
                proptest::prop_assert_eq!(postings.with_prefix(a), want);
                for (from, to) in [
                    (Bound::Included(a.as_slice()), Bound::Included(b.as_slice())),
                    (Bound::Excluded(a.as_slice()), Bound::Unbounded),
                    (Bound::Unbounded, Bound::Excluded(b.as_slice())),
                ] {
                    let want: Vec<Pair> = all
                        .iter()
                        .filter(|(k, _)| (from, to).contains(&k.as_slice()))
                        .cloned()
                        .collect();
                    proptest::prop_assert_eq!(postings.range(from, to), want);
                }
            }
        }
    }

    #[test]
    fn a_staged_value_unpacks_to_its_pairs_and_a_cut_one_is_refused() {
        let pairs = vec![
            (b"k1".to_vec(), b"v1".to_vec()),
            (b"\x00\x01".to_vec(), Vec::new()),
            ("学".as_bytes().to_vec(), vec![7; 300]),
        ];
        let p = pack(&pairs[..1], &pairs[1..]);
        assert_eq!(unpack(&p), Some(pairs));
        let whole = [0, 12, 22];
        for cut in 0..p.len() {
            assert_eq!(
                unpack(&p[..cut]).is_some(),
                whole.contains(&cut),
                "cut at {cut}"
            );
        }
    }

    /// The postings under `prefix` as readers see them: every 8-byte item of every value, in
    /// key order.
    fn items(values: impl Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
        values
            .flat_map(|(_, v)| v.chunks(8).map(<[u8]>::to_vec).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn merged_reads_equal_a_model_through_staging_compaction_writes_and_reopening() {
        // Random appends of postings (keys never rewritten, 8-byte values) of every size,
        // against a map of what was written: merging changes keys, never what a prefix holds.
        let dir = tempfile::tempdir().unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut state = 7u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seq = 0u64;
        let mut merged_at_least_once = false;
        for round in 0..3 {
            let db = sled::open(dir.path()).unwrap();
            let t = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Plain);
            for _ in 0..60 {
                seq += 1;
                let n = match next() % 10 {
                    0 => 3_000,
                    1 => 0,
                    _ => (next() % 400) as usize,
                };
                let mut postings = Vec::new();
                for i in 0..n {
                    let bucket = (next() % 8) as u8;
                    let mut k = vec![bucket];
                    k.extend_from_slice(&seq.to_be_bytes());
                    k.extend_from_slice(&(i as u32).to_be_bytes());
                    postings.push((k, next().to_le_bytes().to_vec()));
                }
                for (k, v) in &postings {
                    model.insert(k.clone(), v.clone());
                }
                // A third of the appends deferred (the service's small commits).
                let defer = next() % 3 == 0;
                t.apply(postings, Vec::new(), &seq.to_be_bytes(), defer)
                    .unwrap();
                if next() % 25 == 0 {
                    // A write outside an append (a list): merges what is staged first.
                    let k = vec![0xFE, round];
                    t.insert(&k, vec![round]).unwrap();
                    assert_eq!(t.staged_len(), 0);
                    assert_eq!(t.get(&k).unwrap().as_deref(), Some(&[round][..]));
                    merged_at_least_once = true;
                }
                assert_eq!(t.through().unwrap(), seq);
                let stored = t.get(&[0xFF]).unwrap().map(|v| v.to_vec());
                if !defer {
                    assert_eq!(stored.as_deref(), Some(&seq.to_be_bytes()[..]));
                }
                let all: Vec<(Vec<u8>, Vec<u8>)> = t
                    .iter()
                    .unwrap()
                    .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                assert!(
                    all.iter().all(|(k, _)| k[0] != STAGE),
                    "the staging region shown"
                );
                for b in 0..8u8 {
                    let got = items(
                        t.scan_prefix([b])
                            .unwrap()
                            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()),
                    );
                    let want = items(
                        model
                            .iter()
                            .filter(|(k, _)| k[0] == b)
                            .map(|(k, v)| (k.clone(), v.clone())),
                    );
                    assert_eq!(got, want, "seq {seq} bucket {b}");
                    let from_iter = items(all.iter().filter(|(k, _)| k[0] == b).cloned());
                    assert_eq!(from_iter, want);
                    // A range from a batch to the prefix's end holds every posting of the
                    // batches from it on (a merged value may bring earlier ones too).
                    let since = next() % (seq + 1);
                    let mut lo = vec![b];
                    lo.extend_from_slice(&since.to_be_bytes());
                    lo.extend_from_slice(&[0; 4]);
                    let mut hi = vec![b];
                    hi.extend_from_slice(&[0xff; 12]);
                    let got: std::collections::BTreeSet<Vec<u8>> = items(
                        t.range(lo.clone()..=hi.clone())
                            .unwrap()
                            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()),
                    )
                    .into_iter()
                    .collect();
                    for item in items(model.range(lo..=hi).map(|(k, v)| (k.clone(), v.clone()))) {
                        assert!(got.contains(&item), "seq {seq} bucket {b} since {since}");
                    }
                }
            }
            assert!(t.staged_len() <= COMPACT_PAIRS);
            // The store writes what is deferred when it closes.
            t.write_deferred(Vec::new()).unwrap();
            assert_eq!(
                t.get(&[0xFF]).unwrap().as_deref(),
                Some(&seq.to_be_bytes()[..])
            );
            db.flush().unwrap();
        }
        assert!(merged_at_least_once);
    }

    #[test]
    fn small_appends_are_staged_in_one_value_each_and_a_large_one_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Plain);
        let postings = |seq: u64, n: usize| -> Vec<Pair> {
            (0..n)
                .map(|i| {
                    let mut k = vec![(i % 4) as u8];
                    k.extend_from_slice(&seq.to_be_bytes());
                    k.extend_from_slice(&(i as u32).to_be_bytes());
                    (k, vec![1])
                })
                .collect()
        };
        t.apply(postings(1, 100), Vec::new(), &1u64.to_be_bytes(), false)
            .unwrap();
        t.apply(postings(2, 100), Vec::new(), &2u64.to_be_bytes(), false)
            .unwrap();
        // Two staged values and the marker, no posting under its own key yet.
        assert_eq!(t.raw().len(), 3);
        assert_eq!(
            t.iter().unwrap().count(),
            200 + 1,
            "the postings and the marker"
        );
        t.apply(
            postings(3, STAGE_AT_MOST + 1),
            Vec::new(),
            &3u64.to_be_bytes(),
            true,
        )
        .unwrap();
        assert_eq!(t.raw().scan_prefix([STAGE]).count(), 0);
        // The 200 staged postings merged into one value per prefix.
        assert_eq!(t.raw().len(), 4 + STAGE_AT_MOST + 1 + 1);
        assert_eq!(t.staged_len(), 0);
    }

    #[test]
    fn deferred_postings_are_read_at_once_and_written_with_the_next_written_append() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Checked);
        let posting = |seq: u64| -> Pair {
            let mut k = vec![1];
            k.extend_from_slice(&seq.to_be_bytes());
            k.extend_from_slice(&0u32.to_be_bytes());
            let v = super::super::scopes::sealed(&k, &seq.to_le_bytes());
            (k, v)
        };
        t.apply(vec![posting(1)], Vec::new(), &1u64.to_be_bytes(), false)
            .unwrap();
        t.apply(vec![posting(2)], Vec::new(), &2u64.to_be_bytes(), true)
            .unwrap();
        t.apply(vec![posting(3)], Vec::new(), &3u64.to_be_bytes(), true)
            .unwrap();
        // Read at once, not written: the stored marker is the last written append's.
        assert_eq!(t.scan_prefix([1]).unwrap().count(), 3);
        assert_eq!(t.through().unwrap(), 3);
        assert_eq!(
            t.raw().get([0xFF]).unwrap().as_deref(),
            Some(&1u64.to_be_bytes()[..])
        );
        assert_eq!(t.raw().scan_prefix([STAGE]).count(), 1);
        // A fresh handle (a crash: nothing deferred survives) sees the tree behind: what
        // opening a store catches up from the log.
        let fresh = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Checked);
        assert_eq!(fresh.scan_prefix([1]).unwrap().count(), 1);
        assert_eq!(fresh.through().unwrap(), 1);
        // A list written (other values) writes the deferred postings with it, in one staged
        // value named by the last append.
        t.apply(
            vec![posting(4)],
            vec![(vec![0xFE], vec![9])],
            &4u64.to_be_bytes(),
            true,
        )
        .unwrap();
        let fresh = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Checked);
        assert_eq!(fresh.scan_prefix([1]).unwrap().count(), 4);
        assert_eq!(fresh.through().unwrap(), 4);
        assert_eq!(t.raw().scan_prefix([STAGE]).count(), 2);
        // `write_deferred` writes what a last deferred append left.
        t.apply(vec![posting(5)], Vec::new(), &5u64.to_be_bytes(), true)
            .unwrap();
        t.write_deferred(Vec::new()).unwrap();
        let fresh = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Checked);
        assert_eq!(fresh.scan_prefix([1]).unwrap().count(), 5);
        assert_eq!(fresh.through().unwrap(), 5);
    }

    #[test]
    fn a_damaged_staged_value_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Plain);
        t.apply(
            vec![(vec![1, 2], vec![3])],
            Vec::new(),
            &9u64.to_be_bytes(),
            false,
        )
        .unwrap();
        let (k, v) = t.raw().scan_prefix([STAGE]).next().unwrap().unwrap();
        let mut v = v.to_vec();
        v[5] ^= 1;
        t.raw().insert(k, v).unwrap();
        let fresh = StagedTree::new(db.open_tree("t").unwrap(), "t", Values::Plain);
        let err = fresh.get(&[1, 2]).unwrap_err();
        assert!(err.to_string().contains("fails its check"), "{err}");
    }
}
