//! The per-child fold of a term report (rules §8): who counts, where, and what their events
//! add up to.
//!
//! It owns the §8 rules that are specific to the report — the placement on the term's last
//! day, file completeness, the per-child counters, escalation on time — and reads everything
//! else (files, activity, pairings, statuses, terms, policies, amendments) from
//! `projections`. It must never re-derive those, and never keep a name, phone, address or
//! note: a counted child is an id, a placement and counters.
//!
//! Scale (rules §9.2): the fold is built from the `World` (the registry, small) and then fed
//! the effective events one at a time (`TermFold::observe`); it keeps only per-child counters
//! and the incidents of counted children, never the events themselves, so a caller may
//! stream a county's log through it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::Event;
use events::event::{
    ChildRecord, ChildStatus, GuardianRelation, LeftBehindType, NotifiedParty, TermId,
};
use events::time::local_date;
use projections::calendar::DaySet;
use projections::{Timeline, World};

use crate::error::ReportError;
use crate::facts::{ChildColumns, ChildFacts};
use crate::report::{Scope, TermReport};
use crate::table::{Totals, aggregate};

/// Builds the term report of `scope` for `term` from a timeline and its world (both built
/// as of the same time). Equivalent to a `TermFold` fed every fact of the timeline.
pub fn term_statistics(
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

/// Whether a file is complete (§8 `archived`): the same rule the archive view shows as its
/// list of missing fields, so a report and an archive can never disagree.
pub fn file_complete(file: &ChildRecord) -> bool {
    projections::archive::missing_fields(file).is_empty()
}

/// A counted child while the fold runs.
#[derive(Debug)]
struct Counted {
    /// The child's id (for the child-term feed; never in the report).
    id: String,
    facts: ChildFacts,
    /// The days of the term at the child's school.
    first: NaiveDate,
    last: NaiveDate,
}

impl Counted {
    fn in_term(&self, d: NaiveDate) -> bool {
        self.first <= d && d <= self.last
    }
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
    term: TermId,
    schools: Vec<String>,
    schools_without_term: Vec<String>,
    counted: Vec<Counted>,
    by_id: HashMap<String, usize>,
    incidents: Vec<Incident>,
    notified: HashMap<String, Notified>,
}

impl<'w> TermFold<'w> {
    /// Decides who counts: the children whose file on the term's last day (of the school
    /// that file names) places them in a school of `scope`, and who are active on at least
    /// one day of that school's term. Reads their placement, file flags, pairing and
    /// drop-out from `world`.
    pub fn new(world: &'w World, scope: Scope, term: &str) -> Result<TermFold<'w>, ReportError> {
        let term_id = TermId::parse(term).ok_or_else(|| ReportError::BadTerm {
            term: term.to_owned(),
        })?;
        // school id → (first day, last day) of the term there
        let mut in_scope: BTreeMap<String, (NaiveDate, NaiveDate)> = BTreeMap::new();
        let mut without = Vec::new();
        match &scope {
            Scope::School(id) => {
                let school = world
                    .school(id)
                    .ok_or_else(|| ReportError::UnknownSchool { school: id.clone() })?;
                let t = school
                    .term(&term_id)
                    .ok_or_else(|| ReportError::UnknownTerm {
                        school: id.clone(),
                        term: term.to_owned(),
                    })?;
                in_scope.insert(id.clone(), (t.starts_on, t.ends_on));
            }
            Scope::County(county) => {
                let mut any = false;
                for s in world.schools().filter(|s| &s.county == county) {
                    any = true;
                    match s.term(&term_id) {
                        Some(t) => {
                            in_scope.insert(s.id.clone(), (t.starts_on, t.ends_on));
                        }
                        None => without.push(s.id.clone()),
                    }
                }
                if !any {
                    return Err(ReportError::UnknownCounty {
                        county: county.clone(),
                    });
                }
                if in_scope.is_empty() {
                    return Err(ReportError::NoSchoolWithTerm {
                        county: county.clone(),
                        term: term.to_owned(),
                    });
                }
            }
        }

        // A child's placement must not depend on the scope of the run (a school's rows are
        // the same in its own report and in its county's), so placements are decided over
        // every school that defined the term, then filtered to the scope.
        let everywhere: BTreeMap<String, (NaiveDate, NaiveDate)> = world
            .schools()
            .filter_map(|s| {
                s.term(&term_id)
                    .map(|t| (s.id.clone(), (t.starts_on, t.ends_on)))
            })
            .collect();
        // The distinct last days: a child is placed by its file on the last day of the term
        // of the school that file names (schools of one county usually share term dates).
        let mut last_days: Vec<NaiveDate> = everywhere.values().map(|(_, l)| *l).collect();
        last_days.sort_unstable();
        last_days.dedup();

        let mut counted = Vec::new();
        let mut by_id = HashMap::new();
        for child in world.children() {
            for &last in &last_days {
                let file = child.file_on(last);
                let Some(&(first, school_last)) = everywhere.get(&file.school) else {
                    continue;
                };
                if school_last != last {
                    continue;
                }
                let days = DaySet::inclusive(first, last);
                if !child.active_days().overlaps(&days) {
                    continue;
                }
                // A child placed in two schools (moved between two different last days)
                // counts once, in the first placement found — and only if that school is in
                // the scope of this run.
                if !in_scope.contains_key(&file.school) {
                    break;
                }
                if by_id.contains_key(&child.id) {
                    continue;
                }
                let dropped_out = child
                    .statuses()
                    .iter()
                    .any(|s| s.status == ChildStatus::DroppedOut && first <= s.on && s.on <= last);
                let facts = ChildFacts {
                    school: file.school.clone(),
                    grade: file.grade.get(),
                    class: file.class,
                    both_parents_away: file.left_behind_type == LeftBehindType::BothParentsAway,
                    one_parent_away: file.left_behind_type == LeftBehindType::OneParentAway,
                    grandparent_guardian: matches!(
                        file.guardian.relation,
                        GuardianRelation::GrandparentPaternal
                            | GuardianRelation::GrandparentMaternal
                    ),
                    boarding: file.boarding,
                    hardship: !file.hardship.is_empty(),
                    archived: file_complete(&file),
                    dropped_out,
                    ..ChildFacts::default()
                };
                by_id.insert(child.id.clone(), counted.len());
                counted.push(Counted {
                    id: child.id.clone(),
                    facts,
                    first,
                    last,
                });
            }
        }
        // Pairings: one pass over all of them (a child's pairings are not indexed by child).
        for p in world.pairings() {
            if let Some(&ix) = by_id.get(&p.child) {
                let c = &mut counted[ix];
                if !c.facts.paired
                    && p.active_days()
                        .overlaps(&DaySet::inclusive(c.first, c.last))
                {
                    c.facts.paired = true;
                }
            }
        }
        Ok(TermFold {
            world,
            scope,
            term: term_id,
            schools: in_scope.into_keys().collect(),
            schools_without_term: without,
            counted,
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

    /// Counts each incident escalated on time on its child (once the whole log is seen).
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
        let frame = aggregate(columns.into_frame()?, &self.schools, totals)?;
        Ok(TermReport::new(
            self.term.as_str().to_owned(),
            self.scope,
            frame,
            self.schools_without_term,
        ))
    }
}
