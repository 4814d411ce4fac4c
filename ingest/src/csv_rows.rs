//! CSV input: one file per event type, one row per event, turned into the same wire object a
//! JSONL line would be and then validated by the same path.
//!
//! Conventions (rules §5.11): the `type` column may be left out when the file is named
//! `<type>.csv`; UTF-8 with or without BOM; nested fields have dotted headers
//! (`guardian.name`, `parents.0.phone`, `policy.quota.talk.weight`, `items.run_50m`); list
//! cells are `;`-separated; an empty cell is an absent field. Cells are typed from the
//! schema's shape (numbers, booleans, lists). This module owns that mapping; it must never
//! judge a value itself beyond reading it (a cell that does not read as a number stays text,
//! and decoding reports it).

use events::EventKind;
use serde_json::{Map, Value};

use crate::error::quote;
use crate::shape::{self, Shape};
use crate::validate::{Batch, Origin};
use crate::wire::{ENVELOPE, Problem};

/// The byte-order mark spreadsheets put at the start of a UTF-8 CSV.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a CSV file into the batch. `file_kind` is the type the file's name gives, if any.
pub fn read(batch: &mut Batch<'_>, bytes: &[u8], file_kind: Option<EventKind>) {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = ::csv::ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut type_col: Option<usize> = None;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                batch.report(
                    line,
                    Problem {
                        field: None,
                        expected: "well-formed CSV".to_owned(),
                        found: Some(e.to_string()),
                    },
                );
                return;
            }
        }
        let line = record.position().map_or(1, |p| p.line() as usize);
        // A quote left open swallows the rest of the file into one cell (the CSV reader does
        // not call that an error): say where it opened instead of what is missing after it.
        let start = record.position().map_or(0, |p| p.byte() as usize);
        let end = reader.position().byte() as usize;
        if end >= bytes.len()
            && let Some((lines, cell)) = bytes.get(start..).and_then(unclosed_quote)
        {
            let field = header.as_ref().and_then(|h| h.get(cell)).cloned();
            batch.report(
                Some(line + lines),
                Problem {
                    field,
                    expected: "a closing quote for the quote opened on this line".to_owned(),
                    found: Some("the end of the file".to_owned()),
                },
            );
            return;
        }
        let mut cells = Vec::with_capacity(record.len());
        let mut utf8 = true;
        for raw in record.iter() {
            match std::str::from_utf8(raw) {
                // A cell careledger escaped as formula-like reads as it was.
                Ok(s) => cells.push(events::csv_cell::unescape(s.trim()).to_owned()),
                Err(_) => utf8 = false,
            }
        }
        if !utf8 {
            batch.report(
                Some(line),
                Problem {
                    field: None,
                    expected: "UTF-8 text".to_owned(),
                    found: Some("bytes that are not UTF-8 (save the file as CSV UTF-8)".to_owned()),
                },
            );
            if header.is_none() {
                return;
            }
            continue;
        }
        let Some(columns) = &header else {
            let problems = check_header(&cells, file_kind);
            if !problems.is_empty() {
                for p in problems {
                    batch.report(Some(line), p);
                }
                return;
            }
            type_col = cells.iter().position(|c| c == "type");
            header = Some(cells);
            continue;
        };
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if cells.len() > columns.len() && cells[columns.len()..].iter().any(|c| !c.is_empty()) {
            batch.report(
                Some(line),
                Problem {
                    field: None,
                    expected: format!("at most {} cells, as many as the header has", columns.len()),
                    found: Some(format!("{} cells", cells.len())),
                },
            );
            continue;
        }
        row(batch, line, columns, &cells, type_col, file_kind);
    }
}

/// Where a quote opened and never closed in the last record of a file: the lines before it
/// (within the record) and the cell it opened. `None` when every quote closes.
fn unclosed_quote(record: &[u8]) -> Option<(usize, usize)> {
    let (mut lines, mut cell) = (0usize, 0usize);
    let mut opened: Option<(usize, usize)> = None;
    let mut at_cell_start = true;
    let mut i = 0;
    while i < record.len() {
        let b = record[i];
        if opened.is_some() {
            if b == b'"' {
                if record.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    opened = None;
                }
            } else if b == b'\n' {
                lines += 1;
            }
        } else if b == b'"' && at_cell_start {
            opened = Some((lines, cell));
        } else if b == b',' {
            cell += 1;
            at_cell_start = true;
            i += 1;
            continue;
        } else if b == b'\n' {
            // A new record: its cells count from 0 again.
            lines += 1;
            cell = 0;
            at_cell_start = true;
            i += 1;
            continue;
        }
        at_cell_start = false;
        i += 1;
    }
    opened
}

