//! The read plan: which envelopes each kind of view needs, and how they are fetched.
//!
//! A single child's views read the by-child index plus the registry events of the schools the
//! child's file names (`projections::world::schools_named`) — no replay. Whole-school views
//! fold the whole log, streamed, resuming from a stored timeline snapshot when one fits. The
//! `log` listing reads one index or the whole log.
//!
//! It is also where sealed personal fields are opened (docs/privacy.md): a view's envelopes
//! pass through an [`Opener`] after the read, with the key directory's vault; scores and term
//! statistics read the clear parts as stored and never need a key. A timeline snapshot is only
//! ever taken of envelopes as stored, never of opened ones, so no clear personal field is
//! written into the store.
//!
//! This module owns those fetches, the opening and the snapshot policy; it must never compute
//! a view, decide what a view shows, or print anything.

use chrono::{DateTime, Utc};
use events::Envelope;
use projections::snapshot::{self, Snapshot};
use projections::{ProjectionError, Timeline};
use store::{Store, StoreError};
use vault::{Reader, Vault, VaultError};

/// Why a read plan could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The envelopes read do not fold (a correction that cannot apply …): the record's
    /// content, not the machine, is at fault.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A fresh timeline snapshot could not be encoded for storing.
    #[error("encoding the timeline snapshot")]
    Snapshot(#[source] rmp_serde::encode::Error),
    /// A sealed envelope could not be opened (a missing key, a ciphertext that does not
    /// authenticate).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Opens the sealed envelopes a view reads: with the key directory's vault for a reader, or
/// not at all (a store in clear, or a read that needs no personal field).
#[derive(Clone, Copy)]
pub struct Opener<'v> {
    vault: Option<&'v Vault>,
    reader: Reader,
    /// Whether a sealed envelope without a vault is an error (a view) or passes as stored.
    strict: bool,
}

impl<'v> Opener<'v> {
    /// Opens with `vault` for `reader`; without a vault (a store in clear) a sealed
    /// envelope is an error naming the missing key directory.
    pub fn new(vault: Option<&'v Vault>, reader: Reader) -> Opener<'v> {
        Opener {
            vault,
            reader,
            strict: true,
        }
    }

    /// Leaves every envelope as stored: the clear parts with their presence placeholders.
    pub fn sealed() -> Opener<'static> {
        Opener {
            vault: None,
            reader: Reader::Staff,
            strict: false,
        }
    }

    /// Whether envelopes are opened (or checked for a missing key directory) at all.
    pub fn opens(&self) -> bool {
        self.vault.is_some() || self.strict
    }

    /// One envelope, opened.
    pub fn open(&self, env: Envelope) -> Result<Envelope, VaultError> {
        match self.vault {
            Some(v) => v.open(env, self.reader),
            None if self.strict && env.sealed.is_some() => Err(VaultError::NoVault { id: env.id }),
            None => Ok(env),
        }
    }

    /// Envelopes, opened, in their order.
    pub fn open_all(&self, envs: Vec<Envelope>) -> Result<Vec<Envelope>, VaultError> {
        if !self.opens() {
            return Ok(envs);
        }
        envs.into_iter().map(|e| self.open(e)).collect()
    }
}

/// Events between stored snapshots of the whole-log timeline, set by
/// `CARELEDGER_SNAPSHOT_EVERY`. Off (0) by default: a snapshot holds every effective fact, and
/// at county scale resuming from one measured twice as slow as replaying the log
/// (docs/BENCHMARKS.md), so it only pays where decoding the log is the bottleneck.
const SNAPSHOT_EVERY: u64 = 0;

