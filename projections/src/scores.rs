//! Teacher assessment scores (rules §6–§7): per staff member of a school, for a term or a
//! school year as known at a recorded time, compliance with each quota over the windows of
//! their pairings, the weighted score, flags, year-end points and the weighted total.
//!
//! This module owns the scoring rule and its exact arithmetic (`score_exact`); it must never
//! read the store or the clock, and never let a confidential field (`notes`) into its output:
//! it only counts events. docs/scores.md states the rule as implemented and every decision
//! where the rules were silent. The commands run the polars scorer of `reports` (`scorer`);
//! this module is its reference, tested against it byte for byte on every output.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};

use chrono::{DateTime, NaiveDate, Utc};
use events::Event;
use events::event::EventKind;
use events::policy::Per;
use events::time::format_local;
use serde_json::{Map, Value, json};

use crate::ProjectionError;
pub use crate::calendar::Period;
use crate::calendar::{DaySet, Window, windows};
use crate::score_exact::Ratio;
pub use crate::score_exact::round2;
use crate::timeline::Timeline;
use crate::world::{School, World};

/// A flag on a staff row, printed in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `outstanding`: score ≥ `outstanding_at` of the policy on the period's last day (rules §7.5).
    Outstanding,
    /// `disqualified`: score < `disqualified_below` (rules §7.5).
    Disqualified,
    /// `overloaded`: more than `max_children` pairings active on one day of the period.
    Overloaded,
    /// `unpaired`: no due window at all, hence no score (rules §7.4).
    Unpaired,
}

impl Flag {
    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Outstanding => "outstanding",
            Flag::Disqualified => "disqualified",
            Flag::Overloaded => "overloaded",
            Flag::Unpaired => "unpaired",
        }
    }
}

/// Met and due windows of one quota, summed over a staff member's pairings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compliance {
    /// Due windows that were met (rules §7.2).
    pub met: u64,
    /// Due windows: the pairing active on at least half their days (rules §7.2).
    pub due: u64,
}

/// One window of one quota for one pairing: the drill-down behind a compliance figure.
/// Windows on which the pairing was never active are not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// The child id of the pairing.
    pub child: String,
    /// The quota's name in the policy (`talk`, `home_visit`, …).
    pub quota: String,
    /// The event type the quota counts.
    pub event: EventKind,
    /// The window kind (rules §6.4).
    pub per: Per,
    /// `2025-W37`, `2025-09`, `2025-2026-1` or `2025-2026`.
    pub label: String,
    /// First and last day of the window (its days may skip a break in between).
    pub start: NaiveDate,
    /// The window's last day.
    pub end: NaiveDate,
    /// `days(W)`.
    pub days: u64,
    /// Days of W on which the pairing was active.
    pub active_days: u64,
    /// `min` of the quota in the policy governing W.
    pub min: u32,
    /// Events of the quota's type by the staff member about the child on active days of W.
    pub count: u64,
    /// `2 × active_days ≥ days` (rules §7.2).
    pub due: bool,
    /// Due and `count ≥ min` (rules §7.2).
    pub met: bool,
}

/// One staff member's row.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffScore {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined`.
    pub name: String,
    /// The exact score; `None` when unpaired.
    exact: Option<Ratio>,
    /// Rounded to two decimals, half away from zero.
    pub score: Option<f64>,
    /// Flags in printed order (rules §7.5).
    pub flags: Vec<Flag>,
    /// Quotas left in (at least one due window), by name.
    pub compliance: BTreeMap<String, Compliance>,
    /// The weight each quota left in carries.
    pub weights: BTreeMap<String, f64>,
    /// Year runs only: `score × year_end_share` rounded (`None` when unpaired).
    pub year_end_points: Option<f64>,
    /// With other appraisal scores only: `other × (1 − share) + score × share` rounded
    /// (`None` when unpaired or missing from the other scores).
    pub total: Option<f64>,
    /// Highest number of pairings active on one day of the period.
    pub peak_pairings: u64,
    /// The drill-down of `--staff`: each pairing's windows on which it was active, by pairing.
    pub windows: Vec<WindowRow>,
}

