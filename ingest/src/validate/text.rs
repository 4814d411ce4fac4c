//! Text without control characters: no payload string (nor object key) may hold one, except
//! a line break or a tab in the free-text fields that are written as paragraphs (`summary`,
//! `notes`, …). NUL and ESC sequences in a record would otherwise reach terminals (`history`
//! prints payload text), spreadsheets and files. It must never judge what the text says.

use serde_json::Value;

use crate::error::found_value;
use crate::wire::Problem;

/// The fields whose text may run over several lines (and hold tabs).
pub const MULTI_LINE: [&str; 9] = [
    "summary",
    "notes",
    "findings",
    "next_steps",
    "description",
    "anomalies",
    "reason",
    "note",
    "follow_up",
];

/// The control characters of a payload's strings and keys, one problem per field.
pub fn check(payload: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    walk(payload, &mut Vec::new(), &mut out);
    out
}

fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Problem>) {
    match v {
        Value::String(s) => {
            // The field a list item belongs to decides (`met.0` is in `met`).
            let field = path
                .iter()
                .rev()
                .find(|seg| seg.parse::<usize>().is_err())
                .map_or("", String::as_str);
            let multi = MULTI_LINE.contains(&field);
            let bad = s
                .chars()
                .any(|c| c.is_control() && !(multi && (c == '\n' || c == '\t')));
            if bad {
                let name = path.join(".");
                let expected = if multi {
                    "text without control characters (line breaks and tabs are allowed)"
                } else {
                    "text without control characters (no line breaks or tabs)"
                };
                out.push(Problem::field(&name, expected, Some(found_value(&name, v))));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                path.push(k.clone());
                if k.chars().any(char::is_control) {
                    let name = path.join(".");
                    out.push(Problem::field(
                        &name,
                        "a key without control characters",
                        Some(found_value("", &Value::String(k.clone()))),
                    ));
                } else {
                    walk(item, path, out);
                }
                path.pop();
            }
        }
        _ => {}
    }
}
