//! The term report table: its columns (rules §8.3, with the Chinese headers of the XLSX) and
//! the polars aggregation from per-child facts to class rows, school totals and the county
//! total.
//!
//! This module owns the column list, the row order and the rate rule (null when `children`
//! is 0; fractions in the frame). It must never look at events or decide who counts: it
//! only sums what `facts` built.

use polars::prelude::*;

use crate::error::ReportError;
use crate::facts::CHILD_COUNTS;

/// How a column of a report table is typed and shown: the one column type of the crate,
/// shared by the term report (`REPORT_COLUMNS`) and the year-end table
/// (`year_end::YEAR_END_COLUMNS`), so that one set of writers (`output`) serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `school` (str), `grade` (i32), `class` (i64): null on total rows.
    Key,
    /// A count of children or events (i64, never null).
    Count,
    /// A fraction from 0 to 1 (f64), null when `children` is 0.
    Rate,
    /// Yuan (f64 holding an exact fen amount divided by 100).
    Yuan,
    /// Text, never null: a staff id, a staff name.
    Text,
    /// Flag names of `projections::scores::Flag` (str), `;`-separated in flag order; empty
    /// when none.
    Flags,
    /// A figure out of 100 or of the year-end points (f64, already rounded to two decimals by
    /// the score run), null when there is none; shown with two decimals.
    Points,
    /// A rank (u32), null when the row has nothing to rank by.
    Rank,
}

impl ColumnKind {
    /// Whether an aligned text table puts this column's cells at the left (text) rather than
    /// the right (figures).
    pub fn left_aligned(self) -> bool {
        matches!(self, ColumnKind::Key | ColumnKind::Text | ColumnKind::Flags)
    }
}

/// One column of a report table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The machine name (CSV header, JSON key, Parquet column).
    pub name: &'static str,
    /// The Chinese header of the XLSX.
    pub zh: &'static str,
    /// What its cells hold and how they are written (see [`ColumnKind`]).
    pub kind: ColumnKind,
}

/// A column (for the constant column lists).
pub const fn spec(name: &'static str, zh: &'static str, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec { name, zh, kind }
}

/// Every column of the report, in output order.
pub const REPORT_COLUMNS: [ColumnSpec; 28] = {
    use ColumnKind::*;
    [
        spec("school", "学校", Key),
        spec("grade", "年级", Key),
        spec("class", "班级", Key),
        spec("children", "留守儿童数", Count),
        spec("both_parents_away", "双亲外出", Count),
        spec("one_parent_away", "单亲外出", Count),
        spec("grandparent_guardian", "隔代抚养", Count),
        spec("boarding", "寄宿", Count),
        spec("hardship", "困难", Count),
        spec("archived", "建档数", Count),
        spec("archive_rate", "建档率", Rate),
        spec("paired", "结对数", Count),
        spec("pairing_rate", "结对率", Rate),
        spec("talked", "谈心人数", Count),
        spec("talk_coverage", "谈心覆盖率", Rate),
        spec("home_visited", "家访人数", Count),
        spec("home_visit_coverage", "家访覆盖率", Rate),
        spec("talks", "谈心次数", Count),
        spec("parent_calls", "与父母通话次数", Count),
        spec("family_calls", "亲情电话次数", Count),
        spec("letters", "书信次数", Count),
        spec("warmth_visits", "送温暖次数", Count),
        spec("counseling_sessions", "心理辅导次数", Count),
        spec("aid_yuan", "资助金额(元)", Yuan),
        spec("dropped_out", "辍学人数", Count),
        spec("retention_rate", "巩固率", Rate),
        spec("incidents", "安全事件数", Count),
        spec("escalated_on_time", "按时上报数", Count),
    ]
};

/// Which totals a report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Totals {
    /// One total row per school (a school report).
    Schools,
    /// One total row per school, then the county total (school null too).
    SchoolsAndCounty,
}

fn sums() -> Vec<Expr> {
    let mut out = vec![len().cast(DataType::Int64).alias("children")];
    out.extend(CHILD_COUNTS.iter().map(|c| col(*c).sum().alias(*c)));
    out
}

fn rate(numerator: Expr, children: Expr) -> Expr {
    when(children.clone().eq(lit(0i64)))
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(numerator.cast(DataType::Float64) / children.cast(DataType::Float64))
}

