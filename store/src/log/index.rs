//! The derived trees: which seqs are about a child (`by_child`, which also lists each
//! school's registry-kind events under `0x01 ‖ school`), done by a staff member
//! (`by_staff`), carry an id (`by_id`), and what is registered (`registry`).
//!
//! `derive` says what a run of envelopes adds to them — the one rule, used both to write the
//! trees (`write_indexes`) and by `verify` to check them against the log. Layouts: postings
//! are grouped into 1,024 buckets (`seq_batch`, `postings`), the id index is an append-only
//! run of `(hash, seq)` pairs loaded into an `IdMap` once per process.
//!
//! This module owns those layouts and the derivation; it must never read an event's payload
//! beyond its children, staff, school and amendment target.

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use events::envelope::Envelope;
use events::event::Event;
use events::registry::{Entry, Registry};

use super::error::{StoreError, damaged};
use super::{Store, THROUGH_KEY};
use crate::segment;

/// `(id hash, seq)` pairs per value of the id index (16 KiB).
pub(super) const IDS_PER_CHUNK: usize = 1024;
/// Largest number of seqs in one posting entry (a value stays below `POSTING_VALUE_BYTES`
/// plus one entry).
const MAX_SEQS_PER_KEY: usize = 512;
/// An append of at most this many envelopes defers its derived values (`Deferred`) …
const DEFER_AT_MOST: usize = 256;
/// … unless this many appends have passed since they were last written: then all are.
const DEFER_APPENDS: usize = 32;
/// The key prefix under which a school's registry-kind events are listed in `by_child`,
/// followed by the school id (ids never contain control characters, so no child id starts
/// with 0x01).
pub(super) const REGISTRY_EVENTS_PREFIX: &str = "\u{1}";
/// The posting bucket of an id: `by_child` and `by_staff` group ids into this many buckets,
/// so an append writes at most one or a few sled keys per bucket, not one per child — sled's
/// per-key cost would otherwise dominate a bulk import of a county (30,000 children).
const POSTING_BUCKETS: u16 = 1024;
/// A posting value is closed once it passes this size (far below sled's blob threshold).
const POSTING_VALUE_BYTES: usize = 8 * 1024;

/// An id and the seqs listed under it.
pub(super) type SeqList = (Vec<u8>, Vec<u64>);

/// What a run of envelopes adds to the derived trees.
pub(super) struct Derived {
    pub by_child: Vec<SeqList>,
    pub by_staff: Vec<SeqList>,
    /// Registry entries with the seq of the event that made them, in log order.
    pub entries: Vec<(String, Entry, u64)>,
}

