//! The writers of report tables — CSV (UTF-8 with a BOM, for Excel and WPS), JSON (rules
//! §8.9), Parquet, XLSX (Chinese headers) and an aligned text table for the terminal — and
//! their use for the term report (percentages, one sheet per school and a county sheet). The
//! year-end table (`year_end`) writes through the same writers.
//!
//! This module owns file names and presentation. It must never compute a figure (every value
//! comes from the report's frame) and never add a column the report lacks: the report holds
//! nothing identifying, so neither does any file written here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_xlsxwriter::{Format as CellFormat, FormatAlign, Workbook, Worksheet, XlsxError};
use serde::Serialize;

use crate::error::ReportError;
use crate::report::{ReportRow, Scope, TermReport};
use crate::table::{ColumnKind, REPORT_COLUMNS};

/// An output format of `report term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// CSV, UTF-8 with a byte-order mark, English headers, rates as fractions.
    Csv,
    /// A JSON array of rows (rules §8.9).
    Json,
    /// Parquet, the frame as is.
    Parquet,
    /// An Excel workbook with Chinese headers and percentages.
    Xlsx,
    /// An aligned text table (stdout; `write` renders it to a `.txt` file).
    Table,
}

impl Format {
    /// Parses one name (`csv`, `json`, `parquet`, `xlsx`, `table`).
    pub fn parse(name: &str) -> Result<Format, ReportError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            "xlsx" => Ok(Format::Xlsx),
            "table" => Ok(Format::Table),
            _ => Err(ReportError::UnknownFormat {
                name: name.to_owned(),
            }),
        }
    }

    /// Parses a comma-separated list (`csv,json,parquet,xlsx`), keeping the first of repeats.
    pub fn parse_list(list: &str) -> Result<Vec<Format>, ReportError> {
        let mut out = Vec::new();
        for name in list.split(',').filter(|s| !s.trim().is_empty()) {
            let f = Format::parse(name)?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
            Format::Xlsx => "xlsx",
            Format::Table => "txt",
        }
    }
}

/// A file-name-safe form of an id or county name: letters (any script), digits, `-` and `_`
/// are kept, anything else becomes `_`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The file stem of a report: `term-2025-2026-1-school-S001`, `term-2025-2026-1-county-X`.
pub fn file_stem(report: &TermReport) -> String {
    let scope = match report.scope() {
        Scope::School(s) => format!("school-{}", slug(s)),
        Scope::County(c) => format!("county-{}", slug(c)),
    };
    format!("term-{}-{scope}", slug(report.term()))
}

/// Writes the report into `dir` (created if missing) in each format, returning the paths
/// written, in the order of `formats`.
pub fn write(
    report: &TermReport,
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
    let stem = file_stem(report);
    let mut written = Vec::with_capacity(formats.len());
    for &f in formats {
        let path = dir.join(format!("{stem}.{}", f.extension()));
        let bytes = render(report, f)?;
        std::fs::write(&path, bytes).map_err(ReportError::io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// The report in one format, as the bytes of its file (for stdout, or an HTTP body).
pub fn render(report: &TermReport, format: Format) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Csv => render_csv(report.frame(), None),
        Format::Json => to_json(report).map(String::into_bytes),
        Format::Parquet => render_parquet(report.frame()),
        Format::Xlsx => render_xlsx(report),
        Format::Table => render_table(report).map(String::into_bytes),
    }
}

/// CSV of a frame, UTF-8 with a BOM so that Excel and WPS open it correctly; the frame's
/// (English) column names as headers, nulls empty, floats with `float_precision` decimals
/// when given (the term report's rates as fractions keep every digit).
pub fn render_csv(
    frame: &DataFrame,
    float_precision: Option<usize>,
) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut df = escape_formulas(frame)?;
    CsvWriter::new(&mut out)
        .include_bom(true)
        .include_header(true)
        .with_float_precision(float_precision)
        .finish(&mut df)
        .map_err(ReportError::polars("writing the csv"))?;
    Ok(out)
}

/// The frame with every text cell that begins like a formula escaped
/// (`events::csv_cell::escape`): what every CSV written from a frame goes through, so that a
/// school or staff name such as `=HYPERLINK(…)` stays text in a spreadsheet. Numbers are not
/// text and are left as they are.
pub fn escape_formulas(df: &DataFrame) -> Result<DataFrame, ReportError> {
    let mut out = df.clone();
    for name in df.get_column_names_owned() {
        let col = df
            .column(&name)
            .map_err(ReportError::polars("escaping the csv cells"))?;
        if col.dtype() != &DataType::String {
            continue;
        }
        let ca = col
            .str()
            .map_err(ReportError::polars("escaping the csv cells"))?;
        if !ca
            .iter()
            .flatten()
            .any(|s| events::csv_cell::escape(s) != s)
        {
            continue;
        }
        let escaped: StringChunked = ca
            .iter()
            .map(|v| v.map(|s| events::csv_cell::escape(s).into_owned()))
            .collect();
        out.with_column(escaped.with_name(name.clone()).into_column())
            .map_err(ReportError::polars("escaping the csv cells"))?;
    }
    Ok(out)
}

