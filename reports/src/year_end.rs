//! The year-end appraisal table (年终考核表, rules §7.6, §7.10 and seed 003, 思渠中学"留守儿童"
//! 工作考核制度): one row per staff member of a score run with score, flags, year-end points, the
//! other appraisal score, the weighted total and the rank; the commended (表彰: flag
//! `outstanding`) and the disqualified (取消评优资格: flag `disqualified`); and its writers
//! (XLSX with Chinese headers, CSV with a BOM, JSON, Parquet, a terminal table).
//!
//! This module owns the rank rule, the row order and the table's presentation. It must never
//! compute a score, a point or a total (they come rounded and exact from
//! `projections::scores`), and never carry anything about a child: the table holds staff ids
//! and staff names only (it is internal to the school, not the bureau feed), never a child's
//! name and never a counseling note.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use projections::Period;
use projections::scores::{Flag, ScoreRun};
use rust_xlsxwriter::{Format as CellFormat, FormatAlign, Workbook, Worksheet, XlsxError};
use serde_json::{Map, Value, json};

use crate::error::ReportError;
use crate::output::Format;

/// How a year-end column is typed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearEndKind {
    /// `staff`, `name` (str, never null).
    Text,
    /// `flags` (str): the flag names of `projections::scores::Flag`, `;`-separated, in flag
    /// order; empty when none.
    Flags,
    /// A figure out of 100 or of the year-end points (f64, already rounded to two decimals by
    /// the score run), null when there is none; shown with two decimals.
    Points,
    /// `rank` (u32), null when the row has nothing to rank by.
    Rank,
}

/// One column of the year-end table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearEndColumn {
    /// The machine name (CSV header, JSON key, Parquet column).
    pub name: &'static str,
    /// The Chinese header of the XLSX.
    pub zh: &'static str,
    pub kind: YearEndKind,
}

const fn column(name: &'static str, zh: &'static str, kind: YearEndKind) -> YearEndColumn {
    YearEndColumn { name, zh, kind }
}

/// Every column the table can have, in output order. `year_end_points` is present in a
/// school-year run only, `other` and `total` only when other appraisal scores were given
/// (the same rule as the score JSON of rules §7.9).
pub const YEAR_END_COLUMNS: [YearEndColumn; 8] = {
    use YearEndKind::*;
    [
        column("staff", "教师编号", Text),
        column("name", "教师", Text),
        column("score", "得分", Points),
        column("flags", "标记", Flags),
        column("year_end_points", "年终考核折算分", Points),
        column("other", "其他考核得分", Points),
        column("total", "总分", Points),
        column("rank", "名次", Rank),
    ]
};

/// The Chinese name of each flag, as the school's appraisal sheets say it.
const FLAG_ZH: [(Flag, &str); 4] = [
    (Flag::Outstanding, "优秀"),
    (Flag::Disqualified, "不合格"),
    (Flag::Overloaded, "超额结对"),
    (Flag::Unpaired, "未结对"),
];

/// The sheet names of the workbook.
const SHEET_YEAR: &str = "年终考核";
const SHEET_TERM: &str = "学期考核";
const SHEET_COMMENDED: &str = "表彰名单";
const SHEET_DISQUALIFIED: &str = "取消评优资格";

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
    pub staff: String,
    pub name: String,
    pub score: Option<f64>,
    /// Flag names (`outstanding`, `disqualified`, `overloaded`, `unpaired`) in flag order.
    pub flags: Vec<String>,
    pub year_end_points: Option<f64>,
    pub other: Option<f64>,
    pub total: Option<f64>,
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
fn visible_columns(year: bool, with_other: bool) -> Vec<&'static YearEndColumn> {
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
    pub fn columns(&self) -> Vec<&'static YearEndColumn> {
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

/// The table in one format, as the bytes of its file. `header_line` heads each XLSX sheet
/// (school, period, as-of, log head seq and hash: the caller, who reads the store, writes
/// it); `head_hash` (the hash of the envelope at the run's head seq) goes into the JSON.
pub fn render_year_end(
    table: &YearEnd,
    format: Format,
    header_line: &str,
    head_hash: &str,
) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Csv => render_csv(table),
        Format::Json => to_json(table, head_hash).map(String::into_bytes),
        Format::Parquet => render_parquet(table),
        Format::Xlsx => render_xlsx(table, header_line),
        Format::Table => render_table(table).map(String::into_bytes),
    }
}

