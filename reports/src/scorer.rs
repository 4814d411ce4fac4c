//! The polars scorer of the evaluation runs (rules §7): the default computation of `scores
//! --school` and `scores --county`.
//!
//! Frames go in, built from the same timeline and world `projections::scores` reads: the
//! **events** (one row per effective care event a quota may count, per child it is about:
//! staff, child, kind, local day), the **staff** of the schools, each staff member's
//! **pairings** (the days each was active within the period, as half-open ranges), the
//! **windows** of the period (`projections::calendar::windows`: each window's days as ranges,
//! and which window of each kind every period day lies in), the **policies** (the days each
//! governs, from `School::policies_during`, and their quotas, weights and evaluation
//! figures) and the **other scores**. Everything after that is polars lazy, for every school
//! of the run in one plan (every frame carries `school`): the governing policy of a window is
//! a join on its last day; active days are the overlaps of pairing ranges and window ranges
//! summed per pairing and window; an event counts for a pairing when it falls in one of its
//! active ranges, and for the window holding its day; due, met, compliance per quota, the
//! weights (the last policy in force during the period that has the quota), the peak of
//! pairings active on one day, and the exact score are columns and group-bys.
//!
//! **Exactness** (rules §7.7): weights, thresholds, the share and other scores are read as
//! the decimals they were written as (`Ratio::decimal_parts`) and held as `i128` integers
//! (digits and powers of ten); the score is the integer ratio `N / D` with
//! `N = Σ W_q·met_q·Π_{r≠q} due_r` and `D = Π due_q · Σ W_q`; every rounding ("half away from
//! zero" to hundredths) and every flag comparison is integer arithmetic on those columns.
//! polars' integer arithmetic wraps, so before the plan runs, a bound of every intermediate
//! value is computed with checked arithmetic; a run whose figures could exceed `i128` is
//! refused ([`ReportError::ScoreRange`]), never computed wrongly. No `f64` is computed: the
//! printed two-decimal figures are the hundredths divided by 100 in Rust, exactly as
//! `score_exact::Ratio::round2` does.
//!
//! It owns those frames and that plan. It must never decide what a rule means where
//! `projections` already does (windows, which policy governs a day, who is paired when, which
//! children an event is about, the decimal reading of a number), never read the store, and
//! never carry a name of a child, a phone or a note: the frames hold ids, days and counts (and
//! staff names, which the year-end table prints). `projections::scores` is the reference it
//! is tested against byte for byte (tests/it/polscores.rs, reports/tests/it/scorer.rs).

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use events::event::EventKind;
use events::policy::Per;
use events::row::{Detail, Row};
use events::time::local_day_number;
use polars::prelude::*;
use projections::calendar::{Period, windows};
use projections::score_exact::Ratio;
use projections::scores::{Compliance, Flag, ScoreRun, StaffScore, WindowRow};
use projections::{DaySet, Fact, ProjectionError, Timeline, World};

use crate::columnar::kind_code;
use crate::error::ReportError;

/// The window kinds, in the order a drill-down lists them.
const PERS: [Per; 4] = [Per::Week, Per::Month, Per::Term, Per::Year];

/// A window kind's place in [`PERS`]: a match, so that a new kind cannot go unnumbered
/// (its code must also fit `PC_BITS`, asserted below).
fn per_code(per: Per) -> i64 {
    match per {
        Per::Week => 0,
        Per::Month => 1,
        Per::Term => 2,
        Per::Year => 3,
    }
}

// The packed keys of the plan's largest join and group-by (`day_key`, `count_key`): one
// `Int64` where there were three or four columns. polars hashes one integer column
// directly; several it first encodes row by row into bytes, which at county scale was the
// largest part of the plan's time. Each part has its bits, checked before the plan runs
// (`Inputs::check_keys`); the kind code and the window kind fit by construction.
/// Bits of a school's code in the run.
const SC_BITS: u32 = 23;
/// Bits of a day number biased to be non-negative.
const DAY_BITS: u32 = 32;
/// Bits of an event kind's code.
const KIND_BITS: u32 = 8;
/// Bits of a window's number within its kind.
const W_BITS: u32 = 16;
/// Bits of a window kind's code.
const PC_BITS: u32 = 2;
/// Bits of a pairing's code.
const PID_BITS: u32 = 63 - PC_BITS - W_BITS - KIND_BITS;
const _: () = {
    assert!(SC_BITS + DAY_BITS + KIND_BITS <= 63);
    assert!(SC_BITS + PC_BITS + W_BITS <= 63);
    assert!(EventKind::ALL.len() < 1 << KIND_BITS);
    assert!(PERS.len() <= 1 << PC_BITS);
    assert!(matches!(
        PERS,
        [Per::Week, Per::Month, Per::Term, Per::Year]
    ));
};

/// (school code, day, event kind) as one integer: `sc ‖ day + 2³¹ ‖ kind`.
fn day_key() -> Expr {
    (col("sc").cast(DataType::Int64) * lit(1i64 << (DAY_BITS + KIND_BITS)))
        + (col("day").cast(DataType::Int64) + lit(1i64 << (DAY_BITS - 1))) * lit(1i64 << KIND_BITS)
        + col("kind").cast(DataType::Int64)
}

/// [`day_key`] of one event, computed where the event is added. The school code's range is
/// checked before the plan reads any key (`Inputs::check_keys`): until then an out-of-range
/// code wraps, as the plan's own arithmetic would, and the run is refused.
fn packed_day_key(sc: u64, day: i32, kind: u32) -> i64 {
    (sc as i64)
        .wrapping_mul(1i64 << (DAY_BITS + KIND_BITS))
        .wrapping_add((i64::from(day) + (1i64 << (DAY_BITS - 1))) * (1i64 << KIND_BITS))
        .wrapping_add(i64::from(kind))
}

/// (pairing code, window kind, window, event kind `kind`) as one integer: `pid ‖ pc ‖ w ‖
/// kind`. A window's count is grouped by it and joined on it, never decoded.
fn count_key(kind: Expr) -> Expr {
    pairing_part(col("pid")) + window_key(kind)
}

/// The low bits of a [`count_key`]: `pc ‖ w ‖ kind`.
fn window_key(kind: Expr) -> Expr {
    (col("pc").cast(DataType::Int64) * lit(1i64 << W_BITS) + col("w").cast(DataType::Int64))
        * lit(1i64 << KIND_BITS)
        + kind
}

/// A window of a school as one integer: `sc ‖ pc ‖ w`.
fn window_place() -> Expr {
    (col("sc").cast(DataType::Int64) * lit(1i64 << PC_BITS) + col("pc").cast(DataType::Int64))
        * lit(1i64 << W_BITS)
        + col("w").cast(DataType::Int64)
}

/// The high bits of a [`count_key`]: `pid` shifted past `pc ‖ w ‖ kind`.
fn pairing_part(pid: Expr) -> Expr {
    pid.cast(DataType::Int64) * lit(1i64 << (PC_BITS + W_BITS + KIND_BITS))
}

/// A day as the frames hold it: days since 0001-01-01 (`Int32`).
fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

/// The day of a frame's day number.
fn day_of(n: i32, column: &'static str) -> Result<NaiveDate, ReportError> {
    NaiveDate::from_num_days_from_ce_opt(n).ok_or(ReportError::Column { column })
}

