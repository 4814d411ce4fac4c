//! The log's Merkle tree, kept with the log, and the signed checkpoints of it (docs/proofs.md,
//! rules §12).
//!
//! **Stored hashes.** Leaf `i` is `SHA-256(0x00 ‖ body)` of the envelope of seq `i + 1`, the
//! same body bytes the hash chain hashes. Only the hashes of complete subtrees are stored, at the
//! dense indexes of `tlog::tree` (the layout of Go's `sumdb/tlog`): about two per envelope. They
//! live in the sled tree `tlog`, packed in **tiles** of [`TILE_HASHES`] consecutive indexes
//! (key = big-endian tile number, value = its hashes, 32 bytes each, in index order), so that a
//! county import writes a few thousand sled values, not two per envelope (sled's per-key cost,
//! docs/stack.md). A stored hash is never changed: a full tile is never written again, and the
//! last, partial tile is rewritten grown by the next append, its earlier hashes copied as they
//! were.
//!
//! **Order.** An append writes its tiles after its segments and before sled's flush and the head
//! marker (the commit point): a committed batch has its hashes. Hashes past the head's count
//! are the remains of a batch that never committed and are cut off on open, with the stale
//! segments; a tree behind the head (a store made before the tree was kept) is caught up from the
//! log once, on open, and said in a notice.
//!
//! **Checkpoints.** The sled tree `checkpoints`: key = big-endian tree size, value = the signed
//! note (C2SP tlog-checkpoint), the `recorded_at` of the batch that made that size, and when it
//! was signed. The store signs with a [`NoteSigner`] it is handed (`set_signer`); where the key
//! is kept is the caller's business. A checkpoint is signed *after* the commit — a key never
//! signs a tree that might not become the log's — and, since Ed25519 signatures are
//! deterministic, signing the head again after a crash writes the very same note.
//!
//! This module owns the tiles, the checkpoints and the proofs read from them, and the check of
//! both against the log (`TreeCheck`, run by `verify`). It must never sign with a key that did
//! not sign the store's earlier checkpoints, never keep a checkpoint its tree does not have, and
//! never change a stored hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tlog::{
    Checkpoint, HashReader, NoteSigner, TreeError, consistency_proof, inclusion_proof, leaf_hash,
    node_hash, split_stored_hash_index, stored_hash_count, stored_hashes_for_leaf, tree_hash,
};

use events::envelope::Hash;

use super::error::{StoreError, damaged};
use super::read::decode;
use super::{Head, Store};
use crate::segment;

/// Stored hashes per tile: 8 KiB values, far below sled's blob threshold.
pub const TILE_HASHES: u64 = 256;
const HASH_BYTES: usize = 32;
const TILE_BYTES: usize = TILE_HASHES as usize * HASH_BYTES;
/// Tiles per sled batch.
const TILES_PER_SLED_BATCH: usize = 256;
/// Envelopes hashed at a time when the tree is caught up from the log.
const CATCH_UP_CHUNK: usize = 50_000;

/// A signed checkpoint the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it signs.
    pub size: u64,
    /// The signed note: checkpoint text, blank line, signature lines.
    pub note: String,
    /// The `recorded_at` of the last envelope of the tree (the batch that made this size).
    pub recorded_at: Option<DateTime<Utc>>,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct CheckpointValue {
    note: String,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    recorded_at: Option<DateTime<Utc>>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    signed_at: DateTime<Utc>,
}

/// The stored hashes an append adds, as tiles ready to write.
pub(super) struct TreeAppend {
    tiles: Vec<(u64, Vec<u8>)>,
}

/// The seq whose append wrote stored hash `index`: the last leaf under it, plus one.
fn writer_seq(index: u64) -> u64 {
    match split_stored_hash_index(index) {
        Ok((level, n)) => n
            .checked_add(1)
            .and_then(|m| m.checked_mul(1u64 << level))
            .unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    }
}

/// A tree error as a store error: a failed read keeps its own error; anything else means the
/// stored hashes and the tree arithmetic disagree, which is damage.
fn tree_err(e: TreeError) -> StoreError {
    match e {
        TreeError::Read(inner) => match inner.downcast::<StoreError>() {
            Ok(s) => *s,
            Err(other) => StoreError::Corrupt(format!("the stored tree: {other}")),
        },
        other => StoreError::Corrupt(format!("the stored tree: {other}")),
    }
}

/// The checkpoint text of a signed note: everything up to and including the line before the
/// blank line.
fn note_text(note: &str) -> Option<&str> {
    note.find("\n\n").map(|i| &note[..=i])
}

/// Reads stored hashes from the tiles, and those of the append being planned from memory.
struct TileReader<'a> {
    tiles: &'a sled::Tree,
    /// The first index held in `pending`.
    base: u64,
    pending: &'a [tlog::Hash],
}

