//! How listings leave the binary: an aligned table (the default, for people), JSON or CSV
//! (for machines), to stdout or to `--out`.
//!
//! This module owns formatting only; it must never decide what a row contains (callers
//! hand it rows that already exclude confidential fields). It owns two output safeties: a
//! table never prints a control character or direction mark raw (an ESC in a recorded text
//! must not drive the terminal), and a CSV cell that a spreadsheet would read as a formula is
//! escaped (`events::csv_cell`).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use events::csv_cell;
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// `--format` of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
    /// A workbook (`archives` only: the children's files as a 留守儿童登记表 that re-imports).
    Xlsx,
}

/// A listing: headers and rows of cells for table/CSV, and a serializable value for JSON.
pub struct Listing<'a, T: Serialize> {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub json: &'a T,
}

/// Writes `text` to `out` (a file) or stdout.
pub fn emit(text: &str, out: Option<&Path>) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// Renders a listing in `format`.
pub fn render<T: Serialize>(listing: &Listing<'_, T>, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => table(&listing.headers, &listing.rows),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(listing.json)?;
            s.push('\n');
            s
        }
        Format::Csv => csv_text(&listing.headers, &listing.rows)?,
        Format::Xlsx => {
            return Err(crate::BadInput(
                "--format xlsx: only archives writes a workbook; use table, json or csv".into(),
            )
            .into());
        }
    })
}

/// Aligned columns; widths count East Asian characters as two columns. Cells are shown
/// `events::text::printable`.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let shown = |cells: &[String]| -> Vec<String> {
        cells
            .iter()
            .map(|c| events::text::printable(c).into_owned())
            .collect()
    };
    let headers = &shown(headers);
    let rows: &Vec<Vec<String>> = &rows.iter().map(|r| shown(r)).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.width());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.width());
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// CSV with a header line; cells that begin like a formula are escaped
/// (`events::csv_cell::escape`), so a child named `=HYPERLINK(…)` stays text in Excel.
pub fn csv_text(headers: &[String], rows: &[Vec<String>]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(headers.iter().map(|c| csv_cell::escape(c).into_owned()))?;
    for row in rows {
        w.write_record(row.iter().map(|c| csv_cell::escape(c).into_owned()))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
