//! The world: the registry folded from a timeline — schools with their terms and policies,
//! staff, children with their files and statuses, incidents, and pairings as day ranges
//! (rules §5–§6).
//!
//! This module owns the meaning of "active" (children, pairings, staff) and of "the policy in
//! force"; it must never count care events or score anyone (that is `scores` and the views).
//!
//! Decisions where the rules were silent are listed in docs/scores.md ("the world").

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use events::event::{ChildChanges, ChildRecord, ChildStatus, PairingRole, Role, TermId};
use events::time::local_date;
use events::{Event, Policy};

use crate::ProjectionError;
use crate::calendar::{DaySet, Period, Term};
use crate::timeline::Timeline;

static DEFAULT_POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

/// A registered school.
#[derive(Debug, Clone, PartialEq)]
pub struct School {
    /// The school id.
    pub id: String,
    /// The school's name.
    pub name: String,
    /// The county (县) the school is in.
    pub county: String,
    /// The township (乡镇) the school is in.
    pub township: String,
    /// Sorted by start date, then id. A term defined again replaces its dates.
    terms: Vec<Term>,
    /// Sorted by `effective_from`; among equal dates, log order (the later one wins).
    policies: Vec<(NaiveDate, Policy)>,
}

impl School {
    /// The school's terms, by start date.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// A term by id.
    pub fn term(&self, id: &TermId) -> Option<&Term> {
        self.terms.iter().find(|t| &t.id == id)
    }

    /// The adopted policies with their `effective_from`, by date (log order among equal dates).
    pub fn policies(&self) -> &[(NaiveDate, Policy)] {
        &self.policies
    }

    /// The policy in force on `d`: the last adopted with `effective_from ≤ d`, else the
    /// default ("四个一").
    pub fn policy_on(&self, d: NaiveDate) -> &Policy {
        let i = self.policies.partition_point(|(from, _)| *from <= d);
        match i {
            0 => &DEFAULT_POLICY,
            _ => &self.policies[i - 1].1,
        }
    }

    /// The policies in force on at least one day of `days`, in order of their start, each
    /// with the days it governs there. The default comes first when it governs any of them.
    pub fn policies_during(&self, days: &DaySet) -> Vec<(&Policy, DaySet)> {
        let mut out = Vec::new();
        let mut starts: Vec<(Option<NaiveDate>, &Policy)> = vec![(None, &*DEFAULT_POLICY)];
        starts.extend(self.policies.iter().map(|(d, p)| (Some(*d), p)));
        for (i, (from, p)) in starts.iter().enumerate() {
            let from = from.unwrap_or(NaiveDate::MIN);
            let until = starts
                .get(i + 1)
                .and_then(|(d, _)| *d)
                .unwrap_or(NaiveDate::MAX);
            let governed = DaySet::half_open(from, until).intersect(days);
            if !governed.is_empty() {
                out.push((*p, governed));
            }
        }
        out
    }

    /// The days of a period at this school.
    pub fn period_days(&self, period: &Period) -> Result<DaySet, ProjectionError> {
        period.days(&self.id, &self.terms)
    }
}

/// A staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct Staff {
    /// The staff id.
    pub id: String,
    /// The school id named by `staff_joined`.
    pub school: String,
    /// The staff member's name.
    pub name: String,
    /// The staff member's roles at the school.
    pub roles: Vec<Role>,
    /// Whether the staff member is a Party member (the seed rules pair them first).
    pub party_member: bool,
    /// The staff member's phone (personal).
    pub phone: String,
    /// Local date of `staff_joined.occurred_at`.
    pub joined_on: NaiveDate,
    /// `staff_left.on`, the earliest when several were recorded: from that day on they no
    /// longer count.
    pub left_on: Option<NaiveDate>,
}

impl Staff {
    /// Whether the staff member had not left by `d` (`d < left_on`).
    pub fn present_on(&self, d: NaiveDate) -> bool {
        self.left_on.is_none_or(|l| d < l)
    }
}

/// A status change of a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The day the status takes effect (`child_status_changed.on`).
    pub on: NaiveDate,
    /// The new status.
    pub status: ChildStatus,
    /// The event's log sequence number (orders changes on the same day).
    pub seq: u64,
    /// The free-text note on the change, if any.
    pub note: Option<String>,
}