impl HashReader for TileReader<'_> {
    type Error = StoreError;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, StoreError> {
        let mut out = Vec::with_capacity(indexes.len());
        let mut cached: Option<(u64, sled::IVec)> = None;
        for &i in indexes {
            if i >= self.base {
                let h = usize::try_from(i - self.base)
                    .ok()
                    .and_then(|k| self.pending.get(k))
                    .ok_or_else(|| missing(i))?;
                out.push(*h);
                continue;
            }
            let t = i / TILE_HASHES;
            if cached.as_ref().is_none_or(|(ct, _)| *ct != t) {
                let v = self.tiles.get(t.to_be_bytes())?.ok_or_else(|| missing(i))?;
                cached = Some((t, v));
            }
            let (_, tile) = cached.as_ref().ok_or_else(|| missing(i))?;
            let at = (i % TILE_HASHES) as usize * HASH_BYTES;
            let bytes = tile.get(at..at + HASH_BYTES).ok_or_else(|| missing(i))?;
            let mut h = [0u8; HASH_BYTES];
            h.copy_from_slice(bytes);
            out.push(tlog::Hash(h));
        }
        Ok(out)
    }
}

fn missing(index: u64) -> StoreError {
    damaged(
        writer_seq(index),
        format!("the stored tree has no hash at index {index}, which this envelope's append wrote"),
    )
}

/// Leaf hashes of `bodies`, on every core for a large batch (order kept).
fn leaf_hashes(bodies: &[Vec<u8>]) -> Vec<tlog::Hash> {
    let threads = super::threads_for(bodies.len());
    if threads < 2 {
        return bodies.iter().map(|b| leaf_hash(b)).collect();
    }
    let chunk = bodies.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|b| leaf_hash(b)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("hashing never panics"))
            .collect()
    })
}

