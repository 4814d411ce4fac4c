//! The polars term reporter (rules §8): the default computation of `report term`.
//!
//! The facts go in as three frames (`FactFrame`): the **events** about a child (child, kind,
//! local day, aid in fen), the **incident reports** (child, day, incident, when it happened)
//! and the **notifications** (incident, party, instant); a child is an integer code there, so
//! millions of events carry no string and join on integers. With them the **children frame**
//! (one row per child `roster` counts: placement, term days, file flags). Everything after
//! that is polars lazy: an inner join of events to children keeps the events about counted
//! children, a filter keeps the days of each child's term, a `group_by(child)` counts them per
//! kind, the incidents in term are joined to the policy in force and to the earliest
//! notification per party for escalation on time, and `table::aggregate` sums the per-child
//! frame into class, school and county rows.
//!
//! It owns the facts frame's columns and those queries. It must never decide who counts
//! (`roster`), apply an amendment (the facts come effective, from `projections::Timeline` or
//! a read plan) or re-derive a projection rule (which policy governs which day comes from
//! `projections::world::School::policies_during`); and never carry a name, phone, address or
//! note — the frames hold ids, days, amounts and instants only. `fold` is the reference it is
//! tested against (reports/tests/it/differential.rs), byte for byte on every output.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use events::event::NotifiedParty;
use events::row::{Detail, Row};
use events::time::local_day_number;
use events::{Event, EventKind};
use polars::prelude::*;
use projections::{DaySet, Fact, Timeline, World};
use rustc_hash::FxHashMap as HashMap;

use crate::error::ReportError;
use crate::facts::CHILD_COUNTS;
use crate::report::{Scope, TermReport};
use crate::roster::Roster;
use crate::table::{Totals, aggregate};

/// Whether a term report reads events of this kind: the seven counted interactions, aid,
/// incident reports and their notifications. Every other kind is left out of the facts frame.
pub fn counted_by_term_report(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::TalkHeld
            | EventKind::HomeVisited
            | EventKind::ParentCalled
            | EventKind::FamilyCallArranged
            | EventKind::LetterWritten
            | EventKind::WarmthVisited
            | EventKind::CounselingHeld
            | EventKind::AidGranted
            | EventKind::IncidentReported
            | EventKind::IncidentNotified
    )
}

/// The per-child event counters, each with the event kind it counts, in `CHILD_COUNTS` order.
const EVENT_COUNTS: [(&str, EventKind); 7] = [
    ("talks", EventKind::TalkHeld),
    ("parent_calls", EventKind::ParentCalled),
    ("family_calls", EventKind::FamilyCallArranged),
    ("letters", EventKind::LetterWritten),
    ("warmth_visits", EventKind::WarmthVisited),
    ("counseling_sessions", EventKind::CounselingHeld),
    ("incidents", EventKind::IncidentReported),
];

/// An event kind as the frames hold it (`UInt32`): its discriminant, the declaration order
/// of the fieldless `EventKind`. A code within one run's frames, never stored or printed.
pub(crate) fn kind_code(kind: EventKind) -> u32 {
    kind as u32
}

/// A day as the frames hold it: days since 0001-01-01 (`Int32`), compared, never printed.
fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

/// An instant as the frames hold it: nanoseconds since the epoch (`Int64`), so that a delay
/// compares exactly with a limit in minutes.
fn nanos(t: DateTime<Utc>, id: &str, field: &'static str) -> Result<i64, ReportError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| ReportError::InstantOutOfRange {
            id: id.to_owned(),
            field,
        })
}

/// The `party` column of a notification; `None` for the police, whom the report does not
/// count (not required, rules §8.7).
fn party_column(p: NotifiedParty) -> Option<&'static str> {
    match p {
        NotifiedParty::Guardian => Some("guardian"),
        NotifiedParty::Parents => Some("parents"),
        NotifiedParty::Bureau => Some("bureau"),
        NotifiedParty::Police => None,
    }
}

