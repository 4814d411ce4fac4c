//! `scores --county`: every school of a county in one run, each with exactly the output
//! `scores --school` gives it — on the hand-worked case of fixtures/scores-county (its rows
//! are the source cases' own expected rows) and on generated counties, in every format.

use std::path::Path;

use serde_json::Value;

use crate::{careledger, careledger_ok, stderr};

/// A store at `db` holding `events` imported as a migration.
fn store_of(db: &Path, events: &Path) {
    careledger_ok(db, &["init"]);
    careledger_ok(
        db,
        &["import", "--preserve-recorded-at", events.to_str().unwrap()],
    );
}

/// Every part of a workbook but `docProps/core.xml` (the time it was written).
fn xlsx_parts(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a workbook");
    let mut parts = Vec::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).expect("a part");
        let name = part.name().expect("a part name").into_owned();
        if name != "docProps/core.xml" {
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut part, &mut content).expect("readable");
            parts.push((name, content));
        }
    }
    assert!(parts.len() > 3, "{} parts", parts.len());
    parts
}

/// Runs `scores --county` in every format and requires each school's output to be the bytes
/// of `scores --school` for it (files in `--out DIR`; the table on stdout the school tables
/// joined by blank lines; the JSON on stdout each school's rows). Returns the county JSON.
fn county_equals_schools(db: &Path, work: &Path, county: &str, extra: &[&str]) -> Value {
    let mut base = vec!["scores", "--county", county];
    base.extend_from_slice(extra);
    let json_out = careledger_ok(db, &[&base[..], &["--format", "json"]].concat());
    let county_json: Value = serde_json::from_slice(&json_out.stdout).expect("json");
    let schools: Vec<String> = county_json
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s["school"].as_str().expect("a school").to_owned())
        .collect();
    assert!(!schools.is_empty());
    let school_args = |school: &str| {
        let mut v: Vec<String> = vec!["scores".into(), "--school".into(), school.into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut tables = Vec::new();
    for (i, school) in schools.iter().enumerate() {
        let args = school_args(school);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let one = careledger_ok(db, &[&args[..], &["--format", "json"]].concat());
        let rows: Value = serde_json::from_slice(&one.stdout).expect("json");
        assert_eq!(county_json[i]["rows"], rows, "json rows of {school}");
        tables.push(careledger_ok(db, &[&args[..], &["--format", "table"]].concat()).stdout);
    }
    let table = careledger_ok(db, &[&base[..], &["--format", "table"]].concat());
    assert!(table.stdout == tables.join(&b"\n"[..]), "the county table");

    for (format, ext) in [
        ("table", "txt"),
        ("json", "json"),
        ("csv", "csv"),
        ("xlsx", "xlsx"),
    ] {
        let dir = work.join(format!("county-{format}"));
        let d = dir.to_str().unwrap();
        careledger_ok(db, &[&base[..], &["--format", format, "--out", d]].concat());
        let mut written: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        let want: Vec<String> = schools
            .iter()
            .map(|s| format!("scores-{s}.{ext}"))
            .collect();
        assert_eq!(written, want, "{format}");
        for school in &schools {
            let file = work.join(format!("school-{school}.{ext}"));
            let args = school_args(school);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let f = file.to_str().unwrap();
            careledger_ok(db, &[&args[..], &["--format", format, "--out", f]].concat());
            let a = std::fs::read(dir.join(format!("scores-{school}.{ext}"))).unwrap();
            let b = std::fs::read(&file).unwrap();
            if format == "xlsx" {
                assert!(xlsx_parts(&a) == xlsx_parts(&b), "{format} of {school}");
            } else {
                assert!(a == b, "{format} of {school}");
            }
        }
    }
    county_json
}

#[test]
fn given_the_county_case_when_scored_by_county_then_each_school_has_its_own_rows() {
    let checked = fixtures::cases::check_suite("scores-county", "scores_county", 1, |case| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let db = dir.path().join("db");
        let files = case.event_files().map_err(|e| e.to_string())?;
        let [events] = files.as_slice() else {
            return Err("one events file".into());
        };
        store_of(&db, events);
        let county = case.need("county").map_err(|e| e.to_string())?;
        let period = case.need("period").map_err(|e| e.to_string())?;
        let json = county_equals_schools(&db, dir.path(), county, &["--period", period]);
        let out = careledger_ok(
            &db,
            &[
                "scores", "--county", county, "--period", period, "--format", "json",
            ],
        );
        for left_out in case
            .get("left_out")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = left_out.as_str().ok_or("left_out lists school ids")?;
            if !stderr(&out).contains(&format!("school {s} has no term")) {
                return Err(format!("{s} is not named as left out: {}", stderr(&out)));
            }
        }
        let mut outputs = fixtures::cases::Outputs::new();
        outputs.insert("expected.json".into(), fixtures::cases::Output::Json(json));
        Ok(outputs)
    });
    if let Err(f) = checked {
        panic!("{f}");
    }
}

#[test]
fn given_generated_counties_when_scored_by_county_then_each_school_equals_its_own_run() {
    let county = "黔东县";
    for (seed, period, as_of) in [
        (1, "2025-2026-1", None),
        (2, "2025-2026", None),
        (3, "2025-2026-1", Some("2025-12-01")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let file = dir.path().join("county.jsonl");
        let s = seed.to_string();
        careledger_ok(
            &db,
            &[
                "fixtures",
                "generate",
                "--schools",
                "3",
                "--children-per-school",
                "30",
                "--seed",
                &s,
                "--out",
                file.to_str().unwrap(),
            ],
        );
        store_of(&db, &file);
        let mut extra = vec!["--period", period];
        if let Some(t) = as_of {
            extra.extend(["--as-of", t]);
        }
        let other = dir.path().join("other.csv");
        let json = county_equals_schools(&db, dir.path(), county, &extra);
        let schools = json.as_array().unwrap();
        assert_eq!(schools.len(), 3, "seed {seed}");
        assert!(
            schools
                .iter()
                .all(|s| !s["rows"].as_array().unwrap().is_empty())
        );
        if period == "2025-2026" {
            // the year-end weighting: other scores for every staff member of the county
            let mut csv = String::from("staff,score\n");
            for s in schools {
                for r in s["rows"].as_array().unwrap() {
                    csv += &format!("{},{}\n", r["staff"].as_str().unwrap(), 80.5);
                }
            }
            std::fs::write(&other, csv).unwrap();
            extra.extend(["--other-scores", other.to_str().unwrap()]);
            let weighted = county_equals_schools(&db, &dir.path().join("w"), county, &extra);
            assert_ne!(weighted, json, "the other scores change the year run");
        }
    }
}

#[test]
fn a_county_run_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    crate::seed_store(dir.path(), &db);
    let unknown = careledger(
        &db,
        &["scores", "--county", "无此县", "--period", "2025-2026-1"],
    );
    assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("no school is registered in county 无此县"));
    let county = "沿河土家族自治县";
    let csv = careledger(
        &db,
        &[
            "scores",
            "--county",
            county,
            "--period",
            "2025-2026-1",
            "--format",
            "csv",
        ],
    );
    assert_eq!(csv.status.code(), Some(1), "{}", stderr(&csv));
    assert!(stderr(&csv).contains("needs --out DIR"), "{}", stderr(&csv));
    let both = careledger(
        &db,
        &[
            "scores",
            "--county",
            county,
            "--school",
            "sq",
            "--period",
            "2025-2026-1",
        ],
    );
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}
