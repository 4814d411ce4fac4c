//! The service's kept versions of the schools its worklists read: for a set of schools (a
//! staff member's, `Store::staff_schools`), the bitemporal versions of their envelopes
//! (`projections::versions`), opened for names only (`plan::Opener::world_only`), folded once
//! and then brought up to date by folding only what was appended since. A worklist then costs
//! a scan of the schools' postings, the new envelopes and the filter as of a time — not a
//! fetch and fold of every envelope of the schools on every page.
//!
//! The answer is always `plan::staff_timeline`'s: the versions are those of the same
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
    /// The seqs folded, ascending (the schools' postings when last read).
    seqs: Vec<u64>,
    versions: Versions,
    /// `Vault::erasures` when the first of these envelopes was opened.
    erasures: u64,
}

/// A set of schools (sorted) and its entry.
type Slot = (Vec<String>, Arc<Mutex<Entry>>);

/// The kept versions, by set of schools, most recently used last.
#[derive(Default)]
pub struct StaffCache {
    entries: Mutex<Vec<Slot>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while folding leaves an entry part-updated: `seqs` is only set after the fold,
    // so the next read sees the mismatch and folds from the start.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut schools = store.staff_schools(staff)?;
        if plan::scope_is_replayed(store, &Scope::Schools(schools.clone()))? {
            return plan::staff_timeline(store, staff, as_of, open);
        }
        schools.sort();
        let entry = self.entry(schools.clone());
        let mut e = lock(&entry);
        let erasures = vault.map_or(0, Vault::erasures);
        let seqs = plan::schools_seqs(store, &schools)?;
        // `seqs` is ascending without repeats, so when the folded seqs are its prefix every
        // new one comes after them in the log: folding them next keeps log order.
        let appended_only = e.erasures == erasures && seqs.starts_with(&e.seqs);
        if !appended_only {
            *e = Entry {
                erasures,
                ..Entry::default()
            };
        }
        let new = seqs[e.seqs.len()..].to_vec();
        if !new.is_empty() {
            let envs = open.world_only().open_all(store.envelopes_at(new, None)?)?;
            e.versions.extend(envs);
        }
        e.seqs = seqs;
        let (head_seq, head_recorded_at) = store.head_as_of(as_of)?;
        Ok(e.versions
            .timeline_with_head(as_of, head_seq, head_recorded_at)?)
    }

    /// The entry of a set of schools, made (and the least recently used dropped) if needed.
    fn entry(&self, schools: Vec<String>) -> Arc<Mutex<Entry>> {
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
