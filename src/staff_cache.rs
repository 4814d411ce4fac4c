//! The service's kept versions of the schools its worklists read: for a set of schools (a
//! staff member's, `Store::staff_schools`), the bitemporal versions of their envelopes
//! (`projections::versions`), opened for names only (`plan::Opener::world_only`), folded once
//! and then brought up to date by folding only what was appended since — on a read, and
//! after commits by the service's keeper (`catch_up`). A worklist then costs the postings of
//! the batches since the last fold (`Store::school_seqs_between`), their envelopes and the
//! filter as of a time (the facts shared, not copied) — not a scan of every posting, nor a
//! fetch and fold of every envelope of the schools, on every page.
//!
//! A set is first folded off the request path: a page of a set not folded yet is answered by
//! the teacher's own read (`plan::worklist_timeline`, the same worklist) and the keeper folds
//! the set (`StaffCache::worklist_timeline`); once folded, a page waits for a catch-up in
//! progress (a few commits' envelopes) rather than reading the teacher afresh.
//!
//! The answer of a kept set is always `plan::staff_timeline`'s: the versions are those of the same
//! envelopes in the same order (`Versions::extend` equals one `Versions::build`), and a
//! change that is not an append at the end — an earlier envelope newly posted to a school (a
//! transfer brings a child's past; a correction moves an event there) — or an erased key
//! (`Vault::erasures`: an erased child's opened names must be gone at once) makes the entry
//! fold from the start again. `tests/it/staff_cache.rs` checks it against the plan after
//! appends, transfers, corrections, erasure and as of past times.
//!
//! This module owns that cache and its bound (`CAPACITY` sets of schools, least recently used
//! dropped); it must never keep anything opened beyond names (no care record in clear), nor
//! answer for a scope the plan reads by replay (most of the store's schools).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use projections::Timeline;
use projections::versions::Versions;
use store::Store;
use vault::Vault;

use crate::plan::{self, Opener, PlanError, Scope};

/// Sets of schools kept at once. A school of 300 children at county scale keeps about 40,000
/// envelopes' versions (a few tens of MB); a school's staff share one entry.
pub const CAPACITY: usize = 8;

/// One set of schools' versions, and what they were folded from.
#[derive(Default)]
struct Entry {
    /// The read models' `through` marker when the postings were last read: the batches
    /// after it are read next.
    through: u64,
    versions: Versions,
    /// `Vault::erasures` when the first of these envelopes was opened.
    erasures: u64,
}

impl Entry {
    /// Folds what was posted to `schools` since the last fold (the postings of the batches
    /// after `through`, not every posting again), or everything again when that is not an
    /// append at the end (a seq not folded yet below the last folded: a transfer or a moving
    /// correction posted an earlier envelope) or a key was erased since.
    fn catch_up(
        &mut self,
        store: &Store,
        vault: Option<&Vault>,
        schools: &[String],
        open: &Opener<'_>,
    ) -> Result<(), PlanError> {
        let erasures = vault.map_or(0, Vault::erasures);
        if self.erasures != erasures {
            *self = Entry {
                erasures,
                ..Entry::default()
            };
        }
        let (mut fresh, mut through) = posted_after(store, schools, self.through)?;
        let last = self.versions.last_folded().unwrap_or(0);
        // Posted again (a child back at a school it left): already folded, nothing new.
        fresh.retain(|s| *s > last || !self.versions.has_folded(*s));
        if fresh.first().is_some_and(|&first| first <= last) {
            *self = Entry {
                erasures,
                ..Entry::default()
            };
            (fresh, through) = posted_after(store, schools, 0)?;
        }
        if !fresh.is_empty() {
            let envs = open
                .world_only()
                .open_all(store.envelopes_at(fresh, None)?)?;
            self.versions.extend(envs);
        }
        self.through = through;
        Ok(())
    }
}

/// A kept set's timeline as of `as_of`: the entry caught up with the log, then filtered.
fn read_kept(
    kept: &Kept,
    store: &Store,
    vault: Option<&Vault>,
    schools: &[String],
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let mut e = lock_entry(&kept.entry);
    e.catch_up(store, vault, schools, open)?;
    kept.folded.store(true, Ordering::Release);
    let (head_seq, head_recorded_at) = store.head_as_of(as_of)?;
    Ok(e.versions
        .timeline_with_head(as_of, head_seq, head_recorded_at)?)
}

/// The seqs the batches after `after` posted to any of `schools`, ascending without repeats,
/// and the read models' `through` marker they were read up to (one marker for every school,
/// so that a commit between two schools' reads is read next time for both).
fn posted_after(
    store: &Store,
    schools: &[String],
    after: u64,
) -> Result<(Vec<u64>, u64), PlanError> {
    let through = store.read_models_through()?;
    let mut seqs = Vec::new();
    for s in schools {
        seqs.extend(store.school_seqs_between(s, after, through)?);
    }
    seqs.sort_unstable();
    seqs.dedup();
    Ok((seqs, through))
}

