//! The per-child facts of a term report (rules §8) and their column-wise frame.
//!
//! This module owns the row type `ChildFacts` (one counted child, every field of §8 that is
//! read per child) and `ChildColumns`, which turns a stream of those facts into a polars
//! `DataFrame` one column `Vec` at a time (docs/stack.md, polars: never row-wise). It must never
//! decide who counts (that is `roster`) or what an event means (`fold`, `columnar`), and never hold a name, phone,
//! address or note: only ids, the placement and counters.

use polars::prelude::*;

use crate::error::ReportError;

/// What one counted child contributes to a term report. Flags are 0/1 counts once in a frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildFacts {
    /// The school of the child's file on the term's last day.
    pub school: String,
    /// The grade of that file.
    pub grade: u8,
    /// The class of that file.
    pub class: u32,
    /// `left_behind_type` of the file is both parents away (双亲外出, rules §8.3).
    pub both_parents_away: bool,
    /// `left_behind_type` of the file is one parent away (单亲外出).
    pub one_parent_away: bool,
    /// The guardian is a paternal or maternal grandparent (隔代抚养).
    pub grandparent_guardian: bool,
    /// The file says the child boards at school (寄宿).
    pub boarding: bool,
    /// The file lists at least one hardship (困难).
    pub hardship: bool,
    /// The file is complete (§8 `archived`).
    pub archived: bool,
    /// A pairing was active on at least one day of the term.
    pub paired: bool,
    /// `talk_held` events about the child in the term (rules §8.4), by anyone.
    pub talks: u32,
    /// `home_visit` events about the child in the term, by anyone.
    pub home_visits: u32,
    /// `parent_call` events about the child in the term.
    pub parent_calls: u32,
    /// `family_call` events (亲情电话) about the child in the term.
    pub family_calls: u32,
    /// `letter` events about the child in the term.
    pub letters: u32,
    /// `warmth_visit` events (送温暖) about the child in the term (a count, not aid).
    pub warmth_visits: u32,
    /// `counseling_session` events about the child in the term (a count only).
    pub counseling_sessions: u32,
    /// The sum of `aid_granted` in the term, in fen (exact).
    pub aid_fen: i64,
    /// A `dropped_out` status change took effect on a day of the term.
    pub dropped_out: bool,
    /// `incident_reported` events about the child in the term, by their `occurred_at` day.
    pub incidents: u32,
    /// Incidents whose guardian, parents and bureau were each told in time.
    pub escalated_on_time: u32,
}

/// The count columns of the per-child frame, summed by the aggregation, in report order.
/// `talked` and `home_visited` are the 0/1 flags derived from `talks` and `home_visits`.
pub const CHILD_COUNTS: [&str; 19] = [
    "both_parents_away",
    "one_parent_away",
    "grandparent_guardian",
    "boarding",
    "hardship",
    "archived",
    "paired",
    "talked",
    "home_visited",
    "talks",
    "parent_calls",
    "family_calls",
    "letters",
    "warmth_visits",
    "counseling_sessions",
    "aid_fen",
    "dropped_out",
    "incidents",
    "escalated_on_time",
];

/// Per-column buffers for the per-child frame. Invariant: every `Vec` has the same length
/// (one entry per pushed child), which is why the fields are private.
#[derive(Debug, Default)]
pub struct ChildColumns {
    school: Vec<String>,
    grade: Vec<i32>,
    class: Vec<i64>,
    counts: [Vec<i64>; CHILD_COUNTS.len()],
}

impl ChildColumns {
    /// Empty buffers.
    pub fn new() -> ChildColumns {
        ChildColumns::default()
    }

    /// How many children were pushed.
    pub fn len(&self) -> usize {
        self.school.len()
    }

    /// Whether no child was pushed.
    pub fn is_empty(&self) -> bool {
        self.school.is_empty()
    }

    /// Appends one child's facts to every column.
    pub fn push(&mut self, f: &ChildFacts) {
        self.school.push(f.school.clone());
        self.grade.push(i32::from(f.grade));
        self.class.push(i64::from(f.class));
        let b = |x: bool| i64::from(x);
        let values: [i64; CHILD_COUNTS.len()] = [
            b(f.both_parents_away),
            b(f.one_parent_away),
            b(f.grandparent_guardian),
            b(f.boarding),
            b(f.hardship),
            b(f.archived),
            b(f.paired),
            b(f.talks > 0),
            b(f.home_visits > 0),
            i64::from(f.talks),
            i64::from(f.parent_calls),
            i64::from(f.family_calls),
            i64::from(f.letters),
            i64::from(f.warmth_visits),
            i64::from(f.counseling_sessions),
            f.aid_fen,
            b(f.dropped_out),
            i64::from(f.incidents),
            i64::from(f.escalated_on_time),
        ];
        for (col, v) in self.counts.iter_mut().zip(values) {
            col.push(v);
        }
    }

    /// The frame: `school` (str), `grade` (i32), `class` (i64) and the `CHILD_COUNTS` (i64).
    pub fn into_frame(self) -> Result<DataFrame, ReportError> {
        let height = self.school.len();
        let mut columns = Vec::with_capacity(3 + CHILD_COUNTS.len());
        columns.push(Column::new("school".into(), self.school));
        columns.push(Column::new("grade".into(), self.grade));
        columns.push(Column::new("class".into(), self.class));
        for (name, values) in CHILD_COUNTS.iter().zip(self.counts) {
            columns.push(Column::new((*name).into(), values));
        }
        DataFrame::new(height, columns).map_err(ReportError::polars("building the per-child frame"))
    }
}