/// Derives the postings and registry entries of `envs` (consecutive, in log order),
/// following `registry` in place. `resolve` finds an amendment's target outside the run.
pub(super) fn derive(
    envs: &[Envelope],
    registry: &mut Registry,
    mut resolve: impl FnMut(&str) -> Result<Option<Envelope>, StoreError>,
) -> Result<Derived, StoreError> {
    // Borrowed keys for the common case; owned ones for the rare events whose child comes
    // from the registry or from an amendment's target.
    let mut by_child: FxHashMap<&str, Vec<u64>> = FxHashMap::default();
    let mut by_staff: FxHashMap<&str, Vec<u64>> = FxHashMap::default();
    let mut by_child_owned: FxHashMap<String, Vec<u64>> = FxHashMap::default();
    let mut by_staff_owned: FxHashMap<String, Vec<u64>> = FxHashMap::default();
    let mut entries: Vec<(String, Entry, u64)> = Vec::new();
    // Amendment targets within this run.
    let mut local: FxHashMap<&str, &Envelope> = FxHashMap::default();
    for env in envs {
        let seq = env.seq;
        let children = env.event.children();
        for (i, c) in children.iter().enumerate() {
            // An activity may list a child twice; index it once.
            if !children[..i].contains(c) {
                by_child.entry(c.as_str()).or_default().push(seq);
            }
        }
        if let Some(s) = env.event.staff() {
            by_staff.entry(s).or_default().push(seq);
        }
        let mut school_listing = registry_school(&env.event, registry);
        if let Event::IncidentNotified { incident, .. } = &env.event
            && let Some(c) = registry.incident_child(incident)
        {
            by_child_owned.entry(c.to_owned()).or_default().push(seq);
        }
        if let Some(target) = env.event.target() {
            let target_env = match local.get(target) {
                Some(e) => Some((*e).clone()),
                None => resolve(target)?,
            };
            if let Some(t) = target_env {
                let mut children: Vec<String> = t.event.children().to_vec();
                if let Event::IncidentNotified { incident, .. } = &t.event
                    && let Some(c) = registry.incident_child(incident)
                {
                    children.push(c.to_owned());
                }
                for c in children {
                    by_child_owned.entry(c).or_default().push(seq);
                }
                if let Some(s) = t.event.staff() {
                    by_staff_owned.entry(s.to_owned()).or_default().push(seq);
                }
                school_listing = school_listing.or_else(|| registry_school(&t.event, registry));
            }
        }
        if let Some(school) = school_listing {
            by_child_owned
                .entry(format!("{REGISTRY_EVENTS_PREFIX}{school}"))
                .or_default()
                .push(seq);
        }
        for (id, entry) in Registry::entries_of(&env.event) {
            registry.insert(id.clone(), entry.clone());
            entries.push((id, entry, seq));
        }
        local.insert(&env.id, env);
    }
    Ok(Derived {
        by_child: merge_lists(by_child, by_child_owned),
        by_staff: merge_lists(by_staff, by_staff_owned),
        entries,
    })
}

impl Store {
    /// Writes the derived trees for `envs` (consecutive, after every tree's `through`, or
    /// — with `only_behind` — possibly already in some trees, which are then left alone).
    pub(super) fn write_indexes(
        &self,
        envs: &[Envelope],
        only_behind: bool,
    ) -> Result<(), StoreError> {
        self.write_indexes_then(envs, only_behind, || {}, false)
    }

