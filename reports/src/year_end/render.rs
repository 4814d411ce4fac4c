//! The files of the year-end table: XLSX (Chinese headers, three sheets), CSV with a BOM,
//! JSON, Parquet and a terminal table, each through the writers of `output`.
//!
//! This module owns the year-end table's presentation (the header line, the Chinese flag
//! names, the sheet names, the JSON shape); it must never rank or compute a figure (that is
//! the table's, in the parent module) and never write a file format of its own.

use std::path::Path;

use rust_xlsxwriter::{Format as CellFormat, Workbook, Worksheet, XlsxError};
use serde_json::{Map, Value, json};

use super::{YearEnd, YearEndRow};
use crate::error::ReportError;
use crate::output::{self, Format};
use crate::table::{ColumnKind, ColumnSpec};
use projections::scores::Flag;

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
        // Figures as the run rounded them: two decimals.
        Format::Csv => output::render_csv(&table.table, Some(2)),
        Format::Json => to_json(table, head_hash).map(String::into_bytes),
        Format::Parquet => output::render_parquet(&table.table),
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
    output::json_text(&v)
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
            header: output::header_format(),
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
    columns: &[&ColumnSpec],
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
            ColumnKind::Flags => 20.0,
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
    let left: Vec<bool> = columns.iter().map(|c| c.kind.left_aligned()).collect();
    let mut out = output::aligned_text(&headers, &cells, &left);
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
