//! The read plan: which envelopes each kind of view needs, and how they are fetched.
//!
//! A single child's views read the by-child index plus the registry events of the schools the
//! child's file names (`projections::world::schools_named`) — no replay. Whole-school views
//! fold the whole log, streamed, resuming from a stored timeline snapshot when one fits. The
//! `log` listing reads one index or the whole log. County-wide reports read the world and then
//! the effective facts in a second scan (`fact_scan`).
//!
//! This module owns those fetches and the snapshot policy; it must never compute a view, decide
//! what a view shows, or print anything.

use chrono::{DateTime, Utc};
use events::{Envelope, EventKind};
use projections::snapshot::{self, Snapshot};
use projections::{Fact, ProjectionError, Timeline, World};
use store::{Store, StoreError};

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
    Ok(envs)
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
) -> Result<Vec<Envelope>, PlanError> {
    Ok(match (child, staff) {
        (Some(c), _) => store.by_child(c, as_of)?,
        (None, Some(t)) => store.by_staff(t, as_of)?,
        (None, None) => store.scan(as_of).collect::<Result<_, _>>()?,
    })
}

fn snapshot_name() -> String {
    format!("timeline/{}", snapshot::fingerprint())
}

/// The whole log's timeline as of `as_of` by a plain replay (no snapshot read or written):
/// the log is streamed into the fold, so it is never held twice; the first read error ends
/// the replay and is returned.
pub fn replay(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<Timeline, PlanError> {
    let mut read_error = None;
    let envs = store.scan(as_of).map_while(|r| match r {
        Ok(env) => Some(env),
        Err(e) => {
            read_error = Some(e);
            None
        }
    });
    let tl = Timeline::build_owned(envs, as_of)?;
    match read_error {
        Some(e) => Err(e.into()),
        None => Ok(tl),
    }
}

/// The whole log's timeline as of `as_of`: resumed from the latest fitting snapshot (same
/// code fingerprint, taken before `as_of`), else replayed; a fresh snapshot is stored when
/// the log has grown `SNAPSHOT_EVERY` events past the last one.
pub fn whole_timeline(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<Timeline, PlanError> {
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

/// Whether `World::build` reads envelopes of this kind, or it is an amendment (which any
/// event may need): what the first scan of [`fact_scan`] keeps.
fn needed_for_world(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::SchoolRegistered
            | EventKind::TermDefined
            | EventKind::PolicyAdopted
            | EventKind::StaffJoined
            | EventKind::StaffLeft
            | EventKind::ChildRegistered
            | EventKind::ChildUpdated
            | EventKind::ChildStatusChanged
            | EventKind::PairingAssigned
            | EventKind::PairingEnded
            | EventKind::IncidentReported
            | EventKind::Corrected
            | EventKind::Retracted
    )
}

/// The world as of a time and a stream of the effective facts of that prefix, for the
/// county-wide reads (`report term`, `export events --format parquet`) that never hold the
/// care events in memory: see [`fact_scan`].
pub struct FactScan<'s> {
    store: &'s Store,
    as_of: Option<DateTime<Utc>>,
    kept: Timeline,
    world: World,
}

/// Scans the log once for what the world needs and every amendment (a small share of the
/// log), builds the timeline of those and its world; [`FactScan::facts`] then streams the
/// log again, each envelope made effective through that timeline's amendments
/// (`Timeline::effective`).
pub fn fact_scan(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<FactScan<'_>, PlanError> {
    let mut kept = Vec::new();
    for env in store.scan(as_of) {
        let env = env?;
        if needed_for_world(env.event.kind()) {
            kept.push(env);
        }
    }
    let kept = Timeline::build_owned(kept, as_of)?;
    let world = World::build(&kept);
    Ok(FactScan {
        store,
        as_of,
        kept,
        world,
    })
}

impl FactScan<'_> {
    /// The world as of the scan's time.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The effective facts of the kinds `wanted`, in log order (retracted events and
    /// amendments left out, corrections applied), streamed from a second scan of the log.
    pub fn facts(
        &self,
        wanted: fn(EventKind) -> bool,
    ) -> impl Iterator<Item = Result<Fact, PlanError>> + '_ {
        self.store
            .scan(self.as_of)
            .filter_map(move |env| match env {
                Err(e) => Some(Err(PlanError::Store(e))),
                Ok(env) if !wanted(env.event.kind()) => None,
                Ok(env) => self
                    .kept
                    .effective(env)
                    .map_err(PlanError::from)
                    .transpose(),
            })
    }
}