/// One set's entry, and whether it has been folded once (read without its lock, so that a
/// page never waits for the first fold of a set: the keeper's, or another page's).
#[derive(Default)]
struct Kept {
    entry: Mutex<Entry>,
    folded: AtomicBool,
}

/// A set of schools (sorted) and its entry.
type Slot = (Vec<String>, Arc<Kept>);

/// The kept versions, by set of schools, most recently used last.
#[derive(Default)]
pub struct StaffCache {
    entries: Mutex<Vec<Slot>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An entry's lock. A panic while folding may have left the versions part-extended, so a
/// poisoned entry is emptied: the next read folds from the start.
fn lock_entry(m: &Mutex<Entry>) -> MutexGuard<'_, Entry> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => {
            let mut g = poisoned.into_inner();
            *g = Entry::default();
            m.clear_poison();
            g
        }
    }
}

impl StaffCache {
    /// `plan::staff_timeline(store, staff, as_of, open)`, from the kept versions of the staff
    /// member's schools (`open` is made names-only here, as the plan does).
    pub fn staff_timeline(
        &self,
        store: &Store,
        vault: Option<&Vault>,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
        open: &Opener<'_>,
    ) -> Result<Timeline, PlanError> {
        match self.set_of(store, staff)? {
            Some((schools, kept)) => read_kept(&kept, store, vault, &schools, as_of, open),
            None => plan::staff_timeline(store, staff, as_of, open),
        }
    }

    /// The timeline a worklist page reads: the kept versions of the staff member's schools
    /// (as [`StaffCache::staff_timeline`]) once they have been folded; before — a set never
    /// read, or being folded the first time by the keeper — the teacher's own read
    /// (`plan::worklist_timeline`: their envelopes and their children's files), which gives
    /// the same worklist. The set is then registered, for the keeper's next catch-up
    /// (`catch_up`) to fold off the request path: a school's first page no longer waits for
    /// the fold of the whole school.
    pub fn worklist_timeline(
        &self,
        store: &Store,
        vault: Option<&Vault>,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
        open: &Opener<'_>,
    ) -> Result<Timeline, PlanError> {
        match self.set_of(store, staff)? {
            Some((schools, kept)) if kept.folded.load(Ordering::Acquire) => {
                read_kept(&kept, store, vault, &schools, as_of, open)
            }
            _ => plan::worklist_timeline(store, staff, as_of, open),
        }
    }

    /// The staff member's set of schools (sorted) and its entry, made if needed; `None` for a
    /// set the plan reads by replay (never kept).
    fn set_of(&self, store: &Store, staff: &str) -> Result<Option<Slot>, PlanError> {
        let mut schools = store.staff_schools(staff)?;
        if plan::scope_is_replayed(store, &Scope::Schools(schools.clone()))? {
            return Ok(None);
        }
        schools.sort();
        let kept = self.entry(schools.clone());
        Ok(Some((schools, kept)))
    }

    /// Brings every kept set of schools up to date with the log (the service calls it after
    /// commits, off the request path). A failure leaves that entry as it was, for the next
    /// read to meet and report.
    pub fn catch_up(&self, store: &Store, vault: Option<&Vault>, open: &Opener<'_>) {
        let slots: Vec<Slot> = lock(&self.entries).clone();
        for (schools, kept) in slots {
            if lock_entry(&kept.entry)
                .catch_up(store, vault, &schools, open)
                .is_ok()
            {
                kept.folded.store(true, Ordering::Release);
            }
        }
    }

    /// Whether a set was registered by a page and not folded yet (the keeper's next
    /// catch-up folds it).
    pub fn unfolded(&self) -> bool {
        lock(&self.entries)
            .iter()
            .any(|(_, kept)| !kept.folded.load(Ordering::Acquire))
    }

    /// The kept sets of schools, least recently used first, each with how many envelopes it
    /// has folded (for tests and diagnostics).
    pub fn kept(&self) -> Vec<(Vec<String>, usize)> {
        let slots: Vec<Slot> = lock(&self.entries).clone();
        slots
            .into_iter()
            .map(|(schools, kept)| {
                let n = lock_entry(&kept.entry).versions.folded();
                (schools, n)
            })
            .collect()
    }

    /// The entry of a set of schools, made (and the least recently used dropped) if needed.
    fn entry(&self, schools: Vec<String>) -> Arc<Kept> {
        let mut entries = lock(&self.entries);
        let entry = match entries.iter().position(|(k, _)| *k == schools) {
            Some(i) => entries.remove(i).1,
            None => Arc::default(),
        };
        entries.push((schools, entry.clone()));
        if entries.len() > CAPACITY {
            entries.remove(0);
        }
        entry
    }
}
