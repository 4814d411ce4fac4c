//! A staff member's worklist on a day: for each pairing active that day and each quota of the
//! policy governing the current window, how many events the window holds so far against the
//! quota's `min`; and the windows of the current term that ended before the day, were due and
//! were not met.
//!
//! Windows, due and met come from the score run's drill-down (`scores::scores`, rules §7.2):
//! the worklist agrees with the scores by construction. The current term's run gives week,
//! month and term windows; the school year's run gives the year windows (a `year` quota is
//! left out of a term run). A day in no term (a break) has no current window and no term.
//! This module must never read the store or the clock, and never re-decide what is due.

use chrono::NaiveDate;
use events::EventKind;
use events::policy::Per;
use serde::Serialize;

use crate::ProjectionError;
use crate::calendar::Period;
use crate::labels::{row, zh_kind};
use crate::scores::{WindowRow, runs_for_staff};
use crate::timeline::Timeline;
use crate::world::World;

/// What a staff member has to do, as of the timeline's recorded time, on a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worklist {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined`.
    pub name: String,
    /// The staff member's school id.
    pub school: String,
    /// The day the list is for.
    pub on: NaiveDate,
    /// The term holding `on` (`None` in a break).
    pub term: Option<String>,
    /// Due windows holding `on`, for pairings active on `on`: not met first, then by window
    /// end, child and quota.
    pub current: Vec<WorkItem>,
    /// Due windows of the current term that ended before `on` and were not met, by window
    /// start, child and quota.
    pub missed: Vec<WorkItem>,
}

/// One quota window of one pairing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkItem {
    /// The child id of the pairing.
    pub child: String,
    /// The child's name on its file that day.
    pub child_name: String,
    /// The quota's name in the policy (`talk`, `home_visit`, …).
    pub quota: String,
    /// The event type the quota counts.
    pub event: EventKind,
    /// The window kind (rules §6.4).
    pub per: Per,
    /// `2025-W37`, `2025-09`, `2025-2026-1` or `2025-2026`.
    pub window: String,
    /// The window's first day.
    pub start: NaiveDate,
    /// The window's last day.
    pub end: NaiveDate,
    /// Events counted in the window so far (on days the pairing was active).
    pub count: u64,
    /// `min` of the quota in the policy governing the window (rules §7.2).
    pub min: u32,
    /// `min − count`, at least 0.
    pub remaining: u64,
    /// `count ≥ min` (rules §7.2).
    pub met: bool,
}

fn item(world: &World, on: NaiveDate, w: &WindowRow) -> WorkItem {
    WorkItem {
        child: w.child.clone(),
        child_name: world
            .child(&w.child)
            .map(|c| c.file_on(on).name)
            .unwrap_or_default(),
        quota: w.quota.clone(),
        event: w.event,
        per: w.per,
        window: w.label.clone(),
        start: w.start,
        end: w.end,
        count: w.count,
        min: w.min,
        remaining: u64::from(w.min).saturating_sub(w.count),
        met: w.met,
    }
}

/// The worklist of `staff` on `on`, from a timeline cut at the as-of time (for a worklist "as
/// it stood on D", cut it at the end of D: events recorded later are otherwise counted).
pub fn worklist(
    timeline: &Timeline,
    world: &World,
    staff: &str,
    on: NaiveDate,
) -> Result<Worklist, ProjectionError> {
    worklist_with(timeline, world, staff, on, false)
}

/// [`worklist`] from score runs that index every staff member of the school, as the scores
/// do: the reference the tests compare [`worklist`] with (never for a view).
#[doc(hidden)]
pub fn worklist_indexing_the_school(
    timeline: &Timeline,
    world: &World,
    staff: &str,
    on: NaiveDate,
) -> Result<Worklist, ProjectionError> {
    worklist_with(timeline, world, staff, on, true)
}

fn worklist_with(
    timeline: &Timeline,
    world: &World,
    staff: &str,
    on: NaiveDate,
    every_staff_member: bool,
) -> Result<Worklist, ProjectionError> {
    let s = world
        .staff(staff)
        .ok_or_else(|| ProjectionError::UnknownStaff {
            staff: staff.to_owned(),
        })?;
    let sch = world.require_school(&s.school)?;
    let mut out = Worklist {
        staff: staff.to_owned(),
        name: s.name.clone(),
        school: s.school.clone(),
        on,
        term: None,
        current: Vec::new(),
        missed: Vec::new(),
    };
    let Some(term) = sch
        .terms()
        .iter()
        .find(|t| t.starts_on <= on && on <= t.ends_on)
    else {
        return Ok(out);
    };
    out.term = Some(term.id.as_str().to_owned());

    // Only this staff member's rows are read: their events alone are indexed, once for both
    // runs (`runs_for_staff`).
    let periods = [
        Period::Term(term.id.clone()),
        Period::Year(term.id.school_year().to_owned()),
    ];
    let runs = runs_for_staff(
        timeline,
        world,
        &s.school,
        staff,
        &periods,
        every_staff_member,
    )?;
    // Invariant: one run per period given.
    let (term_run, year_run) = (&runs[0], &runs[1]);
    let rows_of = |run: &crate::scores::ScoreRun| -> Vec<WindowRow> {
        run.rows
            .iter()
            .find(|r| r.staff == staff)
            .map(|r| r.windows.clone())
            .unwrap_or_default()
    };
    let mut windows: Vec<WindowRow> = rows_of(term_run);
    windows.extend(rows_of(year_run).into_iter().filter(|w| w.per == Per::Year));

    for w in windows.iter().filter(|w| w.due) {
        if w.start <= on && on <= w.end {
            if world.pairing_active_on(staff, &w.child, on) {
                out.current.push(item(world, on, w));
            }
        } else if w.end < on && !w.met && w.per != Per::Year {
            out.missed.push(item(world, on, w));
        }
    }
    out.current.sort_by(|a, b| {
        (a.met, a.end, &a.child, &a.quota).cmp(&(b.met, b.end, &b.child, &b.quota))
    });
    out.missed
        .sort_by(|a, b| (a.start, &a.child, &a.quota).cmp(&(b.start, &b.child, &b.quota)));
    Ok(out)
}

impl Worklist {
    /// One row per item, current first: 状态, 姓名, 事项, 周期, 起, 止, 已完成, 要求.
    pub fn to_table(&self) -> Vec<Vec<String>> {
        let mut t = vec![row([
            "状态",
            "姓名",
            "事项",
            "周期",
            "起",
            "止",
            "已完成",
            "要求",
        ])];
        let mut push = |status: &str, i: &WorkItem| {
            t.push(vec![
                status.to_owned(),
                i.child_name.clone(),
                zh_kind(i.event).to_owned(),
                i.window.clone(),
                i.start.to_string(),
                i.end.to_string(),
                i.count.to_string(),
                i.min.to_string(),
            ])
        };
        for i in &self.current {
            push(if i.met { "已完成" } else { "待完成" }, i);
        }
        for i in &self.missed {
            push("已逾期", i);
        }
        t
    }
}
