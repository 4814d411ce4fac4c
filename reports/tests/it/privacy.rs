//! Privacy: no personal value, free text or counseling note of the fixtures reaches any byte
//! of any output (term reports in every format, the bureau feed). Which fields those are
//! comes from the vocabulary's own classification (`events::personal`), not a list here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use calamine::{Reader, Xlsx, open_workbook};
use events::EventKind;
use events::personal::{FieldClass, class_of};
use polars::prelude::*;
use projections::{Timeline, World};
use reports::{Format, Scope};
use serde_json::Value;

use crate::cases::{Case, load_events, seed_school};

/// The values to look for: every string of ≥ 2 characters in a field the vocabulary
/// classifies as personal, free text or confidential (`events::personal`, which a unit test
/// keeps complete), minus the values the same files also carry in a public or identifier
/// field (a topic "学习" that is also a subject is not a secret by itself).
pub(crate) fn sensitive_values(files: &[PathBuf]) -> BTreeSet<String> {
    let (mut secret, public) = classified_values(files);
    secret.retain(|s| !public.contains(s));
    secret
}

/// Every string of ≥ 2 characters of the files, as (in a sensitive field, in another field).
fn classified_values(files: &[PathBuf]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut secret = BTreeSet::new();
    let mut public = BTreeSet::new();
    let mut kinds: BTreeMap<String, EventKind> = BTreeMap::new();
    for f in files {
        for (n, line) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", f.display(), n + 1));
            let ty = v["type"].as_str().unwrap_or_default();
            let kind = EventKind::parse(ty)
                .unwrap_or_else(|| panic!("{}:{}: unknown type {ty:?}", f.display(), n + 1));
            if let Some(id) = v["id"].as_str() {
                kinds.insert(id.to_owned(), kind);
            }
            let Value::Object(fields) = &v else {
                panic!("{}:{}: not an object", f.display(), n + 1)
            };
            for (k, x) in fields {
                let class = class_of(kind, k).unwrap_or_else(|| {
                    panic!(
                        "{}:{}: {ty}.{k} is not in the vocabulary",
                        f.display(),
                        n + 1
                    )
                });
                if class == FieldClass::Amendment {
                    // A correction's changes take the classes of the target's fields.
                    let target = v["target"].as_str().and_then(|t| kinds.get(t)).copied();
                    let Some(target) = target else {
                        panic!(
                            "{}:{}: a correction of an unknown event",
                            f.display(),
                            n + 1
                        )
                    };
                    let Value::Object(changes) = x else {
                        panic!("{}:{}: changes is not an object", f.display(), n + 1)
                    };
                    for (ck, cx) in changes {
                        let c = class_of(target, ck).unwrap_or_else(|| {
                            panic!(
                                "{}:{}: changes.{ck} is not in the vocabulary",
                                f.display(),
                                n + 1
                            )
                        });
                        collect(cx, target, ck, c, &mut secret, &mut public);
                    }
                } else {
                    collect(x, kind, k, class, &mut secret, &mut public);
                }
            }
        }
    }
    (secret, public)
}

/// Sorts the strings under `path` of an event of `kind` by class: the class of a nested
/// field when the vocabulary names it (`guardian.phone`), else its container's (`items.*`).
fn collect(
    v: &Value,
    kind: EventKind,
    path: &str,
    class: FieldClass,
    secret: &mut BTreeSet<String>,
    public: &mut BTreeSet<String>,
) {
    match v {
        Value::String(s) if s.chars().count() >= 2 => {
            if class.is_sensitive() {
                secret.insert(s.clone());
            } else {
                public.insert(s.clone());
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|x| collect(x, kind, path, class, secret, public)),
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                let c = class_of(kind, &p).unwrap_or(class);
                collect(x, kind, &p, c, secret, public);
            }
        }
        _ => {}
    }
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

