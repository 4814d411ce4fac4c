//! Test support: the data-test cases of `fixtures/<suite>/` through the one loader
//! (`fixtures::cases`), and flat wire JSONL logs (rules §5, with `recorded_at` on every line,
//! as `import --preserve-recorded-at` takes it) read into envelopes. It stands in for
//! `ingest`, which `projections` must not depend on.

use std::path::{Path, PathBuf};

use events::Envelope;
use fixtures::cases::{Case, Outputs};

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    fixtures::cases::root()
}

/// The cases of `fixtures/<suite>/`, by name.
pub fn suite(name: &str) -> Vec<Case> {
    fixtures::cases::suite(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs every case of `fixtures/<suite>/` (all of `kind`, at least `min_cases`) through
/// `run` and fails with every difference, failed anchor or rewritten file.
pub fn check(
    suite: &str,
    kind: &str,
    min_cases: usize,
    run: impl FnMut(&Case) -> Result<Outputs, String>,
) {
    if let Err(f) = fixtures::cases::check_suite(suite, kind, min_cases, run) {
        panic!("{f}");
    }
}

/// A case's events as envelopes.
pub fn envelopes(case: &Case) -> Vec<Envelope> {
    case.envelopes()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// Reads `<dir>/events.jsonl` (the seed school's log, which is not a case).
pub fn read_events(dir: &Path) -> Vec<Envelope> {
    let path = dir.join("events.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    fixtures::envelopes(&text, "events.jsonl").unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}