/// A registered child.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// The child id.
    pub id: String,
    /// Local date of `child_registered.occurred_at`.
    pub registered_on: NaiveDate,
    /// The file as registered.
    pub registration: ChildRecord,
    /// `child_updated` changes, sorted by occurred time then log order.
    updates: Vec<(DateTime<Utc>, u64, ChildChanges)>,
    /// Sorted by `on`, then log order.
    statuses: Vec<StatusChange>,
    /// The days the child is active (rules §5.6).
    active: DaySet,
}

impl Child {
    /// The file as of the end of day `d`: the registration plus the changes that occurred by
    /// then, in occurred order (log order among equal times).
    pub fn file_on(&self, d: NaiveDate) -> ChildRecord {
        let mut r = self.registration.clone();
        for (at, _, c) in &self.updates {
            if local_date(*at) > d {
                break;
            }
            r.apply(c);
        }
        r
    }

    /// The file with every change applied.
    pub fn file_latest(&self) -> ChildRecord {
        let mut r = self.registration.clone();
        for (_, _, c) in &self.updates {
            r.apply(c);
        }
        r
    }

    /// The `child_updated` changes with when they occurred and their seq.
    pub fn updates(&self) -> &[(DateTime<Utc>, u64, ChildChanges)] {
        &self.updates
    }

    /// Status changes by `on` (log order among equal dates).
    pub fn statuses(&self) -> &[StatusChange] {
        &self.statuses
    }

    /// The status in force on `d` (latest change with `on ≤ d`; `None` before any).
    pub fn status_on(&self, d: NaiveDate) -> Option<ChildStatus> {
        let i = self.statuses.partition_point(|s| s.on <= d);
        i.checked_sub(1).map(|i| self.statuses[i].status)
    }

    /// The days the child is active.
    pub fn active_days(&self) -> &DaySet {
        &self.active
    }

    /// Whether the child is active on `d`.
    pub fn active_on(&self, d: NaiveDate) -> bool {
        self.active.contains(d)
    }

    fn compute_active(&mut self) {
        // Piecewise: active before any change, then as each date's last change says.
        let mut ranges = Vec::new();
        let mut from = Some(NaiveDate::MIN);
        let mut i = 0;
        while i < self.statuses.len() {
            let on = self.statuses[i].on;
            while i + 1 < self.statuses.len() && self.statuses[i + 1].on == on {
                i += 1;
            }
            let active = self.statuses[i].status.is_active();
            match (from, active) {
                (Some(f), false) => {
                    ranges.push((f, on));
                    from = None;
                }
                (None, true) => from = Some(on),
                _ => {}
            }
            i += 1;
        }
        if let Some(f) = from {
            ranges.push((f, NaiveDate::MAX));
        }
        self.active = DaySet::from_ranges(ranges).intersect(&DaySet::from_on(self.registered_on));
    }
}

/// One assignment of a pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The first day (`pairing_assigned.from`).
    pub from: NaiveDate,
    /// `mentor` (帮扶教师) or `proxy_parent` (代理家长).
    pub role: PairingRole,
    /// The `pairing_assigned` event's log sequence number: only ends recorded later close it.
    pub seq: u64,
    /// The `on` of the end that closes it, if any: the earliest `pairing_ended` of the pair
    /// recorded after it (higher seq) with `on ≥ from`. `until == from` is an empty range.
    pub until: Option<NaiveDate>,
}

/// A `pairing_ended` of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingEnd {
    /// `pairing_ended.on`: the first day the pairing no longer holds.
    pub on: NaiveDate,
    /// Its place in the log: it closes only assignments recorded before it.
    pub seq: u64,
}

/// A staff member paired with a child, over one or more ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairing {
    /// The staff id.
    pub staff: String,
    /// The child id.
    pub child: String,
    /// In `from` order (log order among equal dates).
    assignments: Vec<Assignment>,
    /// The `pairing_ended` events of the pair, by `on` (log order among equal dates).
    ends: Vec<PairingEnd>,
    /// Union of the assignments' ranges `[from, until)`.
    ranges: DaySet,
    /// `ranges` ∩ child active ∩ staff present: the days the pairing is active.
    active: DaySet,
}

