//! Local-date arithmetic (+08:00 dates, see `events::time`): sets of days, terms, evaluation
//! periods and the quota windows of rules §6–§7 (ISO week, calendar month, term, school year)
//! intersected with a period's days.
//!
//! This module owns day sets and window shapes; it must never read events or decide what a
//! window is worth (that is `scores`).

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};
use events::event::TermId;
use events::policy::Per;

use crate::ProjectionError;

/// A set of days as sorted, disjoint, non-adjacent half-open ranges `[start, end)`.
/// Invariant: ranges are non-empty, sorted, and neither overlap nor touch. An `end` of
/// `NaiveDate::MAX` means the set is open towards the future.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DaySet {
    ranges: Vec<(NaiveDate, NaiveDate)>,
}

/// The day after `d` (saturating at the end of the calendar).
pub fn next_day(d: NaiveDate) -> NaiveDate {
    d.succ_opt().unwrap_or(NaiveDate::MAX)
}

impl DaySet {
    /// No day at all.
    pub fn empty() -> DaySet {
        DaySet::default()
    }

    /// The days `from ≤ d < until` (empty when `until ≤ from`).
    pub fn half_open(from: NaiveDate, until: NaiveDate) -> DaySet {
        if from < until {
            DaySet {
                ranges: vec![(from, until)],
            }
        } else {
            DaySet::empty()
        }
    }

    /// The days `first ≤ d ≤ last`.
    pub fn inclusive(first: NaiveDate, last: NaiveDate) -> DaySet {
        DaySet::half_open(first, next_day(last))
    }

    /// Every day from `from` on.
    pub fn from_on(from: NaiveDate) -> DaySet {
        DaySet::half_open(from, NaiveDate::MAX)
    }

    /// Every day before `until`.
    pub fn before(until: NaiveDate) -> DaySet {
        DaySet::half_open(NaiveDate::MIN, until)
    }

    /// The union of arbitrary half-open ranges (in any order, overlapping or not).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (NaiveDate, NaiveDate)>) -> DaySet {
        let mut v: Vec<(NaiveDate, NaiveDate)> =
            ranges.into_iter().filter(|(a, b)| a < b).collect();
        v.sort_unstable();
        let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        DaySet { ranges: out }
    }

    /// The sorted half-open ranges `[start, end)`.
    pub fn ranges(&self) -> &[(NaiveDate, NaiveDate)] {
        &self.ranges
    }

    /// Whether the set holds no day.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the set is open towards the future.
    pub fn is_open(&self) -> bool {
        self.ranges.last().is_some_and(|r| r.1 == NaiveDate::MAX)
    }

    /// Whether `d` is in the set.
    pub fn contains(&self, d: NaiveDate) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= d);
        self.ranges.get(i).is_some_and(|r| r.0 <= d)
    }

    /// The first day.
    pub fn first(&self) -> Option<NaiveDate> {
        self.ranges.first().map(|r| r.0)
    }

    /// The last day (`None` when empty or open).
    pub fn last(&self) -> Option<NaiveDate> {
        match self.ranges.last() {
            Some(r) if r.1 != NaiveDate::MAX => r.1.pred_opt(),
            _ => None,
        }
    }

    /// The number of days (an open set counts up to the end of the calendar).
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| (*b - *a).num_days() as u64)
            .sum()
    }

    /// The days in both sets.
    pub fn intersect(&self, other: &DaySet) -> DaySet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a0, a1) = self.ranges[i];
            let (b0, b1) = other.ranges[j];
            let (s, e) = (a0.max(b0), a1.min(b1));
            if s < e {
                out.push((s, e));
            }
            if a1 < b1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        DaySet { ranges: out }
    }

    /// The number of days in both sets, without building the intersection.
    pub fn overlap_len(&self, other: &DaySet) -> u64 {
        let (mut i, mut j, mut n) = (0, 0, 0u64);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a0, a1) = self.ranges[i];
            let (b0, b1) = other.ranges[j];
            let (s, e) = (a0.max(b0), a1.min(b1));
            if s < e {
                n += (e - s).num_days() as u64;
            }
            if a1 < b1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        n
    }

    /// Whether the sets share a day.
    pub fn overlaps(&self, other: &DaySet) -> bool {
        self.overlap_len(other) > 0
    }

    /// The days in either set.
    pub fn union(&self, other: &DaySet) -> DaySet {
        DaySet::from_ranges(self.ranges.iter().chain(&other.ranges).copied())
    }

    /// Every day of the set, in order. An open range is skipped: intersect an open set with a
    /// bounded one (a period) first.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.ranges
            .iter()
            .filter(|r| r.1 != NaiveDate::MAX)
            .flat_map(|&(a, b)| a.iter_days().take_while(move |d| *d < b))
    }
}