    /// `write_indexes`, calling `before_read_models` once the other trees are written and
    /// before the read models are (the crash test stops an import there). With
    /// `read_models_beside` the read models are left to the append, which derives and writes
    /// them on another thread (a large one: `Store::derive_scopes_beside`).
    pub(super) fn write_indexes_then(
        &self,
        envs: &[Envelope],
        only_behind: bool,
        before_read_models: impl FnOnce(),
        read_models_beside: bool,
    ) -> Result<(), StoreError> {
        let Some(last) = envs.last().map(|e| e.seq) else {
            return Ok(());
        };
        // The registry is followed in place: the lookups take only the id lock.
        let derived = {
            let mut state = self.lock();
            let registry = self.registry_loaded(&mut state)?;
            derive(envs, registry, |target| match self.seq_of(target)? {
                Some(s) => self.get_raw(s),
                None => Ok(None),
            })?
        };

        let through = segment::key(last);
        let behind = |t: &sled::Tree| -> Result<bool, StoreError> {
            Ok(!only_behind || through_of(t)? < last)
        };
        // A small append (a service's commit) defers its derived values to a later append,
        // written every `DEFER_APPENDS` appends: the log is durable, and a tree behind the
        // head is caught up from it on open (docs/store.md, "Small appends defer").
        let defer = !only_behind && envs.len() <= DEFER_AT_MOST && {
            let mut d = self.lock_deferred();
            d.appends += 1;
            if d.appends >= DEFER_APPENDS {
                d.appends = 0;
                false
            } else {
                true
            }
        };
        for (tree, lists) in [
            (&self.by_child, derived.by_child),
            (&self.by_staff, derived.by_staff),
        ] {
            if behind(tree.raw())? {
                tree.apply(seq_pairs(lists, &through), Vec::new(), &through, defer)?;
            }
        }
        if behind(&self.by_id)? {
            let mut ids = self.lock_ids();
            let mut values = Vec::new();
            for chunk in envs.chunks(IDS_PER_CHUNK) {
                let mut v = Vec::with_capacity(chunk.len() * 16);
                for e in chunk {
                    let h = id_hash(&e.id);
                    v.extend_from_slice(&h.to_le_bytes());
                    v.extend_from_slice(&e.seq.to_le_bytes());
                    if let Some(map) = ids.as_mut() {
                        map.insert(h, e.seq);
                    }
                }
                values.push((segment::key(chunk[0].seq).to_vec(), v));
            }
            // Deferred only while the map is in memory: a map loaded later reads the tree.
            let keep_in_memory = defer && ids.is_some();
            drop(ids);
            let mut d = self.lock_deferred();
            d.by_id.extend(values);
            d.by_id_through = Some(through.to_vec());
            if !keep_in_memory {
                self.write_deferred_ids(&mut d, &through)?;
            }
        }
        if behind(&self.registry)? {
            let mut d = self.lock_deferred();
            if defer && derived.entries.is_empty() {
                d.registry_through = Some(through.to_vec());
            } else {
                let mut batch = sled::Batch::default();
                for (id, entry, _) in &derived.entries {
                    batch.insert(registry_key(id, entry), registry_value(id, entry));
                }
                batch.insert(THROUGH_KEY, &through);
                self.registry.apply_batch(batch)?;
                d.registry_through = None;
            }
        }
        before_read_models();
        // Last, after the id index: an amendment's target in this very run is found through it.
        if !read_models_beside && behind(self.scopes.raw())? && !self.read_models_off() {
            self.write_scopes(envs, &through, defer)?;
        }
        Ok(())
    }
}

/// What small appends deferred in the trees that are not posting trees (`StagedTree` keeps
/// its own): the id index's values and the `through` markers of `by_id` and `registry`.
#[derive(Default)]
pub(super) struct Deferred {
    /// Appends since derived values were last written.
    appends: usize,
    /// `by_id` values not yet written (every one also in the in-memory map).
    by_id: Vec<(Vec<u8>, Vec<u8>)>,
    by_id_through: Option<Vec<u8>>,
    /// The `registry` tree's `through` (deferred only for appends that change no entry).
    registry_through: Option<Vec<u8>>,
}

impl Store {
    fn lock_deferred(&self) -> std::sync::MutexGuard<'_, Deferred> {
        // Derived values: after a panic the disk is behind at worst, and caught up on open.
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `d.by_id` with `through`; kept in `d` if the write fails.
    fn write_deferred_ids(&self, d: &mut Deferred, through: &[u8]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in &d.by_id {
            batch.insert(k.as_slice(), v.as_slice());
        }
        batch.insert(THROUGH_KEY, through);
        self.by_id.apply_batch(batch)?;
        d.by_id.clear();
        d.by_id_through = None;
        Ok(())
    }

    /// Writes every derived value that small appends deferred, each tree with the `through`
    /// of the last of them: before `verify` compares the trees with their rebuild, and when
    /// the store closes. Nothing to do when nothing is deferred.
    pub(super) fn write_deferred(&self) -> Result<(), StoreError> {
        self.by_child.write_deferred(Vec::new())?;
        self.by_staff.write_deferred(Vec::new())?;
        // With the layout's version, as every written batch of the read models carries it.
        let format = (
            super::scopes::FORMAT_KEY.to_vec(),
            super::scopes::FORMAT.to_vec(),
        );
        self.scopes.write_deferred(vec![format])?;
        let mut d = self.lock_deferred();
        if let Some(t) = d.by_id_through.clone() {
            self.write_deferred_ids(&mut d, &t)?;
        }
        if let Some(t) = d.registry_through.take()
            && let Err(e) = self.registry.insert(THROUGH_KEY, t.as_slice())
        {
            d.registry_through = Some(t);
            return Err(e.into());
        }
        d.appends = 0;
        Ok(())
    }
}

