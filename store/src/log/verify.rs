//! `verify`: the whole log and everything derived from it, naming the first bad seq.
//!
//! Checked: seqs gapless from 1; every body hashing to its stored hash with the `prev_hash`
//! it carries, that `prev_hash` being the previous envelope's hash, the seq it says being
//! where it is stored; `recorded_at` never decreasing; sled's head marker and the head file
//! matching the chain; the stored Merkle tree holding exactly the hashes the log gives and every
//! kept checkpoint the root of the log's tree at its size (`tree::TreeCheck`); and every index
//! equal to what the log derives (`index::derive`): every event posted where it belongs and
//! nothing posted elsewhere, every id listed, every registry entry made by an event.
//!
//! This module owns those checks; it must never repair what it finds.

use rustc_hash::FxHashMap;

use chrono::{DateTime, Utc};
use events::envelope::{Envelope, Hash};
use events::registry::Registry;

use super::error::{StoreError, damaged};
use super::index::{
    IdMap, all_postings, derive, id_hash, registry_key, registry_value, show_id, through_of,
};
use super::open::check_acknowledged;
use super::read::{Entries, decode};
use super::scopes::{Content, Scoper, Scratch};
use super::{Store, THROUGH_KEY, Verified, head_file};
use crate::segment::{self, LogValue};

/// Envelopes derived at a time while verifying (bounds memory on a large log).
const DERIVE_CHUNK: usize = 50_000;

/// What the log says the indexes must hold.
#[derive(Default)]
struct Expected {
    by_child: FxHashMap<Vec<u8>, Vec<u64>>,
    by_staff: FxHashMap<Vec<u8>, Vec<u64>>,
    /// `(id hash, seq)` of every envelope.
    ids: Vec<(u64, u64)>,
    /// Registry key → (value, seq of the event that wrote it last).
    registry: FxHashMap<Vec<u8>, (Vec<u8>, u64)>,
    /// The read models rebuilt from seq 1.
    scopes: Scoper,
}

/// The first problem found among the indexes: the lowest seq wins.
#[derive(Default)]
struct First(Option<(u64, String)>);

impl First {
    fn note(&mut self, seq: u64, what: impl FnOnce() -> String) {
        if self.0.as_ref().is_none_or(|(s, _)| seq < *s) {
            self.0 = Some((seq, what()));
        }
    }
}

/// Checks that the clusters of a window held exactly the envelopes its directories named:
/// `(window, held, named)`.
fn check_window(window: Option<(u64, u64, u64)>) -> Result<(), StoreError> {
    match window {
        Some((w, held, named)) if held != named => Err(damaged(
            w,
            format!(
                "the clusters of the window at seq {w} hold {held} envelopes, its directories name {named}"
            ),
        )),
        _ => Ok(()),
    }
}