impl Store {
    /// The stored hashes `bodies` (the envelopes of seqs `size + 1 …`, as they will be stored)
    /// add to the tree of `size` leaves, as tiles. Reads at most the last partial tile and a
    /// logarithmic number of older hashes; writes nothing.
    pub(super) fn plan_tree(
        &self,
        size: u64,
        bodies: &[Vec<u8>],
    ) -> Result<TreeAppend, StoreError> {
        if self
            .tree_off_for_bench
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(TreeAppend { tiles: Vec::new() });
        }
        let base = stored_hash_count(size).map_err(tree_err)?;
        let mut pending: Vec<tlog::Hash> = Vec::with_capacity(bodies.len() * 2 + 1);
        for (k, leaf) in leaf_hashes(bodies).into_iter().enumerate() {
            let n = size + k as u64;
            let reader = TileReader {
                tiles: &self.tlog,
                base,
                pending: &pending,
            };
            let hashes = stored_hashes_for_leaf(n, leaf, &reader).map_err(tree_err)?;
            pending.extend(hashes);
        }
        let mut tile = base / TILE_HASHES;
        let held = (base % TILE_HASHES) as usize * HASH_BYTES;
        let mut cur: Vec<u8> = Vec::with_capacity(TILE_BYTES);
        if held > 0 {
            // The partial last tile is rewritten grown: its hashes are copied unchanged.
            let old = self
                .tlog
                .get(tile.to_be_bytes())?
                .ok_or_else(|| missing(base - 1))?;
            if old.len() != held {
                return Err(damaged(
                    size,
                    format!(
                        "the last tile of the stored tree holds {} bytes, the tree of {size} \
                         leaves needs {held}",
                        old.len()
                    ),
                ));
            }
            cur.extend_from_slice(&old);
        }
        let mut tiles = Vec::new();
        for h in pending {
            cur.extend_from_slice(&h.0);
            if cur.len() == TILE_BYTES {
                tiles.push((
                    tile,
                    std::mem::replace(&mut cur, Vec::with_capacity(TILE_BYTES)),
                ));
                tile += 1;
            }
        }
        if !cur.is_empty() {
            tiles.push((tile, cur));
        }
        Ok(TreeAppend { tiles })
    }

    /// Writes planned tiles inside a small append's transaction, with its segments and its
    /// head (`append_rest`).
    pub(super) fn write_tree_in(
        plan: &TreeAppend,
        tlog: &sled::transaction::TransactionalTree,
    ) -> sled::transaction::ConflictableTransactionResult<()> {
        for (t, bytes) in &plan.tiles {
            tlog.insert(&t.to_be_bytes(), bytes.as_slice())?;
        }
        Ok(())
    }

    /// Writes planned tiles (not yet durable: the append's flush makes them so, before the
    /// head moves).
    pub(super) fn write_tree(&self, plan: TreeAppend) -> Result<(), StoreError> {
        for chunk in plan.tiles.chunks(TILES_PER_SLED_BATCH) {
            let mut batch = sled::Batch::default();
            for (t, bytes) in chunk {
                batch.insert(&t.to_be_bytes(), bytes.as_slice());
            }
            self.tlog.apply_batch(batch)?;
        }
        Ok(())
    }

    /// How many stored hashes the tiles hold, assuming they are contiguous from 0 (`verify`
    /// checks that they are).
    fn stored_hashes_held(&self) -> Result<u64, StoreError> {
        let Some((k, v)) = self.tlog.last()? else {
            return Ok(0);
        };
        let t = segment::first_seq(&k)
            .ok_or_else(|| StoreError::Corrupt("the stored tree has a malformed key".into()))?;
        Ok(t * TILE_HASHES + (v.len() / HASH_BYTES) as u64)
    }

    /// Cuts the stored hashes down to the first `count`.
    fn cut_tree(&self, count: u64) -> Result<(), StoreError> {
        let keep_tiles = count.div_ceil(TILE_HASHES);
        let stale: Vec<sled::IVec> = self
            .tlog
            .range(keep_tiles.to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()?;
        for k in stale {
            self.tlog.remove(k)?;
        }
        let rem = (count % TILE_HASHES) as usize * HASH_BYTES;
        if rem > 0 {
            let t = count / TILE_HASHES;
            if let Some(v) = self.tlog.get(t.to_be_bytes())?
                && v.len() > rem
            {
                self.tlog.insert(t.to_be_bytes(), &v[..rem])?;
            }
        }
        Ok(())
    }

    /// On open, after the log's own recovery: cuts off stored hashes and checkpoints past the
    /// head (a batch that never committed), then catches a tree that is behind the head up
    /// from the log. Returns a notice when it had to build part of the tree.
    pub(super) fn recover_tree(&self) -> Result<Option<String>, StoreError> {
        let head = self.head();
        let want = stored_hash_count(head.seq).map_err(tree_err)?;
        let mut wrote = false;
        let held = self.stored_hashes_held()?;
        if held > want {
            self.cut_tree(want)?;
            wrote = true;
        }
        let stale: Vec<sled::IVec> = self
            .checkpoints
            .range(segment::key(head.seq.saturating_add(1))..)
            .keys()
            .collect::<Result<_, _>>()?;
        for k in stale {
            self.checkpoints.remove(k)?;
            wrote = true;
        }
        let held = held.min(want);
        let mut notice = None;
        if held < want {
            // The largest tree whose hashes are all held; a leaf's hashes are written in one
            // sled batch, so this is exact unless the tiles were damaged.
            let (mut lo, mut hi) = (0u64, head.seq);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if stored_hash_count(mid).map_err(tree_err)? <= held {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            self.cut_tree(stored_hash_count(lo).map_err(tree_err)?)?;
            self.build_tree(lo, head.seq)?;
            wrote = true;
            notice = Some(format!(
                "{}: the log's Merkle tree was built from the log for seqs {} to {} (a store \
                 made before careledger kept the tree); from now on every append writes it",
                self.path.display(),
                lo + 1,
                head.seq
            ));
        }
        if wrote {
            self.sync()?;
        }
        Ok(notice)
    }

    /// Appends the stored hashes of seqs `from + 1 ..= to` to a tree of `from` leaves, reading
    /// the bodies from the log (each checked against its stored hash).
    fn build_tree(&self, from: u64, to: u64) -> Result<(), StoreError> {
        let mut size = from;
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let mut seq = from + 1;
        let mut entries = super::read::Entries::new(self);
        while seq <= to {
            let stored = entries
                .get(seq)?
                .ok_or_else(|| damaged(seq, "missing from the log"))?;
            decode(seq, stored.hash, stored.body())?;
            bodies.push(stored.body().to_vec());
            seq += 1;
            if bodies.len() >= CATCH_UP_CHUNK || seq > to {
                let plan = self.plan_tree(size, &bodies)?;
                self.write_tree(plan)?;
                size += bodies.len() as u64;
                bodies.clear();
            }
        }
        Ok(())
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        let head = self.head().seq;
        if size > head {
            return Err(StoreError::Proof(format!(
                "the log has {head} events, not {size}"
            )));
        }
        Ok(())
    }

    fn reader(&self) -> TileReader<'_> {
        TileReader {
            tiles: &self.tlog,
            base: u64::MAX,
            pending: &[],
        }
    }

    /// The root of the log's tree at `size` (at most the head's seq).
    pub fn tree_root(&self, size: u64) -> Result<tlog::Hash, StoreError> {
        self.check_size(size)?;
        tree_hash(size, &self.reader()).map_err(tree_err)
    }

    /// The inclusion proof of leaf `index` (seq `index + 1`) in the tree of `size` leaves.
    pub fn inclusion_proof(&self, size: u64, index: u64) -> Result<Vec<tlog::Hash>, StoreError> {
        self.check_size(size)?;
        if index >= size {
            return Err(StoreError::Proof(format!(
                "seq {} is not in the tree of {size} events",
                index.saturating_add(1)
            )));
        }
        inclusion_proof(size, index, &self.reader()).map_err(tree_err)
    }

    /// The consistency proof that the tree of `old` leaves is a prefix of the tree of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<tlog::Hash>, StoreError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(StoreError::Proof(format!(
                "a consistency proof goes from a size of at least 1 to a size no smaller, not \
                 from {old} to {new}"
            )));
        }
        consistency_proof(new, old, &self.reader()).map_err(tree_err)
    }

    /// The envelope of `seq` as stored: its chain hash and its body (the bytes the chain and
    /// the tree hash), checked against the stored hash. `None` past the head.
    pub fn stored_leaf(&self, seq: u64) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        if seq == 0 || seq > self.head().seq {
            return Ok(None);
        }
        let stored = super::read::Entries::new(self)
            .get(seq)?
            .ok_or_else(|| damaged(seq, "missing from the log"))?;
        decode(seq, stored.hash, stored.body())?;
        Ok(Some((stored.hash, stored.body().to_vec())))
    }

    /// Hands the store the key that signs its checkpoints. It must be the key that signed the
    /// latest checkpoint, if there is one (else `Signer`, and nothing changes). Then, if the
    /// head has no checkpoint (the process died between a commit and its signing, or the log
    /// grew without a key), signs it and returns it.
    pub fn set_signer(&self, signer: NoteSigner) -> Result<Option<StoredCheckpoint>, StoreError> {
        if let Some(last) = self.latest_checkpoint()? {
            // Ed25519 is deterministic: the same key signs the same text to the same note.
            let same = note_text(&last.note)
                .and_then(|text| signer.sign(text).ok())
                .is_some_and(|again| again == last.note);
            if !same {
                return Err(StoreError::Signer(format!(
                    "the key named {} (id {:08x}) did not sign this store's checkpoints (the \
                     latest is at size {})",
                    signer.name(),
                    signer.key_id(),
                    last.size
                )));
            }
        }
        *self.signer.lock().unwrap_or_else(|e| e.into_inner()) = Some(signer);
        let head = self.head();
        if head.seq > 0 && self.checkpoint_at(head.seq)?.is_none() {
            return self.sign_checkpoint(&head).map(Some);
        }
        Ok(None)
    }

    /// Whether a signer was handed over.
    pub fn has_signer(&self) -> bool {
        self.signer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// After a commit: signs the new head when the store has a signer.
    pub(super) fn sign_after_commit(&self, head: &Head) -> Result<(), StoreError> {
        if self.has_signer() {
            self.sign_checkpoint(head)?;
        }
        Ok(())
    }

    /// Signs the committed `head` and keeps the checkpoint.
    fn sign_checkpoint(&self, head: &Head) -> Result<StoredCheckpoint, StoreError> {
        let root = self.tree_root(head.seq)?;
        let note = {
            let guard = self.signer.lock().unwrap_or_else(|e| e.into_inner());
            let signer = guard
                .as_ref()
                .ok_or_else(|| StoreError::Signer("no signing key was given".into()))?;
            Checkpoint {
                origin: signer.name().to_owned(),
                size: head.seq,
                root,
            }
            .sign(signer)
            .map_err(|e| StoreError::Signer(e.to_string()))?
        };
        let cp = StoredCheckpoint {
            size: head.seq,
            note,
            recorded_at: head.recorded_at,
            signed_at: Utc::now(),
        };
        let value = CheckpointValue {
            note: cp.note.clone(),
            recorded_at: cp.recorded_at,
            signed_at: cp.signed_at,
        };
        self.checkpoints.insert(
            segment::key(cp.size),
            rmp_serde::to_vec_named(&value).expect("a checkpoint always encodes"),
        )?;
        // Not fsynced on its own: lost with a power cut, it is signed again, identically, on
        // the next open with the key; the next append's fsync makes it durable.
        self.db.flush()?;
        Ok(cp)
    }

    fn decode_checkpoint(k: &[u8], v: &[u8]) -> Result<StoredCheckpoint, StoreError> {
        let size = segment::first_seq(k)
            .ok_or_else(|| StoreError::Corrupt("a checkpoint has a malformed key".into()))?;
        let value: CheckpointValue = rmp_serde::from_slice(v).map_err(|e| {
            StoreError::Corrupt(format!("the checkpoint at size {size} is unreadable: {e}"))
        })?;
        Ok(StoredCheckpoint {
            size,
            note: value.note,
            recorded_at: value.recorded_at,
            signed_at: value.signed_at,
        })
    }

    /// The checkpoint signed at `size`, if any.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let key = segment::key(size);
        match self.checkpoints.get(key)? {
            Some(v) => Store::decode_checkpoint(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The latest checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        match self.checkpoints.last()? {
            Some((k, v)) => Store::decode_checkpoint(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The checkpoint in force at `t`: the latest whose batch was recorded at or before `t`.
    pub fn checkpoint_as_of(
        &self,
        t: DateTime<Utc>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        // recorded_at never decreases along the log, so neither does it along checkpoints.
        for item in self.checkpoints.iter().rev() {
            let (k, v) = item?;
            let cp = Store::decode_checkpoint(&k, &v)?;
            if cp.recorded_at.is_some_and(|r| r <= t) {
                return Ok(Some(cp));
            }
        }
        Ok(None)
    }

    /// Every checkpoint, in size order.
    pub fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.checkpoints
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Store::decode_checkpoint(&k, &v)
            })
            .collect()
    }

    /// Test damage, the full rewrite: `tamper_rewrite` (the envelope at `seq` edited, every
    /// later one re-chained, the head marker moved), the head file rewritten whole to the new
    /// head, then `tamper_rebuild_tree`, and the read models emptied (they hold copies of
    /// envelopes, `world`): the next open derives them from the rewritten log, as whoever
    /// rewrote it would. Everything the store itself can check holds after it.
    #[doc(hidden)]
    pub fn tamper_rewrite_history(
        &self,
        seq: u64,
        edit: impl FnOnce(&mut events::Envelope),
    ) -> Result<(), StoreError> {
        self.tamper_rewrite(seq, edit)?;
        let head = self.meta_head()?;
        super::head_file::HeadFile::create(&self.path, &head)?;
        *self.head_file.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(super::head_file::HeadFile::open(&self.path)?);
        self.lock().head = head;
        self.tamper_rebuild_tree()?;
        self.scopes.clear()?;
        self.lock_read_model_lists().clear();
        self.sync()
    }

    /// A walk of the stored tree and the checkpoints alongside the log, for `verify`.
    pub(super) fn tree_check(&self) -> Result<TreeCheck, StoreError> {
        let mut checkpoints = Vec::new();
        for cp in self.checkpoints()? {
            let text = note_text(&cp.note).ok_or_else(|| {
                damaged(
                    cp.size,
                    "the checkpoint signed at this size is not a signed note",
                )
            })?;
            let parsed = Checkpoint::parse(text).map_err(|e| {
                damaged(
                    cp.size,
                    format!("the checkpoint signed at this size is malformed: {e}"),
                )
            })?;
            if parsed.size != cp.size {
                return Err(damaged(
                    cp.size,
                    format!("the checkpoint kept at this size says size {}", parsed.size),
                ));
            }
            checkpoints.push((cp.size, parsed.root));
        }
        checkpoints.reverse();
        Ok(TreeCheck {
            tiles: self.tlog.iter(),
            tile: None,
            next_tile: 0,
            stack: Vec::new(),
            size: 0,
            checkpoints,
        })
    }

    /// For the benchmark of the tree's cost only (`examples/tree_overhead.rs`): appends from now
    /// on write no stored hashes. The store is then behind on its tree, which `verify` reports
    /// and the next open repairs; never use it on real data.
    #[doc(hidden)]
    pub fn turn_tree_off_for_bench(&self) {
        self.tree_off_for_bench
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test damage: flips one bit of stored hash `index`, nothing else.
    #[doc(hidden)]
    pub fn tamper_tree_hash(&self, index: u64) -> Result<(), StoreError> {
        let t = index / TILE_HASHES;
        let mut tile = self
            .tlog
            .get(t.to_be_bytes())?
            .ok_or_else(|| missing(index))?
            .to_vec();
        let at = (index % TILE_HASHES) as usize * HASH_BYTES;
        let byte = tile.get_mut(at).ok_or_else(|| missing(index))?;
        *byte ^= 0x01;
        self.tlog.insert(t.to_be_bytes(), tile)?;
        self.sync()
    }

    /// Test damage, the editor who knows every rule: throws the stored tree and every
    /// checkpoint away and builds the tree again from the log as it now is (after
    /// `tamper_rewrite`, say). With a signer handed over, the head is signed anew.
    #[doc(hidden)]
    pub fn tamper_rebuild_tree(&self) -> Result<(), StoreError> {
        self.tlog.clear()?;
        self.checkpoints.clear()?;
        self.build_tree(0, self.head().seq)?;
        self.sync()?;
        let head = self.head();
        if head.seq > 0 && self.has_signer() {
            self.sign_checkpoint(&head)?;
            self.sync()?;
        }
        Ok(())
    }
}

/// `verify`'s walk of the stored tree: fed every envelope body in log order, it recomputes
/// the hashes each append must have stored (a stack of the complete subtrees at the right
/// edge) and compares them with the tiles, and recomputes the root at every checkpoint's size.
pub(super) struct TreeCheck {
    tiles: sled::Iter,
    /// The tile being read: its number, bytes and the next offset.
    tile: Option<(u64, sled::IVec, usize)>,
    next_tile: u64,
    stack: Vec<tlog::Hash>,
    size: u64,
    /// `(size, root)` of each checkpoint, the smallest last.
    checkpoints: Vec<(u64, tlog::Hash)>,
}

impl TreeCheck {
    /// The next stored hash, with the tiles checked to be contiguous and full but the last.
    fn next_stored(&mut self, seq: u64) -> Result<Option<tlog::Hash>, StoreError> {
        loop {
            if let Some((_, bytes, at)) = &mut self.tile
                && *at + HASH_BYTES <= bytes.len()
            {
                let mut h = [0u8; HASH_BYTES];
                h.copy_from_slice(&bytes[*at..*at + HASH_BYTES]);
                *at += HASH_BYTES;
                return Ok(Some(tlog::Hash(h)));
            }
            let Some(item) = self.tiles.next() else {
                return Ok(None);
            };
            let (k, v) = item?;
            if let Some((t, bytes, _)) = &self.tile
                && bytes.len() != TILE_BYTES
            {
                return Err(damaged(
                    seq,
                    format!(
                        "tile {t} of the stored tree holds {} bytes but is not the last",
                        bytes.len()
                    ),
                ));
            }
            let t = segment::first_seq(&k)
                .ok_or_else(|| damaged(seq, "the stored tree has a malformed key"))?;
            if t != self.next_tile || v.len() % HASH_BYTES != 0 || v.is_empty() {
                return Err(damaged(
                    seq,
                    format!("the stored tree's tile {t} is out of place or malformed"),
                ));
            }
            self.next_tile = t + 1;
            self.tile = Some((t, v, 0));
        }
    }

    /// Checks the stored hashes of the envelope of `seq` (leaf `seq − 1`), whose body is
    /// `body`, and the checkpoint signed at size `seq`, if any.
    pub(super) fn leaf(&mut self, seq: u64, body: &[u8]) -> Result<(), StoreError> {
        let n = self.size;
        let mut h = leaf_hash(body);
        let mut expected = vec![h];
        for _ in 0..n.trailing_ones() {
            let left = self
                .stack
                .pop()
                .ok_or_else(|| damaged(seq, "the tree walk lost its place"))?;
            h = node_hash(&left, &h);
            expected.push(h);
        }
        self.stack.push(h);
        for (level, want) in expected.iter().enumerate() {
            match self.next_stored(seq)? {
                Some(got) if got == *want => {}
                Some(_) if level == 0 => {
                    return Err(damaged(
                        seq,
                        "its leaf hash in the stored tree is not the hash of its body",
                    ));
                }
                Some(_) => {
                    return Err(damaged(
                        seq,
                        format!(
                            "the stored tree hash of the {} leaves it completes is wrong",
                            1u64 << level
                        ),
                    ));
                }
                None => {
                    return Err(damaged(seq, "the stored tree ends before its hashes"));
                }
            }
        }
        self.size = n + 1;
        if let Some(&(size, root)) = self.checkpoints.last()
            && size == self.size
        {
            self.checkpoints.pop();
            let mut parts = self.stack.iter().rev();
            let mut r = *parts.next().expect("a leaf was just pushed");
            for left in parts {
                r = node_hash(left, &r);
            }
            if r != root {
                return Err(damaged(
                    seq,
                    format!(
                        "the checkpoint signed at size {size} has root {root}, but the log's \
                         tree at that size has root {r}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// After the last envelope: nothing may be stored past it.
    pub(super) fn finish(mut self, events: u64) -> Result<(), StoreError> {
        if let Some(&(size, _)) = self.checkpoints.last() {
            return Err(damaged(
                size.min(events.saturating_add(1)),
                format!("a checkpoint is kept for size {size}, but the log holds {events} events"),
            ));
        }
        if self.next_stored(events.saturating_add(1))?.is_some() {
            return Err(StoreError::Corrupt(format!(
                "the stored tree holds hashes past the log's {events} events"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use events::envelope::Source;
    use events::event::Mood;
    use events::{Draft, Event};

    use super::*;

    fn talk(id: &str, day: u32) -> Draft {
        Draft {
            sealed: None,
            id: id.to_owned(),
            occurred_at: Utc.with_ymd_and_hms(2025, 9, 1, 4, 0, 0).unwrap()
                + chrono::Duration::days(i64::from(day)),
            actor: "t1".to_owned(),
            event: Event::TalkHeld {
                staff: "t1".to_owned(),
                child: format!("c{}", day % 7),
                topic: "学习".to_owned(),
                summary: "谈了期中考试".to_owned(),
                mood: Mood::Ok,
                follow_up: None,
            },
            recorded_at: None,
        }
    }

    fn now(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + chrono::Duration::days(i64::from(day))
    }

    fn signer(seed: u8) -> NoteSigner {
        NoteSigner::new(
            "careledger.example/test",
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        )
        .unwrap()
    }

    /// RFC 6962 MTH straight from the definition, over leaf hashes: the reference the stored
    /// tree must agree with.
    fn mth(leaves: &[tlog::Hash]) -> tlog::Hash {
        match leaves.len() {
            0 => tlog::EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = 1usize << (n - 1).ilog2();
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// Appends `sizes` batches of talks, one day apart.
    fn filled(dir: &std::path::Path, sizes: &[usize]) -> Store {
        let store = Store::create(dir).unwrap();
        let mut id = 0;
        for (b, &n) in sizes.iter().enumerate() {
            let drafts = (0..n)
                .map(|_| {
                    id += 1;
                    talk(&format!("e{id}"), id % 200)
                })
                .collect();
            store.append_at(drafts, Source::Cli, now(b as u32)).unwrap();
        }
        store
    }

    fn leaves(store: &Store) -> Vec<tlog::Hash> {
        (1..=store.head().seq)
            .map(|s| leaf_hash(&store.stored_leaf(s).unwrap().unwrap().1))
            .collect()
    }

    #[test]
    fn the_stored_tree_has_the_rfc_6962_root_at_every_size() {
        let dir = tempfile::tempdir().unwrap();
        // Batches that cross tile boundaries (256 hashes) in every way.
        let store = filled(dir.path(), &[1, 2, 5, 120, 1, 300, 64, 7]);
        let leaves = leaves(&store);
        assert_eq!(leaves.len(), 500);
        for size in 0..=500u64 {
            assert_eq!(
                store.tree_root(size).unwrap(),
                mth(&leaves[..size as usize]),
                "size {size}"
            );
        }
        assert_eq!(
            store.stored_hashes_held().unwrap(),
            stored_hash_count(500).unwrap()
        );
        assert!(matches!(store.tree_root(501), Err(StoreError::Proof(_))));
        store.verify().unwrap();
    }

    #[test]
    fn proofs_are_the_ones_an_in_memory_tree_gives() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path(), &[3, 40, 1, 90]);
        let mut memory: Vec<tlog::Hash> = Vec::new();
        for (n, leaf) in leaves(&store).into_iter().enumerate() {
            let add = stored_hashes_for_leaf(n as u64, leaf, &memory).unwrap();
            memory.extend(add);
        }
        for size in [1u64, 2, 3, 43, 44, 100, 134] {
            for index in [0, size / 2, size - 1] {
                assert_eq!(
                    store.inclusion_proof(size, index).unwrap(),
                    tlog::inclusion_proof(size, index, &memory).unwrap()
                );
            }
            assert_eq!(
                store.consistency_proof(1, size).unwrap(),
                tlog::consistency_proof(size, 1, &memory).unwrap()
            );
            assert_eq!(
                store.consistency_proof(size, 134).unwrap(),
                tlog::consistency_proof(134, size, &memory).unwrap()
            );
        }
        assert!(matches!(
            store.inclusion_proof(10, 10),
            Err(StoreError::Proof(_))
        ));
        assert!(matches!(
            store.consistency_proof(0, 10),
            Err(StoreError::Proof(_))
        ));
    }

    #[test]
    fn verify_names_the_seq_whose_stored_tree_hash_was_flipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path(), &[50, 50]);
        // Index 6 is the node over leaves 0..4, written by the append of leaf 3 (seq 4).
        store.tamper_tree_hash(6).unwrap();
        let err = store.verify().unwrap_err();
        assert_eq!(err.damaged_seq(), Some(4), "{err}");
        // Index 7 is leaf 4's own hash (seq 5).
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path(), &[50, 50]);
        store.tamper_tree_hash(7).unwrap();
        let err = store.verify().unwrap_err();
        assert_eq!(err.damaged_seq(), Some(5), "{err}");
        assert!(err.to_string().contains("leaf hash"), "{err}");
    }

    #[test]
    fn a_tree_behind_the_head_is_caught_up_on_open_and_hashes_past_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let root = {
            let store = filled(&path, &[200, 333]);
            let root = store.tree_root(533).unwrap();
            // A store from before the tree: only the first 100 leaves' hashes, a tile cut in
            // the middle.
            store.cut_tree(stored_hash_count(100).unwrap()).unwrap();
            store.sync().unwrap();
            root
        };
        let store = Store::open(&path).unwrap();
        assert!(
            store
                .notices()
                .iter()
                .any(|n| n.contains("Merkle tree was built")),
            "{:?}",
            store.notices()
        );
        assert_eq!(store.tree_root(533).unwrap(), root);
        store.verify().unwrap();
        // Hashes past the head (a batch that never committed) are cut off on open.
        let extra = TreeAppend {
            tiles: vec![(1000, vec![7u8; 64])],
        };
        store.write_tree(extra).unwrap();
        assert!(store.verify().is_err());
        drop(store);
        let store = Store::open(&path).unwrap();
        store.verify().unwrap();
    }

    #[test]
    fn checkpoints_are_signed_after_each_commit_by_the_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            // Two batches without a key: no checkpoint.
            let store = filled(&path, &[10, 5]);
            assert_eq!(store.latest_checkpoint().unwrap(), None);
            // Handing a key over signs the head.
            let cp = store.set_signer(signer(1)).unwrap().unwrap();
            assert_eq!(cp.size, 15);
            let text = note_text(&cp.note).unwrap();
            let parsed = Checkpoint::parse(text).unwrap();
            assert_eq!(parsed.root, store.tree_root(15).unwrap());
            assert_eq!(parsed.origin, "careledger.example/test");
            // Each append signs its own.
            store
                .append_at(vec![talk("late", 3)], Source::Cli, now(5))
                .unwrap();
            let sizes: Vec<u64> = store
                .checkpoints()
                .unwrap()
                .iter()
                .map(|c| c.size)
                .collect();
            assert_eq!(sizes, [15, 16]);
            assert_eq!(store.checkpoint_as_of(now(4)).unwrap().unwrap().size, 15);
            assert_eq!(store.checkpoint_as_of(now(5)).unwrap().unwrap().size, 16);
            assert_eq!(store.checkpoint_as_of(now(0)).unwrap(), None);
            store.verify().unwrap();
        }
        let store = Store::open(&path).unwrap();
        // Another key is refused, and the store keeps none.
        assert!(matches!(
            store.set_signer(signer(2)),
            Err(StoreError::Signer(_))
        ));
        assert!(!store.has_signer());
        // The same key again: nothing to sign, and signing is reproducible.
        assert_eq!(store.set_signer(signer(1)).unwrap(), None);
        let before = store.checkpoint_at(16).unwrap().unwrap();
        store.checkpoints.remove(segment::key(16)).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let again = store.set_signer(signer(1)).unwrap().unwrap();
        assert_eq!(again.note, before.note);
    }

    #[test]
    fn verify_refuses_a_checkpoint_whose_root_is_not_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let store = filled(&path, &[20]);
            store.set_signer(signer(1)).unwrap();
            store
                .append_at(vec![talk("x", 1)], Source::Cli, now(3))
                .unwrap();
            store.verify().unwrap();
            // An editor rewrites seq 3 and re-chains, and rebuilds the tree.
            store
                .tamper_rewrite(3, |env| env.actor = "someone-else".into())
                .unwrap();
            // Both slots of the head file, as the editor would (tamper_rewrite's two writes
            // can land in one slot when both hold the same seq).
            super::super::head_file::HeadFile::create(&path, &store.meta_head().unwrap()).unwrap();
        }
        let store = Store::open(&path).unwrap();
        store.tamper_rebuild_tree_keeping_checkpoints_for_test();
        // The chain and the tree are fine; the checkpoints signed before are not.
        let err = store.verify().unwrap_err();
        assert_eq!(err.damaged_seq(), Some(20), "{err}");
        assert!(
            err.to_string().contains("checkpoint signed at size 20"),
            "{err}"
        );
        // Rebuilding the tree and re-signing too: verify alone can no longer tell.
        store.set_signer(signer(1)).unwrap();
        store.tamper_rebuild_tree().unwrap();
        store.verify().unwrap();
        assert_eq!(store.latest_checkpoint().unwrap().unwrap().size, 21);
    }

    impl Store {
        fn tamper_rebuild_tree_keeping_checkpoints_for_test(&self) {
            self.tlog.clear().unwrap();
            self.build_tree(0, self.head().seq).unwrap();
            self.sync().unwrap();
        }
    }
}