/// The score run of one school by polars: [`score_runs`] of that school alone, its
/// projection error (unknown school, no such period, bad other scores) as
/// [`ReportError::Projection`].
pub fn score_run(
    timeline: &Timeline,
    world: &World,
    school: &str,
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<ScoreRun, ReportError> {
    let mut runs = score_runs(timeline, world, &[school], period, other)?;
    match runs.pop() {
        Some(run) => run.map_err(|source| ReportError::Projection { source }),
        None => Err(ReportError::Column { column: "school" }),
    }
}

/// The score runs of `schools` for `period` by polars, in one plan: one result per school,
/// in the order given, each equal to `projections::scores` of that school on the same
/// timeline and world (a timeline already cut at the run's as-of time, and its world). A
/// school that cannot be scored (unknown, no such period, other scores with a term or out of
/// range) gets the error the reference gives it; polars failing, or figures beyond the exact
/// range, fail the whole call.
pub fn score_runs(
    timeline: &Timeline,
    world: &World,
    schools: &[&str],
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<Vec<Result<ScoreRun, ProjectionError>>, ReportError> {
    let mut runs = ScoreRuns::new(world, schools, period, other);
    for f in timeline.facts() {
        runs.add_fact(f);
    }
    runs.run(timeline.as_of(), timeline.head_seq())
}

/// [`score_runs`] in two steps, for a read that does not hold a timeline: the schools first
/// (`new`), then every effective fact of the run's time, as a fact (`add_fact`) or as a fact
/// row of an event no amendment touched (`add_row`), in any order, then `run` with the time
/// and the log's head then. Fed the facts of a timeline, it is [`score_runs`]; the
/// differential tests hold rows and facts to the same runs.
pub struct ScoreRuns<'a> {
    world: &'a World,
    period: &'a Period,
    other: Option<&'a BTreeMap<String, f64>>,
    inputs: Inputs,
    /// The events added so far (`add_fact`, `add_row`, `absorb`).
    events: EventShare,
    results: Vec<Option<Result<ScoreRun, ProjectionError>>>,
    scored: Vec<(usize, &'a str, NaiveDate, NaiveDate)>,
    /// Whether each row carries its windows (`StaffScore::windows`, the drill-down).
    drill_down: bool,
}

impl<'a> ScoreRuns<'a> {
    /// The runs of `schools` for `period` over `world` (the world of the run's time).
    pub fn new(
        world: &'a World,
        schools: &[&'a str],
        period: &'a Period,
        other: Option<&'a BTreeMap<String, f64>>,
    ) -> ScoreRuns<'a> {
        let mut results = Vec::new();
        let mut inputs = Inputs::default();
        let mut scored = Vec::new();
        for (i, school) in schools.iter().enumerate() {
            match inputs.add_school(world, school, period, other) {
                Ok((first, last)) => {
                    scored.push((i, *school, first, last));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        ScoreRuns {
            world,
            period,
            other,
            inputs,
            events: EventShare::default(),
            results,
            scored,
            drill_down: true,
        }
    }

    /// The same runs without the drill-down: every row's `windows` empty, everything else
    /// equal. A county run has no `--staff`, and its windows were most of its rows and memory
    /// (one per pairing, window and quota); scores and compliance are computed from them all
    /// the same, never materialised.
    pub fn without_drill_down(mut self) -> Self {
        self.drill_down = false;
        self
    }

    /// Counts one effective fact (of any kind: those no quota counts are passed over).
    pub fn add_fact(&mut self, f: &Fact) {
        let kind = f.event.kind();
        if !kind.counts_toward_quota() {
            return;
        }
        // Only the events of a staff member with a pairing in the run count (`push_event`).
        let Some(staff) = f.event.staff().filter(|s| self.inputs.pairs.has_staff(s)) else {
            return;
        };
        let children = self.world.event_children(&f.event);
        self.inputs.push_event(
            &mut self.events,
            staff,
            children,
            kind,
            day_number(f.date()),
        );
    }

    /// Counts one fact row (`events::row`) of an event no amendment touches, as
    /// [`ScoreRuns::add_fact`] counts the same event.
    pub fn add_row(&mut self, row: &Row<'_>) {
        row_events(self.world, &self.inputs, &mut self.events, row);
    }

    /// [`ScoreRuns::add_row`] into `share` instead of the runs, so that threads can each
    /// count a share of the rows at once; the shares are then added with
    /// [`ScoreRuns::absorb`]. The order in which events are added does not change a run.
    pub fn share_row(&self, share: &mut EventShare, row: &Row<'_>) {
        row_events(self.world, &self.inputs, share, row);
    }

    /// Adds the events of a share filled by [`ScoreRuns::share_row`].
    pub fn absorb(&mut self, share: EventShare) {
        if self.events.pid.is_empty() {
            self.events = share;
        } else {
            self.events.pid.extend(share.pid);
            self.events.k.extend(share.k);
        }
    }

    /// Runs the plan: the runs as of `as_of`, at the log's head `head_seq` then.
    pub fn run(
        mut self,
        as_of: Option<DateTime<Utc>>,
        head_seq: u64,
    ) -> Result<Vec<Result<ScoreRun, ProjectionError>>, ReportError> {
        let (period, other) = (self.period, self.other);
        if !self.scored.is_empty() {
            if let Some(o) = other {
                self.inputs.add_other(o);
            }
            let out = self
                .inputs
                .run(self.events, other.is_some(), self.drill_down)?;
            let mut by_school = out.into_runs()?;
            for (i, school, first_day, last_day) in self.scored {
                let rows = by_school.remove(school).unwrap_or_default();
                let other_unmatched = other
                    .map(|o| {
                        let have: BTreeSet<&str> = rows.iter().map(|r| r.staff.as_str()).collect();
                        o.keys()
                            .filter(|k| !have.contains(k.as_str()))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let rows = rows
                    .into_iter()
                    .map(|mut r| {
                        if !period.is_year() {
                            r.year_end_points = None;
                        }
                        r
                    })
                    .collect();
                self.results[i] = Some(Ok(ScoreRun {
                    school: school.to_owned(),
                    period: period.clone(),
                    first_day,
                    last_day,
                    as_of,
                    head_seq,
                    with_other: other.is_some(),
                    other_unmatched,
                    rows,
                }));
            }
        }
        self.results
            .into_iter()
            .map(|r| r.ok_or(ReportError::Column { column: "school" }))
            .collect()
    }
}

/// A checked upper bound on non-negative integers (`None`: beyond `u128`).
#[derive(Debug, Clone, Copy)]
struct Bound(Option<u128>);

impl Bound {
    fn of(x: u128) -> Bound {
        Bound(Some(x))
    }
    fn mul(self, o: Bound) -> Bound {
        Bound(self.0.zip(o.0).and_then(|(a, b)| a.checked_mul(b)))
    }
    fn add(self, o: Bound) -> Bound {
        Bound(self.0.zip(o.0).and_then(|(a, b)| a.checked_add(b)))
    }
    fn fits_i128(self) -> bool {
        self.0.is_some_and(|x| x <= i128::MAX as u128)
    }
}

/// A decimal as two `i128` columns: its digits and `10^decimals`.
fn decimal(x: f64) -> Option<(i128, i128)> {
    let (digits, decimals) = Ratio::decimal_parts(x)?;
    let pow = 10u128.checked_pow(decimals)?;
    Some((i128::try_from(digits).ok()?, i128::try_from(pow).ok()?))
}

/// The events of a score run, as the plan's `events` frame takes them: one row per (event,
/// child it is about, pairing row whose active range holds the event's day) of a staff
/// member and child paired within the period — what the plan joined events and pairing rows
/// into — as the pairing's code and the packed `day_key`. A share of them may be gathered on
/// a thread of its own (`ScoreRuns::share_row`).
#[derive(Debug, Default)]
pub struct EventShare {
    pid: Vec<u64>,
    k: Vec<i64>,
}

/// The events a fact row adds (`ScoreRuns::add_row`).
fn row_events(world: &World, inputs: &Inputs, to: &mut EventShare, row: &Row<'_>) {
    if !row.kind.counts_toward_quota() {
        return;
    }
    let Some(staff) = row.staff else {
        return;
    };
    let day = local_day_number(row.occurred_at);
    // The children a care event counts for, as `World::event_children` reads them.
    match row.detail {
        Detail::Notified { incident, .. } => {
            let child = world.incident_child(incident);
            inputs.push_event(to, staff, child, row.kind, day);
        }
        _ if row.kind == EventKind::ActivityHeld => {
            let mut v: Vec<&str> = row.children().collect();
            v.sort_unstable();
            v.dedup();
            inputs.push_event(to, staff, v, row.kind, day);
        }
        _ => inputs.push_event(to, staff, row.children(), row.kind, day),
    }
}

/// The input frames, column by column. Invariant: the columns of one frame have one length.
#[derive(Debug, Default)]
struct Inputs {
    /// By `kind_code`: whether some quota of the run counts events of that kind. An event of
    /// any other kind meets no window in the plan (its join to the counted days is on the
    /// kind), so it is not added; a code past the table (none: the codes are the
    /// discriminants of `EventKind::ALL`) would be added.
    quota_kinds: [bool; EventKind::ALL.len()],
    // staff of the schools
    st_school: Vec<String>,
    st_staff: Vec<String>,
    st_name: Vec<String>,
    st_joined: Vec<i32>,
    st_left: Vec<Option<i32>>,
    // the period at each school
    pe_school: Vec<String>,
    pe_first: Vec<i32>,
    pe_last: Vec<i32>,
    // the period's days at each school, as ranges
    pr_school: Vec<String>,
    pr_a: Vec<i32>,
    pr_b: Vec<i32>,
    // pairings: the active days within the period, as ranges
    pa_school: Vec<String>,
    pa_staff: Vec<String>,
    pa_index: Vec<i32>,
    pa_child: Vec<String>,
    pa_a: Vec<i32>,
    pa_b: Vec<i32>,
    /// The school's code (its place in the run) and the pairing's code (one per school,
    /// staff member and pairing): what the events are counted by, integers all the way.
    pa_sc: Vec<u64>,
    pa_pid: Vec<u64>,
    /// The pairing rows of each pair: its code's entry lists their places in the `pa_`
    /// columns. Invariant: one entry per code given (codes are `0..pair_rows.len()`).
    pair_rows: Vec<SmallVec<[usize; 1]>>,
    /// How many pairing codes were given.
    pid_count: u64,
    /// The code of each (staff, child) pair with a pairing row: an event finds its pairing
    /// rows by it (`pair_rows`).
    pairs: PairCodes,
    // windows
    wi_school: Vec<String>,
    /// The school's code (its place in the run).
    wi_sc: Vec<u64>,
    wi_per: Vec<&'static str>,
    /// The window kind's place in `PERS` (a packed key's part: `plan`).
    wi_pc: Vec<i64>,
    wi_rank: Vec<i32>,
    wi_w: Vec<i32>,
    wi_label: Vec<String>,
    wi_start: Vec<i32>,
    wi_end: Vec<i32>,
    wi_days: Vec<i64>,
    // window days as ranges
    wr_sc: Vec<u64>,
    /// The window kind's place in `PERS` (a packed key's part: `plan`).
    wr_pc: Vec<i64>,
    wr_w: Vec<i32>,
    wr_a: Vec<i32>,
    wr_b: Vec<i32>,
    // each period day's window of each kind
    wd_school: Vec<String>,
    wd_sc: Vec<u64>,
    wd_per: Vec<&'static str>,
    /// The window kind's place in `PERS` (a packed key's part: `plan`).
    wd_pc: Vec<i64>,
    wd_w: Vec<i32>,
    wd_day: Vec<i32>,
    // policies: the days each governs
    po_school: Vec<String>,
    po_policy: Vec<i32>,
    po_from: Vec<i32>,
    po_until: Vec<i32>,
    po_max_children: Vec<i64>,
    po_out_n: Vec<Option<i128>>,
    po_out_p: Vec<Option<i128>>,
    po_dq_n: Vec<Option<i128>>,
    po_dq_p: Vec<Option<i128>>,
    po_share_n: Vec<i128>,
    po_share_p: Vec<i128>,
    // the quotas of each policy
    qu_school: Vec<String>,
    qu_policy: Vec<i32>,
    qu_quota: Vec<String>,
    qu_index: Vec<i32>,
    qu_per: Vec<&'static str>,
    qu_event: Vec<&'static str>,
    qu_kind: Vec<u32>,
    qu_min: Vec<i64>,
    qu_weight: Vec<f64>,
    qu_w_digits: Vec<Option<i128>>,
    qu_w_decimals: Vec<Option<u32>>,
    // other scores
    ot_staff: Vec<String>,
    ot_n: Vec<i128>,
    ot_p: Vec<i128>,
    /// The most (pairing, window) pairs of one staff member: a bound of any `due`.
    max_due: u128,
}

/// The code of each (staff, child) pair with a pairing row, looked up once per event a
/// quota may count (most of a county year's 4.3 million). Ids of up to `SHORT_ID` bytes (a
/// generated county's are 8 to 10) are held inline in one flat key, so a look-up is one hash
/// probe that follows no pointer; a longer id goes to a second map keyed by the strings (a
/// look-up there copies them: slower, never wrong). Either way the key is the ids
/// themselves, byte for byte: no two pairs share one.
#[derive(Debug, Default)]
struct PairCodes {
    short: FxHashMap<[u8; 2 * (SHORT_ID + 1)], u64>,
    long: FxHashMap<(String, String), u64>,
    staff: rustc_hash::FxHashSet<String>,
}

/// The longest id a [`PairCodes`] key holds inline.
const SHORT_ID: usize = 23;

impl PairCodes {
    /// `len ‖ bytes ‖ zeros` of each id, or `None` when one is longer than `SHORT_ID`.
    fn short_key(staff: &str, child: &str) -> Option<[u8; 2 * (SHORT_ID + 1)]> {
        if staff.len() > SHORT_ID || child.len() > SHORT_ID {
            return None;
        }
        let mut key = [0u8; 2 * (SHORT_ID + 1)];
        key[0] = staff.len() as u8;
        key[1..=staff.len()].copy_from_slice(staff.as_bytes());
        key[SHORT_ID + 1] = child.len() as u8;
        key[SHORT_ID + 2..SHORT_ID + 2 + child.len()].copy_from_slice(child.as_bytes());
        Some(key)
    }

    fn get(&self, staff: &str, child: &str) -> Option<u64> {
        match Self::short_key(staff, child) {
            Some(key) => self.short.get(&key).copied(),
            None => self
                .long
                .get(&(staff.to_owned(), child.to_owned()))
                .copied(),
        }
    }

    fn insert(&mut self, staff: &str, child: &str, code: u64) {
        self.staff.insert(staff.to_owned());
        match Self::short_key(staff, child) {
            Some(key) => self.short.insert(key, code),
            None => self.long.insert((staff.to_owned(), child.to_owned()), code),
        };
    }

    /// Whether the staff member has any pairing row in the run.
    fn has_staff(&self, staff: &str) -> bool {
        self.staff.contains(staff)
    }
}

impl Inputs {
    /// Adds a school's staff, pairings, windows and policies; the school's period's first
    /// and last day, or the error the reference gives (in the reference's order of checks).
    fn add_school(
        &mut self,
        world: &World,
        school: &str,
        period: &Period,
        other: Option<&BTreeMap<String, f64>>,
    ) -> Result<(NaiveDate, NaiveDate), ProjectionError> {
        let (sch, period_days, first, last) =
            projections::scores::checked_run(world, school, period, other)?;
        // usize is at most 64 bits on every target Rust supports.
        let sc = self.pe_school.len() as u64;
        self.pe_school.push(school.to_owned());
        self.pe_first.push(day_number(first));
        self.pe_last.push(day_number(last));
        for &(a, b) in period_days.ranges() {
            self.pr_school.push(school.to_owned());
            self.pr_a.push(day_number(a));
            self.pr_b.push(day_number(b));
        }

        let mut window_count: u128 = 0;
        for (rank, per) in PERS.into_iter().enumerate() {
            if !period.admits(per) {
                continue;
            }
            for (w, win) in windows(per, &period_days, sch.terms()).iter().enumerate() {
                // A period has at most a few hundred windows of a kind.
                let w = w as i32;
                window_count += 1;
                self.wi_school.push(school.to_owned());
                self.wi_sc.push(sc);
                self.wi_per.push(per.as_str());
                self.wi_pc.push(per_code(per));
                self.wi_rank.push(rank as i32);
                self.wi_w.push(w);
                self.wi_label.push(win.label.clone());
                self.wi_start.push(day_number(win.first()));
                self.wi_end.push(day_number(win.last()));
                self.wi_days
                    .push(i64::try_from(win.len()).unwrap_or(i64::MAX));
                for &(a, b) in win.days().ranges() {
                    self.wr_sc.push(sc);
                    self.wr_pc.push(per_code(per));
                    self.wr_w.push(w);
                    self.wr_a.push(day_number(a));
                    self.wr_b.push(day_number(b));
                }
                for d in win.days().days() {
                    self.wd_school.push(school.to_owned());
                    self.wd_sc.push(sc);
                    self.wd_per.push(per.as_str());
                    self.wd_pc.push(per_code(per));
                    self.wd_w.push(w);
                    self.wd_day.push(day_number(d));
                }
            }
        }

        let every_day = DaySet::half_open(NaiveDate::MIN, NaiveDate::MAX);
        for (i, (policy, days)) in sch.policies_during(&every_day).into_iter().enumerate() {
            let i = i as i32;
            let ev = &policy.evaluation;
            let out = decimal(ev.outstanding_at);
            let dq = decimal(ev.disqualified_below);
            let share = decimal(ev.year_end_share).unwrap_or((0, 1));
            for &(a, b) in days.ranges() {
                self.po_school.push(school.to_owned());
                self.po_policy.push(i);
                self.po_from.push(day_number(a));
                self.po_until.push(day_number(b));
                self.po_max_children
                    .push(i64::from(policy.pairing.max_children));
                self.po_out_n.push(out.map(|x| x.0));
                self.po_out_p.push(out.map(|x| x.1));
                self.po_dq_n.push(dq.map(|x| x.0));
                self.po_dq_p.push(dq.map(|x| x.1));
                self.po_share_n.push(share.0);
                self.po_share_p.push(share.1);
            }
            for (qi, (name, q)) in policy.quota.iter().enumerate() {
                let parts = Ratio::decimal_parts(q.weight);
                self.qu_school.push(school.to_owned());
                self.qu_policy.push(i);
                self.qu_quota.push(name.clone());
                self.qu_index.push(qi as i32);
                self.qu_per.push(q.per.as_str());
                self.qu_event.push(q.event.as_str());
                self.qu_kind.push(kind_code(q.event));
                if let Some(counted) = self.quota_kinds.get_mut(kind_code(q.event) as usize) {
                    *counted = true;
                }
                self.qu_min.push(i64::from(q.min));
                self.qu_weight.push(q.weight);
                self.qu_w_digits
                    .push(parts.and_then(|(d, _)| i128::try_from(d).ok()));
                self.qu_w_decimals.push(parts.map(|(_, k)| k));
            }
        }

        for s in world.staff_of(school) {
            self.st_school.push(school.to_owned());
            self.st_staff.push(s.id.clone());
            self.st_name.push(s.name.clone());
            self.st_joined.push(day_number(s.joined_on));
            self.st_left.push(s.left_on.map(day_number));
            let mut pairings: u128 = 0;
            for (pi, p) in world.pairings_of_staff(&s.id).enumerate() {
                let active = p.active_days().intersect(&period_days);
                if active.is_empty() {
                    continue;
                }
                pairings += 1;
                let pair = self.pair_code(&s.id, &p.child);
                let pid = self.pid_count;
                self.pid_count += 1;
                for &(a, b) in active.ranges() {
                    // `pair_code` made the code's entry.
                    self.pair_rows[pair as usize].push(self.pa_pid.len());
                    self.pa_sc.push(sc);
                    self.pa_pid.push(pid);
                    self.pa_school.push(school.to_owned());
                    self.pa_staff.push(s.id.clone());
                    self.pa_index.push(pi as i32);
                    self.pa_child.push(p.child.clone());
                    self.pa_a.push(day_number(a));
                    self.pa_b.push(day_number(b));
                }
            }
            self.max_due = self
                .max_due
                .max(pairings.saturating_mul(window_count.max(1)));
        }
        Ok((first, last))
    }

    /// The code of a (staff, child) pair, given when its first pairing row is added.
    fn pair_code(&mut self, staff: &str, child: &str) -> u64 {
        if let Some(code) = self.pairs.get(staff, child) {
            return code;
        }
        // usize is at most 64 bits on every target Rust supports.
        let next = self.pair_rows.len() as u64;
        self.pairs.insert(staff, child, next);
        self.pair_rows.push(SmallVec::new());
        next
    }

    /// Adds one care event a quota may count, once per child it is about (as
    /// `projections::scores` indexes them; `World::event_children`), once per pairing row
    /// whose active range holds its day. A child the staff member has no pairing row with is
    /// passed over.
    fn push_event<'c>(
        &self,
        to: &mut EventShare,
        staff: &str,
        children: impl IntoIterator<Item = &'c str>,
        kind: EventKind,
        day: i32,
    ) {
        let kind = kind_code(kind);
        // Neither the pair's look-up nor a row for a kind no quota counts: the plan's join
        // to the counted days would drop the row (about 45 % of the quota-countable events
        // of a generated year: academic results, tutoring, contacts; docs/read-models.md).
        if !self.quota_kinds.get(kind as usize).copied().unwrap_or(true) {
            return;
        }
        for c in children {
            let Some(pair) = self.pairs.get(staff, c) else {
                continue;
            };
            // The plan's join of events to pairing rows on the pair, and its filter to the
            // rows whose active range holds the day, done here: one look-up per event instead
            // of a hash join and gathers over millions of rows.
            for &row in self.pair_rows.get(pair as usize).into_iter().flatten() {
                if self.pa_a[row] <= day && day < self.pa_b[row] {
                    to.pid.push(self.pa_pid[row]);
                    to.k.push(packed_day_key(self.pa_sc[row], day, kind));
                }
            }
        }
    }

    /// Adds the other appraisal scores (already checked to be decimals from 0 to 100).
    fn add_other(&mut self, other: &BTreeMap<String, f64>) {
        for (staff, v) in other {
            if let Some((n, p)) = decimal(*v) {
                self.ot_staff.push(staff.clone());
                self.ot_n.push(n);
                self.ot_p.push(p);
            }
        }
    }

    /// Runs the plan.
    fn run(
        self,
        events: EventShare,
        with_other: bool,
        drill_down: bool,
    ) -> Result<Output, ReportError> {
        // The weights at one scale: W = digits × 10^(scale − decimals).
        let scale = self
            .qu_w_decimals
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        let mut w_num: Vec<Option<i128>> = Vec::with_capacity(self.qu_w_digits.len());
        let mut max_weight: BTreeMap<&str, u128> = BTreeMap::new();
        for ((d, k), name) in self
            .qu_w_digits
            .iter()
            .zip(&self.qu_w_decimals)
            .zip(&self.qu_quota)
        {
            let w = d.zip(*k).and_then(|(d, k)| {
                let f = 10i128.checked_pow(scale - k)?;
                d.checked_mul(f)
            });
            if let Some(w) = w {
                let m = max_weight.entry(name.as_str()).or_default();
                *m = (*m).max(w.unsigned_abs());
            }
            w_num.push(w);
        }
        let quota_names: Vec<String> = max_weight.keys().map(|s| (*s).to_owned()).collect();
        self.check_range(&max_weight)?;
        self.check_keys()?;

        let err = |context| ReportError::polars(context);
        let df = |height: usize, cols: Vec<Column>, context| {
            DataFrame::new(height, cols).map_err(err(context))
        };
        let events = df(
            events.k.len(),
            vec![
                Column::new("pid".into(), events.pid),
                Column::new("k".into(), events.k),
            ],
            "building the score events frame",
        )?
        .lazy();
        let staff = df(
            self.st_staff.len(),
            vec![
                Column::new("school".into(), self.st_school),
                Column::new("staff".into(), self.st_staff),
                Column::new("name".into(), self.st_name),
                Column::new("joined".into(), self.st_joined),
                Column::new("left".into(), self.st_left),
            ],
            "building the staff frame",
        )?
        .lazy();
        let periods = df(
            self.pe_school.len(),
            vec![
                Column::new("school".into(), self.pe_school),
                Column::new("first".into(), self.pe_first),
                Column::new("last".into(), self.pe_last),
            ],
            "building the periods frame",
        )?
        .lazy();
        let period_ranges = df(
            self.pr_school.len(),
            vec![
                Column::new("school".into(), self.pr_school),
                Column::new("pa".into(), self.pr_a),
                Column::new("pb".into(), self.pr_b),
            ],
            "building the period days frame",
        )?
        .lazy();
        // The order of (school, staff) as strings sort, as an integer per pairing row: the
        // windows are sorted by it, not by two strings per row.
        let mut staff_order: Vec<(&str, &str)> = self
            .pa_school
            .iter()
            .map(String::as_str)
            .zip(self.pa_staff.iter().map(String::as_str))
            .collect();
        staff_order.sort_unstable();
        staff_order.dedup();
        let pa_ord: Vec<u64> = self
            .pa_school
            .iter()
            .zip(&self.pa_staff)
            .map(|(school, staff)| {
                staff_order
                    .binary_search(&(school.as_str(), staff.as_str()))
                    .map_or(u64::MAX, |i| i as u64)
            })
            .collect();
        drop(staff_order);
        let pairings = df(
            self.pa_school.len(),
            vec![
                Column::new("school".into(), self.pa_school),
                Column::new("staff".into(), self.pa_staff),
                Column::new("pairing".into(), self.pa_index),
                Column::new("child".into(), self.pa_child),
                Column::new("a".into(), self.pa_a),
                Column::new("b".into(), self.pa_b),
                Column::new("sc".into(), self.pa_sc),
                Column::new("pid".into(), self.pa_pid),
                Column::new("ord".into(), pa_ord),
            ],
            "building the pairings frame",
        )?
        .lazy();
        let windows = df(
            self.wi_school.len(),
            vec![
                Column::new("school".into(), self.wi_school),
                Column::new("sc".into(), self.wi_sc),
                Column::new("per".into(), self.wi_per),
                Column::new("pc".into(), self.wi_pc),
                Column::new("rank".into(), self.wi_rank),
                Column::new("w".into(), self.wi_w),
                Column::new("label".into(), self.wi_label),
                Column::new("start".into(), self.wi_start),
                Column::new("end".into(), self.wi_end),
                Column::new("days".into(), self.wi_days),
            ],
            "building the windows frame",
        )?
        .lazy();
        let window_ranges = df(
            self.wr_sc.len(),
            vec![
                Column::new("sc".into(), self.wr_sc),
                Column::new("pc".into(), self.wr_pc),
                Column::new("w".into(), self.wr_w),
                Column::new("wa".into(), self.wr_a),
                Column::new("wb".into(), self.wr_b),
            ],
            "building the window days frame",
        )?
        .lazy();
        let window_days = df(
            self.wd_school.len(),
            vec![
                Column::new("school".into(), self.wd_school),
                Column::new("sc".into(), self.wd_sc),
                Column::new("per".into(), self.wd_per),
                Column::new("pc".into(), self.wd_pc),
                Column::new("w".into(), self.wd_w),
                Column::new("day".into(), self.wd_day),
            ],
            "building the day-to-window frame",
        )?
        .lazy();
        let policies = df(
            self.po_school.len(),
            vec![
                Column::new("school".into(), self.po_school),
                Column::new("policy".into(), self.po_policy),
                Column::new("from".into(), self.po_from),
                Column::new("until".into(), self.po_until),
                Column::new("max_children".into(), self.po_max_children),
                Column::new("out_n".into(), self.po_out_n),
                Column::new("out_p".into(), self.po_out_p),
                Column::new("dq_n".into(), self.po_dq_n),
                Column::new("dq_p".into(), self.po_dq_p),
                Column::new("share_n".into(), self.po_share_n),
                Column::new("share_p".into(), self.po_share_p),
            ],
            "building the policies frame",
        )?
        .lazy();
        // Each quota name's code: its place among the run's names (a packed key's part:
        // `plan`'s compliance).
        let names: BTreeSet<&str> = self.qu_quota.iter().map(String::as_str).collect();
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        let qu_code: Vec<i64> = self
            .qu_quota
            .iter()
            // Every name is among them; usize is at most 64 bits on every target Rust
            // supports.
            .map(|q| names.binary_search(q).map_or(-1, |i| i as i64))
            .collect();
        let quota_count = names.len() as i64;
        let quota_codes = df(
            names.len(),
            vec![
                Column::new("qc".into(), (0..names.len() as i64).collect::<Vec<i64>>()),
                Column::new("quota".into(), names),
            ],
            "building the quota names frame",
        )?
        .lazy();
        let quotas = df(
            self.qu_school.len(),
            vec![
                Column::new("school".into(), self.qu_school),
                Column::new("policy".into(), self.qu_policy),
                Column::new("quota".into(), self.qu_quota),
                Column::new("qc".into(), qu_code),
                Column::new("qindex".into(), self.qu_index),
                Column::new("per".into(), self.qu_per),
                Column::new("event".into(), self.qu_event),
                Column::new("kind".into(), self.qu_kind),
                Column::new("min".into(), self.qu_min),
                Column::new("weight".into(), self.qu_weight),
                Column::new("w_num".into(), w_num),
            ],
            "building the quotas frame",
        )?
        .lazy();
        let other = df(
            self.ot_staff.len(),
            vec![
                Column::new("staff".into(), self.ot_staff),
                Column::new("other_n".into(), self.ot_n),
                Column::new("other_p".into(), self.ot_p),
            ],
            "building the other scores frame",
        )?
        .lazy();
        plan(
            Frames {
                events,
                staff,
                periods,
                period_ranges,
                pairings,
                windows,
                window_ranges,
                window_days,
                policies,
                quotas,
                quota_codes,
                quota_count,
                other,
            },
            &quota_names,
            with_other,
            drill_down,
        )
    }

    /// Refuses a run whose codes do not fit the packed keys of `plan` (`day_key`,
    /// `count_key`): far beyond any county, but a key that wrapped would count an event in
    /// another window.
    fn check_keys(&self) -> Result<(), ReportError> {
        let schools = self
            .wd_sc
            .iter()
            .chain(&self.pa_sc)
            .max()
            .copied()
            .unwrap_or(0);
        if schools >= 1 << SC_BITS {
            return Err(ReportError::KeyRange { what: "schools" });
        }
        if self.pid_count >= 1 << PID_BITS {
            return Err(ReportError::KeyRange { what: "pairings" });
        }
        // Every window is in `wi_w`; the days' and ranges' windows are among them.
        if self.wi_w.iter().any(|w| !(0..1 << W_BITS).contains(w)) {
            return Err(ReportError::KeyRange {
                what: "windows of one kind",
            });
        }
        // A compliance key is a staff member's place (at most one per pairing row) times the
        // quota names (at most one per quota) plus a name's code.
        let staff = self.pa_school.len() as u128 + 1;
        let names = self.qu_quota.len() as u128 + 1;
        if staff * names >= 1 << 63 {
            return Err(ReportError::KeyRange {
                what: "staff members and quotas",
            });
        }
        Ok(())
    }

    /// Refuses a run whose exact figures could exceed `i128` (polars' integer arithmetic
    /// wraps): bounds every intermediate value of the score columns of the plan with checked arithmetic.
    fn check_range(&self, max_weight: &BTreeMap<&str, u128>) -> Result<(), ReportError> {
        let max_of = |v: &[Option<i128>]| {
            Bound::of(
                v.iter()
                    .flatten()
                    .map(|x| x.unsigned_abs())
                    .max()
                    .unwrap_or(1),
            )
        };
        let mut p = Bound::of(1);
        for _ in max_weight {
            p = p.mul(Bound::of(self.max_due.max(1)));
        }
        let w_sum = max_weight
            .values()
            .fold(Bound::of(0), |s, w| s.add(Bound::of(*w)))
            .add(Bound::of(1));
        // N and D are at most Σ W × Π due.
        let nd = w_sum.mul(p);
        let thresholds = max_of(&self.po_out_p)
            .mul(Bound::of(100))
            .add(max_of(&self.po_out_n))
            .add(max_of(&self.po_dq_p).mul(Bound::of(100)))
            .add(max_of(&self.po_dq_n));
        let share_n = Bound::of(
            self.po_share_n
                .iter()
                .map(|x| x.unsigned_abs())
                .max()
                .unwrap_or(1),
        );
        let share_p = Bound::of(
            self.po_share_p
                .iter()
                .map(|x| x.unsigned_abs())
                .max()
                .unwrap_or(1),
        );
        let other_n = Bound::of(
            self.ot_n
                .iter()
                .map(|x| x.unsigned_abs())
                .max()
                .unwrap_or(1),
        );
        let other_p = Bound::of(
            self.ot_p
                .iter()
                .map(|x| x.unsigned_abs())
                .max()
                .unwrap_or(1),
        );
        let score = Bound::of(20001).mul(nd);
        let flags = thresholds.mul(nd);
        let points = Bound::of(20000)
            .mul(share_n)
            .add(share_p.mul(Bound::of(2)))
            .mul(nd);
        let total = other_n
            .mul(share_p)
            .add(Bound::of(100).mul(share_n).mul(other_p))
            .mul(Bound::of(200))
            .add(other_p.mul(share_p).mul(Bound::of(2)))
            .mul(nd);
        if [score, flags, points, total].iter().all(|b| b.fits_i128()) {
            Ok(())
        } else {
            Err(ReportError::ScoreRange {
                quotas: max_weight.len(),
                max_due: self.max_due,
            })
        }
    }
}

/// The input frames of the plan.
struct Frames {
    events: LazyFrame,
    staff: LazyFrame,
    periods: LazyFrame,
    period_ranges: LazyFrame,
    pairings: LazyFrame,
    windows: LazyFrame,
    window_ranges: LazyFrame,
    window_days: LazyFrame,
    policies: LazyFrame,
    quotas: LazyFrame,
    /// Each quota name by its code (`qc`), and how many there are.
    quota_codes: LazyFrame,
    quota_count: i64,
    other: LazyFrame,
}

/// What the plan gives back: the staff rows, their compliance and their drill-down windows,
/// each sorted for reading in order.
struct Output {
    rows: DataFrame,
    compliance: DataFrame,
    /// `None` for a run without the drill-down.
    windows: Option<DataFrame>,
}

fn inner(left: LazyFrame, right: LazyFrame, on: &[&str]) -> LazyFrame {
    let keys: Vec<Expr> = on.iter().map(|c| col(*c)).collect();
    left.join(right, keys.clone(), keys, JoinArgs::new(JoinType::Inner))
}

fn left(left: LazyFrame, right: LazyFrame, on: &[&str]) -> LazyFrame {
    let keys: Vec<Expr> = on.iter().map(|c| col(*c)).collect();
    left.join(right, keys.clone(), keys, JoinArgs::new(JoinType::Left))
}

/// The later of two day columns.
fn later(a: &str, b: &str) -> Expr {
    when(col(a).gt(col(b))).then(col(a)).otherwise(col(b))
}

/// The earlier of two day columns.
fn earlier(a: &str, b: &str) -> Expr {
    when(col(a).lt(col(b))).then(col(a)).otherwise(col(b))
}

fn big(e: Expr) -> Expr {
    e.cast(DataType::Int128)
}

/// Half away from zero (the values are non-negative, so half up) of `num / den` as an
/// integer: `⌊(2·num + den) / (2·den)⌋` (polars' `/` of integers truncates, which is the
/// floor of non-negative values).
fn round_half_up(num: Expr, den: Expr) -> Expr {
    (lit(2i128) * num + den.clone()) / (lit(2i128) * den)
}

/// The plan: every school of the run at once.
fn plan(
    f: Frames,
    quota_names: &[String],
    with_other: bool,
    drill_down: bool,
) -> Result<Output, ReportError> {
    // Staff rows (rules §7.9): joined on or before the period's last day, not left before
    // its first.
    let last_days = f.periods.clone().select([col("school"), col("last")]);
    let rows = inner(f.staff, f.periods, &["school"]).filter(
        col("joined")
            .lt_eq(col("last"))
            .and(col("left").is_null().or(col("left").gt_eq(col("first")))),
    );
    let pairings = inner(
        f.pairings,
        rows.clone().select([col("school"), col("staff")]),
        &["school", "staff"],
    );

    // Each window with the quotas of the policy in force on its last day (rules §7.2).
    let governed = inner(
        f.windows,
        f.policies
            .clone()
            .select([col("school"), col("policy"), col("from"), col("until")]),
        &["school"],
    )
    .filter(
        col("from")
            .lt_eq(col("end"))
            .and(col("end").lt(col("until"))),
    )
    .select([
        col("school"),
        col("sc"),
        col("per"),
        col("pc"),
        col("rank"),
        col("w"),
        col("label"),
        col("start"),
        col("end"),
        col("days"),
        col("policy"),
    ]);
    // What a window takes of each quota; the join's keys besides.
    let quota_part = ["quota", "qindex", "qc", "event", "kind", "min"].map(col);
    let window_quotas = inner(
        governed,
        f.quotas.clone().select(
            [col("school"), col("policy"), col("per")]
                .into_iter()
                .chain(quota_part.clone())
                .collect::<Vec<_>>(),
        ),
        &["school", "policy", "per"],
    )
    // Keyed by the window's place alone: the active days bring the school and the window.
    .select(
        [
            window_place().alias("sw"),
            col("per"),
            col("rank"),
            col("label"),
            col("start"),
            col("end"),
            col("days"),
            col("policy"),
        ]
        .into_iter()
        .chain(quota_part)
        .collect::<Vec<_>>(),
    );

    // Each pairing by its code: who, which pairing, which child, where its staff member
    // sorts, and its school's code.
    let pids = pairings
        .clone()
        .select([
            col("pid"),
            col("school"),
            col("staff"),
            col("pairing"),
            col("child"),
            col("ord"),
            col("sc"),
        ])
        .unique(None, UniqueKeepStrategy::First);

    // Active days of each pairing in each window: the overlaps of their ranges, summed by
    // (pairing, window) packed into one integer — a `count_key` of no event kind — which is
    // then unpacked into its parts.
    let active = inner(
        pairings
            .clone()
            .select([col("pid"), col("sc"), col("a"), col("b")]),
        f.window_ranges
            .select([col("sc"), col("pc"), col("w"), col("wa"), col("wb")]),
        &["sc"],
    )
    .with_columns([later("a", "wa").alias("lo"), earlier("b", "wb").alias("hi")])
    .filter(col("hi").gt(col("lo")))
    .select([
        count_key(lit(0i64)).alias("aw"),
        (col("hi") - col("lo")).cast(DataType::Int64).alias("d"),
    ])
    .group_by([col("aw")])
    .agg([col("d").sum().alias("active_days")])
    .with_columns([
        // Non-negative: `/` of integers truncates, which is the floor.
        (col("aw") / lit(1i64 << (PC_BITS + W_BITS + KIND_BITS)))
            .cast(DataType::UInt64)
            .alias("pid"),
        ((col("aw") / lit(1i64 << (W_BITS + KIND_BITS))) % lit(1i64 << PC_BITS)).alias("pc"),
        ((col("aw") / lit(1i64 << KIND_BITS)) % lit(1i64 << W_BITS))
            .cast(DataType::Int32)
            .alias("w"),
    ]);
    let active = inner(active, pids.clone(), &["pid"]).with_columns([window_place().alias("sw")]);

    // Events on active days of a pairing (joined to their pairing rows as they were added:
    // `Inputs::push_event`; a pairing of a staff member without a row here meets no window
    // below), by the window of each kind their day lies in, counted by (pairing, window,
    // kind): integers packed into one all the way.
    let counts = f.events.select([col("pid"), col("k")]);
    // Only the windows of a period kind some quota of the school counts this event kind in
    // (rules §7.2): every other (window, kind) count would be dropped by the left join below.
    // Joining on the kind as well keeps an event from meeting every window of every period
    // kind that holds its day — at county scale that was most of the run's rows and memory.
    let counted = f
        .quotas
        .clone()
        .select([col("school"), col("per"), col("kind")])
        .unique(None, UniqueKeepStrategy::First);
    // A day's windows carry their part of the count key already (`window_key`), so the
    // join hands each event one column of the windows' side, not three.
    let counted_days = inner(f.window_days, counted, &["school", "per"]).select([
        day_key().alias("k"),
        window_key(col("kind").cast(DataType::Int64)).alias("wk"),
    ]);
    // The keys are sorted in a plan of their own (the optimiser drops a sort that feeds a
    // group-by) so that the group-by finds each key's rows as one slice, where hashing
    // millions of keys into groups of indices cost more than the sort (docs/read-models.md).
    let keys = inner(counts, counted_days, &["k"])
        .select([(pairing_part(col("pid")) + col("wk")).alias("g")])
        .sort(["g"], SortMultipleOptions::default())
        .collect()
        .map_err(ReportError::polars("counting the events of each window"))?;
    let counts = keys
        .lazy()
        .group_by([col("g")])
        .agg([len().cast(DataType::Int64).alias("count")]);

    // A window's count is the events of its pairing, window and quota's kind: one packed key.
    let windows = left(
        inner(active, window_quotas, &["sw"])
            .with_columns([count_key(col("kind").cast(DataType::Int64)).alias("g")]),
        counts,
        &["g"],
    )
    .with_columns([col("count").fill_null(lit(0i64))])
    .with_columns([(lit(2i64) * col("active_days"))
        .gt_eq(col("days"))
        .alias("due")])
    .with_columns([col("due").and(col("count").gt_eq(col("min"))).alias("met")]);
    // The drill-down's rows, in its order; without it the compliance below reads the plan.
    let (windows, of_windows) = if drill_down {
        let sorted = windows
            .sort_by_exprs(
                [
                    col("ord"),
                    col("pairing"),
                    col("rank"),
                    col("w"),
                    col("qindex"),
                ],
                SortMultipleOptions::default(),
            )
            .collect()
            .map_err(ReportError::polars(
                "computing the windows of the score run",
            ))?;
        let lazy = sorted.clone().lazy();
        (Some(sorted), lazy)
    } else {
        (None, windows)
    };

    // The weight of each quota: the last policy in force on a day of the period that has
    // it (rules §7.3); the policy on the period's last day is the last of them.
    let during = inner(f.policies.clone(), f.period_ranges, &["school"])
        .filter(later("from", "pa").lt(earlier("until", "pb")))
        .select([col("school"), col("policy")])
        .unique(None, UniqueKeepStrategy::First);
    let weights = inner(during, f.quotas, &["school", "policy"])
        .group_by([col("school"), col("quota")])
        .agg([
            col("weight")
                .sort_by([col("policy")], SortMultipleOptions::default())
                .last()
                .alias("weight"),
            col("w_num")
                .sort_by([col("policy")], SortMultipleOptions::default())
                .last()
                .alias("w_num"),
        ]);

    // Counted by (staff member's place, quota name's code) packed into one integer, then
    // named: the windows are many, the staff members and quotas few.
    let names = f.quota_codes;
    let q = lit(f.quota_count);
    let compliance = left(
        inner(
            inner(
                of_windows
                    .filter(col("due"))
                    .select([
                        (col("ord").cast(DataType::Int64) * q.clone() + col("qc")).alias("ck"),
                        col("met"),
                    ])
                    .group_by([col("ck")])
                    .agg([
                        col("met").cast(DataType::Int64).sum().alias("met"),
                        len().cast(DataType::Int64).alias("due"),
                    ])
                    .with_columns([
                        (col("ck") / q.clone()).cast(DataType::UInt64).alias("ord"),
                        (col("ck") % q).alias("qc"),
                    ]),
                pids.clone()
                    .select([col("ord"), col("school"), col("staff")])
                    .unique(None, UniqueKeepStrategy::First),
                &["ord"],
            ),
            names,
            &["qc"],
        )
        .select([
            col("school"),
            col("staff"),
            col("quota"),
            col("met"),
            col("due"),
        ]),
        weights,
        &["school", "quota"],
    );

    // The exact score N / D per staff member (rules §7.4), the quotas side by side.
    let mut wide = vec![col("w_num").is_null().any(true).alias("weightless")];
    for (i, q) in quota_names.iter().enumerate() {
        let this = col("quota").eq(lit(q.as_str()));
        wide.push(
            col("due")
                .filter(this.clone())
                .sum()
                .alias(format!("due{i}")),
        );
        wide.push(
            col("met")
                .filter(this.clone())
                .sum()
                .alias(format!("met{i}")),
        );
        wide.push(col("w_num").filter(this).first().alias(format!("w{i}")));
    }
    let e = |i: usize| {
        when(col(format!("due{i}")).gt(lit(0i64)))
            .then(big(col(format!("due{i}"))))
            .otherwise(lit(1i128))
    };
    let included = |i: usize| col(format!("due{i}")).gt(lit(0i64));
    let k = quota_names.len();
    let product_but = |skip: Option<usize>| {
        (0..k)
            .filter(|j| Some(*j) != skip)
            .fold(lit(1i128), |acc, j| acc * e(j))
    };
    let n = (0..k).fold(lit(0i128), |acc, i| {
        acc + when(included(i))
            .then(col(format!("w{i}")) * big(col(format!("met{i}"))) * product_but(Some(i)))
            .otherwise(lit(0i128))
    });
    let w_sum = (0..k).fold(lit(0i128), |acc, i| {
        acc + when(included(i))
            .then(col(format!("w{i}")))
            .otherwise(lit(0i128))
    });
    let scored = compliance
        .clone()
        .group_by([col("school"), col("staff")])
        .agg(wide)
        .select([
            col("school"),
            col("staff"),
            when(col("weightless"))
                .then(lit(NULL).cast(DataType::Int128))
                .otherwise(n)
                .alias("num"),
            when(col("weightless"))
                .then(lit(NULL).cast(DataType::Int128))
                .otherwise(product_but(None) * w_sum)
                .alias("den"),
        ]);

    // The most pairings active on one day (rules §7.5): the peak is on a day one starts.
    let peak = inner(
        pairings
            .clone()
            .select([col("school"), col("staff"), col("a").alias("d")])
            .unique(None, UniqueKeepStrategy::First),
        pairings.select([col("school"), col("staff"), col("a"), col("b")]),
        &["school", "staff"],
    )
    .filter(col("a").lt_eq(col("d")).and(col("d").lt(col("b"))))
    .group_by([col("school"), col("staff"), col("d")])
    .agg([len().cast(DataType::Int64).alias("n")])
    .group_by([col("school"), col("staff")])
    .agg([col("n").max().alias("peak")]);

    // The policy on the period's last day: thresholds, max_children, the share (A6).
    let last_policy = inner(last_days, f.policies, &["school"])
        .filter(
            col("from")
                .lt_eq(col("last"))
                .and(col("last").lt(col("until"))),
        )
        .select([
            col("school"),
            col("max_children"),
            col("out_n"),
            col("out_p"),
            col("dq_n"),
            col("dq_p"),
            col("share_n"),
            col("share_p"),
        ]);

    let mut staff_rows = left(
        left(
            left(rows, scored, &["school", "staff"]),
            peak,
            &["school", "staff"],
        ),
        last_policy,
        &["school"],
    );
    if with_other {
        staff_rows = left(staff_rows, f.other, &["staff"]);
    }
    let has = col("num").is_not_null().and(col("den").gt(lit(0i128)));
    let num = col("num");
    let den = col("den");
    let mut out = vec![
        col("school"),
        col("staff"),
        col("name"),
        col("num"),
        col("den"),
        when(has.clone())
            .then(round_half_up(lit(10_000i128) * num.clone(), den.clone()))
            .otherwise(lit(NULL).cast(DataType::Int128))
            .alias("score_h"),
        has.clone()
            .and(col("out_n").is_not_null())
            .and((lit(100i128) * num.clone() * col("out_p")).gt_eq(col("out_n") * den.clone()))
            .fill_null(lit(false))
            .alias("outstanding"),
        has.clone()
            .and(col("dq_n").is_not_null())
            .and((lit(100i128) * num.clone() * col("dq_p")).lt(col("dq_n") * den.clone()))
            .fill_null(lit(false))
            .alias("disqualified"),
        col("peak").fill_null(lit(0i64)).alias("peak"),
        col("peak")
            .fill_null(lit(0i64))
            .gt(col("max_children"))
            .fill_null(lit(false))
            .alias("overloaded"),
        when(has.clone())
            .then(round_half_up(
                lit(10_000i128) * num.clone() * col("share_n"),
                den.clone() * col("share_p"),
            ))
            .otherwise(lit(NULL).cast(DataType::Int128))
            .alias("points_h"),
    ];
    if with_other {
        // other × (1 − share) + score × share, over one denominator (A8: rounded once).
        let x = col("other_n") * (col("share_p") - col("share_n")) * den.clone()
            + lit(100i128) * num * col("share_n") * col("other_p");
        let y = col("other_p") * col("share_p") * den;
        out.push(
            when(
                has.and(col("other_n").is_not_null())
                    .and(col("share_n").lt_eq(col("share_p"))),
            )
            .then(round_half_up(lit(100i128) * x, y))
            .otherwise(lit(NULL).cast(DataType::Int128))
            .alias("total_h"),
        );
    }
    let rows = staff_rows
        .select(out)
        .sort_by_exprs(
            [col("school"), col("staff")],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(ReportError::polars("computing the scores"))?;
    let compliance = compliance
        .sort_by_exprs(
            [col("school"), col("staff"), col("quota")],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(ReportError::polars("computing the compliance"))?;
    Ok(Output {
        rows,
        compliance,
        windows,
    })
}

/// A staff member's compliance and weights, by quota name.
type QuotaFigures = (BTreeMap<String, Compliance>, BTreeMap<String, f64>);

/// Reads a frame column by name and type.
fn column<'a>(df: &'a DataFrame, name: &'static str) -> Result<&'a Column, ReportError> {
    df.column(name)
        .map_err(|_| ReportError::Column { column: name })
}

macro_rules! typed {
    ($df:expr, $name:literal, $method:ident) => {
        column($df, $name)?
            .$method()
            .map_err(|_| ReportError::Column { column: $name })?
    };
}

impl Output {
    /// The rows of each school, by staff id, with their compliance and windows.
    fn into_runs(self) -> Result<HashMap<String, Vec<StaffScore>>, ReportError> {
        let kinds: HashMap<&str, EventKind> =
            EventKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
        let pers: HashMap<&str, Per> = PERS.iter().map(|p| (p.as_str(), *p)).collect();

        // Compliance and weights by (school, staff).
        type Key = (String, String);
        let mut compliance: HashMap<Key, QuotaFigures> = HashMap::new();
        {
            let c = &self.compliance;
            let school = typed!(c, "school", str);
            let staff = typed!(c, "staff", str);
            let quota = typed!(c, "quota", str);
            let met = typed!(c, "met", i64);
            let due = typed!(c, "due", i64);
            let weight = typed!(c, "weight", f64);
            for i in 0..c.height() {
                let (Some(sc), Some(st), Some(q)) = (school.get(i), staff.get(i), quota.get(i))
                else {
                    return Err(ReportError::Column { column: "quota" });
                };
                let entry = compliance
                    .entry((sc.to_owned(), st.to_owned()))
                    .or_default();
                let count = |v: Option<i64>, column| {
                    v.and_then(|x| u64::try_from(x).ok())
                        .ok_or(ReportError::Column { column })
                };
                entry.0.insert(
                    q.to_owned(),
                    Compliance {
                        met: count(met.get(i), "met")?,
                        due: count(due.get(i), "due")?,
                    },
                );
                if let Some(w) = weight.get(i) {
                    entry.1.insert(q.to_owned(), w);
                }
            }
        }

        // Windows by (school, staff), in drill-down order. The frame is sorted by staff
        // member, so a key is made once per staff member's run of rows, not per row, and the
        // columns are read by iterators (a `get` per cell looks its chunk up every time).
        let mut windows: HashMap<Key, Vec<WindowRow>> = HashMap::new();
        if let Some(w) = &self.windows {
            let mut school = typed!(w, "school", str).iter();
            let mut staff = typed!(w, "staff", str).iter();
            let mut child = typed!(w, "child", str).iter();
            let mut quota = typed!(w, "quota", str).iter();
            let mut event = typed!(w, "event", str).iter();
            let mut per = typed!(w, "per", str).iter();
            let mut label = typed!(w, "label", str).iter();
            let mut start = typed!(w, "start", i32).iter();
            let mut end = typed!(w, "end", i32).iter();
            let mut days = typed!(w, "days", i64).iter();
            let mut active = typed!(w, "active_days", i64).iter();
            let mut min = typed!(w, "min", i64).iter();
            let mut count = typed!(w, "count", i64).iter();
            let mut due = typed!(w, "due", bool).iter();
            let mut met = typed!(w, "met", bool).iter();
            let n = |v: Option<Option<i64>>, column| {
                v.flatten()
                    .and_then(|x| u64::try_from(x).ok())
                    .ok_or(ReportError::Column { column })
            };
            let s = |v: Option<Option<&str>>, column| {
                v.flatten()
                    .map(str::to_owned)
                    .ok_or(ReportError::Column { column })
            };
            let day = |v: Option<Option<i32>>, column| {
                day_of(v.flatten().ok_or(ReportError::Column { column })?, column)
            };
            let mut run: Option<(Key, Vec<WindowRow>)> = None;
            for _ in 0..w.height() {
                let row = WindowRow {
                    child: s(child.next(), "child")?,
                    quota: s(quota.next(), "quota")?,
                    event: event
                        .next()
                        .flatten()
                        .and_then(|e| kinds.get(e).copied())
                        .ok_or(ReportError::Column { column: "event" })?,
                    per: per
                        .next()
                        .flatten()
                        .and_then(|p| pers.get(p).copied())
                        .ok_or(ReportError::Column { column: "per" })?,
                    label: s(label.next(), "label")?,
                    start: day(start.next(), "start")?,
                    end: day(end.next(), "end")?,
                    days: n(days.next(), "days")?,
                    active_days: n(active.next(), "active_days")?,
                    min: min
                        .next()
                        .flatten()
                        .and_then(|x| u32::try_from(x).ok())
                        .ok_or(ReportError::Column { column: "min" })?,
                    count: n(count.next(), "count")?,
                    due: due
                        .next()
                        .flatten()
                        .ok_or(ReportError::Column { column: "due" })?,
                    met: met
                        .next()
                        .flatten()
                        .ok_or(ReportError::Column { column: "met" })?,
                };
                let (Some(Some(sc)), Some(Some(st))) = (school.next(), staff.next()) else {
                    return Err(ReportError::Column { column: "staff" });
                };
                match &mut run {
                    Some(((s0, s1), rows)) if s0 == sc && s1 == st => rows.push(row),
                    _ => {
                        if let Some((key, rows)) =
                            run.replace(((sc.to_owned(), st.to_owned()), vec![row]))
                        {
                            windows.entry(key).or_default().extend(rows);
                        }
                    }
                }
            }
            if let Some((key, rows)) = run {
                windows.entry(key).or_default().extend(rows);
            }
        }

        let r = &self.rows;
        let school = typed!(r, "school", str);
        let staff = typed!(r, "staff", str);
        let name = typed!(r, "name", str);
        let num = typed!(r, "num", i128);
        let den = typed!(r, "den", i128);
        let score_h = typed!(r, "score_h", i128);
        let outstanding = typed!(r, "outstanding", bool);
        let disqualified = typed!(r, "disqualified", bool);
        let overloaded = typed!(r, "overloaded", bool);
        let peak = typed!(r, "peak", i64);
        let points_h = typed!(r, "points_h", i128);
        let total_h = match r.column("total_h") {
            Ok(c) => Some(
                c.i128()
                    .map_err(|_| ReportError::Column { column: "total_h" })?,
            ),
            Err(_) => None,
        };
        let hundredths = |h: Option<i128>| h.map(|h| h as f64 / 100.0);
        let mut out: HashMap<String, Vec<StaffScore>> = HashMap::new();
        for i in 0..r.height() {
            let (Some(sc), Some(st), Some(nm)) = (school.get(i), staff.get(i), name.get(i)) else {
                return Err(ReportError::Column { column: "staff" });
            };
            let key = (sc.to_owned(), st.to_owned());
            let exact = match (num.get(i), den.get(i)) {
                // The score is 100 × N / D (rules §7.4).
                (Some(n), Some(d)) if d > 0 => Ratio::from_u128(
                    u128::try_from(n)
                        .ok()
                        .and_then(|n| n.checked_mul(100))
                        .ok_or(ReportError::Column { column: "num" })?,
                    d.unsigned_abs(),
                ),
                _ => None,
            };
            let mut flags = Vec::new();
            if outstanding.get(i) == Some(true) {
                flags.push(Flag::Outstanding);
            }
            if disqualified.get(i) == Some(true) {
                flags.push(Flag::Disqualified);
            }
            if overloaded.get(i) == Some(true) {
                flags.push(Flag::Overloaded);
            }
            if exact.is_none() {
                flags.push(Flag::Unpaired);
            }
            let (comp, weights) = compliance.remove(&key).unwrap_or_default();
            let mut row = StaffScore::unscored(st.to_owned(), nm.to_owned());
            row.score = hundredths(score_h.get(i));
            row.flags = flags;
            row.compliance = comp;
            row.weights = weights;
            row.year_end_points = hundredths(points_h.get(i));
            row.total = total_h.and_then(|t| hundredths(t.get(i)));
            row.peak_pairings = peak
                .get(i)
                .and_then(|p| u64::try_from(p).ok())
                .ok_or(ReportError::Column { column: "peak" })?;
            row.windows = windows.remove(&key).unwrap_or_default();
            out.entry(sc.to_owned())
                .or_default()
                .push(row.with_exact(exact));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key an event gets where it is added is the plan's `day_key` of the same values,
    /// at the edges of each part.
    #[test]
    fn an_events_packed_key_is_the_plans() {
        let cases: Vec<(u64, i32, u32)> = vec![
            (0, 0, 0),
            (1, 739_000, 3),
            ((1 << SC_BITS) - 1, i32::MAX, (1 << KIND_BITS) - 1),
            ((1 << SC_BITS) - 1, i32::MIN, 0),
            (42, -1, 7),
        ];
        let frame = DataFrame::new(
            cases.len(),
            vec![
                Column::new("sc".into(), cases.iter().map(|c| c.0).collect::<Vec<_>>()),
                Column::new("day".into(), cases.iter().map(|c| c.1).collect::<Vec<_>>()),
                Column::new("kind".into(), cases.iter().map(|c| c.2).collect::<Vec<_>>()),
            ],
        )
        .expect("a frame");
        let keys = frame
            .lazy()
            .select([day_key().alias("k")])
            .collect()
            .expect("the plan's keys");
        let keys: Vec<Option<i64>> = keys
            .column("k")
            .expect("k")
            .i64()
            .expect("Int64")
            .iter()
            .collect();
        let ours: Vec<Option<i64>> = cases
            .iter()
            .map(|&(sc, day, kind)| Some(packed_day_key(sc, day, kind)))
            .collect();
        assert_eq!(ours, keys);
    }

    #[test]
    fn pair_codes_tell_every_pair_apart_short_or_long() {
        let long = "x".repeat(SHORT_ID + 1);
        let edge = "y".repeat(SHORT_ID);
        let pairs = [
            ("ab", "c"),
            ("a", "bc"),
            ("a\0", "bc"),
            ("", "abc"),
            (edge.as_str(), edge.as_str()),
            (edge.as_str(), long.as_str()),
            (long.as_str(), edge.as_str()),
            (long.as_str(), long.as_str()),
            ("s001-t01", "s001-c0001"),
        ];
        let mut codes = PairCodes::default();
        for (i, (staff, child)) in pairs.iter().enumerate() {
            assert_eq!(codes.get(staff, child), None, "{staff:?} {child:?} before");
            codes.insert(staff, child, i as u64);
        }
        for (i, (staff, child)) in pairs.iter().enumerate() {
            assert_eq!(
                codes.get(staff, child),
                Some(i as u64),
                "{staff:?} {child:?}"
            );
            assert!(codes.has_staff(staff));
        }
        assert_eq!(codes.get("s001-t01", "s001-c0002"), None);
        assert_eq!(codes.get("abc", ""), None);
        assert!(!codes.has_staff("s001-t02"));
    }

    #[test]
    fn a_run_beyond_the_packed_keys_is_refused_and_one_at_their_edge_is_not() {
        let what = |inputs: &Inputs| match inputs.check_keys() {
            Err(ReportError::KeyRange { what }) => Some(what),
            Err(e) => panic!("another error: {e}"),
            Ok(()) => None,
        };
        let mut at_edge = Inputs::default();
        at_edge.pa_sc.push((1 << SC_BITS) - 1);
        at_edge.pid_count = (1 << PID_BITS) - 1;
        at_edge.wi_w.push((1 << W_BITS) - 1);
        assert_eq!(what(&at_edge), None);

        let mut schools = Inputs::default();
        schools.wd_sc.push(1 << SC_BITS);
        assert_eq!(what(&schools), Some("schools"));
        let pairings = Inputs {
            pid_count: 1 << PID_BITS,
            ..Inputs::default()
        };
        assert_eq!(what(&pairings), Some("pairings"));
        let mut windows = Inputs::default();
        windows.wi_w.push(1 << W_BITS);
        assert_eq!(what(&windows), Some("windows of one kind"));
        windows.wi_w[0] = -1;
        assert_eq!(what(&windows), Some("windows of one kind"));
    }
}