/// Turns one row into a wire object and validates it.
fn row(
    batch: &mut Batch<'_>,
    line: usize,
    columns: &[String],
    cells: &[String],
    type_col: Option<usize>,
    file_kind: Option<EventKind>,
) {
    let row_type = type_col
        .and_then(|i| cells.get(i))
        .filter(|c| !c.is_empty());
    if let (Some(t), Some(k)) = (row_type, file_kind)
        && t != k.as_str()
    {
        // In a file of counseling sessions the cell may be note text of a shifted row.
        let found = if !k.has_confidential_fields() {
            quote(t)
        } else {
            crate::validate::hide_found(quote(t))
        };
        batch.report(
            Some(line),
            Problem::field("type", format!("{k}, as the file's name says"), Some(found)),
        );
        return;
    }
    let kind = file_kind.or_else(|| row_type.and_then(|t| EventKind::parse(t)));
    if file_kind.is_none()
        && let Some(k) = kind
    {
        // Mixed-type file: the columns can only be checked against each row's type.
        let problems: Vec<Problem> = columns
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                !ENVELOPE.contains(&c.as_str()) && cells.get(*i).is_some_and(|v| !v.is_empty())
            })
            .filter_map(|(_, c)| check_column(k, c))
            .collect();
        if !problems.is_empty() {
            for p in problems {
                batch.report(Some(line), p);
            }
            return;
        }
    }

    let mut obj = Map::new();
    if let Some(k) = file_kind {
        obj.insert("type".to_owned(), Value::String(k.as_str().to_owned()));
    }
    for (column, cell) in columns.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        if ENVELOPE.contains(&column.as_str()) {
            obj.insert(column.clone(), Value::String(cell.clone()));
            continue;
        }
        insert_path(&mut obj, column.split('.'), Value::String(cell.clone()));
    }
    if let Some(k) = kind {
        let mut v = Value::Object(obj);
        shape::of(k).coerce(&mut v);
        obj = match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
    }
    batch.line(line, obj, Origin::Csv);
}

/// Checks the header row: names present and unique, and, when the file's type is known,
/// every column a field of that type.
fn check_header(cells: &[String], file_kind: Option<EventKind>) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        if c.is_empty() {
            out.push(Problem {
                field: None,
                expected: format!("a name for column {}", i + 1),
                found: Some("an empty header cell".to_owned()),
            });
        } else if cells[..i].contains(c) {
            out.push(Problem::field(
                c.clone(),
                "each column named once",
                Some("a repeated column".to_owned()),
            ));
        }
    }
    if file_kind.is_none() && !cells.iter().any(|c| c == "type") {
        out.push(Problem::field(
            "type",
            "a type column, or a file named after its event type (talk_held.csv)",
            Some("nothing".to_owned()),
        ));
    }
    if let Some(k) = file_kind {
        out.extend(
            cells
                .iter()
                .filter(|c| !c.is_empty() && !ENVELOPE.contains(&c.as_str()))
                .filter_map(|c| check_column(k, c)),
        );
    }
    out
}

/// Whether a dotted column names a field of `kind` that a cell can hold.
pub(crate) fn check_column(kind: EventKind, column: &str) -> Option<Problem> {
    let segs: Vec<&str> = column.split('.').collect();
    let mut shape = shape::of(kind);
    for (i, seg) in segs.iter().enumerate() {
        let owner = if i == 0 {
            kind.as_str().to_owned()
        } else {
            segs[..i].join(".")
        };
        shape = match shape {
            Shape::Object(fields) => match fields.iter().find(|(n, _)| n == seg) {
                Some((_, s)) => s,
                None => {
                    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                    return Some(Problem::field(
                        column,
                        format!("a field of {owner} ({})", names.join(", ")),
                        Some("an unknown column".to_owned()),
                    ));
                }
            },
            Shape::List(inner) => {
                if seg.parse::<usize>().is_err() {
                    return Some(Problem::field(
                        column,
                        format!("a list position after {owner} (such as {owner}.0)"),
                        Some(quote(seg)),
                    ));
                }
                inner
            }
            Shape::Map(inner) => inner,
            Shape::Any => return None,
            leaf => {
                return Some(Problem::field(
                    column,
                    format!("no sub-field: {owner} is {leaf}"),
                    Some("an unknown column".to_owned()),
                ));
            }
        };
    }
    let first = |fields: &[(&'static str, Shape)]| fields.first().map_or("name", |(n, _)| *n);
    let example = match shape {
        Shape::Object(fields) => format!("{column}.{}", first(fields)),
        Shape::List(inner) => match inner.as_ref() {
            Shape::Object(fields) => format!("{column}.0.{}", first(fields)),
            _ => return None,
        },
        Shape::Map(_) => format!("{column}.<key>"),
        _ => return None,
    };
    Some(Problem::field(
        column,
        format!("one column per field (such as {example})"),
        Some("a column for a whole object".to_owned()),
    ))
}

/// Sets a value at a dotted path of objects, creating them on the way (list positions are
/// object keys until `coerce` turns them into lists).
pub(crate) fn insert_path<'a>(
    obj: &mut Map<String, Value>,
    mut segs: impl Iterator<Item = &'a str>,
    v: Value,
) {
    let Some(first) = segs.next() else { return };
    let rest: Vec<&str> = segs.collect();
    if rest.is_empty() {
        obj.insert(first.to_owned(), v);
        return;
    }
    let child = obj
        .entry(first.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    if let Value::Object(m) = child {
        insert_path(m, rest.into_iter(), v);
    }
}
