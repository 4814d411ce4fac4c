//! County-scale runs (rules §9.2): the term report and the bureau feed from two scans of the
//! log instead of a whole `Timeline` in memory.
//!
//! Pass 1 keeps only what the `World` needs (registry events, pairings, statuses, incident
//! reports) and every amendment — a small share of the log — and builds a `Timeline` and
//! `World` from them. Pass 2 streams every envelope through `Timeline::effective` (which
//! applies the amendments kept in pass 1) into the per-child fold or the feed writer, one at
//! a time. This module owns that wiring; it must never open the store (the caller hands in a
//! function that starts a scan) nor re-implement amendments.

use events::{Envelope, EventKind};
use projections::{Timeline, World};

use crate::bureau::{BureauExport, ExportSummary};
use crate::error::ReportError;
use crate::fold::TermFold;
use crate::report::{Scope, TermReport};

/// Whether pass 1 must keep envelopes of this kind: what `World::build` reads, and every
/// amendment (so that pass 2 can apply corrections and retractions to any event).
pub fn needed_for_world(kind: EventKind) -> bool {
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

/// The kinds a term report counts (pass 2 of the report skips every other kind before
/// applying amendments).
pub fn counted_by_term_report(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::TalkHeld
            | EventKind::HomeVisited
            | EventKind::ParentCalled
            | EventKind::FamilyCallArranged
            | EventKind::LetterWritten
            | EventKind::WarmthVisited
            | EventKind::CounselingHeld
            | EventKind::AidGranted
            | EventKind::IncidentReported
            | EventKind::IncidentNotified
    )
}

fn scan_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> ReportError {
    ReportError::Scan {
        source: Box::new(e),
    }
}

/// Pass 1: the timeline of the world-building kinds and every amendment, and its world.
/// `scan` yields the log prefix in log order (recorded at or before `as_of`).
pub fn world_pass<I, E>(
    scan: I,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(Timeline, World), ReportError>
where
    I: IntoIterator<Item = Result<Envelope, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut kept = Vec::new();
    for env in scan {
        let env = env.map_err(scan_error)?;
        if needed_for_world(env.event.kind()) {
            kept.push(env);
        }
    }
    let timeline =
        Timeline::build_owned(kept, as_of).map_err(|source| ReportError::Projection { source })?;
    let world = World::build(&timeline);
    Ok((timeline, world))
}

impl TermFold<'_> {
    /// Pass 2 for one envelope of the log: skipped unless the report counts its kind, else
    /// made effective through the pass-1 `timeline` and observed.
    pub fn observe_envelope(
        &mut self,
        timeline: &Timeline,
        env: Envelope,
    ) -> Result<(), ReportError> {
        if !counted_by_term_report(env.event.kind()) {
            return Ok(());
        }
        let fact = timeline
            .effective(env)
            .map_err(|source| ReportError::Projection { source })?;
        if let Some(f) = fact {
            self.observe(f.occurred_at, &f.event);
        }
        Ok(())
    }
}

/// The term report from two scans of the log: `scan()` is called twice and must yield the
/// same prefix both times (`|| store.scan(as_of)`). Holds the world and per-child counters,
/// never the care events. Equal to [`crate::term_statistics`] over the same prefix.
pub fn term_statistics_streamed<F, I, E>(
    mut scan: F,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    scope: Scope,
    term: &str,
) -> Result<TermReport, ReportError>
where
    F: FnMut() -> I,
    I: IntoIterator<Item = Result<Envelope, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let (timeline, world) = world_pass(scan(), as_of)?;
    let mut fold = TermFold::new(&world, scope, term)?;
    for env in scan() {
        fold.observe_envelope(&timeline, env.map_err(scan_error)?)?;
    }
    fold.finish()
}

/// The bureau feed from two scans of the log (see [`term_statistics_streamed`]); the feed
/// writer holds a bounded number of rows. Equal to [`crate::export_events_parquet`].
pub fn export_events_parquet_streamed<F, I, E>(
    mut scan: F,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    out_dir: &std::path::Path,
) -> Result<ExportSummary, ReportError>
where
    F: FnMut() -> I,
    I: IntoIterator<Item = Result<Envelope, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let (timeline, world) = world_pass(scan(), as_of)?;
    let mut export = BureauExport::create(&world, out_dir)?;
    for env in scan() {
        let env = env.map_err(scan_error)?;
        if let Some(f) = timeline
            .effective(env)
            .map_err(|source| ReportError::Projection { source })?
        {
            export.push(&f)?;
        }
    }
    export.finish()
}
