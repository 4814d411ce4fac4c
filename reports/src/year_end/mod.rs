//! The year-end appraisal table (年终考核表, rules §7.6, §7.10 and seed 003, 思渠中学"留守儿童"
//! 工作考核制度): one row per staff member of a score run with score, flags, year-end points, the
//! other appraisal score, the weighted total and the rank; the commended (表彰: flag
//! `outstanding`) and the disqualified (取消评优资格: flag `disqualified`). Its files are
//! written by `render`, through the writers of `output`.
//!
//! This module owns the rank rule, the row order and the columns. It must never
//! compute a score, a point or a total (they come rounded and exact from
//! `projections::scores`), and never carry anything about a child: the table holds staff ids
//! and staff names only (it is internal to the school, not the bureau feed), never a child's
//! name and never a counseling note.

mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use projections::Period;
use projections::scores::{Flag, ScoreRun};

use crate::error::ReportError;
use crate::table::{ColumnKind, ColumnSpec, spec};

pub use render::{render_table, render_year_end, to_json, write_xlsx};

/// Every column the table can have, in output order. `year_end_points` is present in a
/// school-year run only, `other` and `total` only when other appraisal scores were given
/// (the same rule as the score JSON of rules §7.9).
pub const YEAR_END_COLUMNS: [ColumnSpec; 8] = {
    use ColumnKind::*;
    [
        spec("staff", "教师编号", Text),
        spec("name", "教师", Text),
        spec("score", "得分", Points),
        spec("flags", "标记", Flags),
        spec("year_end_points", "年终考核折算分", Points),
        spec("other", "其他考核得分", Points),
        spec("total", "总分", Points),
        spec("rank", "名次", Rank),
    ]
};

/// Helper columns of the sorted frame, dropped from every output.
const OUTSTANDING: &str = "_outstanding";
const DISQUALIFIED: &str = "_disqualified";

/// The year-end table of one score run. Invariant: the three frames have exactly the columns
/// of `columns()`, in that order, with the types their kind says, and are in table order:
/// ranked rows by rank (ties by staff id), then the unranked rows by staff id; `commended`
/// and `disqualified` are the rows of `table` flagged `outstanding` / `disqualified`.
#[derive(Debug, Clone)]
pub struct YearEnd {
    school: String,
    period: Period,
    first_day: NaiveDate,
    last_day: NaiveDate,
    as_of: Option<DateTime<Utc>>,
    head_seq: u64,
    with_other: bool,
    table: DataFrame,
    commended: DataFrame,
    disqualified: DataFrame,
}

/// One row of the year-end table, typed. A column the table lacks reads `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct YearEndRow {
    /// The staff id.
    pub staff: String,
    /// The staff member's name from `staff_joined`.
    pub name: String,
    /// The care score out of 100 (rules §7.4), rounded to two decimals; `None` when unpaired.
    pub score: Option<f64>,
    /// Flag names (`outstanding`, `disqualified`, `overloaded`, `unpaired`) in flag order.
    pub flags: Vec<String>,
    /// `score × year_end_share` (rules §7.6); year runs only.
    pub year_end_points: Option<f64>,
    /// The other appraisal score given in the `--other-scores` CSV, out of 100.
    pub other: Option<f64>,
    /// `other × (1 − share) + score × share` (rules §7.6); `None` without both parts.
    pub total: Option<f64>,
    /// Standard competition rank by total, else by score (rules §7.10); `None` when there is
    /// nothing to rank by.
    pub rank: Option<u32>,
}