/// A term of a school: its id and its days, `starts_on ≤ d ≤ ends_on`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Term {
    /// The term id, `2025-2026-1`.
    pub id: TermId,
    /// The term's first day (`term_defined.starts_on`).
    pub starts_on: NaiveDate,
    /// The term's last day, inclusive (`term_defined.ends_on`).
    pub ends_on: NaiveDate,
}

impl Term {
    /// The term's days.
    pub fn days(&self) -> DaySet {
        DaySet::inclusive(self.starts_on, self.ends_on)
    }
}

/// An evaluation period: one term, or a whole school year (`2025-2026`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Period {
    /// One term.
    Term(TermId),
    /// A school year, `2025-2026`: every term of it.
    Year(String),
}

impl Period {
    /// Parses `2025-2026-1` (a term) or `2025-2026` (a school year).
    pub fn parse(s: &str) -> Result<Period, ProjectionError> {
        if let Some(t) = TermId::parse(s) {
            return Ok(Period::Term(t));
        }
        // A school year is the term syntax without the term number.
        match TermId::parse(&format!("{s}-1")) {
            Some(_) if s.len() == 9 => Ok(Period::Year(s.to_owned())),
            _ => Err(ProjectionError::BadPeriod {
                period: s.to_owned(),
            }),
        }
    }

    /// The school year the period belongs to.
    pub fn school_year(&self) -> &str {
        match self {
            Period::Term(t) => t.school_year(),
            Period::Year(y) => y,
        }
    }

    /// The longest window kind that fits in the period: a `year` quota is left out of a term
    /// run (rules §7.2).
    pub fn admits(&self, per: Per) -> bool {
        match self {
            Period::Term(_) => per != Per::Year,
            Period::Year(_) => true,
        }
    }

    /// Whether this is a school-year run (year-end points apply).
    pub fn is_year(&self) -> bool {
        matches!(self, Period::Year(_))
    }

    /// The days of the period among a school's terms: the term's days, or the days of every
    /// term of the school year (breaks belong to no period).
    pub fn days(&self, school: &str, terms: &[Term]) -> Result<DaySet, ProjectionError> {
        match self {
            Period::Term(t) => terms
                .iter()
                .find(|x| &x.id == t)
                .map(Term::days)
                .ok_or_else(|| ProjectionError::UnknownTerm {
                    school: school.to_owned(),
                    term: t.as_str().to_owned(),
                }),
            Period::Year(y) => {
                let days = DaySet::from_ranges(
                    terms
                        .iter()
                        .filter(|x| x.id.school_year() == y)
                        .flat_map(|x| x.days().ranges().to_vec()),
                );
                if days.is_empty() {
                    Err(ProjectionError::NoTermsInYear {
                        school: school.to_owned(),
                        year: y.clone(),
                    })
                } else {
                    Ok(days)
                }
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Term(t) => f.write_str(t.as_str()),
            Period::Year(y) => f.write_str(y),
        }
    }
}

/// One window of a quota: a calendar unit of its `per` intersected with a period's days.
/// Invariant: `days` is not empty and lies within one calendar unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The quota's window kind (rules §6.4).
    pub per: Per,
    /// `2025-W37`, `2025-09`, `2025-2026-1` or `2025-2026`.
    pub label: String,
    days: DaySet,
}

impl Window {
    /// The window's days (never empty).
    pub fn days(&self) -> &DaySet {
        &self.days
    }
    /// The first day of the window.
    pub fn first(&self) -> NaiveDate {
        self.days.first().expect("a window is never empty")
    }
    /// The last day of the window: the policy in force on it governs the window.
    pub fn last(&self) -> NaiveDate {
        self.days.last().expect("a window is never empty nor open")
    }
    /// `days(W)`.
    pub fn len(&self) -> u64 {
        self.days.len()
    }
    /// Always false: empty windows are dropped.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// The Monday of `d`'s ISO week.
pub fn iso_week_start(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

/// The first day of `d`'s calendar month.
pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists in every month")
}

/// The first day of the month after `d`'s.
pub fn next_month_start(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX)
}

