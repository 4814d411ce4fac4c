//! The child-term feed (docs/province.md): one row per child counted in a term report
//! (rules §8.2), with a pseudonymous id, the child's placement and the §8 flags and counts,
//! hive-partitioned `county=…/school=…/term=…/part-00000.parquet` for a province's warehouse
//! (Hive, Spark) to sum across counties.
//!
//! It owns the feed's columns, partitions and file layout. The figures come from the reference
//! per-child fold of rules §8 (`TermFold::finish_children`), the one the polars reporter of
//! `report term` is tested against: this module must never decide who counts or what an event
//! adds (a second copy of rules §8 could disagree with the report), never write a child's real
//! id (only `Subject::Child` pseudonyms under the county's secret), and never write a name,
//! phone, address, birth date, free text or any counseling content beyond a count of sessions.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use events::pseudonym::{CountySecret, Subject};
use polars::prelude::*;
use projections::{Timeline, World};

use crate::bureau::partition_value;
use crate::error::ReportError;
use crate::facts::ChildFacts;
use crate::fold::TermFold;
use crate::report::Scope;

/// The feed's data columns, in file order (the partition columns `county`, `school` and
/// `term` live in the directory names). Flags are booleans, counts 64-bit integers, `aid_fen`
/// the exact aid sum in fen (1/100 yuan).
pub const CHILD_TERM_COLUMNS: [&str; 24] = [
    "child",
    "township",
    "grade",
    "class",
    "both_parents_away",
    "one_parent_away",
    "grandparent_guardian",
    "boarding",
    "hardship",
    "archived",
    "paired",
    "talked",
    "home_visited",
    "dropped_out",
    "talks",
    "home_visits",
    "parent_calls",
    "family_calls",
    "letters",
    "warmth_visits",
    "counseling_sessions",
    "aid_fen",
    "incidents",
    "escalated_on_time",
];

/// What a child-term export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildTermsSummary {
    /// The county whose secret keyed the pseudonyms.
    pub county: String,
    /// The Parquet files, one per school, in school order.
    pub files: Vec<PathBuf>,
    /// Rows written: the children counted in the term.
    pub rows: u64,
}

/// One counted child, ready to be written.
struct Row {
    child: String,
    township: String,
    facts: ChildFacts,
}

/// The rows of one school's file, sorted and turned into columns when written.
#[derive(Default)]
struct Buffer {
    rows: Vec<Row>,
}

