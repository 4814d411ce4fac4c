//! Checks of care events, pairings and incidents: the staff member and children they name
//! are registered, a pairing ends after it started, an incident id is new when reported and
//! known when notified, an activity lists each child once, and nothing happened after it
//! is recorded. It must never look at registry events (`registry`) or amendments (`amend`).

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use events::{Event, time};

use super::{Batch, refp};
use crate::error::quote;
use crate::wire::Problem;

impl Batch<'_> {
    /// The problems of a care event, pairing or incident (every event that is neither a
    /// registry event nor an amendment).
    pub(super) fn check_care(
        &self,
        event: &Event,
        recorded: DateTime<Utc>,
        new: bool,
        out: &mut Vec<Problem>,
    ) {
        let reg = &self.registry;
        if let Some(s) = event.staff()
            && !self.staff_ok(s)
        {
            out.push(refp("staff", "a registered staff member", s));
        }
        let children = event.children();
        let many = matches!(event, Event::ActivityHeld { .. });
        let mut seen = HashSet::new();
        for (i, c) in children.iter().enumerate() {
            let field = if many {
                format!("children.{i}")
            } else {
                "child".to_owned()
            };
            if !self.child_ok(c) {
                out.push(refp(&field, "a registered child", c));
            } else if !seen.insert(c.as_str()) {
                out.push(refp(&field, "each child listed once", c));
            }
        }
        if many && children.is_empty() {
            out.push(Problem::field(
                "children",
                "at least one child",
                Some("an empty list".to_owned()),
            ));
        }
        match event {
            Event::PairingEnded {
                staff, child, on, ..
            } if self.staff_ok(staff) && self.child_ok(child) => {
                let starts = self.pairing_starts(staff, child);
                match starts.iter().min() {
                    None => out.push(Problem::field(
                        "child",
                        format!("a child paired with {staff} (no pairing_assigned found)"),
                        Some(quote(child)),
                    )),
                    Some(first) if on < first => out.push(Problem::field(
                        "on",
                        format!("a date on or after the pairing's start ({first})"),
                        Some(quote(&on.to_string())),
                    )),
                    Some(_) => {}
                }
            }
            Event::IncidentReported {
                incident,
                happened_at,
                ..
            } => {
                if new && reg.incident_child(incident).is_some() {
                    out.push(refp(
                        "incident",
                        "an incident id not yet reported",
                        incident,
                    ));
                }
                out.extend(not_after("happened_at", *happened_at, recorded));
            }
            Event::IncidentNotified {
                incident,
                notified_at,
                ..
            } => {
                if reg.incident_child(incident).is_none() {
                    out.push(refp("incident", "a reported incident", incident));
                }
                out.extend(not_after("notified_at", *notified_at, recorded));
            }
            _ => {}
        }
    }

    /// The starts of the live pairings of a staff member and child, log and batch.
    fn pairing_starts(&self, staff: &str, child: &str) -> Vec<NaiveDate> {
        let key = (staff.to_owned(), child.to_owned());
        self.known
            .pairings(staff, child)
            .into_iter()
            .chain(self.pairings.get(&key).cloned().unwrap_or_default())
            .filter(|(id, _)| !self.registry.is_retracted(id))
            .map(|(_, from)| from)
            .collect()
    }
}

/// A payload instant may not be later than when its event is recorded.
fn not_after(field: &str, t: DateTime<Utc>, recorded: DateTime<Utc>) -> Option<Problem> {
    (t > recorded).then(|| {
        Problem::field(
            field,
            format!(
                "a time not later than when it is recorded ({})",
                time::format_local(recorded)
            ),
            Some(quote(&time::format_local(t))),
        )
    })
}