/// Builds the year-end table of a score run with polars.
///
/// `other` must be the other appraisal scores the run was computed with (`None` when it was
/// computed without): `ScoreRun` does not carry them per row yet (requested of projections),
/// and they cannot be computed back exactly from the rounded totals. A map that does not
/// match the run (given for a run without totals, missing for one with totals, or lacking a
/// staff member whose total exists) is refused.
///
/// Rank: by `total` when the run has totals (other scores given), else by `score`, highest
/// first, on the two-decimal figures the run prints; equal figures share a rank and the next
/// rank skips (standard competition ranking, "1224"). A row with nothing to rank by (unpaired,
/// or no total because the staff member is missing from the other scores) has no rank and is
/// listed after the ranked rows.
pub fn year_end_table(
    run: &ScoreRun,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<YearEnd, ReportError> {
    // Until the run carries `other` per row, the map must be the one the run used. A
    // dedicated error variant is requested (requests.md); meanwhile `Column` names the column
    // at fault.
    let mismatch = || ReportError::Column { column: "other" };
    if other.is_some() != run.with_other {
        return Err(mismatch());
    }
    if let Some(o) = other
        && run
            .rows
            .iter()
            .any(|r| r.total.is_some() && !o.contains_key(&r.staff))
    {
        return Err(mismatch());
    }

    let year = run.period.is_year();
    let n = run.rows.len();
    let mut staff = Vec::with_capacity(n);
    let mut name = Vec::with_capacity(n);
    let mut score = Vec::with_capacity(n);
    let mut flags = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    let mut other_col = Vec::with_capacity(n);
    let mut total = Vec::with_capacity(n);
    let mut outstanding = Vec::with_capacity(n);
    let mut disqualified = Vec::with_capacity(n);
    for r in &run.rows {
        staff.push(r.staff.clone());
        name.push(r.name.clone());
        score.push(r.score);
        flags.push(
            r.flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        );
        points.push(r.year_end_points);
        other_col.push(other.and_then(|o| o.get(&r.staff).copied()));
        total.push(r.total);
        outstanding.push(r.flags.contains(&Flag::Outstanding));
        disqualified.push(r.flags.contains(&Flag::Disqualified));
    }
    let frame = DataFrame::new(
        n,
        vec![
            Column::new("staff".into(), staff),
            Column::new("name".into(), name),
            Column::new("score".into(), score),
            Column::new("flags".into(), flags),
            Column::new("year_end_points".into(), points),
            Column::new("other".into(), other_col),
            Column::new("total".into(), total),
            Column::new(OUTSTANDING.into(), outstanding),
            Column::new(DISQUALIFIED.into(), disqualified),
        ],
    )
    .map_err(ReportError::polars("building the year-end frame"))?;

    let visible: Vec<&'static str> = visible_columns(year, run.with_other)
        .iter()
        .map(|c| c.name)
        .collect();
    let key = if run.with_other {
        col("total")
    } else {
        col("score")
    };
    // After sorting by key (highest first, nulls last) and staff id, a row's competition
    // rank is the first position of its key's group: 1 + the number of rows ranked above it.
    let first_position = col("_pos")
        .min()
        .over([col("_key")])
        .map_err(ReportError::polars("ranking the staff"))?;
    let mut keep: Vec<Expr> = visible.iter().map(|c| col(*c)).collect();
    keep.extend([col(OUTSTANDING), col(DISQUALIFIED)]);
    let sorted = frame
        .lazy()
        .with_column(key.alias("_key"))
        .sort_by_exprs(
            [col("_key"), col("staff")],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .with_row_index("_pos", Some(1))
        .with_column(
            when(col("_key").is_not_null())
                .then(first_position)
                .otherwise(lit(NULL))
                .cast(DataType::UInt32)
                .alias("rank"),
        )
        .select(keep)
        .collect()
        .map_err(ReportError::polars("ranking the staff"))?;

    let only = |flag: &str, context: &'static str| {
        sorted
            .clone()
            .lazy()
            .filter(col(flag))
            .select(visible.iter().map(|c| col(*c)).collect::<Vec<_>>())
            .collect()
            .map_err(ReportError::polars(context))
    };
    let commended = only(OUTSTANDING, "listing the commended")?;
    let disqualified = only(DISQUALIFIED, "listing the disqualified")?;
    let table = sorted
        .lazy()
        .select(visible.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()
        .map_err(ReportError::polars("selecting the year-end columns"))?;

    Ok(YearEnd {
        school: run.school.clone(),
        period: run.period.clone(),
        first_day: run.first_day,
        last_day: run.last_day,
        as_of: run.as_of,
        head_seq: run.head_seq,
        with_other: run.with_other,
        table,
        commended,
        disqualified,
    })
}

/// The columns of a table for a run of this kind.
fn visible_columns(year: bool, with_other: bool) -> Vec<&'static ColumnSpec> {
    YEAR_END_COLUMNS
        .iter()
        .filter(|c| match c.name {
            "year_end_points" => year,
            "other" | "total" => with_other,
            _ => true,
        })
        .collect()
}

impl YearEnd {
    /// The school id of the run.
    pub fn school(&self) -> &str {
        &self.school
    }

    /// The period of the run (a school year for a year-end table proper).
    pub fn period(&self) -> &Period {
        &self.period
    }

    /// The columns this table has, in order.
    pub fn columns(&self) -> Vec<&'static ColumnSpec> {
        visible_columns(self.period.is_year(), self.with_other)
    }

    /// The whole table, in table order.
    pub fn table(&self) -> &DataFrame {
        &self.table
    }

    /// The rows flagged `outstanding` (表彰名单), in table order.
    pub fn commended(&self) -> &DataFrame {
        &self.commended
    }

    /// The rows flagged `disqualified` (取消评优资格), in table order.
    pub fn disqualified(&self) -> &DataFrame {
        &self.disqualified
    }

    /// The rows of the table, typed.
    pub fn rows(&self) -> Result<Vec<YearEndRow>, ReportError> {
        typed_rows(&self.table)
    }

    /// The commended rows, typed.
    pub fn commended_rows(&self) -> Result<Vec<YearEndRow>, ReportError> {
        typed_rows(&self.commended)
    }

    /// The disqualified rows, typed.
    pub fn disqualified_rows(&self) -> Result<Vec<YearEndRow>, ReportError> {
        typed_rows(&self.disqualified)
    }
}

fn typed_rows(df: &DataFrame) -> Result<Vec<YearEndRow>, ReportError> {
    let text = |name: &'static str| -> Result<Vec<String>, ReportError> {
        let bad = || ReportError::Column { column: name };
        df.column(name)
            .map_err(|_| bad())?
            .str()
            .map_err(|_| bad())?
            .iter()
            .map(|s| s.map(str::to_owned).ok_or_else(bad))
            .collect()
    };
    // A column the table lacks reads as nulls.
    let float = |name: &'static str| -> Result<Vec<Option<f64>>, ReportError> {
        match df.column(name) {
            Err(_) => Ok(vec![None; df.height()]),
            Ok(c) => Ok(c
                .f64()
                .map_err(|_| ReportError::Column { column: name })?
                .iter()
                .collect()),
        }
    };
    let staff = text("staff")?;
    let name = text("name")?;
    let flags = text("flags")?;
    let score = float("score")?;
    let points = float("year_end_points")?;
    let other = float("other")?;
    let total = float("total")?;
    let rank: Vec<Option<u32>> = df
        .column("rank")
        .map_err(|_| ReportError::Column { column: "rank" })?
        .u32()
        .map_err(|_| ReportError::Column { column: "rank" })?
        .iter()
        .collect();
    Ok((0..df.height())
        .map(|i| YearEndRow {
            staff: staff[i].clone(),
            name: name[i].clone(),
            score: score[i],
            flags: flags[i]
                .split(';')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            year_end_points: points[i],
            other: other[i],
            total: total[i],
            rank: rank[i],
        })
        .collect())
}