/// The key of a registry entry in the `registry` tree.
pub(super) fn registry_key(id: &str, entry: &Entry) -> Vec<u8> {
    let mut key = entry.key();
    key.extend_from_slice(id.as_bytes());
    key
}

/// The value of a registry entry in the `registry` tree.
pub(super) fn registry_value(id: &str, entry: &Entry) -> Vec<u8> {
    rmp_serde::to_vec(&(id, entry)).expect("an entry always encodes")
}

/// The `through` marker of a derived tree (0 when absent).
pub(super) fn through_of(tree: &sled::Tree) -> Result<u64, StoreError> {
    Ok(tree
        .get(THROUGH_KEY)?
        .and_then(|v| segment::first_seq(&v))
        .unwrap_or(0))
}

/// The school whose registry events list this event: what a single child's views need
/// besides the child's own events — the school, its terms and policies, its staff joining
/// and leaving, its children's registrations.
fn registry_school(e: &Event, registry: &Registry) -> Option<String> {
    match e {
        Event::StaffLeft { staff, .. } => registry.staff_school(staff).map(str::to_owned),
        _ => e.school().map(str::to_owned),
    }
}

/// Merges borrowed and owned per-id seq lists into sorted, deduplicated lists.
fn merge_lists(
    borrowed: FxHashMap<&str, Vec<u64>>,
    owned: FxHashMap<String, Vec<u64>>,
) -> Vec<SeqList> {
    let mut all: FxHashMap<Vec<u8>, Vec<u64>> = FxHashMap::default();
    for (k, v) in borrowed {
        all.entry(k.as_bytes().to_vec()).or_default().extend(v);
    }
    for (k, v) in owned {
        all.entry(k.into_bytes()).or_default().extend(v);
    }
    all.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            v.dedup();
            (k, v)
        })
        .collect()
}

/// The posting bucket of an id.
pub(super) fn posting_bucket(id: &[u8]) -> u16 {
    let h = Sha256::digest(id);
    u16::from_be_bytes([h[0], h[1]]) % POSTING_BUCKETS
}

/// The entries of a posting value: repeated `(u16 id length, id, u32 count, count × u64
/// seq)`, little-endian.
pub(super) fn postings(
    bytes: &[u8],
) -> impl Iterator<Item = Result<(&[u8], impl Iterator<Item = u64> + '_), ()>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
            let id = rest.get(2..2 + len)?;
            let n = u32::from_le_bytes(rest.get(2 + len..6 + len)?.try_into().ok()?) as usize;
            let seqs = rest.get(6 + len..6 + len + 8 * n)?;
            Some((id, seqs, 6 + len + 8 * n))
        })();
        match parsed {
            Some((id, seqs, used)) => {
                rest = &rest[used..];
                let seqs = seqs
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")));
                Some(Ok((id, seqs)))
            }
            None => {
                rest = &[];
                Some(Err(()))
            }
        }
    })
}

/// Every posting of a `by_child` or `by_staff` tree: id → seqs (sorted, deduplicated).
/// A posting outside its id's bucket could never be read, so it is damage.
pub(super) fn all_postings(
    tree: &super::staged::StagedTree,
    name: &str,
) -> Result<FxHashMap<Vec<u8>, Vec<u64>>, StoreError> {
    let mut out: FxHashMap<Vec<u8>, Vec<u64>> = FxHashMap::default();
    for item in tree.iter()? {
        let (k, v) = item?;
        if k.as_ref() == THROUGH_KEY {
            continue;
        }
        let bucket = k.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        for entry in postings(&v) {
            let (id, seqs) = entry
                .map_err(|()| StoreError::Corrupt(format!("index {name}: a value is malformed")))?;
            let seqs: Vec<u64> = seqs.collect();
            if bucket != Some(posting_bucket(id)) {
                let first = seqs.iter().copied().min().unwrap_or(0);
                return Err(damaged(
                    first,
                    format!(
                        "index {name}: listed under {} in a bucket that is not its own",
                        show_id(id)
                    ),
                ));
            }
            out.entry(id.to_vec()).or_default().extend(seqs);
        }
    }
    for seqs in out.values_mut() {
        seqs.sort_unstable();
        seqs.dedup();
    }
    Ok(out)
}