/// One event's values, as [`FactFrame::push_values`] appends them.
enum Values<'a> {
    /// A counted interaction, aid (`aid_fen` > 0 only for aid) or an incident report
    /// (`incident` set, with the instant it happened in nanoseconds).
    Event {
        child: &'a str,
        kind: EventKind,
        occurred_at: DateTime<Utc>,
        aid_fen: i64,
        incident: Option<(&'a str, DateTime<Utc>, i64)>,
    },
    /// A notification of an incident to a party the report counts.
    Notified {
        incident: &'a str,
        party: &'static str,
        notified_ns: i64,
    },
}

/// The facts frame under construction: every effective event a term report reads
/// (`counted_by_term_report`), in three frames column by column — the events about a child
/// (`child`, `kind`, `day`, `aid_fen`), the incident reports again with their incident and
/// when it happened, and the notifications. A child is held as its code (`codes`: the order
/// in which children were first seen), so the frames carry no string per event and the join
/// to the children is on integers. Invariant: the columns of each frame have the same
/// length, and every code is a value of `codes`, which is why the fields are private. Fed in
/// any order: the report does not depend on it.
#[derive(Debug, Default)]
pub struct FactFrame {
    codes: HashMap<Box<str>, u64>,
    child: Vec<u64>,
    kind: Vec<u32>,
    day: Vec<i32>,
    aid_fen: Vec<i64>,
    incident_child: Vec<u64>,
    incident_day: Vec<i32>,
    incident: Vec<String>,
    happened_ns: Vec<i64>,
    happened_day: Vec<i32>,
    notified_incident: Vec<String>,
    party: Vec<&'static str>,
    notified_ns: Vec<i64>,
    /// Once set (`keep_days`), the first and last day of the events and incident reports
    /// pushed from then on.
    days: Option<(i32, i32)>,
}

