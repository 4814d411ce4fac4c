//! Loading report cases: wire-form JSONL (rules §5) into envelopes, and `case.json`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use events::Envelope;
use events::time::parse_as_of;
use projections::{Timeline, World};
use reports::{ReportRow, Scope};
use serde_json::Value;

/// fixtures/reports/ at the repository root.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reports")
}

/// fixtures/seed-school/events.jsonl, when the seed school has been written.
pub fn seed_school() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-school/events.jsonl");
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
    pub dir: PathBuf,
    pub scope: Scope,
    pub term: String,
    pub as_of: Option<DateTime<Utc>>,
    pub files: Vec<PathBuf>,
    pub expected: Vec<ReportRow>,
    pub schools_without_term: Option<Vec<String>>,
}

impl Case {
    /// Reads `dir/case.json` and `dir/expected.json`.
    pub fn load(dir: &Path) -> Case {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let spec: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("case.json"))
                .unwrap_or_else(|e| panic!("{name}: case.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}: case.json: {e}"));
        let scope = match (&spec["scope"]["school"], &spec["scope"]["county"]) {
            (Value::String(s), _) => Scope::School(s.clone()),
            (_, Value::String(c)) => Scope::County(c.clone()),
            _ => panic!("{name}: scope must name a school or a county"),
        };
        let term = spec["term"].as_str().expect("case.json: term").to_owned();
        let as_of = spec["as_of"]
            .as_str()
            .map(|s| parse_as_of(s).unwrap_or_else(|| panic!("{name}: bad as_of")));
        let mut files: Vec<PathBuf> = spec["include"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| dir.join(v.as_str().expect("include: paths")))
                    .collect()
            })
            .unwrap_or_default();
        files.push(dir.join("events.jsonl"));
        let expected: Vec<ReportRow> = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected.json"))
                .unwrap_or_else(|e| panic!("{name}: expected.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}: expected.json: {e}"));
        let schools_without_term = spec["schools_without_term"].as_array().map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("schools_without_term: ids").to_owned())
                .collect()
        });
        Case {
            name,
            dir: dir.to_path_buf(),
            scope,
            term,
            as_of,
            files,
            expected,
            schools_without_term,
        }
    }

    /// Every case folder (those with a case.json), by name.
    pub fn all() -> Vec<Case> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
            .expect("fixtures/reports exists")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.join("case.json").exists())
            .collect();
        dirs.sort();
        dirs.iter().map(|d| Case::load(d)).collect()
    }

    /// The case called `name`.
    pub fn named(name: &str) -> Case {
        Case::load(&fixtures_dir().join(name))
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
