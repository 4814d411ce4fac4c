//! The reference fold of a term report (rules §8): the per-event Rust loop the polars
//! reporter (`columnar`) is tested against, byte for byte.
//!
//! It owns the per-event §8 rules as a plain fold — an event adds to the counters of the
//! counted child it is about when it falls in that child's term, escalation on time per
//! incident — and takes who counts and where from `roster`, everything else (files,
//! activity, pairings, statuses, terms, policies, amendments) from `projections`. It must
//! never re-derive those, and never keep a name, phone, address or note: a counted child is
//! an id, a placement and counters.
//!
//! It is the reference, not the default: `report term` runs `columnar`. The fold keeps only
//! per-child counters and the incidents of counted children, never the events themselves,
//! and does not depend on the order events arrive in.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::Event;
use events::event::NotifiedParty;
use events::time::local_date;
use polars::prelude::IntoLazy;
use projections::{Timeline, World};

use crate::error::ReportError;
use crate::facts::{ChildColumns, ChildFacts};
use crate::report::{Scope, TermReport};
use crate::roster::{CountedChild, Roster};
use crate::table::{Totals, aggregate};

/// The term report of `scope` for `term` by the reference fold, from a timeline and its
/// world (both built as of the same time): a `TermFold` fed every fact of the timeline.
/// [`crate::term_statistics`] (polars) gives the same report.
pub fn term_statistics_folded(
    timeline: &Timeline,
    world: &World,
    scope: Scope,
    term: &str,
) -> Result<TermReport, ReportError> {
    let mut fold = TermFold::new(world, scope, term)?;
    for f in timeline.facts() {
        fold.observe(f.occurred_at, &f.event);
    }
    fold.finish()
}

/// An incident of a counted child, reported on a day of its term.
#[derive(Debug)]
struct Incident {
    child: usize,
    id: String,
    happened_at: DateTime<Utc>,
}

/// The earliest notification of each party, per incident id.
#[derive(Debug, Default, Clone, Copy)]
struct Notified {
    guardian: Option<DateTime<Utc>>,
    parents: Option<DateTime<Utc>>,
    bureau: Option<DateTime<Utc>>,
}

fn earliest(slot: &mut Option<DateTime<Utc>>, t: DateTime<Utc>) {
    if slot.is_none_or(|s| t < s) {
        *slot = Some(t);
    }
}

/// The fold of one term report. Build it with [`TermFold::new`], feed it every effective
/// event (corrections applied, retractions left out, recorded as of the report's time) in
/// any order with [`TermFold::observe`], then [`TermFold::finish`].
#[derive(Debug)]
pub struct TermFold<'w> {
    world: &'w World,
    scope: Scope,
    term: String,
    schools: Vec<String>,
    schools_without_term: Vec<String>,
    counted: Vec<CountedChild>,
    by_id: HashMap<String, usize>,
    incidents: Vec<Incident>,
    notified: HashMap<String, Notified>,
}