impl StaffScore {
    /// A row with no score yet: the staff member, no compliance, no flags, no windows. A
    /// scorer outside this module (the polars scorer of `reports`) fills the public fields and
    /// sets the exact score with [`StaffScore::with_exact`].
    pub fn unscored(staff: String, name: String) -> StaffScore {
        StaffScore {
            staff,
            name,
            exact: None,
            score: None,
            flags: Vec::new(),
            compliance: BTreeMap::new(),
            weights: BTreeMap::new(),
            year_end_points: None,
            total: None,
            peak_pairings: 0,
            windows: Vec::new(),
        }
    }

    /// The row with its exact score set (`None`: unpaired); `score` is the caller's, and must
    /// be this value rounded (rules §7.7).
    pub fn with_exact(mut self, exact: Option<Ratio>) -> StaffScore {
        self.exact = exact;
        self
    }

    /// Whether the exact (unrounded) score is at least `x` read as a decimal; `None` when
    /// unpaired.
    pub fn score_at_least(&self, x: f64) -> Option<bool> {
        let t = Ratio::from_decimal(x)?;
        self.exact.as_ref().map(|s| *s >= t)
    }
}

/// An evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRun {
    /// The school id.
    pub school: String,
    /// The term or school year scored.
    pub period: Period,
    /// The period's first day (the first day of its first term).
    pub first_day: NaiveDate,
    /// The period's last day, whose policy gives weights, thresholds and the share.
    pub last_day: NaiveDate,
    /// The as-of bound of the timeline (`None`: everything given).
    pub as_of: Option<DateTime<Utc>>,
    /// The last seq of the log prefix used.
    pub head_seq: u64,
    /// Whether other appraisal scores were given (then every row carries `total`).
    pub with_other: bool,
    /// Staff in the other scores that have no row in this run (the CLI warns about them).
    pub other_unmatched: Vec<String>,
    /// By staff id.
    pub rows: Vec<StaffScore>,
}

/// What a per-run index of the care events needs: (staff, child, kind) → sorted dates. Only
/// looked up, never iterated in an order that shows: a fast non-keyed hash suffices.
type EventIndex<'a> = FxHashMap<(&'a str, &'a str, EventKind), Vec<NaiveDate>>;