/// A JSON value pretty-printed, newline-terminated.
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, ReportError> {
    let mut s =
        serde_json::to_string_pretty(value).map_err(|source| ReportError::Json { source })?;
    s.push('\n');
    Ok(s)
}

/// The JSON rows of rules §8.9: an array of `{school, grade, class, <columns>}`, rates as
/// fractions, null where null; pretty-printed, newline-terminated.
pub fn to_json(report: &TermReport) -> Result<String, ReportError> {
    json_text(&report.rows()?)
}

/// Parquet of a frame as is (rates as fractions, nulls as nulls).
pub fn render_parquet(frame: &DataFrame) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut df = frame.clone();
    ParquetWriter::new(&mut out)
        .finish(&mut df)
        .map_err(ReportError::polars("writing the parquet"))?;
    Ok(out)
}

/// A worksheet name Excel accepts: no `[]:*?/\`, at most 31 characters, unique in the book.
fn sheet_name(wanted: &str, taken: &mut BTreeSet<String>) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let clean = clean.trim_matches('\'').to_owned();
    let base: String = if clean.is_empty() {
        "sheet".to_owned()
    } else {
        clean.chars().take(31).collect()
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name.to_lowercase()) {
        let suffix = format!("~{n}");
        let keep = 31 - suffix.chars().count();
        name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
        n += 1;
    }
    taken.insert(name.to_lowercase());
    name
}

/// The style of a header cell in every workbook: bold, centred, light blue.
pub(crate) fn header_format() -> CellFormat {
    CellFormat::new()
        .set_bold()
        .set_align(FormatAlign::Center)
        .set_background_color(0xDDEBF7)
}

struct Styles {
    header: CellFormat,
    count: CellFormat,
    rate: CellFormat,
    yuan: CellFormat,
    total_text: CellFormat,
    total_count: CellFormat,
    total_rate: CellFormat,
    total_yuan: CellFormat,
}

impl Styles {
    fn new() -> Styles {
        let total = || CellFormat::new().set_bold().set_background_color(0xF2F2F2);
        Styles {
            header: header_format(),
            count: CellFormat::new(),
            rate: CellFormat::new().set_num_format("0.0%"),
            yuan: CellFormat::new().set_num_format("0.00"),
            total_text: total(),
            total_count: total(),
            total_rate: total().set_num_format("0.0%"),
            total_yuan: total().set_num_format("0.00"),
        }
    }
}

/// The label of the key columns of a row in the workbook: totals read 合计 / 全县合计.
fn key_labels(row: &ReportRow) -> [String; 3] {
    match (&row.school, row.grade, row.class) {
        (None, _, _) => ["全县合计".to_owned(), String::new(), String::new()],
        (Some(s), None, _) => [s.clone(), "合计".to_owned(), String::new()],
        (Some(s), Some(g), c) => [
            s.clone(),
            g.to_string(),
            c.map(|c| c.to_string()).unwrap_or_default(),
        ],
    }
}

fn values(row: &ReportRow) -> [Option<f64>; 25] {
    let c = |v: u64| Some(v as f64);
    [
        c(row.children),
        c(row.both_parents_away),
        c(row.one_parent_away),
        c(row.grandparent_guardian),
        c(row.boarding),
        c(row.hardship),
        c(row.archived),
        row.archive_rate,
        c(row.paired),
        row.pairing_rate,
        c(row.talked),
        row.talk_coverage,
        c(row.home_visited),
        row.home_visit_coverage,
        c(row.talks),
        c(row.parent_calls),
        c(row.family_calls),
        c(row.letters),
        c(row.warmth_visits),
        c(row.counseling_sessions),
        Some(row.aid_yuan),
        c(row.dropped_out),
        row.retention_rate,
        c(row.incidents),
        c(row.escalated_on_time),
    ]
}

