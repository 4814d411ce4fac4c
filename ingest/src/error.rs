//! Ingest errors: one `LineError` per problem found, all of a file's problems together.
//!
//! This module owns the error format every user sees (`file:line: field f: expected …, found …`,
//! lowercase, no trailing period) and the rendering of offending values, which must never
//! print a counseling `notes` text.

use std::fmt;

use events::text::is_bidi;
use serde_json::Value;

/// One problem in one input line (or in the file as a whole when `line` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The file as the user named it (`<cli>` for `careledger record`).
    pub file: String,
    /// The sheet of a workbook, if the file is one.
    pub sheet: Option<String>,
    /// The physical line, from 1 (a CSV header is line 1; in a workbook, Excel's row
    /// number); `None` for the whole file (or sheet).
    pub line: Option<usize>,
    /// The column title of a workbook cell (父亲/电话), if the problem is in one column.
    pub column: Option<String>,
    /// The field path (`guardian.phone`, `parents.0.relation`, `changes.minutes`), if the
    /// problem is in one field.
    pub field: Option<String>,
    /// What the field or line should have been.
    pub expected: String,
    /// What it was, if there was something.
    pub found: Option<String>,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(sheet) = &self.sheet {
            write!(f, ":{sheet}")?;
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        match (&self.column, &self.field) {
            (Some(column), Some(field)) => write!(f, "column {column} (field {field}): ")?,
            (Some(column), None) => write!(f, "column {column}: ")?,
            (None, Some(field)) => write!(f, "field {field}: ")?,
            (None, None) => {}
        }
        write!(f, "expected {}", self.expected)?;
        if let Some(found) = &self.found {
            write!(f, ", found {found}")?;
        }
        Ok(())
    }
}

/// Every problem of one input (a file or a `record` call), in input order. Nothing of an
/// input with errors may be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IngestErrors {
    /// The problems, in input order; never empty.
    pub errors: Vec<LineError>,
}

/// How many errors are printed; the rest are counted (a file of 50,000 bad lines should not
/// print 4 MB: the first errors say what is wrong).
pub const MAX_SHOWN: usize = 100;

impl fmt::Display for IngestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.errors.len() > MAX_SHOWN {
            let file = &self.errors[MAX_SHOWN].file;
            write!(
                f,
                "\n{file}: {} more errors not shown ({} in all)",
                self.errors.len() - MAX_SHOWN,
                self.errors.len()
            )?;
        }
        Ok(())
    }
}

/// The longest rendering of an offending value; longer texts are cut (a summary pasted into
/// the wrong column should not flood the terminal).
const MAX_FOUND: usize = 60;

/// Renders an offending value for "found …": strings quoted as in JSON, numbers and booleans
/// as written, lists and objects by their kind. A value under a field named `notes` is never
/// shown (counseling notes are confidential).
pub fn found_value(field: &str, v: &Value) -> String {
    if field == "notes" || field.ends_with(".notes") {
        return "a confidential text (not shown)".to_owned();
    }
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(a) if a.is_empty() => "an empty list".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(o) if o.is_empty() => "an empty object".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A string quoted as in JSON, cut to `MAX_FOUND` characters. Every control character and
/// bidirectional mark is escaped (`\u001b`, `\u202e`; JSON leaves DEL, C1 controls and the
/// marks as they are), so an error message can never drive the terminal that prints it.
pub fn quote(s: &str) -> String {
    let cut: String = s.chars().take(MAX_FOUND).collect();
    let mut out = String::new();
    for c in Value::String(cut).to_string().chars() {
        if c.is_control() || is_bidi(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > MAX_FOUND {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_names_file_line_and_field() {
        let e = LineError {
            file: "fixtures/bad/x.jsonl".into(),
            sheet: None,
            line: Some(3),
            column: None,
            field: Some("guardian.phone".into()),
            expected: "a string".into(),
            found: Some(found_value("guardian.phone", &serde_json::json!(123))),
        };
        assert_eq!(
            e.to_string(),
            "fixtures/bad/x.jsonl:3: field guardian.phone: expected a string, found 123"
        );
    }

    #[test]
    fn only_the_first_errors_are_printed_then_a_count() {
        let one = |line| LineError {
            file: "big.csv".into(),
            sheet: None,
            line: Some(line),
            column: None,
            field: None,
            expected: "x".into(),
            found: None,
        };
        let all = IngestErrors {
            errors: (1..=50_000).map(one).collect(),
        };
        let text = all.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), MAX_SHOWN + 1);
        assert_eq!(lines[MAX_SHOWN - 1], "big.csv:100: expected x");
        assert_eq!(
            lines[MAX_SHOWN],
            "big.csv: 49900 more errors not shown (50000 in all)"
        );
    }

    #[test]
    fn quoted_values_cannot_drive_a_terminal() {
        assert_eq!(
            quote("a\u{1b}[2J\u{7f}\u{9b}\u{202e}b"),
            r#""a\u001b[2J\u007f\u009b\u202eb""#
        );
    }

    #[test]
    fn notes_are_never_shown() {
        let v = serde_json::json!("the child said …");
        assert_eq!(
            found_value("changes.notes", &v),
            "a confidential text (not shown)"
        );
    }
}
