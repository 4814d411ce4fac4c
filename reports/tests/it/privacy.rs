//! Privacy: no name, phone, address, free-text note or counseling note of the fixtures
//! reaches any byte of any output (term reports in every format, the bureau feed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use calamine::{Reader, Xlsx, open_workbook};
use polars::prelude::*;
use projections::{Timeline, World};
use reports::{Format, Scope};
use serde_json::Value;

use crate::cases::{Case, load_events, seed_school};

/// Keys whose values identify a person or carry confidential text.
const SENSITIVE: [&str; 9] = [
    "name",
    "phone",
    "address",
    "employer_address",
    "work_place",
    "notes",
    "summary",
    "findings",
    "description",
];

fn collect(v: &Value, kind: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                // a school's or an activity's name is not about a person
                let public = k == "name" && (kind == "school_registered" || kind == "activity");
                match x {
                    Value::String(s) if SENSITIVE.contains(&k.as_str()) && !public => {
                        if s.chars().count() >= 2 {
                            out.insert(s.clone());
                        }
                    }
                    _ => collect(x, kind, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, kind, out)),
        _ => {}
    }
}

fn sensitive_values(files: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                let kind = v["type"].as_str().unwrap_or("").to_owned();
                collect(&v, &kind, &mut out);
            }
        }
    }
    out
}

/// Everything readable in a written file: its bytes as text, plus decoded values for the
/// compressed formats (Parquet cells, XLSX cells and sheet names).
fn texts_of(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = vec![String::from_utf8_lossy(&bytes).into_owned()];
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let df = ParquetReader::new(std::fs::File::open(path).unwrap())
                .finish()
                .unwrap();
            out.extend(df.get_column_names().iter().map(|s| s.to_string()));
            for c in df.columns() {
                let c = match c.dtype() {
                    DataType::List(_) => c
                        .as_materialized_series()
                        .explode(ExplodeOptions {
                            empty_as_null: true,
                            keep_nulls: true,
                        })
                        .unwrap()
                        .into_column(),
                    _ => c.clone(),
                };
                let s = c.cast(&DataType::String).unwrap();
                out.extend(s.str().unwrap().iter().flatten().map(str::to_owned));
            }
        }
        Some("xlsx") => {
            let mut book: Xlsx<_> = open_workbook(path).unwrap();
            for name in book.sheet_names() {
                let range = book.worksheet_range(&name).unwrap();
                out.push(name);
                out.extend(range.used_cells().map(|(_, _, c)| c.to_string()));
            }
        }
        _ => {}
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_clean(outputs: &Path, secrets: &BTreeSet<String>, what: &str) {
    let mut files = Vec::new();
    files_under(outputs, &mut files);
    assert!(!files.is_empty(), "{what}: nothing was written");
    for f in &files {
        for text in texts_of(f) {
            for s in secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{what}: {} leaks a sensitive value",
                    f.display()
                );
            }
        }
    }
}

fn write_everything(timeline: &Timeline, world: &World, scope: Scope, term: &str, out: &Path) {
    let report = reports::term_statistics(timeline, world, scope, term).expect("report");
    let formats = Format::parse_list("csv,json,parquet,xlsx,table").unwrap();
    reports::write(&report, &out.join("report"), &formats).expect("written");
    reports::export_events_parquet(timeline, world, &out.join("feed")).expect("feed");
}

#[test]
fn no_output_of_any_case_carries_a_name_phone_address_or_note() {
    for case in Case::all() {
        let secrets = sensitive_values(&case.files);
        assert!(
            secrets.len() >= 5,
            "{}: the fixture has personal data to look for",
            case.name
        );
        let (timeline, world) = case.project();
        let out = tempfile::tempdir().unwrap();
        write_everything(
            &timeline,
            &world,
            case.scope.clone(),
            &case.term,
            out.path(),
        );
        assert_clean(out.path(), &secrets, &case.name);
    }
}

#[test]
fn the_small_school_fixture_does_hold_the_values_looked_for() {
    let case = Case::named("small_school");
    let secrets = sensitive_values(&case.files);
    for v in [
        "王小明",
        "13911110003",
        "青山镇桃园村一组",
        "父母闹离婚孩子夜里哭泣",
    ] {
        assert!(secrets.contains(v), "{v} is collected");
    }
}

#[test]
fn no_output_of_the_seed_school_carries_a_name_phone_address_or_note() {
    let Some(seed) = seed_school() else {
        panic!("fixtures/seed-school/events.jsonl is missing");
    };
    let files = vec![seed];
    let secrets = sensitive_values(&files);
    assert!(
        secrets.len() > 50,
        "the seed school has personal data to look for"
    );
    let envelopes = load_events(&files);
    let timeline = Timeline::build(&envelopes, None).unwrap();
    let world = World::build(&timeline);
    let school = world.schools().next().expect("a school").id.clone();
    let out = tempfile::tempdir().unwrap();
    write_everything(
        &timeline,
        &world,
        Scope::School(school),
        "2025-2026-1",
        out.path(),
    );
    assert_clean(out.path(), &secrets, "seed school");
}
