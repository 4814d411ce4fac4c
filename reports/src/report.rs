//! The finished term report: its scope, its frame and a typed view of its rows.
//!
//! This module owns `Scope`, `TermReport` and `ReportRow` (the JSON row of rules §8.9). It
//! must never compute a figure: the frame comes whole from `table::aggregate`.

use std::fmt;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use crate::table::REPORT_COLUMNS;

/// What a term report covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One school, by id: its class rows and its total.
    School(String),
    /// Every school of a county, by county name: class rows, school totals, county total.
    County(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::School(s) => write!(f, "school {s}"),
            Scope::County(c) => write!(f, "county {c}"),
        }
    }
}

/// A term report (rules §8). Invariant: `frame` has exactly the columns of
/// `table::REPORT_COLUMNS`, in that order, with the types their kind says.
#[derive(Debug, Clone)]
pub struct TermReport {
    term: String,
    scope: Scope,
    frame: DataFrame,
    schools_without_term: Vec<String>,
}

impl TermReport {
    pub(crate) fn new(
        term: String,
        scope: Scope,
        frame: DataFrame,
        schools_without_term: Vec<String>,
    ) -> TermReport {
        TermReport {
            term,
            scope,
            frame,
            schools_without_term,
        }
    }

    /// The term id, e.g. `2025-2026-1`.
    pub fn term(&self) -> &str {
        &self.term
    }

    /// What the report covers.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The rows as a polars frame (rates as fractions, `aid_yuan` in yuan).
    pub fn frame(&self) -> &DataFrame {
        &self.frame
    }

    /// Schools of the county that defined no such term and are therefore left out (a county
    /// report only; the CLI should say so on stderr).
    pub fn schools_without_term(&self) -> &[String] {
        &self.schools_without_term
    }

    /// The rows, typed, in report order.
    pub fn rows(&self) -> Result<Vec<ReportRow>, ReportError> {
        let df = &self.frame;
        let column = |name: &'static str| {
            df.column(name)
                .map_err(|_| ReportError::Column { column: name })
        };
        let int = |name: &'static str| -> Result<Vec<Option<i64>>, ReportError> {
            Ok(column(name)?
                .i64()
                .map_err(|_| ReportError::Column { column: name })?
                .iter()
                .collect())
        };
        let count = |name: &'static str| -> Result<Vec<u64>, ReportError> {
            int(name)?
                .into_iter()
                .map(|v| v.and_then(|v| u64::try_from(v).ok()))
                .collect::<Option<Vec<u64>>>()
                .ok_or(ReportError::Column { column: name })
        };
        let float = |name: &'static str| -> Result<Vec<Option<f64>>, ReportError> {
            Ok(column(name)?
                .f64()
                .map_err(|_| ReportError::Column { column: name })?
                .iter()
                .collect())
        };
        let school: Vec<Option<String>> = column("school")?
            .str()
            .map_err(|_| ReportError::Column { column: "school" })?
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect();
        let grade: Vec<Option<i32>> = column("grade")?
            .i32()
            .map_err(|_| ReportError::Column { column: "grade" })?
            .iter()
            .collect();
        let class = int("class")?;
        let children = count("children")?;
        let both = count("both_parents_away")?;
        let one = count("one_parent_away")?;
        let grand = count("grandparent_guardian")?;
        let boarding = count("boarding")?;
        let hardship = count("hardship")?;
        let archived = count("archived")?;
        let archive_rate = float("archive_rate")?;
        let paired = count("paired")?;
        let pairing_rate = float("pairing_rate")?;
        let talked = count("talked")?;
        let talk_coverage = float("talk_coverage")?;
        let home_visited = count("home_visited")?;
        let home_visit_coverage = float("home_visit_coverage")?;
        let talks = count("talks")?;
        let parent_calls = count("parent_calls")?;
        let family_calls = count("family_calls")?;
        let letters = count("letters")?;
        let warmth_visits = count("warmth_visits")?;
        let counseling_sessions = count("counseling_sessions")?;
        let aid_yuan = float("aid_yuan")?;
        let dropped_out = count("dropped_out")?;
        let retention_rate = float("retention_rate")?;
        let incidents = count("incidents")?;
        let escalated_on_time = count("escalated_on_time")?;

        let mut rows = Vec::with_capacity(df.height());
        for i in 0..df.height() {
            rows.push(ReportRow {
                school: school[i].clone(),
                grade: grade[i].and_then(|g| u8::try_from(g).ok()),
                class: class[i].and_then(|c| u32::try_from(c).ok()),
                children: children[i],
                both_parents_away: both[i],
                one_parent_away: one[i],
                grandparent_guardian: grand[i],
                boarding: boarding[i],
                hardship: hardship[i],
                archived: archived[i],
                archive_rate: archive_rate[i],
                paired: paired[i],
                pairing_rate: pairing_rate[i],
                talked: talked[i],
                talk_coverage: talk_coverage[i],
                home_visited: home_visited[i],
                home_visit_coverage: home_visit_coverage[i],
                talks: talks[i],
                parent_calls: parent_calls[i],
                family_calls: family_calls[i],
                letters: letters[i],
                warmth_visits: warmth_visits[i],
                counseling_sessions: counseling_sessions[i],
                aid_yuan: aid_yuan[i].ok_or(ReportError::Column { column: "aid_yuan" })?,
                dropped_out: dropped_out[i],
                retention_rate: retention_rate[i],
                incidents: incidents[i],
                escalated_on_time: escalated_on_time[i],
            });
        }
        debug_assert_eq!(REPORT_COLUMNS.len(), 28, "ReportRow mirrors REPORT_COLUMNS");
        Ok(rows)
    }
}