fn snapshot_every() -> u64 {
    std::env::var("CARELEDGER_SNAPSHOT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SNAPSHOT_EVERY)
}

/// Everything a single child's views need: the registry-kind events of every school the
/// child's file has named and the child's own events (amendments included), in log order,
/// from the indexes — no replay.
pub fn child_envelopes(
    store: &Store,
    child: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    let mut envs = store.by_child(child, as_of)?;
    // The amendments of the child's file are indexed under the child too, so the timeline of
    // its own events knows every school the file has named, as corrected.
    let own = Timeline::build(&envs, as_of)?;
    for school in &projections::world::schools_named(&own) {
        envs.extend(store.registry_events(Some(school), as_of)?);
    }
    envs.sort_by_key(|e| e.seq);
    envs.dedup_by_key(|e| e.seq);
    Ok(open.open_all(envs)?)
}

/// Everything a school's policy needs: that school's registry-kind events, folded.
pub fn school_registry(
    store: &Store,
    school: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Timeline, PlanError> {
    Ok(Timeline::build_owned(
        store.registry_events(Some(school), as_of)?,
        as_of,
    )?)
}

/// The envelopes of `careledger log`: one child's (by-child index), else one staff member's
/// (by-staff index), else the whole log, in log order.
pub fn log_envelopes(
    store: &Store,
    child: Option<&str>,
    staff: Option<&str>,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Vec<Envelope>, PlanError> {
    let envs = match (child, staff) {
        (Some(c), _) => store.by_child(c, as_of)?,
        (None, Some(t)) => store.by_staff(t, as_of)?,
        (None, None) => store.scan(as_of).collect::<Result<_, _>>()?,
    };
    Ok(open.open_all(envs)?)
}

fn snapshot_name() -> String {
    format!("timeline/{}", snapshot::fingerprint())
}

/// The whole log's timeline as of `as_of` by a plain replay (no snapshot read or written):
/// the log is streamed into the fold, so it is never held twice; the first read error ends
/// the replay and is returned.
pub fn replay(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<Timeline, PlanError> {
    replay_opened(store, as_of, &Opener::sealed())
}

/// [`replay`], each envelope opened on its way into the fold.
pub fn replay_opened(
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    let mut read_error: Option<PlanError> = None;
    let envs = store.scan(as_of).map_while(|r| {
        match r.map_err(PlanError::from).and_then(|e| Ok(open.open(e)?)) {
            Ok(env) => Some(env),
            Err(e) => {
                read_error = Some(e);
                None
            }
        }
    });
    let tl = Timeline::build_owned(envs, as_of)?;
    match read_error {
        Some(e) => Err(e),
        None => Ok(tl),
    }
}

/// The whole log's timeline as of `as_of`: resumed from the latest fitting snapshot (same
/// code fingerprint, taken before `as_of`), else replayed; a fresh snapshot is stored when
/// the log has grown `SNAPSHOT_EVERY` events past the last one. With an opener that opens,
/// the log is replayed and opened, and no snapshot is read or written (a snapshot of opened
/// envelopes would put clear personal fields into the store).
pub fn whole_timeline(
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<Timeline, PlanError> {
    if open.opens() {
        return replay_opened(store, as_of, open);
    }
    let head = store.head().seq;
    let name = snapshot_name();
    let stored = store.snapshot_at_or_before(&name, head)?;
    let mut last_snap = 0;
    if let Some((seq, bytes)) = &stored {
        last_snap = *seq;
        // A snapshot that does not decode or does not fit is ignored: replay is always right.
        if let Ok(snap) = rmp_serde::from_slice::<Snapshot>(bytes)
            && snap.fingerprint == snapshot::fingerprint()
            && as_of.is_none_or(|t| snap.head_recorded_at.is_none_or(|r| r <= t))
        {
            let rest: Vec<Envelope> = store
                .scan_range(snap.head_seq + 1, as_of)
                .collect::<Result<_, _>>()?;
            if let Ok(tl) = snap.resume(rest.iter(), as_of) {
                return Ok(tl);
            }
        }
    }
    let tl = replay(store, as_of)?;
    let every = snapshot_every();
    if every > 0 && tl.head_seq() == head && head >= last_snap + every {
        let snap = Snapshot::take(&tl);
        let bytes = rmp_serde::to_vec_named(&snap).map_err(PlanError::Snapshot)?;
        store.put_snapshot(&name, head, &bytes)?;
    }
    Ok(tl)
}