impl Pairing {
    /// The assignments with the end that closes each.
    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }
    /// The ends recorded for the pair, by `on` (log order among equal dates).
    pub fn ends(&self) -> &[PairingEnd] {
        &self.ends
    }
    /// The days covered by an assignment, whatever the child's or staff's state.
    pub fn ranges(&self) -> &DaySet {
        &self.ranges
    }
    /// The days the pairing is active (rules §5.7).
    pub fn active_days(&self) -> &DaySet {
        &self.active
    }
    /// Whether the pairing is active on `d`.
    pub fn active_on(&self, d: NaiveDate) -> bool {
        self.active.contains(d)
    }
    /// The role of the assignment in force on `d` (the latest started on or before `d`).
    pub fn role_on(&self, d: NaiveDate) -> Option<PairingRole> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.from <= d && a.until.is_none_or(|u| d < u))
            .map(|a| a.role)
    }
}

/// The registry of a log prefix.
#[derive(Debug, Clone, Default)]
pub struct World {
    schools: BTreeMap<String, School>,
    staff: BTreeMap<String, Staff>,
    children: BTreeMap<String, Child>,
    /// Keyed by (staff, child).
    pairings: BTreeMap<(String, String), Pairing>,
    incidents: HashMap<String, String>,
}

impl World {
    /// Folds the registry events of a timeline.
    pub fn build(timeline: &Timeline) -> World {
        let mut w = World::default();
        let mut policies: BTreeMap<String, Vec<(NaiveDate, u64, Policy)>> = BTreeMap::new();
        let mut terms: BTreeMap<String, BTreeMap<TermId, Term>> = BTreeMap::new();
        for f in timeline.facts() {
            match &f.event {
                Event::SchoolRegistered {
                    school,
                    name,
                    county,
                    township,
                } => {
                    let s = w.schools.entry(school.clone()).or_insert_with(|| School {
                        id: school.clone(),
                        name: String::new(),
                        county: String::new(),
                        township: String::new(),
                        terms: Vec::new(),
                        policies: Vec::new(),
                    });
                    s.name = name.clone();
                    s.county = county.clone();
                    s.township = township.clone();
                }
                Event::TermDefined {
                    school,
                    term,
                    starts_on,
                    ends_on,
                } => {
                    terms.entry(school.clone()).or_default().insert(
                        term.clone(),
                        Term {
                            id: term.clone(),
                            starts_on: *starts_on,
                            ends_on: *ends_on,
                        },
                    );
                }
                Event::PolicyAdopted {
                    school,
                    effective_from,
                    policy,
                } => policies.entry(school.clone()).or_default().push((
                    *effective_from,
                    f.seq,
                    policy.clone(),
                )),
                Event::StaffJoined {
                    staff,
                    school,
                    name,
                    roles,
                    party_member,
                    phone,
                } => {
                    let joined_on = f.date();
                    let left_on = w.staff.get(staff).and_then(|s| s.left_on);
                    let first_join = w.staff.get(staff).map(|s| s.joined_on);
                    w.staff.insert(
                        staff.clone(),
                        Staff {
                            id: staff.clone(),
                            school: school.clone(),
                            name: name.clone(),
                            roles: roles.clone(),
                            party_member: *party_member,
                            phone: phone.clone(),
                            joined_on: first_join.map_or(joined_on, |j| j.min(joined_on)),
                            left_on,
                        },
                    );
                }
                Event::StaffLeft { staff, on, .. } => {
                    // "Has not left (d < staff_left.on)" fails from the first leaving on: a
                    // second `staff_left` never moves the date later (a changed date is a
                    // correction, which rewrites the event itself).
                    if let Some(s) = w.staff.get_mut(staff) {
                        s.left_on = Some(s.left_on.map_or(*on, |l| l.min(*on)));
                    }
                }
                Event::ChildRegistered(r) => match w.children.get_mut(&r.child) {
                    // A second registration of the same child reads as an update of every
                    // field at its occurred time; the first registration date stands.
                    Some(c) => c.updates.push((f.occurred_at, f.seq, full_changes(r))),
                    None => {
                        w.children.insert(
                            r.child.clone(),
                            Child {
                                id: r.child.clone(),
                                registered_on: f.date(),
                                registration: (**r).clone(),
                                updates: Vec::new(),
                                statuses: Vec::new(),
                                active: DaySet::empty(),
                            },
                        );
                    }
                },
                Event::ChildUpdated { child, changes } => {
                    if let Some(c) = w.children.get_mut(child) {
                        c.updates.push((f.occurred_at, f.seq, (**changes).clone()));
                    }
                }
                Event::ChildStatusChanged {
                    child,
                    status,
                    on,
                    note,
                } => {
                    if let Some(c) = w.children.get_mut(child) {
                        c.statuses.push(StatusChange {
                            on: *on,
                            status: *status,
                            seq: f.seq,
                            note: note.clone(),
                        });
                    }
                }
                Event::PairingAssigned {
                    staff,
                    child,
                    role,
                    from,
                } => w.pair_mut(staff, child).assignments.push(Assignment {
                    from: *from,
                    role: *role,
                    seq: f.seq,
                    until: None,
                }),
                Event::PairingEnded {
                    staff, child, on, ..
                } => w.pair_mut(staff, child).ends.push(PairingEnd {
                    on: *on,
                    seq: f.seq,
                }),
                Event::IncidentReported {
                    incident, child, ..
                } => {
                    w.incidents.insert(incident.clone(), child.clone());
                }
                _ => {}
            }
        }
        for (school, mut ps) in policies {
            ps.sort_by_key(|(d, seq, _)| (*d, *seq));
            if let Some(s) = w.schools.get_mut(&school) {
                s.policies = ps.into_iter().map(|(d, _, p)| (d, p)).collect();
            }
        }
        for (school, ts) in terms {
            if let Some(s) = w.schools.get_mut(&school) {
                s.terms = ts.into_values().collect();
                s.terms
                    .sort_by(|a, b| (a.starts_on, &a.id).cmp(&(b.starts_on, &b.id)));
            }
        }
        for c in w.children.values_mut() {
            c.updates.sort_by_key(|(at, seq, _)| (*at, *seq));
            c.statuses.sort_by_key(|s| (s.on, s.seq));
            c.compute_active();
        }
        let (staff, children) = (&w.staff, &w.children);
        for p in w.pairings.values_mut() {
            p.assignments.sort_by_key(|a| (a.from, a.seq));
            p.ends.sort_unstable_by_key(|e| (e.on, e.seq));
            // An end is the end of the assignments of its pair recorded before it (references
            // are checked in log order) that started on or before its `on`; each assignment
            // runs to the earliest such end. An end on the start day leaves the range empty
            // (`from ≤ d < on`); an assignment recorded after an end is not closed by it.
            for a in &mut p.assignments {
                a.until = p
                    .ends
                    .iter()
                    .find(|e| e.seq > a.seq && e.on >= a.from)
                    .map(|e| e.on);
            }
            p.ranges = DaySet::from_ranges(
                p.assignments
                    .iter()
                    .map(|a| (a.from, a.until.unwrap_or(NaiveDate::MAX))),
            );
            let child_active = children
                .get(&p.child)
                .map_or_else(DaySet::empty, |c| c.active.clone());
            let staff_present = match staff.get(&p.staff) {
                Some(s) => s
                    .left_on
                    .map_or_else(|| DaySet::from_on(NaiveDate::MIN), DaySet::before),
                None => DaySet::empty(),
            };
            p.active = p.ranges.intersect(&child_active).intersect(&staff_present);
        }
        w
    }