impl Buffer {
    fn into_frame(mut self) -> PolarsResult<DataFrame> {
        self.rows.sort_by(|a, b| {
            (a.facts.grade, a.facts.class, &a.child).cmp(&(b.facts.grade, b.facts.class, &b.child))
        });
        let rows = &self.rows;
        let strs = |f: fn(&Row) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let flag =
            |f: fn(&ChildFacts) -> bool| rows.iter().map(|r| f(&r.facts)).collect::<Vec<_>>();
        let count =
            |f: fn(&ChildFacts) -> i64| rows.iter().map(|r| f(&r.facts)).collect::<Vec<i64>>();
        let columns: Vec<(&str, Series)> = vec![
            ("child", Series::new("".into(), strs(|r| &r.child))),
            ("township", Series::new("".into(), strs(|r| &r.township))),
            (
                "grade",
                Series::new(
                    "".into(),
                    rows.iter()
                        .map(|r| i32::from(r.facts.grade))
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "class",
                Series::new("".into(), count(|f| i64::from(f.class))),
            ),
            (
                "both_parents_away",
                Series::new("".into(), flag(|f| f.both_parents_away)),
            ),
            (
                "one_parent_away",
                Series::new("".into(), flag(|f| f.one_parent_away)),
            ),
            (
                "grandparent_guardian",
                Series::new("".into(), flag(|f| f.grandparent_guardian)),
            ),
            ("boarding", Series::new("".into(), flag(|f| f.boarding))),
            ("hardship", Series::new("".into(), flag(|f| f.hardship))),
            ("archived", Series::new("".into(), flag(|f| f.archived))),
            ("paired", Series::new("".into(), flag(|f| f.paired))),
            ("talked", Series::new("".into(), flag(|f| f.talks > 0))),
            (
                "home_visited",
                Series::new("".into(), flag(|f| f.home_visits > 0)),
            ),
            (
                "dropped_out",
                Series::new("".into(), flag(|f| f.dropped_out)),
            ),
            (
                "talks",
                Series::new("".into(), count(|f| i64::from(f.talks))),
            ),
            (
                "home_visits",
                Series::new("".into(), count(|f| i64::from(f.home_visits))),
            ),
            (
                "parent_calls",
                Series::new("".into(), count(|f| i64::from(f.parent_calls))),
            ),
            (
                "family_calls",
                Series::new("".into(), count(|f| i64::from(f.family_calls))),
            ),
            (
                "letters",
                Series::new("".into(), count(|f| i64::from(f.letters))),
            ),
            (
                "warmth_visits",
                Series::new("".into(), count(|f| i64::from(f.warmth_visits))),
            ),
            (
                "counseling_sessions",
                Series::new("".into(), count(|f| i64::from(f.counseling_sessions))),
            ),
            ("aid_fen", Series::new("".into(), count(|f| f.aid_fen))),
            (
                "incidents",
                Series::new("".into(), count(|f| i64::from(f.incidents))),
            ),
            (
                "escalated_on_time",
                Series::new("".into(), count(|f| i64::from(f.escalated_on_time))),
            ),
        ];
        debug_assert!(
            columns
                .iter()
                .map(|(n, _)| *n)
                .eq(CHILD_TERM_COLUMNS.iter().copied()),
            "the frame's columns are CHILD_TERM_COLUMNS"
        );
        let height = rows.len();
        DataFrame::new(
            height,
            columns
                .into_iter()
                .map(|(n, s)| Column::from(s.with_name(n.into())))
                .collect(),
        )
    }
}

/// Refuses a scope outside the secret's county: a feed carries the pseudonyms of one county,
/// keyed by that county's secret. `world` is needed for a school's county only.
fn check_scope(world: Option<&World>, scope: &Scope, county: &str) -> Result<(), ReportError> {
    let asked = match (scope, world) {
        (Scope::County(c), _) => (c != county).then(|| scope.to_string()),
        (Scope::School(s), Some(world)) => world
            .school(s)
            .filter(|school| school.county != county)
            .map(|school| format!("{scope} (county {})", school.county)),
        (Scope::School(_), None) => None,
    };
    match asked {
        Some(asked) => Err(ReportError::OtherCounty {
            asked,
            secret_county: county.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The child-term feed of `term` for `scope` (a school, or a county) from a timeline and its
/// world built as of the same time (the read plan's scoped timeline), written under `out_dir`
/// (which must not exist or be empty). The counted children, their placement and their
/// figures are the term report's own (`TermFold`, on the same roster as the polars reporter);
/// ids are replaced by `secret`'s pseudonyms. The files are written into a sibling folder
/// first and moved into place whole, so a failure leaves no partial feed.
pub fn export_child_terms(
    timeline: &Timeline,
    world: &World,
    scope: Scope,
    term: &str,
    secret: &CountySecret,
    out_dir: &Path,
) -> Result<ChildTermsSummary, ReportError> {
    if out_dir.exists() {
        let mut entries = std::fs::read_dir(out_dir).map_err(ReportError::io(out_dir))?;
        if entries.next().is_some() {
            return Err(ReportError::OutputNotEmpty {
                path: out_dir.to_path_buf(),
            });
        }
    }
    check_scope(None, &scope, secret.county())?;
    check_scope(Some(world), &scope, secret.county())?;
    let mut fold = TermFold::new(world, scope, term)?;
    for f in timeline.facts() {
        fold.observe(f.occurred_at, &f.event);
    }
    let mut by_school: BTreeMap<String, Buffer> = BTreeMap::new();
    for (id, facts) in fold.finish_children() {
        let township = world
            .school(&facts.school)
            .map(|s| s.township.clone())
            .unwrap_or_default();
        by_school
            .entry(facts.school.clone())
            .or_default()
            .rows
            .push(Row {
                child: secret.pseudonym(Subject::Child, &id),
                township,
                facts,
            });
    }
    write_feed(out_dir, secret.county(), term, by_school)
}

/// Writes one file per school into a sibling temporary folder, then renames it to `out_dir`.
fn write_feed(
    out_dir: &Path,
    county: &str,
    term: &str,
    by_school: BTreeMap<String, Buffer>,
) -> Result<ChildTermsSummary, ReportError> {
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "child-terms".to_owned());
    let staging = out_dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(ReportError::io(&staging))?;
    }
    let written = write_files(&staging, county, term, by_school);
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if out_dir.exists() {
        // Checked empty above; a folder made meanwhile and filled is not removed.
        std::fs::remove_dir(out_dir).map_err(ReportError::io(out_dir))?;
    }
    std::fs::rename(&staging, out_dir).map_err(ReportError::io(out_dir))?;
    let files = summary
        .files
        .iter()
        .map(|f| out_dir.join(f.strip_prefix(&staging).unwrap_or(f)))
        .collect();
    Ok(ChildTermsSummary { files, ..summary })
}

fn write_files(
    dir: &Path,
    county: &str,
    term: &str,
    by_school: BTreeMap<String, Buffer>,
) -> Result<ChildTermsSummary, ReportError> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
    let mut summary = ChildTermsSummary {
        county: county.to_owned(),
        files: Vec::new(),
        rows: 0,
    };
    for (school, buffer) in by_school {
        let part = dir
            .join(format!("county={}", partition_value(county)))
            .join(format!("school={}", partition_value(&school)))
            .join(format!("term={}", partition_value(term)));
        std::fs::create_dir_all(&part).map_err(ReportError::io(&part))?;
        let path = part.join("part-00000.parquet");
        let rows = buffer.rows.len() as u64;
        let mut df = buffer
            .into_frame()
            .map_err(ReportError::polars("building a child-term partition"))?;
        let file = File::create(&path).map_err(ReportError::io(&path))?;
        ParquetWriter::new(file)
            .finish(&mut df)
            .map_err(ReportError::polars("writing a child-term partition"))?;
        summary.rows += rows;
        summary.files.push(path);
    }
    Ok(summary)
}
