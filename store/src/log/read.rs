//! Getting envelopes back: by seq, by id, a child's or a staff member's, a school's registry
//! events, or the whole log in order (decoded on a second thread).
//!
//! Every envelope read is checked against the hash stored beside it (`decode`): a body
//! changed on disk is refused as damage, never served. SHA-256 of a body costs far less than
//! decoding it.
//!
//! This module owns reading; it must never write.

use std::sync::MutexGuard;

use chrono::{DateTime, Utc};

use events::envelope::{Envelope, Hash};

use super::error::{StoreError, damaged};
use super::index::{IdMap, REGISTRY_EVENTS_PREFIX, id_hash, posting_bucket, postings};
use super::{Store, THROUGH_KEY};
use crate::segment;

/// Envelopes handed from the decoding thread to a scan's caller at a time.
const SCAN_BATCH: usize = 512;

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
        let Some((first, v)) = self.segment_of(seq)? else {
            return Ok(None);
        };
        let seg = segment::Segment::parse(&v).map_err(|e| damaged(first, e))?;
        let (hash, body) = seg
            .entry((seq - first) as usize)
            .map_err(|e| damaged(seq, e))?;
        decode(seq, hash, body).map(Some)
    }

    /// The hash stored beside `seq`, without decoding its body.
    pub(super) fn stored_hash(&self, seq: u64) -> Result<Option<Hash>, StoreError> {
        let Some((first, v)) = self.segment_of(seq)? else {
            return Ok(None);
        };
        let seg = segment::Segment::parse(&v).map_err(|e| damaged(first, e))?;
        let (hash, _) = seg
            .entry((seq - first) as usize)
            .map_err(|e| damaged(seq, e))?;
        Ok(Some(hash))
    }

    /// The segment holding `seq`, with its first seq: the value with the greatest key at or
    /// below `seq` (one backward seek). A short forward walk from a key some seqs before read
    /// the values between as well, and with sled holding up to 16 values in a leaf it could
    /// pull in the leaf before (docs/store.md, "Segments").
    pub(super) fn segment_of(&self, seq: u64) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        let Some(next) = seq.checked_add(1) else {
            return Ok(None);
        };
        if let Some((k, v)) = self.log.get_lt(segment::key(next))? {
            let first = segment::first_seq(&k).ok_or_else(|| damaged(seq, "bad segment key"))?;
            let len = segment::Segment::parse(&v)
                .map_err(|e| damaged(first, e))?
                .len() as u64;
            if seq < first + len {
                return Ok(Some((first, v)));
            }
        }
        Ok(None)
    }

    /// The last seq the log physically holds (whatever the head says), 0 when empty.
    pub(super) fn log_end(&self) -> Result<u64, StoreError> {
        let Some((k, v)) = self.log.last()? else {
            return Ok(0);
        };
        let first = segment::first_seq(&k).ok_or_else(|| damaged(0, "bad segment key"))?;
        let len = segment::Segment::parse(&v)
            .map_err(|e| damaged(first, e))?
            .len() as u64;
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

    /// The envelopes at `seqs` (ascending), up to `as_of`. Consecutive seqs of one segment
    /// share one read of it: a school's registry events sit together in a few segments.
    pub(super) fn fetch(
        &self,
        seqs: Vec<u64>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut current: Option<(u64, sled::IVec)> = None;
        for seq in seqs {
            let cached = current.as_ref().is_some_and(|(first, bytes)| {
                seq >= *first
                    && segment::Segment::parse(bytes)
                        .is_ok_and(|s| ((seq - first) as usize) < s.len())
            });
            if !cached {
                current = Some(
                    self.segment_of(seq)?
                        .ok_or_else(|| damaged(seq, "indexed but not in the log"))?,
                );
            }
            let (first, bytes) = current.as_ref().expect("set above");
            let seg = segment::Segment::parse(bytes).map_err(|e| damaged(*first, e))?;
            let i = (seq - first) as usize;
            if i >= seg.len() {
                return Err(damaged(seq, "indexed but not in the log"));
            }
            let (hash, body) = seg.entry(i).map_err(|e| damaged(seq, e))?;
            let env = decode(seq, hash, body)?;
            if as_of.is_some_and(|t| env.recorded_at > t) {
                break;
            }
            out.push(env);
        }
        Ok(out)
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

/// Iterator over envelopes, decoding one segment at a time. A gap (a segment missing) is
/// damage, not a shorter log.
struct Scan {
    segments: sled::Iter,
    current: Option<(u64, sled::IVec, usize)>,
    from_seq: u64,
    /// The seq expected next.
    next: u64,
    head: u64,
    as_of: Option<DateTime<Utc>>,
    done: bool,
}

impl Iterator for Scan {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some((first, bytes, i)) = &mut self.current {
                let seg = match segment::Segment::parse(bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(damaged(*first, e)));
                    }
                };
                if *i < seg.len() {
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
                    let env = seg
                        .entry(*i - 1)
                        .map_err(|e| damaged(seq, e))
                        .and_then(|(h, body)| decode(seq, h, body));
                    match env {
                        Ok(env) if self.as_of.is_some_and(|t| env.recorded_at > t) => {
                            self.done = true;
                            return None;
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
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
            match item {
                Ok((k, v)) => match segment::first_seq(&k) {
                    Some(first) if first > self.next && self.next <= self.head => {
                        self.done = true;
                        return Some(Err(damaged(
                            self.next,
                            format!(
                                "missing from the log (the next segment starts at seq {first})"
                            ),
                        )));
                    }
                    Some(first) => self.current = Some((first, v, 0)),
                    None => {
                        self.done = true;
                        return Some(Err(damaged(0, "bad segment key")));
                    }
                },
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