impl Store {
    /// Walks the whole chain and checks every index against it. Names the first bad seq.
    pub fn verify(&self) -> Result<Verified, StoreError> {
        // The trees are compared as stored: what small appends deferred is written first.
        self.write_deferred()?;
        let head = self.head();
        let mut expected_next = 1u64;
        let mut prev = Hash::ZERO;
        let mut last_recorded: Option<DateTime<Utc>> = None;
        let mut want = Expected::default();
        let mut registry = Registry::default();
        let mut ids = IdMap::default();
        let mut chunk: Vec<Envelope> = Vec::new();
        let mut tree = self.tree_check()?;
        // Every envelope of a window's clusters must be one its directories name: counted
        // per window (what the clusters hold, against the seqs found through directories).
        let mut entries = Entries::new(self);
        let mut window: Option<(u64, u64, u64)> = None;
        for item in self.log.iter() {
            let (k, v) = item?;
            let first =
                segment::first_seq(&k).ok_or_else(|| damaged(expected_next, "bad segment key"))?;
            if first != expected_next {
                return Err(damaged(
                    expected_next,
                    format!("missing from the log (the next segment starts at seq {first})"),
                ));
            }
            let (len, in_window) = match LogValue::parse(&v).map_err(|e| damaged(first, e))? {
                LogValue::Segment(s) => (s.len(), None),
                LogValue::Directory(d) => (d.len(), Some(d.window())),
            };
            if window.is_some_and(|(w, _, _)| Some(w) != in_window) {
                check_window(window.take())?;
            }
            if let Some(w) = in_window
                && window.is_none()
            {
                window = Some((w, entries.load_window(w)?, 0));
            }
            if let Some((_, _, named)) = &mut window {
                *named += len as u64;
            }
            entries.set_value(first, v);
            for i in 0..len {
                let seq = first + i as u64;
                let stored = entries
                    .get(seq)?
                    .ok_or_else(|| damaged(seq, "missing from the log"))?;
                let (hash, body) = (stored.hash, stored.body());
                let env = decode(seq, hash, body)?;
                if env.prev_hash != prev {
                    return Err(damaged(
                        seq,
                        "its prev_hash is not the hash of the envelope before it",
                    ));
                }
                if last_recorded.is_some_and(|l| env.recorded_at < l) {
                    return Err(damaged(seq, "its recorded_at goes back in time"));
                }
                last_recorded = Some(env.recorded_at);
                // After the chain's own checks, which say more about an envelope that changed.
                tree.leaf(seq, body)?;
                prev = hash;
                expected_next = seq + 1;
                chunk.push(env);
            }
            if chunk.len() >= DERIVE_CHUNK {
                self.expect(&mut chunk, &mut registry, &mut ids, &mut want)?;
            }
        }
        check_window(window.take())?;
        // Clusters of a window no directory names (a batch that never committed is removed
        // on open, so any left are not the log's).
        if let Some((k, _)) = self.clusters.last()?
            && segment::cluster_window(&k).is_none_or(|w| w >= expected_next)
        {
            return Err(damaged(
                expected_next,
                "the log holds clusters past its last directory",
            ));
        }
        self.expect(&mut chunk, &mut registry, &mut ids, &mut want)?;
        let events = expected_next - 1;
        if events != head.seq {
            return Err(damaged(
                events.min(head.seq) + 1,
                format!("the head says {} events, the log holds {events}", head.seq),
            ));
        }
        if prev != head.hash {
            return Err(damaged(
                head.seq,
                "the head marker's hash is not the hash of the last envelope",
            ));
        }
        if let Some(ack) = head_file::read(&self.path)? {
            check_acknowledged(self, &ack, events)?;
        }
        tree.finish(events)?;
        self.check_indexes(want, events)?;
        Ok(Verified { events, head: prev })
    }

    /// Adds what `chunk` (consecutive envelopes) must put in the indexes, then empties it.
    fn expect(
        &self,
        chunk: &mut Vec<Envelope>,
        registry: &mut Registry,
        ids: &mut IdMap,
        want: &mut Expected,
    ) -> Result<(), StoreError> {
        // Targets before the chunk are found through the ids seen so far in the log (not the
        // id index being checked); the chain up to here is verified, so they are read as is.
        let derived = derive(chunk, registry, |target| {
            for seq in ids.candidates(id_hash(target)) {
                if let Some(e) = self.get_raw(seq)?
                    && e.id == target
                {
                    return Ok(Some(e));
                }
            }
            Ok(None)
        })?;
        for (id, seqs) in derived.by_child {
            want.by_child.entry(id).or_default().extend(seqs);
        }
        for (id, seqs) in derived.by_staff {
            want.by_staff.entry(id).or_default().extend(seqs);
        }
        for (id, entry, seq) in derived.entries {
            want.registry.insert(
                registry_key(&id, &entry),
                (registry_value(&id, &entry), seq),
            );
        }
        for e in chunk.iter() {
            let h = id_hash(&e.id);
            ids.insert(h, e.seq);
            want.ids.push((h, e.seq));
        }
        // The read models, rebuilt from seq 1 in one run (every id of the chunk is known now,
        // and an amendment's target always precedes it).
        let mut scratch = Scratch {
            resolve: |target: &str| {
                for seq in ids.candidates(id_hash(target)) {
                    if let Some(e) = self.get_raw(seq)?
                        && e.id == target
                    {
                        return Ok(Some(e));
                    }
                }
                Ok(None)
            },
            fetch: |seq| self.get_raw(seq),
        };
        for e in chunk.iter() {
            want.scopes.add(e, &mut scratch)?;
        }
        chunk.clear();
        Ok(())
    }