/// Scores every staff member of `school` for `period` (rules §7), from a timeline already
/// cut at the run's as-of time and the world folded from it. `other` holds the other
/// appraisal parts (`staff → score out of 100`) for the year-end total; only a school-year
/// run accepts it.
pub fn scores(
    timeline: &Timeline,
    world: &World,
    school: &str,
    period: Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<ScoreRun, ProjectionError> {
    world.require_school(school)?;
    let index = index_events(
        timeline,
        world,
        world.staff_of(school).map(|s| s.id.as_str()),
    );
    score_school(timeline, world, school, period, other, &index, None)
}

/// Score runs of `school` for `periods` with only `staff`'s care events indexed. The rows of
/// `staff` are exactly the rows [`scores`] gives (a row looks up its own staff member's events
/// only: the index is keyed by staff, child and kind, and a row reads nothing of another);
/// the runs hold `staff`'s rows alone (a worklist's). Indexing and scoring one staff member
/// instead of the school is what makes a worklist cost its own events, not the school's.
/// With `every_staff_member` (the reference) the school's staff are indexed and scored, as
/// [`scores`] does.
pub(crate) fn runs_for_staff(
    timeline: &Timeline,
    world: &World,
    school: &str,
    staff: &str,
    periods: &[Period],
    every_staff_member: bool,
) -> Result<Vec<ScoreRun>, ProjectionError> {
    world.require_school(school)?;
    let index = if every_staff_member {
        index_events(
            timeline,
            world,
            world.staff_of(school).map(|s| s.id.as_str()),
        )
    } else {
        index_events(timeline, world, std::iter::once(staff))
    };
    let only = (!every_staff_member).then_some(staff);
    periods
        .iter()
        .map(|p| score_school(timeline, world, school, p.clone(), None, &index, only))
        .collect()
}

/// The score runs of several schools on one timeline (a county's end-of-term evaluation run):
/// the events are indexed once for the staff of every school given, then each school is
/// scored exactly as [`scores`] scores it — the same rows, since a school's run only looks
/// up its own staff. One result per school, in the order given.
pub fn scores_of_schools(
    timeline: &Timeline,
    world: &World,
    schools: &[&str],
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Vec<Result<ScoreRun, ProjectionError>> {
    let index = index_events(
        timeline,
        world,
        schools
            .iter()
            .flat_map(|school| world.staff_of(school).map(|s| s.id.as_str())),
    );
    schools
        .iter()
        .map(|school| {
            world.require_school(school)?;
            score_school(timeline, world, school, period.clone(), other, &index, None)
        })
        .collect()
}

/// What a score run of `school` for `period` checks before it scores, in this order: the
/// school is known, the period has days there, other scores come only with a school year and
/// each lies in 0..=100. Returns the school, the period's days and their first and last day.
/// The polars scorer (`reports::scorer`) calls it too, so both refuse alike.
pub fn checked_run<'w>(
    world: &'w World,
    school: &str,
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<(&'w School, DaySet, NaiveDate, NaiveDate), ProjectionError> {
    let sch = world.require_school(school)?;
    let period_days = sch.period_days(period)?;
    let (Some(first), Some(last)) = (period_days.first(), period_days.last()) else {
        return Err(ProjectionError::NoTermsInYear {
            school: school.to_owned(),
            year: period.to_string(),
        });
    };
    if let Some(o) = other {
        if !period.is_year() {
            return Err(ProjectionError::OtherScoresNeedYear {
                period: period.to_string(),
            });
        }
        if let Some((staff, v)) = o
            .iter()
            .find(|(_, v)| !(v.is_finite() && (0.0..=100.0).contains(*v)))
        {
            return Err(ProjectionError::OtherScore {
                staff: staff.clone(),
                value: *v,
            });
        }
    }
    Ok((sch, period_days, first, last))
}

/// [`scores`] of one school with the events already indexed (for at least the staff
/// scored); with `only`, the row of that staff member alone (each row is computed from its
/// own staff member's pairings and events, so it is the row the whole run has).
fn score_school(
    timeline: &Timeline,
    world: &World,
    school: &str,
    period: Period,
    other: Option<&BTreeMap<String, f64>>,
    index: &EventIndex<'_>,
    only: Option<&str>,
) -> Result<ScoreRun, ProjectionError> {
    let (sch, period_days, first_day, last_day) = checked_run(world, school, &period, other)?;

    let last_policy = sch.policy_on(last_day);
    let share = Ratio::from_decimal(last_policy.evaluation.year_end_share).unwrap_or(Ratio::int(0));

    // Staff rows: joined on or before the last day, not left before the first day.
    let staff: Vec<_> = world
        .staff_of(school)
        .filter(|s| s.joined_on <= last_day && s.left_on.is_none_or(|l| l >= first_day))
        .filter(|s| only.is_none_or(|o| s.id == o))
        .collect();

    // Window kinds the period admits, each kind's windows computed once.
    let kinds: Vec<(Per, Vec<Window>)> = [Per::Week, Per::Month, Per::Term, Per::Year]
        .into_iter()
        .filter(|p| period.admits(*p))
        .map(|p| (p, windows(p, &period_days, sch.terms())))
        .collect();
    let weights = quota_weights(sch, &period_days, last_day);

    let mut rows = Vec::with_capacity(staff.len());
    for s in &staff {
        let mut windows_out = Vec::new();
        let mut compliance: BTreeMap<String, Compliance> = BTreeMap::new();
        let mut actives: Vec<DaySet> = Vec::new();
        for p in world.pairings_of_staff(&s.id) {
            let active = p.active_days().intersect(&period_days);
            if active.is_empty() {
                continue;
            }
            for (per, ws) in &kinds {
                for w in ws {
                    let governing = sch.policy_on(w.last());
                    for (qname, q) in governing.quota.iter().filter(|(_, q)| q.per == *per) {
                        let on = w.days().intersect(&active);
                        let active_days = on.len();
                        if active_days == 0 {
                            continue;
                        }
                        let due = 2 * active_days >= w.len();
                        let count = index
                            .get(&(s.id.as_str(), p.child.as_str(), q.event))
                            .map_or(0, |dates| count_on(dates, &on));
                        let met = due && count >= u64::from(q.min);
                        if due {
                            let c = compliance.entry(qname.clone()).or_default();
                            c.due += 1;
                            c.met += u64::from(met);
                        }
                        windows_out.push(WindowRow {
                            child: p.child.clone(),
                            quota: qname.clone(),
                            event: q.event,
                            per: *per,
                            label: w.label.clone(),
                            start: w.first(),
                            end: w.last(),
                            days: w.len(),
                            active_days,
                            min: q.min,
                            count,
                            due,
                            met,
                        });
                    }
                }
            }
            actives.push(active);
        }

        let row_weights: BTreeMap<String, f64> = compliance
            .keys()
            .filter_map(|q| weights.get(q).map(|w| (q.clone(), *w)))
            .collect();
        let exact = exact_score(&compliance, &row_weights);
        let peak = peak_overlap(&actives);

        let mut flags = Vec::new();
        if let Some(sc) = &exact {
            let ev = &last_policy.evaluation;
            if Ratio::from_decimal(ev.outstanding_at).is_some_and(|t| *sc >= t) {
                flags.push(Flag::Outstanding);
            }
            if Ratio::from_decimal(ev.disqualified_below).is_some_and(|t| *sc < t) {
                flags.push(Flag::Disqualified);
            }
        }
        if peak > u64::from(last_policy.pairing.max_children) {
            flags.push(Flag::Overloaded);
        }
        if exact.is_none() {
            flags.push(Flag::Unpaired);
        }

        let points = exact.as_ref().map(|sc| sc.mul(&share));
        let total = match (other, &exact) {
            (Some(o), Some(sc)) => o.get(&s.id).and_then(|v| {
                let ov = Ratio::from_decimal(*v)?;
                Some(ov.mul(&share.one_minus()?).add(&sc.mul(&share)).round2())
            }),
            _ => None,
        };
        rows.push(StaffScore {
            staff: s.id.clone(),
            name: s.name.clone(),
            score: exact.as_ref().map(Ratio::round2),
            exact,
            flags,
            compliance,
            weights: row_weights,
            year_end_points: if period.is_year() {
                points.map(|p| p.round2())
            } else {
                None
            },
            total,
            peak_pairings: peak,
            windows: windows_out,
        });
    }

    let other_unmatched = other
        .map(|o| {
            let have: BTreeSet<&str> = rows.iter().map(|r| r.staff.as_str()).collect();
            o.keys()
                .filter(|k| !have.contains(k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();

    Ok(ScoreRun {
        school: school.to_owned(),
        period,
        first_day,
        last_day,
        as_of: timeline.as_of(),
        head_seq: timeline.head_seq(),
        with_other: other.is_some(),
        other_unmatched,
        rows,
    })
}

/// The weight of each quota name: from the policy in force on the period's last day, or, for
/// a quota it lacks, from the last policy in force on a day of the period that has it.
fn quota_weights(sch: &School, period_days: &DaySet, last_day: NaiveDate) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    // Later policies overwrite earlier ones; the one on the last day is the last of them.
    for (p, _) in sch.policies_during(period_days) {
        for (name, q) in &p.quota {
            out.insert(name.clone(), q.weight);
        }
    }
    for (name, q) in &sch.policy_on(last_day).quota {
        out.insert(name.clone(), q.weight);
    }
    out
}

/// `100 × Σ w·met/due / Σ w` over the quotas given, exactly; `None` without a due window.
fn exact_score(
    compliance: &BTreeMap<String, Compliance>,
    weights: &BTreeMap<String, f64>,
) -> Option<Ratio> {
    let mut num = Ratio::int(0);
    let mut den = Ratio::int(0);
    for (q, c) in compliance {
        if c.due == 0 {
            continue;
        }
        let w = Ratio::from_decimal(*weights.get(q)?)?;
        num = num.add(&w.mul(&Ratio::new(c.met, c.due)?));
        den = den.add(&w);
    }
    num.mul(&Ratio::int(100)).div(&den)
}

/// Events of the kinds any quota may count, by (staff, child, kind), for the given staff.
fn index_events<'a>(
    timeline: &'a Timeline,
    world: &'a World,
    staff: impl Iterator<Item = &'a str>,
) -> EventIndex<'a> {
    let wanted: FxHashSet<&str> = staff.collect();
    let mut index: EventIndex<'a> = FxHashMap::default();
    for f in timeline.facts() {
        let kind = f.event.kind();
        if !kind.counts_toward_quota() {
            continue;
        }
        let Some(st) = f.event.staff().and_then(|s| wanted.get(s)) else {
            continue;
        };
        let date = f.date();
        match &f.event {
            // Several children, or a child found through the incident: the general path.
            Event::ActivityHeld { .. } | Event::IncidentNotified { .. } => {
                for c in world.event_children(&f.event) {
                    index.entry((st, c, kind)).or_default().push(date);
                }
            }
            e => {
                for c in e.children() {
                    index.entry((st, c.as_str(), kind)).or_default().push(date);
                }
            }
        }
    }
    for dates in index.values_mut() {
        dates.sort_unstable();
    }
    index
}

/// How many of the sorted dates fall in the set.
fn count_on(dates: &[NaiveDate], set: &DaySet) -> u64 {
    set.ranges()
        .iter()
        .map(|&(a, b)| {
            let lo = dates.partition_point(|d| *d < a);
            let hi = dates.partition_point(|d| *d < b);
            (hi - lo) as u64
        })
        .sum()
}

/// The highest number of the sets that share one day.
fn peak_overlap(sets: &[DaySet]) -> u64 {
    let mut edges: Vec<(NaiveDate, i64)> = Vec::new();
    for s in sets {
        for &(a, b) in s.ranges() {
            edges.push((a, 1));
            edges.push((b, -1));
        }
    }
    // Half-open ranges: an end on a date is processed before a start on it.
    edges.sort_unstable();
    let (mut cur, mut peak) = (0i64, 0i64);
    for (_, e) in edges {
        cur += e;
        peak = peak.max(cur);
    }
    peak.max(0) as u64
}

impl ScoreRun {
    /// The rows as rules §7.9 print them: `[{staff, score, flags, compliance: {quota: {met,
    /// due}}, year_end_points?, total?}]`. Keys in sorted order; numbers rounded to two
    /// decimals; `year_end_points` only in a school-year run, `total` only with other scores
    /// (`null` when there is nothing to compute them from).
    pub fn rows_json(&self) -> Value {
        Value::Array(self.rows.iter().map(|r| self.row_json(r)).collect())
    }

    fn row_json(&self, r: &StaffScore) -> Value {
        let mut m = Map::new();
        m.insert("staff".into(), Value::from(r.staff.clone()));
        m.insert("score".into(), num(r.score));
        m.insert(
            "flags".into(),
            Value::Array(r.flags.iter().map(|f| Value::from(f.as_str())).collect()),
        );
        let mut c = Map::new();
        for (q, x) in &r.compliance {
            c.insert(q.clone(), json!({"met": x.met, "due": x.due}));
        }
        m.insert("compliance".into(), Value::Object(c));
        if self.period.is_year() {
            m.insert("year_end_points".into(), num(r.year_end_points));
        }
        if self.with_other {
            m.insert("total".into(), num(r.total));
        }
        Value::Object(m)
    }

    /// The run with its header: `{school, period, first_day, last_day, as_of, head_seq,
    /// head_hash, rows}`; `head_hash` is the hash of the envelope at `head_seq`, which the
    /// caller (who reads the store) supplies.
    pub fn to_json(&self, head_hash: &str) -> Value {
        json!({
            "school": self.school,
            "period": self.period.to_string(),
            "first_day": self.first_day.to_string(),
            "last_day": self.last_day.to_string(),
            "as_of": self.as_of.map(format_local),
            "head_seq": self.head_seq,
            "head_hash": head_hash,
            "rows": self.rows_json(),
        })
    }

    /// The drill-down of one staff member: every window of every pairing on which the
    /// pairing was active, with quota, dates, due, met and count.
    pub fn windows_json(&self, staff: &str) -> Option<Value> {
        let r = self.rows.iter().find(|r| r.staff == staff)?;
        Some(Value::Array(
            r.windows
                .iter()
                .map(|w| {
                    json!({
                        "child": w.child,
                        "quota": w.quota,
                        "event": w.event.as_str(),
                        "per": w.per.as_str(),
                        "window": w.label,
                        "start": w.start.to_string(),
                        "end": w.end.to_string(),
                        "days": w.days,
                        "active_days": w.active_days,
                        "min": w.min,
                        "count": w.count,
                        "due": w.due,
                        "met": w.met,
                    })
                })
                .collect(),
        ))
    }
}

fn num(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::from)
}
