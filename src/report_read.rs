//! The term report's read: which read feeds the polars reporter for each scope. A school's
//! report reads the school through the read models (`plan::scope_timeline`); a county's reads
//! the fact rows and the world's envelopes (`plan::row_read`), never the county's
//! envelopes one by one, nor a replay. Both give the report the replay gives, byte for byte
//! (`tests/it/read_models.rs`). `report term` and the service's report route both come here.
//!
//! This module owns that choice; it must never compute a figure (that is `reports`') nor
//! open a personal field (a report reads the clear parts as stored).

use chrono::{DateTime, Utc};
use projections::calendar::Period;
use projections::{ProjectionError, ScoreRun, World};
use reports::roster::Roster;
use reports::{FactFrame, ReportError, Scope, TermReport};
use std::collections::BTreeMap;
use store::Store;

use crate::plan::{self, Opener, PlanError, RowFact};

/// Why a term report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportReadError {
    /// The read failed (the store, or a log that does not fold).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The report could not be computed from what was read (an unknown term …).
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// The term report of `scope` for `term` as of `as_of`.
pub fn term_report(
    store: &Store,
    scope: &Scope,
    term: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<TermReport, ReportReadError> {
    match scope {
        Scope::School(s) => {
            let tl = plan::scope_timeline(
                store,
                &plan::Scope::School(s.clone()),
                as_of,
                &Opener::sealed(),
            )?;
            let world = World::build(&tl);
            Ok(reports::term_statistics(&tl, &world, scope.clone(), term)?)
        }
        Scope::County(_) => {
            let mut frame = FactFrame::new();
            // The frame needs no world: the rows go in while the world is folded. Once it is,
            // the report's roster is made there and the days of the term are known
            // (`reports::term_days`): the rows of other days are left out from then on — the
            // same report, fewer rows pushed.
            let roster = std::sync::OnceLock::new();
            let mut keeping = false;
            let read = plan::row_read_with_facts(
                store,
                as_of,
                &Opener::sealed(),
                |world| {
                    if let Ok(r) = Roster::new(world, scope.clone(), term) {
                        let _ = roster.set(r);
                    }
                },
                |f| {
                    if !keeping && let Some(r) = roster.get() {
                        if let Some(days) = reports::term_days(r) {
                            frame.keep_days(days);
                        }
                        keeping = true;
                    }
                    match f {
                        RowFact::Row(row) => Ok::<_, ReportReadError>(frame.push_row(&row)),
                        RowFact::Fact(fact) => {
                            frame.push(&fact)?;
                            Ok(true)
                        }
                    }
                },
            )?;
            // Only the world is read from here on; the rest is freed beside the plan, and
            // the world once the report is made.
            let (world, rest) = read.into_world();
            plan::drop_beside(rest);
            // A roster the world's thread could not make is made again here, for its error.
            let report = match roster.into_inner() {
                Some(roster) => Ok(roster),
                None => Roster::new(&world, scope.clone(), term),
            }
            .and_then(|roster| reports::term_report_of(&world, frame, roster));
            plan::drop_beside(world);
            Ok(report?)
        }
    }
}

/// The score runs of `schools` for `period` as of the read's time, from the fact rows
/// (`reports::ScoreRuns` fed by [`plan::RowRead::facts`]): each equal to `reports::score_runs`
/// of the replay's timeline but for the drill-down, which these runs leave out (every row's
/// `windows` empty: `ScoreRuns::without_drill_down`).
pub fn score_runs(
    read: &plan::RowRead<'_>,
    schools: &[&str],
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<Vec<Result<ScoreRun, ProjectionError>>, ReportReadError> {
    // A county run has no drill-down (`scores --staff` needs `--school`).
    let mut runs =
        reports::ScoreRuns::new(read.world(), schools, period, other).without_drill_down();
    // The rows counted on every core, a share each; the amended events' facts after them.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut shares: Vec<reports::EventShare> =
        (0..cores.clamp(1, 8)).map(|_| Default::default()).collect();
    if read.rows_split(&mut shares, |share, row| runs.share_row(share, &row)) {
        for share in shares {
            runs.absorb(share);
        }
        read.amended_facts(|fact| {
            runs.add_fact(&fact);
            Ok::<_, ReportReadError>(())
        })?;
    } else {
        read.facts(|f| {
            match f {
                RowFact::Row(row) => runs.add_row(&row),
                RowFact::Fact(fact) => runs.add_fact(&fact),
            }
            Ok::<_, ReportReadError>(true)
        })?;
    }
    Ok(runs.run(read.as_of(), read.head_seq())?)
}
