//! Checks of the registry events (schools, terms, policies, staff, children): the ids they
//! introduce are new, the ids they name exist (in the log or earlier in the batch), and
//! their dates are in order. It must never look at care events.

use chrono::{DateTime, Utc};
use events::{Event, time};
use serde_json::Value;

use super::{Batch, Mode, refp};
use crate::error::{found_value, quote};
use crate::wire::{self, Problem};

impl Batch<'_> {
    /// The problems of a registry event; false if `event` is not one (then nothing is added).
    pub(super) fn check_registry(
        &self,
        event: &Event,
        payload: &Value,
        occurred_at: DateTime<Utc>,
        mode: Mode<'_>,
        out: &mut Vec<Problem>,
    ) -> bool {
        let reg = &self.registry;
        let new = matches!(mode, Mode::New);
        match event {
            Event::SchoolRegistered { school, .. } => {
                if new && self.school_ok(school) {
                    out.push(refp("school", "a school id not yet registered", school));
                }
            }
            Event::TermDefined {
                school,
                term,
                starts_on,
                ends_on,
            } => {
                if !self.school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                } else if new && reg.has_term(school, term.as_str()) {
                    out.push(refp(
                        "term",
                        "a term not yet defined for this school",
                        term.as_str(),
                    ));
                }
                if ends_on < starts_on {
                    let blame_start = matches!(mode, Mode::Corrected(c)
                        if c.contains("starts_on") && !c.contains("ends_on"));
                    out.push(if blame_start {
                        Problem::field(
                            "starts_on",
                            format!("a date on or before ends_on ({ends_on})"),
                            Some(quote(&starts_on.to_string())),
                        )
                    } else {
                        Problem::field(
                            "ends_on",
                            format!("a date on or after starts_on ({starts_on})"),
                            Some(quote(&ends_on.to_string())),
                        )
                    });
                }
            }
            Event::PolicyAdopted { school, policy, .. } => {
                if !self.school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                }
                for p in policy.problems() {
                    let field = format!("policy.{}", p.field);
                    let path: Vec<&str> = field.split('.').collect();
                    // As written in the input; a section left out shows the default's value.
                    let found = wire::value_at(payload, &path)
                        .cloned()
                        .or_else(|| {
                            let as_json = serde_json::to_value(policy).ok()?;
                            wire::value_at(&as_json, &path[1..]).cloned()
                        })
                        .map(|v| found_value(&field, &v));
                    out.push(Problem::field(field, p.expected, found));
                }
            }
            Event::StaffJoined { staff, school, .. } => {
                if !self.school_ok(school) {
                    out.push(refp("school", "a registered school", school));
                }
                if new && self.staff_ok(staff) {
                    out.push(refp("staff", "a staff id not yet registered", staff));
                }
            }
            Event::StaffLeft { staff, .. } => {
                if !self.staff_ok(staff) {
                    out.push(refp("staff", "a registered staff member", staff));
                }
            }
            Event::ChildRegistered(r) => {
                if !self.school_ok(&r.school) {
                    out.push(refp("school", "a registered school", &r.school));
                }
                if new && self.child_ok(&r.child) {
                    out.push(refp("child", "a child id not yet registered", &r.child));
                }
                let registered_on = time::local_date(occurred_at);
                if r.birth_date > registered_on {
                    out.push(Problem::field(
                        "birth_date",
                        format!("a date not after the registration ({registered_on})"),
                        Some(quote(&r.birth_date.to_string())),
                    ));
                }
            }
            Event::ChildUpdated { child, changes } => {
                if !self.child_ok(child) {
                    out.push(refp("child", "a registered child", child));
                }
                if let Some(s) = &changes.school
                    && !self.school_ok(s)
                {
                    out.push(refp("changes.school", "a registered school", s));
                }
                if **changes == events::event::ChildChanges::default() {
                    out.push(Problem::field(
                        "changes",
                        "at least one changed field",
                        Some("an empty object".to_owned()),
                    ));
                }
            }
            _ => return false,
        }
        true
    }
}