impl FactFrame {
    /// An empty frame.
    pub fn new() -> FactFrame {
        FactFrame::default()
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.kind.len() + self.party.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// From now on, leaves out each event and incident report that happened on a day outside
    /// `days` (notifications are kept: they meet their incident by its id, not by day). Given
    /// [`term_days`] of the report it feeds, the report is the same: its plan drops those
    /// facts before it joins them to the children, and this only spares pushing them. A fact
    /// that cannot be pushed still fails as before (the check of its instants comes first).
    pub fn keep_days(&mut self, (first, last): (NaiveDate, NaiveDate)) {
        self.days = Some((day_number(first), day_number(last)));
    }

    /// Every fact of a timeline (its effective events as of its time).
    pub fn of_timeline(timeline: &Timeline) -> Result<FactFrame, ReportError> {
        let mut frame = FactFrame::new();
        for f in timeline.facts() {
            frame.push(f)?;
        }
        Ok(frame)
    }

    /// Adds one effective event; kinds the report does not read, and police notifications
    /// (not required, rules §8.7), are skipped.
    pub fn push(&mut self, fact: &Fact) -> Result<(), ReportError> {
        let kind = fact.event.kind();
        if !counted_by_term_report(kind) {
            return Ok(());
        }
        let values = match &fact.event {
            Event::AidGranted {
                child, amount_yuan, ..
            } => Values::Event {
                child,
                kind,
                occurred_at: fact.occurred_at,
                aid_fen: amount_yuan.fen(),
                incident: None,
            },
            Event::IncidentReported {
                child,
                incident,
                happened_at,
                ..
            } => Values::Event {
                child,
                kind,
                occurred_at: fact.occurred_at,
                aid_fen: 0,
                incident: Some((
                    incident,
                    *happened_at,
                    nanos(*happened_at, &fact.id, "happened_at")?,
                )),
            },
            Event::IncidentNotified {
                incident,
                party,
                notified_at,
                ..
            } => {
                let Some(party) = party_column(*party) else {
                    return Ok(());
                };
                Values::Notified {
                    incident,
                    party,
                    notified_ns: nanos(*notified_at, &fact.id, "notified_at")?,
                }
            }
            // The seven counted interactions (`counted_by_term_report`): one child each.
            event => {
                let Some(child) = event.children().first() else {
                    return Ok(());
                };
                Values::Event {
                    child,
                    kind,
                    occurred_at: fact.occurred_at,
                    aid_fen: 0,
                    incident: None,
                }
            }
        };
        self.push_values(values);
        Ok(())
    }

    /// Adds one fact row (`events::row`) of an event no amendment touches, as [`FactFrame::push`]
    /// adds the same event as a fact (the differential tests hold the two to the same frame).
    /// `false`, and nothing added, when an instant of the row is outside the frame's range,
    /// or the row names no child where its event names one: the caller then pushes the
    /// event's fact, whose error names the event.
    pub fn push_row(&mut self, row: &Row<'_>) -> bool {
        if !counted_by_term_report(row.kind) {
            return true;
        }
        let values = match row.detail {
            Detail::Notified {
                incident,
                party,
                notified_at,
            } => {
                let Some(party) = party_column(party) else {
                    return true;
                };
                let Some(notified_ns) = notified_at.timestamp_nanos_opt() else {
                    return false;
                };
                Values::Notified {
                    incident,
                    party,
                    notified_ns,
                }
            }
            detail => {
                let Some(child) = row.child() else {
                    return false;
                };
                let (aid_fen, incident) = match detail {
                    Detail::Aid { fen } => (fen, None),
                    Detail::Incident {
                        incident,
                        happened_at,
                    } => match happened_at.timestamp_nanos_opt() {
                        Some(ns) => (0, Some((incident, happened_at, ns))),
                        None => return false,
                    },
                    _ => (0, None),
                };
                Values::Event {
                    child,
                    kind: row.kind,
                    occurred_at: row.occurred_at,
                    aid_fen,
                    incident,
                }
            }
        };
        self.push_values(values);
        true
    }

    /// The code of a child, given when first seen.
    fn code(&mut self, child: &str) -> u64 {
        if let Some(&c) = self.codes.get(child) {
            return c;
        }
        // usize is at most 64 bits on every target Rust supports.
        let c = self.codes.len() as u64;
        self.codes.insert(child.into(), c);
        c
    }

    /// Appends one event's values to every column of its frame: the one place the columns
    /// grow, so a fact and a row of the same event add the same values.
    fn push_values(&mut self, v: Values<'_>) {
        match v {
            Values::Event {
                child,
                kind,
                occurred_at,
                aid_fen,
                incident,
            } => {
                let day = local_day_number(occurred_at);
                if self
                    .days
                    .is_some_and(|(first, last)| day < first || day > last)
                {
                    return;
                }
                let code = self.code(child);
                self.child.push(code);
                self.kind.push(kind_code(kind));
                self.day.push(day);
                self.aid_fen.push(aid_fen);
                if let Some((incident, happened, happened_ns)) = incident {
                    self.incident_child.push(code);
                    self.incident_day.push(day);
                    self.incident.push(incident.to_owned());
                    self.happened_ns.push(happened_ns);
                    self.happened_day.push(local_day_number(happened));
                }
            }
            Values::Notified {
                incident,
                party,
                notified_ns,
            } => {
                self.notified_incident.push(incident.to_owned());
                self.party.push(party);
                self.notified_ns.push(notified_ns);
            }
        }
    }

    /// The frames: events (`child` u64 code, `kind` u32 code, `day` i32, `aid_fen` i64, 0 but
    /// for aid), incidents (`child`, `day`, `incident` str, `happened_ns`, `happened_day`)
    /// and notifications (`incident`, `party`: guardian / parents / bureau, `notified_ns`),
    /// with the codes of the children seen.
    fn into_frames(self) -> Result<Frames, ReportError> {
        let events = DataFrame::new(
            self.kind.len(),
            vec![
                Column::new("child".into(), self.child),
                Column::new("kind".into(), self.kind),
                Column::new("day".into(), self.day),
                Column::new("aid_fen".into(), self.aid_fen),
            ],
        )
        .map_err(ReportError::polars("building the events frame"))?;
        let incidents = DataFrame::new(
            self.incident.len(),
            vec![
                Column::new("child".into(), self.incident_child),
                Column::new("day".into(), self.incident_day),
                Column::new("incident".into(), self.incident),
                Column::new("happened_ns".into(), self.happened_ns),
                Column::new("happened_day".into(), self.happened_day),
            ],
        )
        .map_err(ReportError::polars("building the incidents frame"))?;
        let notified = DataFrame::new(
            self.party.len(),
            vec![
                Column::new("incident".into(), self.notified_incident),
                Column::new("party".into(), self.party),
                Column::new("notified_ns".into(), self.notified_ns),
            ],
        )
        .map_err(ReportError::polars("building the notifications frame"))?;
        Ok(Frames {
            codes: self.codes,
            events,
            incidents,
            notified,
        })
    }
}

/// A [`FactFrame`] made polars frames.
struct Frames {
    codes: HashMap<Box<str>, u64>,
    events: DataFrame,
    incidents: DataFrame,
    notified: DataFrame,
}

/// The children frame of a roster: `child` (the code of the facts frame's `codes`; a child
/// without events gets a code no event holds), `school`, `grade` (i32), `class` (i64),
/// `first` and `last` (the term's days, i32) and the file flags of `CHILD_COUNTS` (0/1, i64).
fn children_frame(
    roster: &Roster,
    codes: &HashMap<Box<str>, u64>,
) -> Result<DataFrame, ReportError> {
    let n = roster.children.len();
    // Codes past every code the facts gave (usize is at most 64 bits; the codes count the
    // children seen and counted, far from u64's end).
    let mut fresh = codes.len() as u64;
    let mut child = Vec::with_capacity(n);
    let mut school = Vec::with_capacity(n);
    let mut grade = Vec::with_capacity(n);
    let mut class = Vec::with_capacity(n);
    let mut first = Vec::with_capacity(n);
    let mut last = Vec::with_capacity(n);
    let mut flags: [Vec<i64>; FILE_FLAGS.len()] = Default::default();
    for c in &roster.children {
        let f = &c.facts;
        child.push(match codes.get(c.id.as_str()) {
            Some(&code) => code,
            None => {
                let code = fresh;
                fresh += 1;
                code
            }
        });
        school.push(f.school.as_str());
        grade.push(i32::from(f.grade));
        class.push(i64::from(f.class));
        first.push(day_number(c.first));
        last.push(day_number(c.last));
        let values = [
            f.both_parents_away,
            f.one_parent_away,
            f.grandparent_guardian,
            f.boarding,
            f.hardship,
            f.archived,
            f.paired,
            f.dropped_out,
        ];
        for (col, v) in flags.iter_mut().zip(values) {
            col.push(i64::from(v));
        }
    }
    let mut columns = vec![
        Column::new("child".into(), child),
        Column::new("school".into(), school),
        Column::new("grade".into(), grade),
        Column::new("class".into(), class),
        Column::new("first".into(), first),
        Column::new("last".into(), last),
    ];
    for (name, values) in FILE_FLAGS.iter().zip(flags) {
        columns.push(Column::new((*name).into(), values));
    }
    DataFrame::new(n, columns).map_err(ReportError::polars("building the children frame"))
}

/// The per-child columns read from the file and the roster (not from events).
const FILE_FLAGS: [&str; 8] = [
    "both_parents_away",
    "one_parent_away",
    "grandparent_guardian",
    "boarding",
    "hardship",
    "archived",
    "paired",
    "dropped_out",
];

/// The policies of the scope's schools as a frame: `school`, the days each governs there as
/// half-open ranges `from ≤ day < until` (i32), and its three escalation limits in
/// nanoseconds. Which policy governs which day is `projections`' rule
/// (`School::policies_during` over every day): the ranges of a school are disjoint and cover
/// the calendar, so each incident day meets exactly one row.
fn policies_frame(world: &World, schools: &[String]) -> Result<DataFrame, ReportError> {
    const MINUTE_NS: i64 = 60_000_000_000;
    let every_day = DaySet::half_open(NaiveDate::MIN, NaiveDate::MAX);
    let mut school = Vec::new();
    let mut from = Vec::new();
    let mut until = Vec::new();
    let mut limits: [Vec<i64>; 3] = Default::default();
    for id in schools {
        let Some(s) = world.school(id) else {
            continue;
        };
        for (policy, days) in s.policies_during(&every_day) {
            let e = &policy.escalation;
            for &(a, b) in days.ranges() {
                school.push(id.as_str());
                from.push(day_number(a));
                until.push(day_number(b));
                for (col, minutes) in
                    limits
                        .iter_mut()
                        .zip([e.guardian_minutes, e.parents_minutes, e.bureau_minutes])
                {
                    col.push(i64::from(minutes) * MINUTE_NS);
                }
            }
        }
    }
    let [g, p, b] = limits;
    DataFrame::new(
        school.len(),
        vec![
            Column::new("school".into(), school),
            Column::new("from".into(), from),
            Column::new("until".into(), until),
            Column::new("guardian_limit".into(), g),
            Column::new("parents_limit".into(), p),
            Column::new("bureau_limit".into(), b),
        ],
    )
    .map_err(ReportError::polars("building the policies frame"))
}

fn is_kind(kind: EventKind) -> Expr {
    col("kind").eq(lit(kind_code(kind)))
}

/// Whether a party was told in time: notified, and `notified − happened ≤ limit` (a
/// notification before `happened_at` is in time, rules §8.7).
fn told_in_time(party: &str) -> Expr {
    col(party)
        .is_not_null()
        .and((col(party) - col("happened_ns")).lt_eq(col(format!("{party}_limit").as_str())))
}

/// The term report of `scope` for `term` by polars, from a timeline and its world (both built
/// as of the same time). Equal, byte for byte in every output, to
/// [`crate::fold::term_statistics_folded`].
pub fn term_statistics(
    timeline: &Timeline,
    world: &World,
    scope: Scope,
    term: &str,
) -> Result<TermReport, ReportError> {
    term_report(world, FactFrame::of_timeline(timeline)?, scope, term)
}

/// The first and last day of the terms of every child `roster` counts: a fact on any other
/// day counts for no one in its report. `None` when it counts no child.
pub fn term_days(roster: &Roster) -> Option<(NaiveDate, NaiveDate)> {
    roster
        .children
        .iter()
        .map(|c| (c.first, c.last))
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// The term report of `scope` for `term` by polars, from the world and the facts frame of
/// the same as-of time. `facts` may hold any events of any schools: the join to the counted
/// children keeps what the report reads.
pub fn term_report(
    world: &World,
    facts: FactFrame,
    scope: Scope,
    term: &str,
) -> Result<TermReport, ReportError> {
    term_report_of(world, facts, Roster::new(world, scope, term)?)
}

/// [`term_report`] with its roster made already: `roster` must be `Roster::new` of `world`
/// (the county's read makes it on the thread that folds the world, to learn the term's
/// days while the rows are read).
pub fn term_report_of(
    world: &World,
    facts: FactFrame,
    roster: Roster,
) -> Result<TermReport, ReportError> {
    let frames = facts.into_frames()?;
    let children = children_frame(&roster, &frames.codes)?.lazy();
    let policies = policies_frame(world, &roster.schools)?.lazy();

    // The days of every counted child's term lie within these: a fact outside them meets no
    // child's term, so it is dropped before the join to the children (a county's year holds
    // both terms' facts; the join's own filter below still decides per child). With no child
    // counted, the join keeps nothing anyway.
    let within_term_days = |lf: LazyFrame| match term_days(&roster) {
        Some((first, last)) => lf.filter(
            col("day")
                .gt_eq(lit(day_number(first)))
                .and(col("day").lt_eq(lit(day_number(last)))),
        ),
        None => lf,
    };
    // Events about counted children, on a day of their term (rules §8.4).
    let of_children_in_term = |lf: LazyFrame| {
        within_term_days(lf)
            .inner_join(
                children
                    .clone()
                    .select([col("child"), col("school"), col("first"), col("last")]),
                col("child"),
                col("child"),
            )
            .filter(
                col("day")
                    .gt_eq(col("first"))
                    .and(col("day").lt_eq(col("last"))),
            )
    };
    let in_term = of_children_in_term(frames.events.lazy());

    let mut per_kind: Vec<Expr> = EVENT_COUNTS
        .iter()
        .map(|(name, kind)| is_kind(*kind).cast(DataType::Int64).sum().alias(*name))
        .collect();
    per_kind.push(
        is_kind(EventKind::HomeVisited)
            .cast(DataType::Int64)
            .sum()
            .alias("home_visits"),
    );
    per_kind.push(
        when(is_kind(EventKind::AidGranted))
            .then(col("aid_fen"))
            .otherwise(lit(0i64))
            .sum()
            .alias("aid_fen"),
    );
    let counts = in_term.clone().group_by([col("child")]).agg(per_kind);

    // Escalation (rules §8.7): each incident in term, the policy in force at the child's
    // school on the day it happened, and the earliest notification of each party.
    let incidents = of_children_in_term(frames.incidents.lazy())
        .select([
            col("child"),
            col("school"),
            col("incident"),
            col("happened_ns"),
            col("happened_day"),
        ])
        .with_row_index("row", None);
    let limits = incidents
        .clone()
        .select([col("row"), col("school"), col("happened_day")])
        .inner_join(policies, col("school"), col("school"))
        .filter(
            col("from")
                .lt_eq(col("happened_day"))
                .and(col("happened_day").lt(col("until"))),
        )
        .select([
            col("row"),
            col("guardian_limit"),
            col("parents_limit"),
            col("bureau_limit"),
        ]);
    let earliest = frames.notified.lazy().group_by([col("incident")]).agg(
        ["guardian", "parents", "bureau"].map(|p| {
            col("notified_ns")
                .filter(col("party").eq(lit(p)))
                .min()
                .alias(p)
        }),
    );
    let escalated = incidents
        .left_join(limits, col("row"), col("row"))
        .left_join(earliest, col("incident"), col("incident"))
        .group_by([col("child")])
        .agg([told_in_time("guardian")
            .and(told_in_time("parents"))
            .and(told_in_time("bureau"))
            .fill_null(lit(false))
            .cast(DataType::Int64)
            .sum()
            .alias("escalated_on_time")]);

    // One row per counted child: its file flags and its counters (0 without events).
    let counters: Vec<&str> = EVENT_COUNTS
        .iter()
        .map(|(n, _)| *n)
        .chain(["home_visits", "aid_fen", "escalated_on_time"])
        .collect();
    let mut per_child: Vec<Expr> = vec![col("school"), col("grade"), col("class")];
    for name in CHILD_COUNTS {
        per_child.push(match name {
            "talked" => col("talks").gt(lit(0i64)).cast(DataType::Int64).alias(name),
            "home_visited" => col("home_visits")
                .gt(lit(0i64))
                .cast(DataType::Int64)
                .alias(name),
            _ => col(name),
        });
    }
    let per_child = children
        .left_join(counts, col("child"), col("child"))
        .left_join(escalated, col("child"), col("child"))
        .with_columns(
            counters
                .iter()
                .map(|c| col(*c).fill_null(lit(0i64)))
                .collect::<Vec<_>>(),
        )
        .select(per_child);

    let totals = match roster.scope {
        Scope::School(_) => Totals::Schools,
        Scope::County(_) => Totals::SchoolsAndCounty,
    };
    let frame = aggregate(per_child, &roster.schools, totals)?;
    Ok(TermReport::new(
        roster.term.as_str().to_owned(),
        roster.scope,
        frame,
        roster.schools_without_term,
    ))
}
