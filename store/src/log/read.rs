//! Getting envelopes back: by seq, by id, a child's or a staff member's, a school's registry
//! events, or the whole log in order (decoded on a second thread).
//!
//! Every envelope read is checked against the hash stored beside it (`decode`): a body
//! changed on disk is refused as damage, never served. SHA-256 of a body costs far less than
//! decoding it.
//!
//! This module owns reading; it must never write.

use std::ops::Range;
use std::sync::MutexGuard;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;

use events::envelope::{Envelope, Hash};

use super::error::{StoreError, damaged};
use super::index::{IdMap, REGISTRY_EVENTS_PREFIX, id_hash, posting_bucket, postings};
use super::{Store, THROUGH_KEY};
use crate::segment::{self, LogValue, Segment};

/// Envelopes handed from the decoding thread to a scan's caller at a time.
const SCAN_BATCH: usize = 512;

/// A fetch of this many envelopes or more (a school's: tens of thousands) reads and decodes
/// them on two threads, a half each; a child's or a teacher's few hundred are not worth a
/// thread.
const FETCH_SPLIT_AT: usize = 4_096;

/// How a run of a fetch ended (`Store::fetch_run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// Every seq was read.
    Seqs,
    /// At an envelope recorded after the read's time: the run's envelopes are all it gives.
    AsOf,
}

/// Decodes the stored body of `seq`, refusing it unless it hashes to the stored hash (with
/// the `prev_hash` it carries) and says the seq it is stored at.
pub(super) fn decode(seq: u64, hash: Hash, body: &[u8]) -> Result<Envelope, StoreError> {
    let env = Envelope::decode_body(body, hash).map_err(|e| damaged(seq, e.to_string()))?;
    if Envelope::chain_hash(&env.prev_hash, body) != hash {
        return Err(damaged(seq, "its content does not match its stored hash"));
    }
    if env.seq != seq {
        return Err(damaged(seq, format!("the envelope says seq {}", env.seq)));
    }
    Ok(env)
}

