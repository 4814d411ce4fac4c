//! Read commands over projections: archives, contact cards, history, progress, pairings,
//! worklists and back-fill.
//!
//! This module owns which read plan each view uses and how a view is printed; it must never
//! compute a view itself (that is `projections`) nor fetch envelopes itself (that is
//! `careledger::plan`).

use anyhow::Result;
use careledger::plan::{self, Opener};
use chrono::{DateTime, NaiveDate, Utc};
use projections::{Timeline, World};
use serde::Serialize;
use store::Store;

use super::{ListOptions, bad, plan_error};
use crate::output::{self, Listing};

/// Prints a view: its own table (first row = headers) or its JSON / CSV.
fn show<T: Serialize>(view: &T, table: Vec<Vec<String>>, opts: &ListOptions) -> Result<()> {
    let mut table = table.into_iter();
    let headers = table.next().unwrap_or_default();
    let text = output::render(
        &Listing {
            headers,
            rows: table.collect(),
            json: view,
        },
        opts.format,
    )?;
    output::emit(&text, opts.out.as_deref())
}

/// One child's timeline and world, from the child's read plan.
fn child_world(
    store: &Store,
    child: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<(Timeline, World)> {
    let tl = plan::child_timeline(store, child, as_of, open).map_err(plan_error)?;
    let world = World::build(&tl);
    Ok((tl, world))
}

/// A school's timeline and world, through the read models (`plan::scope_timeline`).
fn school_world(
    store: &Store,
    school: &str,
    as_of: Option<DateTime<Utc>>,
    open: &Opener<'_>,
) -> Result<(Timeline, World)> {
    let tl = plan::scope_timeline(store, &plan::Scope::School(school.to_owned()), as_of, open)
        .map_err(plan_error)?;
    let world = World::build(&tl);
    Ok((tl, world))
}

/// `archive CHILD [--valid-at D]`.
pub fn archive(
    store: &Store,
    child: &str,
    valid_at: Option<NaiveDate>,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let (tl, world) = child_world(store, child, opts.as_of, open)?;
    let view = projections::archive::archive(&tl, &world, child, valid_at).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `contact-card CHILD [--on D]`.
pub fn contact_card(
    store: &Store,
    child: &str,
    on: Option<NaiveDate>,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let (tl, world) = child_world(store, child, opts.as_of, open)?;
    let view = projections::contact_card::contact_card(&tl, &world, child, on).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `history CHILD [--role counselor]`: the view also lists the raw envelopes (corrections
/// with both times), so it keeps them beside the timeline.
pub fn history(
    store: &Store,
    child: &str,
    counselor: bool,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let envs = plan::child_envelopes(store, child, opts.as_of, open).map_err(plan_error)?;
    let tl = Timeline::build(&envs, opts.as_of).map_err(bad)?;
    let world = World::build(&tl);
    let view = projections::history::history(&envs, &tl, &world, child, counselor).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `progress CHILD [--role counselor]`.
pub fn progress(
    store: &Store,
    child: &str,
    counselor: bool,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let (tl, world) = child_world(store, child, opts.as_of, open)?;
    let view = projections::progress::progress(&tl, &world, child, counselor).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `archives --school S [--incomplete] [--valid-at D]`.
pub fn archives(
    store: &Store,
    school: &str,
    incomplete: bool,
    valid_at: Option<NaiveDate>,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let (tl, world) = school_world(store, school, opts.as_of, open)?;
    let view =
        projections::archive::archives(&tl, &world, school, valid_at, incomplete).map_err(bad)?;
    if opts.format == output::Format::Xlsx {
        return super::template::archives_xlsx(&world, &view, opts.out.as_deref());
    }
    show(&view, view.to_table(), opts)
}

/// The day "today" means for a command: `--on`, else the as-of date, else today (+08:00).
pub(super) fn day_of(on: Option<NaiveDate>, as_of: Option<DateTime<Utc>>) -> NaiveDate {
    on.unwrap_or_else(|| events::time::local_date(as_of.unwrap_or_else(Utc::now)))
}

/// `pairings --school S [--on D]`.
pub fn pairings(
    store: &Store,
    school: &str,
    on: Option<NaiveDate>,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let on = day_of(on, opts.as_of);
    let (_, world) = school_world(store, school, opts.as_of, open)?;
    let view = projections::pairings::pairings_on(&world, school, on).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `worklist --staff T [--on D]`. With `--on` and no `--as-of`, only what was recorded by
/// the end of that day counts (what the teacher could have seen that day).
pub fn worklist(
    store: &Store,
    staff: &str,
    on: Option<NaiveDate>,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let as_of = match (opts.as_of, on) {
        (Some(t), _) => Some(t),
        (None, Some(d)) => Some(events::time::end_of_day(d)),
        (None, None) => None,
    };
    let day = day_of(on, as_of);
    let tl = plan::worklist_timeline(store, staff, as_of, open).map_err(plan_error)?;
    let world = World::build(&tl);
    let view = projections::worklist::worklist(&tl, &world, staff, day).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `backfill --school S [--days N]`.
pub fn backfill(
    store: &Store,
    school: &str,
    days: i64,
    opts: &ListOptions,
    open: &Opener<'_>,
) -> Result<()> {
    let (tl, world) = school_world(store, school, opts.as_of, open)?;
    let options = projections::backfill::BackfillOptions {
        late_after_days: days,
        ..Default::default()
    };
    let view = projections::backfill::backfill(&tl, &world, school, &options).map_err(bad)?;
    show(&view, view.to_table(), opts)
}
