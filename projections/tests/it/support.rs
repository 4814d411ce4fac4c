//! Test support: reads a flat wire JSONL log (rules §5, with `recorded_at` on every line, as
//! `import --preserve-recorded-at` takes it) into envelopes, and compares JSON numerically.
//! It stands in for `ingest`, which `projections` must not depend on.

use std::path::{Path, PathBuf};

use events::Envelope;
use serde_json::Value;

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The case directories under `fixtures/<area>/`, sorted.
pub fn cases(area: &str) -> Vec<PathBuf> {
    let dir = fixtures_dir().join(area);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads `<dir>/events.jsonl`.
pub fn read_events(dir: &Path) -> Vec<Envelope> {
    let path = dir.join("events.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    fixtures::envelopes(&text, "events.jsonl").unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Where two JSON values differ, numbers compared by value (`100` equals `100.0`).
pub fn json_diff(path: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64() != b.as_f64()).then(|| format!("{path}: got {a}, expected {b}"))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{path}: got {} items, expected {}",
                    a.len(),
                    b.len()
                ));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| json_diff(&format!("{path}[{i}]"), x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => json_diff(&format!("{path}.{k}"), x, y),
                (Some(x), None) => Some(format!("{path}.{k}: unexpected {x}")),
                (None, Some(y)) => Some(format!("{path}.{k}: missing, expected {y}")),
                (None, None) => None,
            })
        }
        _ => (got != want).then(|| format!("{path}: got {got}, expected {want}")),
    }
}
