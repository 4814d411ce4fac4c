//! Retention (rules §13.3): which children's files are kept past their school's retention
//! period after they left the programme, as of a day.
//!
//! This module owns that rule: a child has left on the first day of the last run of leaving
//! statuses (`graduated`, `transferred_out`, `no_longer_left_behind`) in force on the day
//! asked about; its file is kept for the whole years of the `retention` of the policy its
//! school has in force on that day, and is due for erasure from the same calendar day that
//! many years later (29 February: the 28th). A child already erased (`child_erased`) is not
//! listed. It must never erase anything or read a personal field (statuses, schools and
//! dates are clear): the binary erases what it lists.

use chrono::{Months, NaiveDate};
use events::Event;
use events::event::ChildStatus;
use serde::Serialize;

use crate::timeline::Timeline;
use crate::world::World;

/// Whether a status ends the child's time in the programme.
pub fn is_leaving(status: ChildStatus) -> bool {
    matches!(
        status,
        ChildStatus::Graduated | ChildStatus::TransferredOut | ChildStatus::NoLongerLeftBehind
    )
}

/// A child whose file is past its school's retention period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    /// The child.
    pub child: String,
    /// The child's school on the day asked about.
    pub school: String,
    /// The leaving status in force.
    pub status: ChildStatus,
    /// The first day of the leaving statuses in force.
    pub left_on: NaiveDate,
    /// The school's retention period, in years.
    pub years: u32,
    /// The first day the file is past it.
    pub due_on: NaiveDate,
}

/// The children of `world` past their school's retention period on `on`, by child id.
/// `timeline` tells which were erased already.
pub fn past_retention(timeline: &Timeline, world: &World, on: NaiveDate) -> Vec<Due> {
    let erased: std::collections::BTreeSet<&str> = timeline
        .facts()
        .iter()
        .filter_map(|f| match &f.event {
            Event::ChildErased { child, .. } => Some(child.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for child in world.children() {
        if erased.contains(child.id.as_str()) {
            continue;
        }
        let in_force: Vec<_> = child.statuses().iter().filter(|s| s.on <= on).collect();
        let Some(last) = in_force.last() else {
            continue;
        };
        if !is_leaving(last.status) {
            continue;
        }
        let left_on = in_force
            .iter()
            .rev()
            .take_while(|s| is_leaving(s.status))
            .last()
            .map_or(last.on, |s| s.on);
        let school = child.file_on(on).school;
        let years = world.policy_on(&school, on).retention.years;
        let Some(due_on) = years
            .checked_mul(12)
            .and_then(|m| left_on.checked_add_months(Months::new(m)))
        else {
            continue;
        };
        if due_on <= on {
            out.push(Due {
                child: child.id.clone(),
                school,
                status: last.status,
                left_on,
                years,
                due_on,
            });
        }
    }
    out.sort_by(|a, b| a.child.cmp(&b.child));
    out
}