/// An index id as a person reads it (a school's registry listing shown as such).
pub(super) fn show_id(id: &[u8]) -> String {
    let s = String::from_utf8_lossy(id);
    match s.strip_prefix(REGISTRY_EVENTS_PREFIX) {
        Some(school) => format!("the registry events of school {school}"),
        None => s.into_owned(),
    }
}

/// The index values for per-id seq lists: the lists are grouped by posting bucket; each
/// bucket gets values keyed `BE bucket ‖ BE last seq of the run ‖ BE value number` (unique
/// per run, never rewritten: postings a small append may stage), each holding whole
/// `(id, seqs)` entries.
fn seq_pairs(lists: Vec<SeqList>, through: &[u8]) -> Vec<super::staged::Pair> {
    let mut by_bucket: FxHashMap<u16, Vec<SeqList>> = FxHashMap::default();
    for (id, seqs) in lists {
        by_bucket
            .entry(posting_bucket(&id))
            .or_default()
            .push((id, seqs));
    }
    let mut batch = Vec::new();
    for (bucket, entries) in by_bucket {
        let mut value: Vec<u8> = Vec::new();
        let mut n = 0u32;
        let mut emit = |value: &mut Vec<u8>, n: &mut u32| {
            let mut key = bucket.to_be_bytes().to_vec();
            key.extend_from_slice(through);
            key.extend_from_slice(&n.to_be_bytes());
            batch.push((key, std::mem::take(value)));
            *n += 1;
        };
        for (id, seqs) in entries {
            for chunk in seqs.chunks(MAX_SEQS_PER_KEY) {
                if !value.is_empty()
                    && value.len() + 6 + id.len() + 8 * chunk.len() > POSTING_VALUE_BYTES
                {
                    emit(&mut value, &mut n);
                }
                // Ids are at most a few hundred bytes (ingest limits them), so u16 suffices.
                value.extend_from_slice(&(id.len() as u16).to_le_bytes());
                value.extend_from_slice(&id);
                value.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                for s in chunk {
                    value.extend_from_slice(&s.to_le_bytes());
                }
            }
        }
        if !value.is_empty() {
            emit(&mut value, &mut n);
        }
    }
    batch
}

/// The first 8 bytes of SHA-256 of an id, little-endian: stable across versions and
/// platforms, so the stored index never needs rebuilding for a hasher change.
pub(super) fn id_hash(id: &str) -> u64 {
    let h = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The id index in memory: id hash → seqs. On disk (`by_id`) it is a run of values keyed by
/// the big-endian seq of their first entry, each up to `IDS_PER_CHUNK` `(hash, seq)` pairs
/// (u64 LE each) — written once per batch, never rewritten, so a bulk import costs one sled
/// key per thousand events and checking an id costs one hash probe. Loading it reads 16
/// bytes per event once per process.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct IdMap {
    first: FxHashMap<u64, u64>,
    /// Further seqs of a hash held by more than one id (rare).
    more: FxHashMap<u64, Vec<u64>>,
}