/// JSON: `{school, period, first_day, last_day, as_of, head_seq, head_hash, rows,
/// commended, disqualified}`. Rows carry `staff, name, score, flags` (a list of flag names),
/// `year_end_points` (year runs), `other` and `total` (with other scores) and `rank`; numbers
/// as the run rounded them, null where null; `commended` and `disqualified` list staff ids in
/// table order. Pretty-printed, newline-terminated.
pub fn to_json(table: &YearEnd, head_hash: &str) -> Result<String, ReportError> {
    let columns = table.columns();
    let has = |name: &str| columns.iter().any(|c| c.name == name);
    let num = |x: Option<f64>| x.map_or(Value::Null, Value::from);
    let rows_json = |rows: &[YearEndRow]| -> Vec<Value> {
        rows.iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("staff".into(), Value::from(r.staff.clone()));
                m.insert("name".into(), Value::from(r.name.clone()));
                m.insert("score".into(), num(r.score));
                m.insert(
                    "flags".into(),
                    Value::Array(r.flags.iter().cloned().map(Value::from).collect()),
                );
                if has("year_end_points") {
                    m.insert("year_end_points".into(), num(r.year_end_points));
                }
                if has("other") {
                    m.insert("other".into(), num(r.other));
                }
                if has("total") {
                    m.insert("total".into(), num(r.total));
                }
                m.insert("rank".into(), r.rank.map_or(Value::Null, Value::from));
                Value::Object(m)
            })
            .collect()
    };
    let ids =
        |rows: Vec<YearEndRow>| -> Vec<String> { rows.into_iter().map(|r| r.staff).collect() };
    let v = json!({
        "school": table.school,
        "period": table.period.to_string(),
        "first_day": table.first_day.to_string(),
        "last_day": table.last_day.to_string(),
        "as_of": table.as_of.map(events::time::format_local),
        "head_seq": table.head_seq,
        "head_hash": head_hash,
        "rows": rows_json(&table.rows()?),
        "commended": ids(table.commended_rows()?),
        "disqualified": ids(table.disqualified_rows()?),
    });
    let mut s = serde_json::to_string_pretty(&v).map_err(|source| ReportError::Json { source })?;
    s.push('\n');
    Ok(s)
}

/// CSV, UTF-8 with a BOM (Excel, WPS): English headers, flags `;`-separated, figures with two
/// decimals, nulls empty. Only the whole table (the lists are its flagged rows).
pub fn render_csv(table: &YearEnd) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut df = table.table.clone();
    CsvWriter::new(&mut out)
        .include_bom(true)
        .include_header(true)
        .with_float_precision(Some(2))
        .finish(&mut df)
        .map_err(ReportError::polars("writing the year-end csv"))?;
    Ok(out)
}

/// Parquet: the table frame as is.
pub fn render_parquet(table: &YearEnd) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut df = table.table.clone();
    ParquetWriter::new(&mut out)
        .finish(&mut df)
        .map_err(ReportError::polars("writing the year-end parquet"))?;
    Ok(out)
}

/// Writes the workbook of `render_xlsx` to `path`.
pub fn write_xlsx(table: &YearEnd, header_line: &str, path: &Path) -> Result<(), ReportError> {
    let bytes = render_xlsx(table, header_line)?;
    std::fs::write(path, bytes).map_err(ReportError::io(path))
}

/// XLSX: three sheets — the table (年终考核; 学期考核 for a term run), 表彰名单 (the commended)
/// and 取消评优资格 (the disqualified). On each, row 1 holds `header_line`, row 2 the Chinese
/// headers (frozen with the line above), then the rows in table order; figures shown with two
/// decimals (`0.00`), flags in Chinese (优秀、不合格、超额结对、未结对), null as a blank cell.
pub fn render_xlsx(table: &YearEnd, header_line: &str) -> Result<Vec<u8>, ReportError> {
    let xlsx = |source| ReportError::Xlsx { source };
    let columns = table.columns();
    let styles = Styles::new();
    let main = if table.period.is_year() {
        SHEET_YEAR
    } else {
        SHEET_TERM
    };
    let mut book = Workbook::new();
    for (sheet_name, rows) in [
        (main, table.rows()?),
        (SHEET_COMMENDED, table.commended_rows()?),
        (SHEET_DISQUALIFIED, table.disqualified_rows()?),
    ] {
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name).map_err(xlsx)?;
        write_sheet(sheet, header_line, &columns, &rows, &styles).map_err(xlsx)?;
    }
    book.save_to_buffer().map_err(xlsx)
}

struct Styles {
    title: CellFormat,
    header: CellFormat,
    text: CellFormat,
    points: CellFormat,
    rank: CellFormat,
}

impl Styles {
    fn new() -> Styles {
        Styles {
            title: CellFormat::new().set_bold(),
            header: CellFormat::new()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_background_color(0xDDEBF7),
            text: CellFormat::new(),
            points: CellFormat::new().set_num_format("0.00"),
            rank: CellFormat::new().set_num_format("0"),
        }
    }
}

