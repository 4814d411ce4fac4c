//! Integration tests of `ingest`, driven by the cases under `fixtures/bad` (one fault per case,
//! the exact expected errors beside it) and `fixtures/ingest` (valid inputs, in JSONL and in
//! CSV, with the drafts they must give).

mod bad;
mod entry;
mod good;
mod xlsx;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use events::Draft;
use ingest::{MemoryKnown, Options};

/// The workspace root: fixture paths in error texts are relative to it.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the ingest crate sits in the workspace root")
        .to_path_buf()
}

/// A time written as in the fixtures.
pub fn at(s: &str) -> DateTime<Utc> {
    events::time::parse_instant(s).unwrap_or_else(|| panic!("bad time in a test: {s}"))
}

/// The time the fixtures are checked at.
pub fn now() -> DateTime<Utc> {
    at("2025-12-31T12:00:00+08:00")
}

/// Parses a fixture file (named relative to the workspace root) against `known`.
pub fn parse(
    rel: &str,
    known: &dyn ingest::Known,
    opts: &Options,
) -> Result<ingest::Parsed, ingest::IngestErrors> {
    let bytes =
        std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
    ingest::parse_bytes(rel, &bytes, known, opts)
}

/// A log made of drafts, as the store would hold them.
pub fn memory_of(drafts: &[Draft]) -> MemoryKnown {
    let mut known = MemoryKnown::new();
    for d in drafts {
        known.push(&d.id, d.occurred_at, &d.actor, &d.event);
    }
    known
}