/// One row of a term report, as the JSON output carries it (rules §8.9): a class row, a
/// school total (`grade` and `class` null) or the county total (`school` null too). Rates are
/// fractions, null when `children` is 0. Field order is the output order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRow {
    /// The school id; null on the county total.
    pub school: Option<String>,
    /// The grade of the class row; null on totals.
    pub grade: Option<u8>,
    /// The class number within the grade; null on totals.
    pub class: Option<u32>,
    /// Children counted here (rules §8.2); every other count is among them.
    pub children: u64,
    /// Children with both parents away (双亲外出).
    pub both_parents_away: u64,
    /// Children with one parent away (单亲外出).
    pub one_parent_away: u64,
    /// Children whose guardian is a grandparent (隔代抚养).
    pub grandparent_guardian: u64,
    /// Boarding children (寄宿).
    pub boarding: u64,
    /// Children with at least one hardship listed (困难).
    pub hardship: u64,
    /// Children whose file is complete (建档数, rules §8.5).
    pub archived: u64,
    /// `archived / children` (建档率).
    pub archive_rate: Option<f64>,
    /// Children with a pairing of any role active on a day of the term (结对数).
    pub paired: u64,
    /// `paired / children` (结对率).
    pub pairing_rate: Option<f64>,
    /// Children with at least one `talk_held` in the term (谈心人数).
    pub talked: u64,
    /// `talked / children` (谈心覆盖率).
    pub talk_coverage: Option<f64>,
    /// Children with at least one `home_visit` in the term (家访人数).
    pub home_visited: u64,
    /// `home_visited / children` (家访覆盖率).
    pub home_visit_coverage: Option<f64>,
    /// `talk_held` events in the term (谈心次数).
    pub talks: u64,
    /// `parent_call` events in the term (与父母通话次数).
    pub parent_calls: u64,
    /// `family_call` events in the term (亲情电话次数).
    pub family_calls: u64,
    /// `letter` events in the term (书信次数).
    pub letters: u64,
    /// `warmth_visit` events in the term (送温暖次数).
    pub warmth_visits: u64,
    /// `counseling_session` events in the term (心理辅导次数).
    pub counseling_sessions: u64,
    /// Yuan; the nearest double to an exact amount in fen, so it prints as that amount.
    pub aid_yuan: f64,
    /// Children with a `dropped_out` status change in the term, once each (rules §8.6).
    pub dropped_out: u64,
    /// `1 − dropped_out / children` (巩固率, rules §8.6).
    pub retention_rate: Option<f64>,
    /// `incident_reported` events in the term (安全事件数).
    pub incidents: u64,
    /// Of those incidents, the ones escalated on time (按时上报数, rules §8.7).
    pub escalated_on_time: u64,
}

impl ReportRow {
    /// The aid sum in fen (exact: `aid_yuan` was built as fen / 100).
    pub fn aid_fen(&self) -> i64 {
        (self.aid_yuan * 100.0).round() as i64
    }
}
