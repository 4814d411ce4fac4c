//! Who a term report counts and where (rules §8.1–§8.2): the scope's schools, and per counted
//! child its placement on the term's last day and the file columns read from that file.
//!
//! It owns the §8 rules that are about children rather than events — the placement on the
//! earliest last day, the one-active-day rule, file completeness, the pairing and drop-out
//! flags — and reads files, activity, pairings and statuses from `projections::World`. Both
//! term reporters (the polars one in `columnar`, the reference fold in `fold`) start from it.
//! It must never look at a care event, and never keep a name, phone, address or note: a
//! counted child is an id, a placement and flags.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use events::event::{ChildRecord, ChildStatus, GuardianRelation, LeftBehindType, TermId};
use projections::World;
use projections::calendar::DaySet;

use crate::error::ReportError;
use crate::facts::ChildFacts;
use crate::report::Scope;

/// Whether a file is complete (§8 `archived`): the same rule the archive view shows as its
/// list of missing fields, so a report and an archive can never disagree.
pub fn file_complete(file: &ChildRecord) -> bool {
    projections::archive::missing_fields(file).is_empty()
}

/// One counted child: its id, its facts with the file columns set (the event counters at
/// zero) and the days of the term at the school it is placed in.
#[derive(Debug, Clone)]
pub struct CountedChild {
    /// The child id.
    pub id: String,
    /// Placement and file flags; counters zero.
    pub facts: ChildFacts,
    /// The term's first day at the child's school.
    pub first: NaiveDate,
    /// The term's last day at the child's school.
    pub last: NaiveDate,
}

impl CountedChild {
    /// Whether `d` is a day of the child's term (rules §8.4).
    pub fn in_term(&self, d: NaiveDate) -> bool {
        self.first <= d && d <= self.last
    }
}

/// The children a term report counts, with the scope's schools.
#[derive(Debug, Clone)]
pub struct Roster {
    /// The term.
    pub term: TermId,
    /// The scope of the run.
    pub scope: Scope,
    /// The schools of the scope that defined the term, by id (each gets a total row).
    pub schools: Vec<String>,
    /// Schools of the county that defined no such term (left out, named on stderr).
    pub schools_without_term: Vec<String>,
    /// The counted children, in `World::children` order (by id).
    pub children: Vec<CountedChild>,
}

impl Roster {
    /// Decides who counts: the children whose file on the term's last day (of the school
    /// that file names) places them in a school of `scope`, and who are active on at least
    /// one day of that school's term. Reads their placement, file flags, pairing and
    /// drop-out from `world`.
    pub fn new(world: &World, scope: Scope, term: &str) -> Result<Roster, ReportError> {
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

        let mut children: Vec<CountedChild> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
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
                by_id.insert(child.id.clone(), children.len());
                children.push(CountedChild {
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
                let c = &mut children[ix];
                if !c.facts.paired
                    && p.active_days()
                        .overlaps(&DaySet::inclusive(c.first, c.last))
                {
                    c.facts.paired = true;
                }
            }
        }
        Ok(Roster {
            term: term_id,
            scope,
            schools: in_scope.into_keys().collect(),
            schools_without_term: without,
            children,
        })
    }
}
