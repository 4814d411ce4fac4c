//! Test helper: turns flat wire JSONL (DESIGN §5) into `store::Envelope`s without a store, so the
//! view fixtures can be replayed by pure folds. Unlike `support`, a line may name its `source`
//! (`migration`, `cli`, …), which the back-fill view reports, and errors name file, line and
//! field instead of panicking.
//!
//! It owns only the flat → externally tagged reshaping and the fixture's extra fields
//! (`recorded_at`, optional `source`); it must never validate references or apply amendments
//! (that is `ingest` and the timeline). Hashes are zero: pure tests never check the chain.

use std::fmt;

use chrono::{DateTime, Utc};
use projections::timeline::event_from_wire;
use serde_json::Value;
use store::time::parse_instant;
use store::{Envelope, Hash, SCHEMA, Source};

/// A fixture line that cannot become an envelope, with the file and line it came from.
#[derive(Debug)]
pub struct WireError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub problem: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: field {}: {}",
            self.file, self.line, self.field, self.problem
        )
    }
}

/// Reads every non-blank line of `text` as one envelope; `seq` counts from 1 in file order.
/// Each line carries the wire fields plus `recorded_at` (required here: there is no store clock)
/// and optionally `source` (default `import:<file>`).
pub fn envelopes_from_jsonl(text: &str, file: &str) -> Result<Vec<Envelope>, WireError> {
    let mut out: Vec<Envelope> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let line = i + 1;
        let err = |field: &str, problem: String| WireError {
            file: file.to_owned(),
            line,
            field: field.to_owned(),
            problem,
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|e| err("(line)", format!("not json: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(err("(line)", "not a json object".into()));
        };
        let mut take_str = |name: &str| -> Result<Option<String>, WireError> {
            match obj.remove(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(err(name, format!("expected a string, got {other}"))),
            }
        };
        let kind = take_str("type")?.ok_or_else(|| err("type", "missing".into()))?;
        let id = take_str("id")?.unwrap_or_else(|| format!("{file}#{line}"));
        let occurred =
            take_str("occurred_at")?.ok_or_else(|| err("occurred_at", "missing".into()))?;
        let recorded =
            take_str("recorded_at")?.ok_or_else(|| err("recorded_at", "missing".into()))?;
        let actor = take_str("actor")?.ok_or_else(|| err("actor", "missing".into()))?;
        let source = match take_str("source")? {
            None => Source::Import(file.to_owned()),
            Some(s) => Source::parse(&s).ok_or_else(|| err("source", format!("unknown {s:?}")))?,
        };
        let occurred_at =
            instant(&occurred).ok_or_else(|| err("occurred_at", "not an instant".into()))?;
        let recorded_at =
            instant(&recorded).ok_or_else(|| err("recorded_at", "not an instant".into()))?;
        if let Some(prev) = out.last()
            && recorded_at < prev.recorded_at
        {
            return Err(err("recorded_at", "decreases along the file".into()));
        }
        let event =
            event_from_wire(&kind, obj).map_err(|e| err(&kind, format!("bad payload: {e}")))?;
        out.push(Envelope {
            schema: SCHEMA,
            seq: out.len() as u64 + 1,
            id,
            recorded_at,
            occurred_at,
            actor,
            source,
            event,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        });
    }
    Ok(out)
}

/// An instant as the wire writes it: RFC 3339, or a date meaning 00:00 at +08:00.
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    parse_instant(s)
}