impl IdMap {
    /// Every `(hash, seq)` pair of the `by_id` tree.
    pub fn pairs(tree: &sled::Tree) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, v) = item?;
            if k.as_ref() == THROUGH_KEY {
                continue;
            }
            if v.len() % 16 != 0 {
                return Err(damaged(
                    segment::first_seq(&k).unwrap_or(0),
                    "the id index value there is malformed",
                ));
            }
            for pair in v.chunks_exact(16) {
                let h = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
                let seq = u64::from_le_bytes(pair[8..].try_into().expect("8 bytes"));
                out.push((h, seq));
            }
        }
        Ok(out)
    }

    pub fn load(tree: &sled::Tree) -> Result<IdMap, StoreError> {
        let mut map = IdMap::default();
        for (h, seq) in IdMap::pairs(tree)? {
            map.insert(h, seq);
        }
        Ok(map)
    }

    pub fn insert(&mut self, h: u64, seq: u64) {
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(e) if *e.get() != seq => {
                let more = self.more.entry(h).or_default();
                if !more.contains(&seq) {
                    more.push(seq);
                }
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }

    pub fn candidates(&self, h: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self.first.get(&h).copied().into_iter().collect();
        if let Some(more) = self.more.get(&h) {
            out.extend(more);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use events::envelope::Source;

    use super::*;
    use crate::log::tests::talk;

    fn stored_through(store: &Store) -> Vec<u64> {
        [
            store.by_child.raw(),
            store.by_staff.raw(),
            &store.by_id,
            &store.registry,
            store.scopes.raw(),
        ]
        .iter()
        .map(|t| through_of(t).unwrap())
        .collect()
    }

    #[test]
    fn small_appends_defer_their_derived_values_are_read_at_once_and_written_every_so_often() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let mut id = 0;
        let mut append = |n: usize| {
            let drafts = (0..n)
                .map(|_| {
                    id += 1;
                    talk(id)
                })
                .collect();
            store.append(drafts, Source::Cli).unwrap();
        };
        append(DEFER_AT_MOST + 1); // written: too large to defer
        let written = store.head().seq;
        assert_eq!(stored_through(&store), [written; 5]);
        for _ in 0..5 {
            append(3);
        }
        // Deferred: the stored markers stay behind, every read sees the new events.
        let head = store.head().seq;
        assert_eq!(stored_through(&store), [written; 5]);
        assert_eq!(store.read_models_through().unwrap(), head);
        assert_eq!(store.by_staff("t1", None).unwrap().len() as u64, head);
        let c1: Vec<u64> = store
            .by_child("c1", None)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let want: Vec<u64> = (1..=head).filter(|s| s % 3 == 1).collect();
        assert_eq!(c1, want);
        assert_eq!(store.seq_of(&format!("e{head}")).unwrap(), Some(head));
        // The 32nd append since the last write writes everything.
        for _ in 0..DEFER_APPENDS - 6 {
            append(3);
        }
        assert_eq!(stored_through(&store), [written; 5]);
        append(3);
        assert_eq!(stored_through(&store), [store.head().seq; 5]);
        // And `write_deferred` (verify, closing) writes what a last deferred append left.
        append(3);
        assert_ne!(stored_through(&store), [store.head().seq; 5]);
        store.write_deferred().unwrap();
        assert_eq!(stored_through(&store), [store.head().seq; 5]);
        store.verify().unwrap();
    }

    #[test]
    fn a_new_store_of_small_appends_only_is_whole_when_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        for b in 0..3 {
            let drafts = (0..4).map(|i| talk(1 + 4 * b + i)).collect();
            store.append(drafts, Source::Cli).unwrap();
        }
        // The read models' first append writes their layout's version, so it is not deferred.
        assert_eq!(stored_through(&store), [0, 0, 0, 0, 4]);
        drop(store);
        // Closing wrote what was deferred, the read models' layout version with it: opening
        // neither rebuilds them nor catches anything up.
        let store = Store::open(dir.path()).unwrap();
        assert!(store.notices().is_empty(), "{:?}", store.notices());
        assert_eq!(stored_through(&store), [12; 5]);
        store.verify().unwrap();
    }
}
