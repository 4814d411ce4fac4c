//! `ingest`: turns outside formats (JSONL, CSV, XLSX workbooks of school forms;
//! `careledger record`'s JSON) into validated `events::Draft`s, or into every problem of the
//! input, each naming file (sheet), line (row) and field (column).
//!
//! It owns the wire format (docs/ingest.md), the table of school forms that both the
//! workbook reader and the blank form templates follow (`forms`), and the validation of a
//! batch against the log (`Known`) and itself. It must never write anything — not the log,
//! not a file: the binary hands the drafts to `Store::append`, which appends a batch whole or
//! not at all, and writes the template bytes `template` returns.

pub mod csv_rows;
pub mod error;
pub mod forms;
pub mod json;
pub mod known;
pub mod other_scores;
pub mod people;
pub mod policy_toml;
pub mod shape;
pub mod template;
pub mod validate;
pub mod wire;
pub mod xlsx;

use std::path::Path;

use events::{EventKind, time};
use serde_json::Value;

pub use error::{IngestErrors, LineError};
pub use known::{Known, KnownError, KnownEvent, MemoryKnown, Open, StoreKnown};
pub use validate::{Options, Parsed};
pub use wire::derive_id;

use crate::error::quote;
use crate::json::read_object;
use crate::validate::{Batch, Origin};
use crate::wire::Problem;

/// The file name errors of `careledger record` carry.
pub const CLI_FILE: &str = "<cli>";

/// Reads and validates one input file, by its extension: `.jsonl` / `.ndjson`, `.csv`
/// (a file named `<type>.csv` may leave out the `type` column) or `.xlsx`. Errors name the
/// file as `path` shows it.
pub fn parse_file(path: &Path, known: &dyn Known, opts: &Options) -> Result<Parsed, IngestErrors> {
    parse_file_as(path, known, opts, None)
}

/// `parse_file` with the importing staff member: the `actor` of workbook rows that name none
/// (JSONL and CSV lines always name theirs).
pub fn parse_file_as(
    path: &Path,
    known: &dyn Known,
    opts: &Options,
    actor: Option<&str>,
) -> Result<Parsed, IngestErrors> {
    let file = path.display().to_string();
    format_of(&file)?;
    let bytes = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            k => k.to_string(),
        };
        whole_file(&file, "a readable file", why)
    })?;
    parse_bytes_as(&file, &bytes, known, opts, actor)
}

/// Validates the content of a file named `file` (its extension and name decide the format
/// and, for `<type>.csv`, the type), as `parse_file` does after reading it.
pub fn parse_bytes(
    file: &str,
    bytes: &[u8],
    known: &dyn Known,
    opts: &Options,
) -> Result<Parsed, IngestErrors> {
    parse_bytes_as(file, bytes, known, opts, None)
}

/// `parse_bytes` with the importing staff member (see `parse_file_as`).
pub fn parse_bytes_as(
    file: &str,
    bytes: &[u8],
    known: &dyn Known,
    opts: &Options,
    actor: Option<&str>,
) -> Result<Parsed, IngestErrors> {
    match format_of(file)? {
        Format::Xlsx => parse_xlsx(file, bytes, known, opts, actor),
        Format::Csv => {
            let kind = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(EventKind::parse);
            parse_csv(file, kind, bytes, known, opts)
        }
        Format::Jsonl => parse_jsonl(file, bytes, known, opts),
    }
}

enum Format {
    Jsonl,
    Csv,
    Xlsx,
}

fn format_of(file: &str) -> Result<Format, IngestErrors> {
    let ext = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "jsonl" | "ndjson" => Ok(Format::Jsonl),
        "csv" => Ok(Format::Csv),
        "xlsx" => Ok(Format::Xlsx),
        _ => Err(whole_file(
            file,
            "a .jsonl, .csv or .xlsx file (save an .xls or .et workbook as .xlsx)",
            if ext.is_empty() {
                "no extension".to_owned()
            } else {
                format!("a .{ext} file")
            },
        )),
    }
}

fn whole_file(file: &str, expected: &str, found: String) -> IngestErrors {
    IngestErrors {
        errors: vec![LineError {
            file: file.to_owned(),
            sheet: None,
            line: None,
            column: None,
            field: None,
            expected: expected.to_owned(),
            found: Some(found),
        }],
    }
}

/// Validates JSONL text: one wire object per line; blank lines are skipped; a BOM is ignored.
pub fn parse_jsonl(
    file: &str,
    bytes: &[u8],
    known: &dyn Known,
    opts: &Options,
) -> Result<Parsed, IngestErrors> {
    let mut batch = Batch::new(file, known, *opts);
    let bytes = bytes.strip_prefix(csv_rows::BOM).unwrap_or(bytes);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            batch.report(
                Some(line),
                Problem {
                    field: None,
                    expected: "UTF-8 text".to_owned(),
                    found: Some("bytes that are not UTF-8".to_owned()),
                },
            );
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match read_object(text) {
            Ok(obj) => batch.line(line, obj, Origin::Json),
            Err(p) => batch.report(Some(line), p),
        }
    }
    batch.finish()
}

/// Validates CSV bytes. `kind` is the event type the file's name gives (`talk_held.csv`),
/// if any; without it every row needs a `type` cell.
pub fn parse_csv(
    file: &str,
    kind: Option<EventKind>,
    bytes: &[u8],
    known: &dyn Known,
    opts: &Options,
) -> Result<Parsed, IngestErrors> {
    let mut batch = Batch::new(file, known, *opts);
    csv_rows::read(&mut batch, bytes, kind);
    batch.finish()
}

/// Validates an XLSX workbook: one batch of all its sheets, in workbook order (see `xlsx`).
/// `actor` is the importing staff member, the actor of rows that name none.
pub fn parse_xlsx(
    file: &str,
    bytes: &[u8],
    known: &dyn Known,
    opts: &Options,
    actor: Option<&str>,
) -> Result<Parsed, IngestErrors> {
    let mut batch = Batch::new(file, known, *opts);
    xlsx::read(&mut batch, bytes, actor);
    batch.finish()
}

/// Validates one event given on the command line (`careledger record TYPE --json '{…}'`):
/// `json` is a wire object that may leave out `type` (given as `type_`), `actor` (taken from
/// `actor` when given) and `occurred_at` (then it is `opts.now`). Errors carry the file name
/// `<cli>` and line 1. The result holds no draft when the same event is already in the log.
pub fn parse_record(
    type_: &str,
    json: &str,
    actor: Option<&str>,
    known: &dyn Known,
    opts: &Options,
) -> Result<Parsed, IngestErrors> {
    let mut batch = Batch::new(CLI_FILE, known, *opts);
    match read_object(json) {
        Err(p) => batch.report(Some(1), p),
        Ok(mut obj) => {
            match obj.get("type") {
                Some(Value::String(t)) if t != type_ => batch.report(
                    Some(1),
                    Problem::field("type", format!("{type_}, the type given"), Some(quote(t))),
                ),
                _ => {}
            }
            obj.insert("type".to_owned(), Value::String(type_.to_owned()));
            if let Some(a) = actor {
                obj.entry("actor")
                    .or_insert_with(|| Value::String(a.to_owned()));
            }
            obj.entry("occurred_at")
                .or_insert_with(|| Value::String(time::format_local(opts.now)));
            batch.line(1, obj, Origin::Json);
        }
    }
    batch.finish()
}