/// The windows of `per` over a closed set of period days: each calendar unit (ISO week,
/// calendar month, term of `terms`, school year of `terms`) intersected with `period`, empty
/// ones dropped, in date order.
pub fn windows(per: Per, period: &DaySet, terms: &[Term]) -> Vec<Window> {
    match per {
        Per::Week => unit_windows(per, period, |d| {
            let start = iso_week_start(d);
            let iso = d.iso_week();
            (
                start,
                start + Days::new(7),
                format!("{}-W{:02}", iso.year(), iso.week()),
            )
        }),
        Per::Month => unit_windows(per, period, |d| {
            (
                month_start(d),
                next_month_start(d),
                format!("{}-{:02}", d.year(), d.month()),
            )
        }),
        Per::Term => {
            let mut sorted: Vec<&Term> = terms.iter().collect();
            sorted.sort_by(|a, b| (a.starts_on, &a.id).cmp(&(b.starts_on, &b.id)));
            sorted
                .into_iter()
                .filter_map(|t| {
                    let days = t.days().intersect(period);
                    (!days.is_empty()).then(|| Window {
                        per,
                        label: t.id.as_str().to_owned(),
                        days,
                    })
                })
                .collect()
        }
        Per::Year => {
            let mut years: Vec<&str> = terms.iter().map(|t| t.id.school_year()).collect();
            years.sort_unstable();
            years.dedup();
            years
                .into_iter()
                .filter_map(|y| {
                    let of_year = terms.iter().filter(|t| t.id.school_year() == y);
                    let first = of_year.clone().map(|t| t.starts_on).min()?;
                    let last = of_year.map(|t| t.ends_on).max()?;
                    let days = DaySet::inclusive(first, last).intersect(period);
                    (!days.is_empty()).then(|| Window {
                        per,
                        label: y.to_owned(),
                        days,
                    })
                })
                .collect()
        }
    }
}

/// Windows of a calendar unit given by `unit(d) -> (start, end, label)` for the unit holding
/// `d`; units are visited in date order and a unit split by a break stays one window.
fn unit_windows(
    per: Per,
    period: &DaySet,
    unit: impl Fn(NaiveDate) -> (NaiveDate, NaiveDate, String),
) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    let mut pieces: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    let mut current: Option<(NaiveDate, String)> = None;
    for &(a, b) in period.ranges() {
        if b == NaiveDate::MAX {
            // An open period has no windows: periods are made of terms, which end.
            break;
        }
        let mut d = a;
        while d < b {
            let (start, end, label) = unit(d);
            let piece_end = end.min(b);
            if current.as_ref().is_some_and(|(s, _)| *s != start) {
                flush(per, &mut current, &mut pieces, &mut out);
            }
            if current.is_none() {
                current = Some((start, label));
            }
            pieces.push((d, piece_end));
            d = piece_end;
        }
    }
    flush(per, &mut current, &mut pieces, &mut out);
    out
}

fn flush(
    per: Per,
    current: &mut Option<(NaiveDate, String)>,
    pieces: &mut Vec<(NaiveDate, NaiveDate)>,
    out: &mut Vec<Window>,
) {
    if let Some((_, label)) = current.take() {
        let days = DaySet::from_ranges(pieces.drain(..));
        if !days.is_empty() {
            out.push(Window { per, label, days });
        }
    }
}

/// How a window kind ranks by length (week < month < term < year).
pub fn per_rank(per: Per) -> u8 {
    match per {
        Per::Week => 0,
        Per::Month => 1,
        Per::Term => 2,
        Per::Year => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        events::time::parse_date(s).unwrap()
    }

    #[test]
    fn a_week_split_by_a_break_is_one_window() {
        let period = DaySet::from_ranges([
            (d("2026-01-05"), d("2026-01-07")),
            (d("2026-01-09"), d("2026-01-13")),
        ]);
        let w = windows(Per::Week, &period, &[]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].label, "2026-W02");
        // Mon 5, Tue 6, then Fri 9 to Sun 11: Wed 7 and Thu 8 are a break.
        assert_eq!(w[0].len(), 5);
        assert_eq!(w[0].first(), d("2026-01-05"));
        assert_eq!(w[0].last(), d("2026-01-11"));
        assert_eq!(w[1].label, "2026-W03");
        assert_eq!(w[1].len(), 1);
    }

    #[test]
    fn months_are_cut_to_the_period() {
        let period = DaySet::inclusive(d("2025-09-01"), d("2025-11-10"));
        let w = windows(Per::Month, &period, &[]);
        let lens: Vec<u64> = w.iter().map(Window::len).collect();
        assert_eq!(lens, vec![30, 31, 10]);
        assert_eq!(w[2].last(), d("2025-11-10"));
    }

    #[test]
    fn intersection_and_membership() {
        let a = DaySet::from_ranges([
            (d("2025-01-01"), d("2025-01-10")),
            (d("2025-01-20"), d("2025-02-01")),
        ]);
        let b = DaySet::from_on(d("2025-01-05"));
        let i = a.intersect(&b);
        assert_eq!(i.len(), 5 + 12);
        assert_eq!(a.overlap_len(&b), 17);
        assert!(i.contains(d("2025-01-09")));
        assert!(!i.contains(d("2025-01-10")));
        assert!(!i.contains(d("2025-01-04")));
        assert_eq!(i.last(), Some(d("2025-01-31")));
    }

    #[test]
    fn periods_parse() {
        assert!(matches!(Period::parse("2025-2026-2"), Ok(Period::Term(_))));
        assert_eq!(
            Period::parse("2025-2026"),
            Ok(Period::Year("2025-2026".into()))
        );
        assert!(Period::parse("2025-2027").is_err());
        assert!(Period::parse("2025").is_err());
    }
}