    fn pair_mut(&mut self, staff: &str, child: &str) -> &mut Pairing {
        self.pairings
            .entry((staff.to_owned(), child.to_owned()))
            .or_insert_with(|| Pairing {
                staff: staff.to_owned(),
                child: child.to_owned(),
                assignments: Vec::new(),
                ends: Vec::new(),
                ranges: DaySet::empty(),
                active: DaySet::empty(),
            })
    }

    /// A school by id.
    pub fn school(&self, id: &str) -> Option<&School> {
        self.schools.get(id)
    }

    /// A school by id, or an error naming it.
    pub fn require_school(&self, id: &str) -> Result<&School, ProjectionError> {
        self.school(id)
            .ok_or_else(|| ProjectionError::UnknownSchool {
                school: id.to_owned(),
            })
    }

    /// Every school, by id.
    pub fn schools(&self) -> impl Iterator<Item = &School> {
        self.schools.values()
    }

    /// The policy in force at a school on `d` (the default for an unknown school or before
    /// its first `effective_from`).
    pub fn policy_on(&self, school: &str, d: NaiveDate) -> &Policy {
        match self.schools.get(school) {
            Some(s) => s.policy_on(d),
            None => &DEFAULT_POLICY,
        }
    }

    /// A staff member by id.
    pub fn staff(&self, id: &str) -> Option<&Staff> {
        self.staff.get(id)
    }