fn write_sheet(
    sheet: &mut Worksheet,
    rows: &[&ReportRow],
    styles: &Styles,
) -> Result<(), XlsxError> {
    for (c, spec) in REPORT_COLUMNS.iter().enumerate() {
        let col = c as u16;
        sheet.write_string_with_format(0, col, spec.zh, &styles.header)?;
        let width = match spec.kind {
            ColumnKind::Key => 10.0,
            _ => (spec.zh.chars().count() as f64 * 2.2).max(8.0),
        };
        sheet.set_column_width(col, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (i, row) in rows.iter().enumerate() {
        let r = (i + 1) as u32;
        let total = row.grade.is_none();
        let text = if total {
            &styles.total_text
        } else {
            &styles.count
        };
        let [school, grade, class] = key_labels(row);
        sheet.write_string_with_format(r, 0, &school, text)?;
        match (row.grade, row.class) {
            // grade and class are numbers, so that spreadsheets sort them as numbers
            (Some(g), Some(c)) => {
                sheet.write_number_with_format(r, 1, g, text)?;
                sheet.write_number_with_format(r, 2, c, text)?;
            }
            _ => {
                for (col, label) in [(1u16, grade), (2u16, class)] {
                    if label.is_empty() {
                        sheet.write_blank(r, col, text)?;
                    } else {
                        sheet.write_string_with_format(r, col, &label, text)?;
                    }
                }
            }
        }
        for (j, (spec, v)) in REPORT_COLUMNS[3..].iter().zip(values(row)).enumerate() {
            let col = (j + 3) as u16;
            let fmt = match (spec.kind, total) {
                (ColumnKind::Rate, false) => &styles.rate,
                (ColumnKind::Rate, true) => &styles.total_rate,
                (ColumnKind::Yuan, false) => &styles.yuan,
                (ColumnKind::Yuan, true) => &styles.total_yuan,
                (_, false) => &styles.count,
                (_, true) => &styles.total_count,
            };
            match v {
                Some(v) => sheet.write_number_with_format(r, col, v, fmt)?,
                None => sheet.write_blank(r, col, fmt)?,
            };
        }
    }
    Ok(())
}

/// XLSX: a county sheet (全县汇总: every school's total, then the county total) for a county
/// report, then one sheet per school (its class rows, then its total row); Chinese headers,
/// rates shown as percentages (`0.0%`), the header row frozen.
pub fn render_xlsx(report: &TermReport) -> Result<Vec<u8>, ReportError> {
    let rows = report.rows()?;
    let styles = Styles::new();
    let mut book = Workbook::new();
    let mut taken = BTreeSet::new();
    let xlsx = |source| ReportError::Xlsx { source };
    if let Scope::County(_) = report.scope() {
        let totals: Vec<&ReportRow> = rows.iter().filter(|r| r.grade.is_none()).collect();
        let sheet = book.add_worksheet();
        sheet
            .set_name(sheet_name("全县汇总", &mut taken))
            .map_err(xlsx)?;
        write_sheet(sheet, &totals, &styles).map_err(xlsx)?;
    }
    let schools: Vec<&str> = {
        let mut seen = Vec::new();
        for r in &rows {
            if let Some(s) = r.school.as_deref()
                && !seen.contains(&s)
            {
                seen.push(s);
            }
        }
        seen
    };
    for school in schools {
        let of_school: Vec<&ReportRow> = rows
            .iter()
            .filter(|r| r.school.as_deref() == Some(school))
            .collect();
        let sheet = book.add_worksheet();
        sheet
            .set_name(sheet_name(school, &mut taken))
            .map_err(xlsx)?;
        write_sheet(sheet, &of_school, &styles).map_err(xlsx)?;
    }
    book.save_to_buffer().map_err(xlsx)
}

/// The display width of a string in a terminal: CJK and full-width characters take two
/// columns.
fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// An aligned text table for a terminal: machine column names, counts right-aligned, rates as
/// percentages with one decimal, `-` for null; totals read `total` / `county total`.
pub fn render_table(report: &TermReport) -> Result<String, ReportError> {
    let rows = report.rows()?;
    let headers: Vec<String> = REPORT_COLUMNS.iter().map(|c| c.name.to_owned()).collect();
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut line = Vec::with_capacity(REPORT_COLUMNS.len());
        // A school id is recorded text: shown without raw control characters.
        let shown = |s: &str| events::text::printable(s).into_owned();
        match (&row.school, row.grade) {
            (None, _) => line.extend(["county total".to_owned(), String::new(), String::new()]),
            (Some(s), None) => line.extend([shown(s), "total".to_owned(), String::new()]),
            (Some(s), Some(g)) => line.extend([
                shown(s),
                g.to_string(),
                row.class.map(|c| c.to_string()).unwrap_or_default(),
            ]),
        }
        for (spec, v) in REPORT_COLUMNS[3..].iter().zip(values(row)) {
            line.push(match (spec.kind, v) {
                (_, None) => "-".to_owned(),
                (ColumnKind::Rate, Some(v)) => format!("{:.1}%", v * 100.0),
                (ColumnKind::Yuan, Some(_)) => {
                    let fen = row.aid_fen();
                    format!("{}.{:02}", fen / 100, fen % 100)
                }
                (_, Some(v)) => format!("{v}"),
            });
        }
        cells.push(line);
    }
    let left: Vec<bool> = REPORT_COLUMNS
        .iter()
        .map(|c| c.kind.left_aligned())
        .collect();
    Ok(aligned_text(&headers, &cells, &left))
}

/// An aligned text table: columns two spaces apart, each as wide as its widest cell (CJK
/// characters count two), cells padded on the right where `left[i]`, else on the left;
/// trailing spaces trimmed.
pub fn aligned_text(headers: &[String], cells: &[Vec<String>], left: &[bool]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            cells
                .iter()
                .map(|l| display_width(&l[i]))
                .chain([display_width(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let emit = |line: &[String], out: &mut String| {
        let mut parts = Vec::with_capacity(line.len());
        for (i, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(display_width(cell)));
            parts.push(if left[i] {
                format!("{cell}{pad}")
            } else {
                format!("{pad}{cell}")
            });
        }
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    emit(headers, &mut out);
    for line in cells {
        emit(line, &mut out);
    }
    out
}