    /// Compares every derived tree with what the log says it must hold.
    fn check_indexes(&self, want: Expected, events: u64) -> Result<(), StoreError> {
        for (name, tree) in [
            ("by_child", self.by_child.raw()),
            ("by_staff", self.by_staff.raw()),
            ("by_id", &self.by_id),
            ("registry", &self.registry),
            ("scopes", self.scopes.raw()),
        ] {
            let through = through_of(tree)?;
            if through != events {
                return Err(StoreError::Corrupt(format!(
                    "index {name} says it reflects the log through seq {through}, but the log \
                     holds {events} events"
                )));
            }
        }
        let mut first = First::default();
        for (name, tree, mut expected) in [
            ("by_child", &self.by_child, want.by_child),
            ("by_staff", &self.by_staff, want.by_staff),
        ] {
            let mut found = all_postings(tree, name)?;
            for seqs in expected.values_mut() {
                seqs.sort_unstable();
                seqs.dedup();
            }
            for (id, want_seqs) in &expected {
                let got = found.remove(id).unwrap_or_default();
                compare(want_seqs, &got, |seq, missing| {
                    first.note(seq, || {
                        if missing {
                            format!("index {name}: not listed under {}", show_id(id))
                        } else {
                            format!(
                                "index {name}: listed under {}, which it is not about",
                                show_id(id)
                            )
                        }
                    })
                });
            }
            for (id, got) in found {
                if let Some(&seq) = got.first() {
                    first.note(seq, || {
                        format!(
                            "index {name}: listed under {}, which it is not about",
                            show_id(&id)
                        )
                    });
                }
            }
        }
        let mut want_ids = want.ids;
        want_ids.sort_unstable();
        let mut got_ids = IdMap::pairs(&self.by_id)?;
        got_ids.sort_unstable();
        if want_ids != got_ids {
            let (mut w, mut g) = (want_ids.iter().peekable(), got_ids.iter().peekable());
            loop {
                match (w.peek(), g.peek()) {
                    (Some(a), Some(b)) if a == b => {
                        w.next();
                        g.next();
                    }
                    (Some(a), b) if b.is_none_or(|b| a < b) => {
                        first.note(a.1, || "index by_id: its id is not listed".into());
                        w.next();
                    }
                    (_, Some(b)) => {
                        first.note(b.1, || {
                            "index by_id: listed under an id it does not have".into()
                        });
                        g.next();
                    }
                    _ => break,
                }
            }
        }
        let mut expected_registry = want.registry;
        for item in self.registry.iter() {
            let (k, v) = item?;
            if k.as_ref() == THROUGH_KEY {
                continue;
            }
            match expected_registry.remove(k.as_ref()) {
                Some((value, _)) if value == v.as_ref() => {}
                Some((_, seq)) => first.note(seq, || {
                    "index registry: the entry this event makes is different there".into()
                }),
                None => {
                    return Err(StoreError::Corrupt(
                        "index registry: it holds an entry no event of the log makes".into(),
                    ));
                }
            }
        }
        for (_, seq) in expected_registry.into_values() {
            first.note(seq, || {
                "index registry: the entry this event makes is missing".into()
            });
        }
        if let Some((seq, what)) = first.0 {
            return Err(damaged(seq, what));
        }
        // The read models against their rebuild (each stored value's check first).
        let want_scopes = want.scopes.content()?;
        let mut got = Content::default();
        for item in self.scopes.iter()? {
            let (k, v) = item?;
            got.add(&k, &v)?;
        }
        got.settle();
        match got.first_difference(&want_scopes) {
            Some(what) => Err(StoreError::Corrupt(what)),
            None => Ok(()),
        }
    }
}

/// Walks two sorted seq lists, calling `diff(seq, missing)` for each seq in only one of
/// them (`missing`: expected but not found).
fn compare(want: &[u64], got: &[u64], mut diff: impl FnMut(u64, bool)) {
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(&a), b) if b.is_none_or(|&b| a < b) => {
                diff(a, true);
                i += 1;
            }
            (_, Some(&b)) => {
                diff(b, false);
                j += 1;
            }
            _ => break,
        }
    }
}