    /// Every staff member, by id.
    pub fn all_staff(&self) -> impl Iterator<Item = &Staff> {
        self.staff.values()
    }

    /// The staff of a school, by id.
    pub fn staff_of<'a>(&'a self, school: &'a str) -> impl Iterator<Item = &'a Staff> + 'a {
        self.staff.values().filter(move |s| s.school == school)
    }

    /// A child by id.
    pub fn child(&self, id: &str) -> Option<&Child> {
        self.children.get(id)
    }

    /// Every child, by id.
    pub fn children(&self) -> impl Iterator<Item = &Child> {
        self.children.values()
    }

    /// Whether the child is active on `d` (false for an unknown child).
    pub fn active_on(&self, child: &str, d: NaiveDate) -> bool {
        self.children.get(child).is_some_and(|c| c.active_on(d))
    }

    /// The pairing of a staff member with a child.
    pub fn pairing(&self, staff: &str, child: &str) -> Option<&Pairing> {
        self.pairings.get(&(staff.to_owned(), child.to_owned()))
    }

    /// Every pairing, by (staff, child).
    pub fn pairings(&self) -> impl Iterator<Item = &Pairing> {
        self.pairings.values()
    }

    /// The pairings of a staff member, by child.
    pub fn pairings_of_staff<'a>(
        &'a self,
        staff: &'a str,
    ) -> impl Iterator<Item = &'a Pairing> + 'a {
        self.pairings
            .range((staff.to_owned(), String::new())..)
            .take_while(move |((s, _), _)| s == staff)
            .map(|(_, p)| p)
    }

    /// The pairings of a child, by staff.
    pub fn pairings_of_child<'a>(
        &'a self,
        child: &'a str,
    ) -> impl Iterator<Item = &'a Pairing> + 'a {
        self.pairings.values().filter(move |p| p.child == child)
    }

    /// Whether the pairing is active on `d`: an assignment covers `d`, the child is active
    /// and the staff member has not left.
    pub fn pairing_active_on(&self, staff: &str, child: &str, d: NaiveDate) -> bool {
        self.pairing(staff, child).is_some_and(|p| p.active_on(d))
    }

    /// The child an incident is about.
    pub fn incident_child(&self, incident: &str) -> Option<&str> {
        self.incidents.get(incident).map(String::as_str)
    }

    /// The children a care event counts for: its `child`, each distinct child of an
    /// `activity`, or the child of an `incident_notified`'s incident.
    pub fn event_children<'a>(&'a self, event: &'a Event) -> Vec<&'a str> {
        match event {
            Event::IncidentNotified { incident, .. } => {
                self.incident_child(incident).into_iter().collect()
            }
            Event::ActivityHeld { children, .. } => {
                let mut v: Vec<&str> = children.iter().map(String::as_str).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            e => e.children().iter().map(String::as_str).collect(),
        }
    }
}

/// The schools the child files of a timeline name, as corrected, sorted and without
/// repeats: the school of every effective `child_registered` and of every `child_updated`
/// that changes it. A single child's views read the registry events of these schools only,
/// so a move between schools, or a corrected school, keeps both schools' registries in view.
///
/// The timeline has applied amendments already, so a correction of a registration's school
/// is followed without a special case.
pub fn schools_named(timeline: &Timeline) -> Vec<String> {
    let mut schools: Vec<String> = timeline
        .facts()
        .iter()
        .filter_map(|f| match &f.event {
            Event::ChildRegistered(r) => Some(r.school.clone()),
            Event::ChildUpdated { changes, .. } => changes.school.clone(),
            _ => None,
        })
        .collect();
    schools.sort();
    schools.dedup();
    schools
}

/// Every field of a registration as changes (for a repeated `child_registered`).
fn full_changes(r: &ChildRecord) -> ChildChanges {
    ChildChanges {
        school: Some(r.school.clone()),
        grade: Some(r.grade),
        class: Some(r.class),
        name: Some(r.name.clone()),
        gender: Some(r.gender),
        birth_date: Some(r.birth_date),
        boarding: Some(r.boarding),
        address: Some(r.address.clone()),
        left_behind_type: Some(r.left_behind_type),
        hardship: Some(r.hardship.clone()),
        focus: Some(r.focus.clone()),
        parents: Some(r.parents.clone()),
        guardian: Some(r.guardian.clone()),
    }
}
