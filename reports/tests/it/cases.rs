//! The term-report cases of `fixtures/reports/<case>/` (the one layout, docs/fixtures.md),
//! read through `fixtures::cases`: `case.json` (kind `term_report`: `scope`, `term`, `as_of`,
//! `events` — the shared school by reference, then the case's own — `given`, `then`,
//! optional `schools_without_term`), `expected.json` (the rows, typed from the hand count in
//! `rows.spec`, which the golden test checks too) and, where the working is not obvious, `why.md`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use events::Envelope;
use events::time::parse_as_of;
use projections::{Timeline, World};
use reports::{ReportRow, Scope};
use serde_json::Value;

/// fixtures/seed-school/events.jsonl, when the seed school has been written.
pub fn seed_school() -> Option<PathBuf> {
    let p = fixtures::cases::root().join("seed-school/events.jsonl");
    p.exists().then_some(p)
}

/// Reads JSONL event files in order into one log (`fixtures::WireLog`: a line without
/// `recorded_at` is recorded at the later of its `occurred_at` and the previous line's).
pub fn load_events(files: &[PathBuf]) -> Vec<Envelope> {
    let mut log = fixtures::WireLog::default();
    for file in files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        log.push_text(&text, &name)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    log.into_envelopes()
}

/// One case folder.
pub struct Case {
    pub name: String,
    pub scope: Scope,
    pub term: String,
    pub as_of: Option<DateTime<Utc>>,
    pub files: Vec<PathBuf>,
    pub expected: Vec<ReportRow>,
    pub schools_without_term: Option<Vec<String>>,
}

impl Case {
    /// Reads a case read by the one loader, and its `expected.json`.
    pub fn from_case(case: &fixtures::cases::Case) -> Result<Case, String> {
        // The folder's name: tests pick cases by it.
        let name = case
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec = &case.spec;
        let scope = match (&spec["scope"]["school"], &spec["scope"]["county"]) {
            (Value::String(s), _) => Scope::School(s.clone()),
            (_, Value::String(c)) => Scope::County(c.clone()),
            _ => return Err("scope must name a school or a county".into()),
        };
        let term = case.need("term").map_err(|e| e.to_string())?.to_owned();
        let as_of = match case.str("as_of").map_err(|e| e.to_string())? {
            Some(s) => Some(parse_as_of(s).ok_or(format!("bad as_of {s:?}"))?),
            None => None,
        };
        let files = case.event_files().map_err(|e| e.to_string())?;
        let expected: Vec<ReportRow> =
            serde_json::from_str(&case.read_text("expected.json").map_err(|e| e.to_string())?)
                .map_err(|e| format!("expected.json: {e}"))?;
        let schools_without_term = match case.get("schools_without_term") {
            None => None,
            Some(v) => Some(
                v.as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or("schools_without_term lists school ids")?,
            ),
        };
        Ok(Case {
            name,
            scope,
            term,
            as_of,
            files,
            expected,
            schools_without_term,
        })
    }

    /// Reads `dir/case.json` and `dir/expected.json`.
    pub fn load(dir: &Path) -> Case {
        let case = fixtures::cases::Case::load(dir).unwrap_or_else(|e| panic!("{e}"));
        Case::from_case(&case).unwrap_or_else(|e| panic!("{}: {e}", case.name))
    }

    /// Every case of fixtures/reports/, by name.
    pub fn all() -> Vec<Case> {
        fixtures::cases::suite("reports")
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|c| Case::from_case(c).unwrap_or_else(|e| panic!("{}: {e}", c.name)))
            .collect()
    }

    /// The case called `name`.
    pub fn named(name: &str) -> Case {
        Case::load(&fixtures::cases::root().join("reports").join(name))
    }

    /// The timeline and world as of the case's time.
    pub fn project(&self) -> (Timeline, World) {
        let envelopes = load_events(&self.files);
        let timeline = Timeline::build(&envelopes, self.as_of)
            .unwrap_or_else(|e| panic!("{}: timeline: {e}", self.name));
        let world = World::build(&timeline);
        (timeline, world)
    }

    /// The report of the case.
    pub fn report(&self) -> reports::TermReport {
        let (timeline, world) = self.project();
        reports::term_statistics(&timeline, &world, self.scope.clone(), &self.term)
            .unwrap_or_else(|e| panic!("{}: report: {e}", self.name))
    }
}