/// The labels of a written file, which no data decides: column names (the CSV's and the
/// table's first line, the XLSX's first row and sheet names, Parquet's columns, JSON keys).
fn labels_of(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let first_line = || {
        text.trim_start_matches('\u{feff}')
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") | Some("txt") | Some("table") => vec![first_line()],
        Some("json") => {
            let mut keys = Vec::new();
            fn walk(v: &Value, keys: &mut Vec<String>) {
                match v {
                    Value::Object(m) => m.iter().for_each(|(k, x)| {
                        keys.push(k.clone());
                        walk(x, keys)
                    }),
                    Value::Array(a) => a.iter().for_each(|x| walk(x, keys)),
                    _ => {}
                }
            }
            walk(
                &serde_json::from_str(&text).unwrap_or(Value::Null),
                &mut keys,
            );
            keys
        }
        Some("parquet") => ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        Some("xlsx") => {
            let mut book: Xlsx<_> = open_workbook(path).unwrap();
            let mut out = Vec::new();
            for name in book.sheet_names() {
                let range = book.worksheet_range(&name).unwrap();
                out.push(name);
                if let Some(row) = range.rows().next() {
                    out.extend(row.iter().map(|c| c.to_string()));
                }
            }
            out
        }
        _ => vec![first_line()],
    }
}

pub(crate) fn assert_clean(outputs: &Path, secrets: &BTreeSet<String>, what: &str) {
    let mut files = Vec::new();
    files_under(outputs, &mut files);
    assert!(!files.is_empty(), "{what}: nothing was written");
    // A value that is part of a label (a talk's topic "谈心" in the column "谈心人次") cannot
    // be told from it; every other value is looked for everywhere.
    let labels: Vec<String> = files.iter().flat_map(|f| labels_of(f)).collect();
    let secrets: BTreeSet<&String> = secrets
        .iter()
        .filter(|s| !labels.iter().any(|l| l.contains(s.as_str())))
        .collect();
    assert!(
        secrets.len() >= 5,
        "{what}: too few values left to look for"
    );
    for f in &files {
        for text in texts_of(f) {
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{what}: {} leaks the sensitive value {s:?}",
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
    // The feed is keyed by one county's secret: a case of several counties is refused whole.
    let county = world
        .schools()
        .next()
        .map_or_else(|| "青山县".to_owned(), |s| s.county.clone());
    let secret = events::pseudonym::CountySecret::new(&county, [7u8; 32]).expect("a county");
    let feed = reports::export_events_parquet(timeline, world, &secret, &out.join("feed"));
    if world.schools().all(|s| s.county == county) {
        feed.expect("feed");
    } else {
        assert!(matches!(
            feed,
            Err(reports::ReportError::OtherCounty { .. })
        ));
    }
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
fn the_seed_school_values_of_every_sensitive_field_are_looked_for() {
    let Some(seed) = seed_school() else {
        panic!("fixtures/seed-school/events.jsonl is missing");
    };
    let (secrets, _) = classified_values(std::slice::from_ref(&seed));
    // Every field of the privacy review that the seed school fills: each value found there
    // (and not also public) must be in the list.
    let text = std::fs::read_to_string(&seed).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        for field in [
            "buddy",
            "reason",
            "note",
            "follow_up",
            "next_steps",
            "topic",
            "anomalies",
            "summary",
            "findings",
            "description",
            "notes",
        ] {
            if let Some(s) = v[field].as_str().filter(|s| s.chars().count() >= 2) {
                seen.insert(field);
                assert!(secrets.contains(s), "{field} value {s:?} is not looked for");
            }
        }
        for field in ["health", "occupation", "phone", "name"] {
            if let Some(s) = v["guardian"][field]
                .as_str()
                .filter(|s| s.chars().count() >= 2)
            {
                seen.insert(field);
                assert!(
                    secrets.contains(s),
                    "guardian.{field} value {s:?} is not looked for"
                );
            }
        }
    }
    for field in [
        "buddy",
        "reason",
        "follow_up",
        "next_steps",
        "anomalies",
        "health",
        "occupation",
    ] {
        assert!(seen.contains(field), "the seed school fills no {field}");
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