impl Store {
    /// The envelope at `seq`, if the log has it.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        if seq == 0 || seq > self.head().seq {
            return Ok(None);
        }
        self.get_raw(seq)
    }

    /// The envelope at `seq` without checking the head: for callers that know it is
    /// committed (an index entry, an amendment target being indexed).
    pub(super) fn get_raw(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        match Entries::new(self).get(seq)? {
            Some(stored) => decode(seq, stored.hash, stored.body()).map(Some),
            None => Ok(None),
        }
    }

    /// The hash stored beside `seq`, without decoding its body.
    pub(super) fn stored_hash(&self, seq: u64) -> Result<Option<Hash>, StoreError> {
        Ok(Entries::new(self).get(seq)?.map(|s| s.hash))
    }

    /// The last seq the log physically holds (whatever the head says), 0 when empty.
    pub(super) fn log_end(&self) -> Result<u64, StoreError> {
        let Some((k, v)) = self.log.last()? else {
            return Ok(0);
        };
        let first = segment::first_seq(&k).ok_or_else(|| damaged(0, "bad segment key"))?;
        let len = LogValue::parse(&v).map_err(|e| damaged(first, e))?.len() as u64;
        Ok((first + len).saturating_sub(1))
    }

    /// The id map, loaded from its tree if this process has not yet, under its lock.
    pub(super) fn ids_loaded(&self) -> Result<MutexGuard<'_, Option<IdMap>>, StoreError> {
        let mut ids = self.lock_ids();
        if ids.is_none() {
            *ids = Some(IdMap::load(&self.by_id)?);
        }
        Ok(ids)
    }

    /// The seq of the envelope with this id.
    pub fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let candidates = self
            .ids_loaded()?
            .as_ref()
            .expect("loaded by ids_loaded")
            .candidates(id_hash(id));
        // A hash names candidates; the envelope itself confirms (64-bit hashes of distinct
        // ids collide with probability ~1e-7 at 5 M events, and then both are kept).
        for seq in candidates {
            if self.get_raw(seq)?.is_some_and(|e| e.id == id) {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// The envelope with this id.
    pub fn get_by_id(&self, id: &str) -> Result<Option<Envelope>, StoreError> {
        match self.seq_of(id)? {
            Some(seq) => self.get(seq),
            None => Ok(None),
        }
    }

    /// The whole log in order, up to `as_of` (recorded time) when given.
    pub fn scan(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Result<Envelope, StoreError>> + '_ {
        self.scan_range(1, as_of)
    }

    /// The log from `from_seq` on, up to `as_of` when given.
    pub fn scan_range(
        &self,
        from_seq: u64,
        as_of: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Result<Envelope, StoreError>> + '_ {
        let head = self.head().seq;
        let start = self
            .log
            .range(..=segment::key(from_seq.max(1)))
            .next_back()
            .and_then(|r| r.ok())
            .map(|(k, _)| k.to_vec())
            .unwrap_or_else(|| segment::key(1).to_vec());
        let scan = Scan {
            segments: self.log.range(start..),
            entries: Entries::new(self),
            current: None,
            from_seq,
            next: from_seq.max(1),
            head,
            as_of,
            done: false,
        };
        // Decode on a second thread while the caller folds: a replay then costs the slower of
        // the two, not their sum. The channel is bounded, so memory stays a few batches; when
        // the caller stops early, the decoder's next send fails and it ends.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Envelope, StoreError>>>(16);
        std::thread::spawn(move || {
            let mut scan = scan;
            loop {
                let batch: Vec<_> = scan.by_ref().take(SCAN_BATCH).collect();
                if batch.is_empty() || tx.send(batch).is_err() {
                    return;
                }
            }
        });
        rx.into_iter().flatten()
    }

    /// Seqs listed under an id in a posting tree, in order, up to the head.
    fn seqs_under(
        &self,
        tree: &super::staged::StagedTree,
        id: &[u8],
    ) -> Result<Vec<u64>, StoreError> {
        let head = self.head().seq;
        let mut out = Vec::new();
        for item in tree.scan_prefix(posting_bucket(id).to_be_bytes())? {
            let (k, v) = item?;
            if k.as_ref() == THROUGH_KEY {
                continue;
            }
            for entry in postings(&v) {
                let (entry_id, seqs) = entry
                    .map_err(|()| StoreError::Corrupt("an index value is malformed".into()))?;
                if entry_id == id {
                    out.extend(seqs.filter(|&s| s <= head));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The envelopes at `seqs` (ascending), up to `as_of`. Seqs of one segment, or of one
    /// window's clusters, share the reads of them: a school's envelopes of an import lie in
    /// its own clusters.
    pub(super) fn fetch(
        &self,
        seqs: Vec<u64>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        // The size first: a child's read never asks how many cores there are.
        if seqs.len() < FETCH_SPLIT_AT
            || !std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
        {
            let (out, end) = self.fetch_run(&seqs, as_of, seqs.len());
            return end.map(|_| out);
        }
        // Each half in log order on a thread of its own; the second half's envelopes count
        // only if the first ran to its end, as one run over both would have.
        let (first, second) = seqs.split_at(seqs.len() / 2);
        let ((mut out, end), rest) = std::thread::scope(|threads| {
            let rest = threads.spawn(|| self.fetch_run(second, as_of, second.len()));
            // Room for both halves: the second is moved in after.
            let run = self.fetch_run(first, as_of, seqs.len());
            (
                run,
                rest.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        });
        if end? == RunEnd::AsOf {
            return Ok(out);
        }
        let (more, end) = rest;
        end?;
        out.extend(more);
        Ok(out)
    }

    /// The envelopes at `seqs` in log order up to `as_of` — those read before the run ended —
    /// and how it ended: at the end of `seqs`, at the first envelope recorded after `as_of`,
    /// or at damage. `room`: the envelopes the result is made to hold.
    fn fetch_run(
        &self,
        seqs: &[u64],
        as_of: Option<DateTime<Utc>>,
        room: usize,
    ) -> (Vec<Envelope>, Result<RunEnd, StoreError>) {
        let mut out = Vec::with_capacity(room);
        let mut entries = Entries::new(self);
        for &seq in seqs {
            let env = entries.get(seq).and_then(|stored| {
                let stored = stored.ok_or_else(|| damaged(seq, "indexed but not in the log"))?;
                decode(seq, stored.hash, stored.body())
            });
            match env {
                Err(e) => return (out, Err(e)),
                Ok(env) if as_of.is_some_and(|t| env.recorded_at > t) => {
                    return (out, Ok(RunEnd::AsOf));
                }
                Ok(env) => out.push(env),
            }
        }
        (out, Ok(RunEnd::Seqs))
    }

    /// Every envelope about a child (including notifications of its incidents and amendments
    /// of its events), in log order, up to `as_of`. Uses the index: no replay.
    pub fn by_child(
        &self,
        child: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.seqs_under(&self.by_child, child.as_bytes())?;
        self.fetch(seqs, as_of)
    }

    /// Every envelope done by a staff member (and their registry events and amendments), in
    /// log order, up to `as_of`.
    pub fn by_staff(
        &self,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.seqs_under(&self.by_staff, staff.as_bytes())?;
        self.fetch(seqs, as_of)
    }

    /// The registry-kind events of a school (its registration, terms, policies, staff joining
    /// and leaving, child registrations) and their amendments, in log order — or of every
    /// school with `None`. With `by_child` this is all a single child's views need.
    pub fn registry_events(
        &self,
        school: Option<&str>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = match school {
            Some(s) => self.seqs_under(
                &self.by_child,
                format!("{REGISTRY_EVENTS_PREFIX}{s}").as_bytes(),
            )?,
            None => {
                let schools: Vec<String> = self
                    .registry()?
                    .schools()
                    .map(|(s, _)| s.to_owned())
                    .collect();
                let mut out = Vec::new();
                for s in schools {
                    out.extend(self.seqs_under(
                        &self.by_child,
                        format!("{REGISTRY_EVENTS_PREFIX}{s}").as_bytes(),
                    )?);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
        };
        self.fetch(seqs, as_of)
    }
}

/// One envelope as stored: its chain hash and its body, a range of a value sled handed out.
pub(super) struct Stored {
    pub hash: Hash,
    value: sled::IVec,
    body: Range<usize>,
}

impl Stored {
    /// The body's bytes, as hashed.
    pub fn body(&self) -> &[u8] {
        &self.value[self.body.clone()]
    }
}

/// Finds stored envelopes by seq. It keeps the `log` value it read last and the clusters of
/// the window it read last, so that ascending seqs read each value once (memory: at most
/// one window's clusters, `CLUSTER_WINDOW` envelopes).
pub(super) struct Entries {
    log: sled::Tree,
    clusters: sled::Tree,
    /// The `log` value read last, with its key's seq.
    value: Option<(u64, sled::IVec)>,
    /// The window whose clusters `cached` holds (0: none; seqs start at 1).
    window: u64,
    cached: FxHashMap<u16, sled::IVec>,
}

impl Entries {
    pub(super) fn new(store: &Store) -> Entries {
        Entries {
            log: store.log.clone(),
            clusters: store.clusters.clone(),
            value: None,
            window: 0,
            cached: FxHashMap::default(),
        }
    }

    /// Uses `value`, the `log` value keyed `first`, for the seqs it covers (a walk of the
    /// `log` tree in order hands each value over instead of seeking it again).
    pub(super) fn set_value(&mut self, first: u64, value: sled::IVec) {
        self.value = Some((first, value));
    }

    /// The `log` value covering `seq`, if any: the value with the greatest key at or below
    /// it (one backward seek; a forward walk from some seqs before would read the values
    /// between, and with sled holding up to 16 values in a leaf, at times the leaf before).
    pub(super) fn covering(&mut self, seq: u64) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        if let Some((first, v)) = &self.value
            && seq >= *first
            && LogValue::parse(v).is_ok_and(|l| seq - first < l.len() as u64)
        {
            return Ok(Some((*first, v.clone())));
        }
        let Some(next) = seq.checked_add(1) else {
            return Ok(None);
        };
        let Some((k, v)) = self.log.get_lt(segment::key(next))? else {
            return Ok(None);
        };
        let first = segment::first_seq(&k).ok_or_else(|| damaged(seq, "bad segment key"))?;
        let len = LogValue::parse(&v).map_err(|e| damaged(first, e))?.len() as u64;
        self.value = Some((first, v.clone()));
        Ok((seq < first + len).then_some((first, v)))
    }

    /// The envelope stored at `seq`, checked only for where it lies (not yet against its
    /// hash: `decode` does that); `None` when the log holds no value covering it.
    pub(super) fn get(&mut self, seq: u64) -> Result<Option<Stored>, StoreError> {
        let Some((first, value)) = self.covering(seq)? else {
            return Ok(None);
        };
        let i = (seq - first) as usize;
        let (window, ordinal) = match LogValue::parse(&value).map_err(|e| damaged(first, e))? {
            LogValue::Segment(seg) => {
                let (hash, body) = seg.entry_at(i).map_err(|e| damaged(seq, e))?;
                return Ok(Some(Stored { hash, value, body }));
            }
            LogValue::Directory(d) => (d.window(), d.cluster(i)),
        };
        let cluster = self.cluster(window, ordinal, seq)?;
        let seg = Segment::parse(&cluster)
            .ok()
            .filter(Segment::is_cluster)
            .ok_or_else(|| damaged(seq, "the cluster holding it is damaged"))?;
        let at = seg
            .position(seq)
            .ok_or_else(|| damaged(seq, "missing from the cluster its directory names"))?;
        let (hash, body) = seg.entry_at(at).map_err(|e| damaged(seq, e))?;
        Ok(Some(Stored {
            hash,
            value: cluster,
            body,
        }))
    }

    fn cluster(&mut self, window: u64, ordinal: u16, seq: u64) -> Result<sled::IVec, StoreError> {
        if self.window != window {
            self.cached.clear();
            self.window = window;
        }
        if let Some(v) = self.cached.get(&ordinal) {
            return Ok(v.clone());
        }
        let v = self
            .clusters
            .get(segment::cluster_key(window, ordinal))?
            .ok_or_else(|| damaged(seq, "missing from the log (the cluster holding it is gone)"))?;
        self.cached.insert(ordinal, v.clone());
        Ok(v)
    }

    /// Reads every cluster of `window` at once (a walk of the whole log reads them all
    /// anyway, and one range read costs far less than a get each). Returns how many
    /// envelopes they hold.
    pub(super) fn load_window(&mut self, window: u64) -> Result<u64, StoreError> {
        self.cached.clear();
        self.window = window;
        let mut held = 0u64;
        for item in self.clusters.scan_prefix(segment::key(window)) {
            let (k, v) = item?;
            let ordinal = k
                .get(8..10)
                .filter(|_| k.len() == 10)
                .map(|o| u16::from_be_bytes([o[0], o[1]]))
                .ok_or_else(|| damaged(window, "bad cluster key"))?;
            held += Segment::parse(&v).map_or(0, |s| s.len() as u64);
            self.cached.insert(ordinal, v);
        }
        Ok(held)
    }

    /// The window whose clusters are held.
    pub(super) fn window(&self) -> u64 {
        self.window
    }
}

/// Iterator over envelopes, decoding one `log` value at a time (a directory's envelopes from
/// its window's clusters, read together). A gap (a value missing) is damage, not a shorter log.
struct Scan {
    segments: sled::Iter,
    entries: Entries,
    /// The `log` value being walked: its first seq, how many it covers, the next index.
    current: Option<(u64, usize, usize)>,
    from_seq: u64,
    /// The seq expected next.
    next: u64,
    head: u64,
    as_of: Option<DateTime<Utc>>,
    done: bool,
}

impl Scan {
    fn fail(&mut self, e: StoreError) -> Option<Result<Envelope, StoreError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for Scan {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some((first, len, i)) = &mut self.current {
                if *i < *len {
                    let seq = *first + *i as u64;
                    *i += 1;
                    if seq < self.from_seq {
                        continue;
                    }
                    if seq > self.head {
                        self.done = true;
                        return None;
                    }
                    self.next = seq + 1;
                    let env = match self.entries.get(seq) {
                        Ok(Some(s)) => decode(seq, s.hash, s.body()),
                        Ok(None) => Err(damaged(seq, "missing from the log")),
                        Err(e) => Err(e),
                    };
                    match env {
                        Ok(env) if self.as_of.is_some_and(|t| env.recorded_at > t) => {
                            self.done = true;
                            return None;
                        }
                        Err(e) => return self.fail(e),
                        ok => return Some(ok),
                    }
                }
                self.current = None;
            }
            let Some(item) = self.segments.next() else {
                self.done = true;
                if self.next <= self.head {
                    return Some(Err(damaged(
                        self.next,
                        format!(
                            "missing: the log ends at seq {} but its head is seq {}",
                            self.next - 1,
                            self.head
                        ),
                    )));
                }
                return None;
            };
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => return self.fail(e.into()),
            };
            let Some(first) = segment::first_seq(&k) else {
                return self.fail(damaged(0, "bad segment key"));
            };
            if first > self.next && self.next <= self.head {
                let next = self.next;
                return self.fail(damaged(
                    next,
                    format!("missing from the log (the next segment starts at seq {first})"),
                ));
            }
            let (len, window) = match LogValue::parse(&v) {
                Ok(LogValue::Segment(s)) => (s.len(), None),
                Ok(LogValue::Directory(d)) => (d.len(), Some(d.window())),
                Err(e) => return self.fail(damaged(first, e)),
            };
            if let Some(w) = window
                && w != self.entries.window()
                && let Err(e) = self.entries.load_window(w)
            {
                return self.fail(e);
            }
            self.entries.set_value(first, v);
            self.current = Some((first, len, 0));
        }
    }
}