impl<'w> TermFold<'w> {
    /// Starts the fold on the children [`Roster::new`] counts.
    pub fn new(world: &'w World, scope: Scope, term: &str) -> Result<TermFold<'w>, ReportError> {
        let roster = Roster::new(world, scope, term)?;
        let by_id = roster
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Ok(TermFold {
            world,
            scope: roster.scope,
            term: roster.term.as_str().to_owned(),
            schools: roster.schools,
            schools_without_term: roster.schools_without_term,
            counted: roster.children,
            by_id,
            incidents: Vec::new(),
            notified: HashMap::new(),
        })
    }

    /// How many children count.
    pub fn children(&self) -> usize {
        self.counted.len()
    }

    /// The index of the counted child an event about `child` on day `d` adds to, if any.
    fn counted_ix(&self, child: &str, d: NaiveDate) -> Option<usize> {
        let ix = *self.by_id.get(child)?;
        self.counted[ix].in_term(d).then_some(ix)
    }

    /// The facts of the counted child an event about `child` on day `d` adds to, if any.
    fn slot(&mut self, child: &str, d: NaiveDate) -> Option<&mut ChildFacts> {
        let ix = self.counted_ix(child, d)?;
        Some(&mut self.counted[ix].facts)
    }

    /// Adds one effective event, which occurred at `occurred_at` (its effective time).
    /// Events about children that do not count, or on days outside their term, add nothing.
    /// An `incident_reported` counts on the day of its `occurred_at`, like every event
    /// (docs/reports.md); its `happened_at` starts the escalation clock.
    pub fn observe(&mut self, occurred_at: DateTime<Utc>, event: &Event) {
        let d = local_date(occurred_at);
        match event {
            Event::TalkHeld { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.talks += 1;
                }
            }
            Event::HomeVisited { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.home_visits += 1;
                }
            }
            Event::ParentCalled { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.parent_calls += 1;
                }
            }
            Event::FamilyCallArranged { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.family_calls += 1;
                }
            }
            Event::LetterWritten { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.letters += 1;
                }
            }
            Event::WarmthVisited { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.warmth_visits += 1;
                }
            }
            Event::CounselingHeld { child, .. } => {
                if let Some(f) = self.slot(child, d) {
                    f.counseling_sessions += 1;
                }
            }
            Event::AidGranted {
                child, amount_yuan, ..
            } => {
                if let Some(f) = self.slot(child, d) {
                    f.aid_fen += amount_yuan.fen();
                }
            }
            Event::IncidentReported {
                child,
                incident,
                happened_at,
                ..
            } => {
                if let Some(ix) = self.counted_ix(child, d) {
                    self.counted[ix].facts.incidents += 1;
                    self.incidents.push(Incident {
                        child: ix,
                        id: incident.clone(),
                        happened_at: *happened_at,
                    });
                }
            }
            Event::IncidentNotified {
                incident,
                party,
                notified_at,
                ..
            } => {
                let n = self.notified.entry(incident.clone()).or_default();
                match party {
                    NotifiedParty::Guardian => earliest(&mut n.guardian, *notified_at),
                    NotifiedParty::Parents => earliest(&mut n.parents, *notified_at),
                    NotifiedParty::Bureau => earliest(&mut n.bureau, *notified_at),
                    NotifiedParty::Police => {}
                }
            }
            _ => {}
        }
    }

    /// Whether an incident's guardian, parents and bureau were each notified within the
    /// limits of the policy in force (at the child's school) on the day it happened, counted
    /// from `happened_at`. The earliest notification of each party counts; one stamped
    /// before `happened_at` is in time (docs/reports.md).
    fn on_time(&self, incident: &Incident) -> bool {
        let school = &self.counted[incident.child].facts.school;
        let limits = &self
            .world
            .policy_on(school, local_date(incident.happened_at))
            .escalation;
        let Some(n) = self.notified.get(&incident.id) else {
            return false;
        };
        let within = |t: Option<DateTime<Utc>>, minutes: u32| {
            t.is_some_and(|t| t - incident.happened_at <= Duration::minutes(i64::from(minutes)))
        };
        within(n.guardian, limits.guardian_minutes)
            && within(n.parents, limits.parents_minutes)
            && within(n.bureau, limits.bureau_minutes)
    }

    /// Counts each incident escalated on time on its child (once every event is seen).
    fn settle(&mut self) {
        let on_time: Vec<usize> = self
            .incidents
            .iter()
            .filter(|i| self.on_time(i))
            .map(|i| i.child)
            .collect();
        for ix in on_time {
            self.counted[ix].facts.escalated_on_time += 1;
        }
    }

    /// Settles escalations and hands over the counted children, each with its id, in the
    /// order they were counted: exactly the per-child facts [`TermFold::finish`] aggregates
    /// (the child-term feed, `child_terms`, writes them instead of summing them).
    pub fn finish_children(mut self) -> Vec<(String, ChildFacts)> {
        self.settle();
        self.counted.into_iter().map(|c| (c.id, c.facts)).collect()
    }

    /// Settles escalations and aggregates: class rows, school totals (every school of the
    /// scope that defined the term, zeros included) and, for a county, the county total.
    pub fn finish(mut self) -> Result<TermReport, ReportError> {
        self.settle();
        let mut columns = ChildColumns::new();
        for c in &self.counted {
            columns.push(&c.facts);
        }
        let totals = match self.scope {
            Scope::School(_) => Totals::Schools,
            Scope::County(_) => Totals::SchoolsAndCounty,
        };
        let frame = aggregate(columns.into_frame()?.lazy(), &self.schools, totals)?;
        Ok(TermReport::new(
            self.term,
            self.scope,
            frame,
            self.schools_without_term,
        ))
    }
}