/// Sums the per-child frame (`school`, `grade`, `class` and the `facts::CHILD_COUNTS`, as
/// `facts::ChildColumns::into_frame` or `columnar` build it) into the report: one row per
/// school × grade × class that has a counted child, each school's total after its rows (every
/// school in `schools` gets one, with zeros when it counts no child), and the county total
/// last when asked. Rows are ordered by school, grade, class.
pub fn aggregate(
    children: LazyFrame,
    schools: &[String],
    totals: Totals,
) -> Result<DataFrame, ReportError> {
    let lf = children;
    let mut keys = vec![col("school"), col("grade"), col("class")];
    let order =
        |level: i32, county: i32| [lit(level).alias("_level"), lit(county).alias("_county")];
    let layout = |extra: &[&str]| -> Vec<Expr> {
        let mut v: Vec<Expr> = ["_county", "school", "_level", "grade", "class", "children"]
            .iter()
            .chain(extra)
            .map(|c| col(*c))
            .collect();
        v.extend(CHILD_COUNTS.iter().map(|c| col(*c)));
        v
    };

    let class_rows = lf
        .clone()
        .group_by(keys.clone())
        .agg(sums())
        .with_columns(order(0, 0))
        .select(layout(&[]));

    let school_list = DataFrame::new(
        schools.len(),
        vec![Column::new("school".into(), schools.to_vec())],
    )
    .map_err(ReportError::polars("listing the schools"))?;
    let mut counted: Vec<Expr> = vec![col("children")];
    counted.extend(CHILD_COUNTS.iter().map(|c| col(*c)));
    let school_rows = school_list
        .lazy()
        .left_join(
            lf.clone().group_by([col("school")]).agg(sums()),
            col("school"),
            col("school"),
        )
        .with_columns(
            counted
                .iter()
                .map(|c| c.clone().fill_null(lit(0i64)))
                .collect::<Vec<_>>(),
        )
        .with_columns([
            lit(NULL).cast(DataType::Int32).alias("grade"),
            lit(NULL).cast(DataType::Int64).alias("class"),
        ])
        .with_columns(order(1, 0))
        .select(layout(&[]));

    let mut parts = vec![class_rows, school_rows];
    if totals == Totals::SchoolsAndCounty {
        let county = lf
            .select(sums())
            .with_columns([
                lit(NULL).cast(DataType::String).alias("school"),
                lit(NULL).cast(DataType::Int32).alias("grade"),
                lit(NULL).cast(DataType::Int64).alias("class"),
            ])
            .with_columns(order(2, 1))
            .select(layout(&[]));
        parts.push(county);
    }

    keys.insert(0, col("_county"));
    keys.insert(2, col("_level"));
    let sorted = concat(parts, UnionArgs::default())
        .map_err(ReportError::polars("stacking class rows and totals"))?
        .sort_by_exprs(
            keys,
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        );

    let children_col = col("children");
    let mut out: Vec<Expr> = Vec::with_capacity(REPORT_COLUMNS.len());
    for c in REPORT_COLUMNS {
        let e = match c.name {
            "archive_rate" => rate(col("archived"), children_col.clone()),
            "pairing_rate" => rate(col("paired"), children_col.clone()),
            "talk_coverage" => rate(col("talked"), children_col.clone()),
            "home_visit_coverage" => rate(col("home_visited"), children_col.clone()),
            "retention_rate" => when(children_col.clone().eq(lit(0i64)))
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(
                    lit(1.0f64)
                        - col("dropped_out").cast(DataType::Float64)
                            / children_col.clone().cast(DataType::Float64),
                ),
            // fen for now: divided in Rust below, because polars turns a division by a
            // literal into a multiplication by its reciprocal (30065 × 0.01 ≠ 300.65)
            "aid_yuan" => col("aid_fen"),
            name => col(name),
        };
        out.push(e.alias(c.name));
    }
    let mut df = sorted
        .select(out)
        .collect()
        .map_err(ReportError::polars("aggregating the term report"))?;
    let yuan: Vec<Option<f64>> = df
        .column("aid_yuan")
        .and_then(|c| c.i64().cloned())
        .map_err(ReportError::polars("reading the aid sums"))?
        .iter()
        // fen / 100 is correctly rounded: the double nearest to the exact amount in yuan
        .map(|fen| fen.map(|f| f as f64 / 100.0))
        .collect();
    df.replace("aid_yuan", Column::new("aid_yuan".into(), yuan))
        .map_err(ReportError::polars("writing the aid sums in yuan"))?;
    Ok(df)
}