/// The flags of a row in Chinese, `、`-separated.
fn flags_zh(flags: &[String]) -> String {
    flags
        .iter()
        .map(|f| {
            FLAG_ZH
                .iter()
                .find(|(flag, _)| flag.as_str() == f)
                .map_or(f.as_str(), |(_, zh)| zh)
        })
        .collect::<Vec<_>>()
        .join("、")
}

fn write_sheet(
    sheet: &mut Worksheet,
    header_line: &str,
    columns: &[&YearEndColumn],
    rows: &[YearEndRow],
    styles: &Styles,
) -> Result<(), XlsxError> {
    let last = (columns.len() - 1) as u16;
    // The line spans the table's width (a merged range needs at least two cells).
    if last > 0 {
        sheet.merge_range(0, 0, 0, last, header_line, &styles.title)?;
    } else {
        sheet.write_string_with_format(0, 0, header_line, &styles.title)?;
    }
    for (c, spec) in columns.iter().enumerate() {
        let col = c as u16;
        sheet.write_string_with_format(1, col, spec.zh, &styles.header)?;
        let width = match spec.kind {
            YearEndKind::Flags => 20.0,
            _ => (spec.zh.chars().count() as f64 * 2.4).max(10.0),
        };
        sheet.set_column_width(col, width)?;
    }
    sheet.set_freeze_panes(2, 0)?;
    for (i, row) in rows.iter().enumerate() {
        let r = (i + 2) as u32;
        for (c, spec) in columns.iter().enumerate() {
            let col = c as u16;
            let figure = match spec.name {
                "staff" => {
                    sheet.write_string_with_format(r, col, &row.staff, &styles.text)?;
                    continue;
                }
                "name" => {
                    sheet.write_string_with_format(r, col, &row.name, &styles.text)?;
                    continue;
                }
                "flags" => {
                    sheet.write_string_with_format(r, col, flags_zh(&row.flags), &styles.text)?;
                    continue;
                }
                "rank" => {
                    match row.rank {
                        Some(k) => sheet.write_number_with_format(r, col, k, &styles.rank)?,
                        None => sheet.write_blank(r, col, &styles.rank)?,
                    };
                    continue;
                }
                "score" => row.score,
                "year_end_points" => row.year_end_points,
                "other" => row.other,
                _ => row.total,
            };
            match figure {
                Some(v) => sheet.write_number_with_format(r, col, v, &styles.points)?,
                None => sheet.write_blank(r, col, &styles.points)?,
            };
        }
    }
    Ok(())
}

/// An aligned text table for a terminal: machine column names, text left-aligned, figures
/// right-aligned with two decimals, `-` for null, flags `,`-separated; then one line naming
/// the commended and one naming the disqualified (`none` when empty).
pub fn render_table(table: &YearEnd) -> Result<String, ReportError> {
    let columns = table.columns();
    let rows = table.rows()?;
    let fig = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let headers: Vec<String> = columns.iter().map(|c| c.name.to_owned()).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match c.name {
                    "staff" => r.staff.clone(),
                    "name" => r.name.clone(),
                    "flags" => r.flags.join(","),
                    "rank" => r.rank.map_or_else(|| "-".to_owned(), |k| k.to_string()),
                    "score" => fig(r.score),
                    "year_end_points" => fig(r.year_end_points),
                    "other" => fig(r.other),
                    _ => fig(r.total),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            cells
                .iter()
                .map(|l| crate::output::display_width(&l[i]))
                .chain([crate::output::display_width(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let left: Vec<bool> = columns
        .iter()
        .map(|c| matches!(c.kind, YearEndKind::Text | YearEndKind::Flags))
        .collect();
    let mut out = String::new();
    let emit = |line: &[String], out: &mut String| {
        let mut parts = Vec::with_capacity(line.len());
        for (i, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(crate::output::display_width(cell)));
            parts.push(if left[i] {
                format!("{cell}{pad}")
            } else {
                format!("{pad}{cell}")
            });
        }
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    emit(&headers, &mut out);
    for line in &cells {
        emit(line, &mut out);
    }
    let list = |rows: Vec<YearEndRow>| {
        if rows.is_empty() {
            "none".to_owned()
        } else {
            rows.iter()
                .map(|r| format!("{} {}", r.staff, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    out.push('\n');
    out.push_str(&format!("commended: {}\n", list(table.commended_rows()?)));
    out.push_str(&format!(
        "disqualified: {}\n",
        list(table.disqualified_rows()?)
    ));
    Ok(out)
}
