//! The polars scorer (`reports::scorer`) against its reference `projections::scores`: every
//! hand-worked case of fixtures/scores gives its expected rows and drill-downs through the
//! polars scorer too (the same loader and files as the reference's own test), and on the seed
//! school and a generated county (3 schools × 80 children, every period, as of a third of the
//! log and its end, with and without other scores) every output — the rules
//! §7.9 rows, the drill-down of every staff member, the year-end table in CSV and text, and
//! the errors — is byte-identical to the reference's, one school at a time and all schools in
//! one plan. The differential test on the read models with the hard cases (transfers, moving
//! corrections, retractions, a mid-year policy change; three seeds, six recorded times) is the
//! binary's, tests/it/polscores.rs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events::Envelope;
use events::time::parse_as_of;
use fixtures::cases::{Case, Output, Outputs};
use projections::calendar::Period;
use projections::scores::ScoreRun;
use projections::{Timeline, World};
use serde_json::Value;

/// Every output of a run, as text: the rows, the header JSON, each staff member's
/// drill-down, the year-end table as CSV and as text, the other scores without a row.
fn outputs(run: &ScoreRun, other: Option<&BTreeMap<String, f64>>) -> String {
    let mut out = format!(
        "{}\n{}\n",
        serde_json::to_string_pretty(&run.rows_json()).expect("json"),
        run.to_json("hash")
    );
    for r in &run.rows {
        out.push_str(&format!(
            "{}: {}\n",
            r.staff,
            run.windows_json(&r.staff).expect("a row has a drill-down")
        ));
    }
    let table = reports::year_end_table(run, other).expect("a table");
    for format in [reports::Format::Csv, reports::Format::Table] {
        let bytes = reports::year_end::render_year_end(&table, format, "position", "hash")
            .expect("renders");
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out.push_str(&format!("{:?}\n", run.other_unmatched));
    out
}

/// Both scorers on one timeline for every school given, one at a time and together; panics
/// on the first output that differs.
fn same_runs(
    tl: &Timeline,
    world: &World,
    schools: &[&str],
    period: &Period,
    other: Option<&BTreeMap<String, f64>>,
    what: &str,
) -> usize {
    let together = reports::score_runs(tl, world, schools, period, other).expect("polars runs");
    let mut rows = 0;
    for (school, got) in schools.iter().zip(together) {
        let want = projections::scores(tl, world, school, period.clone(), other);
        let alone = reports::score_run(tl, world, school, period, other);
        match (got, want) {
            (Ok(got), Ok(want)) => {
                let w = outputs(&want, other);
                assert_eq!(outputs(&got, other), w, "{what}, {school}, {period}");
                assert_eq!(got, want, "{what}, {school}, {period}: the runs");
                let alone = alone.expect("the school alone runs");
                assert_eq!(
                    outputs(&alone, other),
                    w,
                    "{what}, {school} alone, {period}"
                );
                rows += got.rows.len();
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string(), "{what}, {school}, {period}");
                let alone = alone.expect_err("the school alone fails too");
                assert_eq!(
                    alone.to_string(),
                    b.to_string(),
                    "{what}, {school}, {period}"
                );
            }
            (a, b) => panic!(
                "{what}, {school}, {period}: polars {:?}, reference {:?}",
                a.err(),
                b.err()
            ),
        }
    }
    rows
}

fn case_other(case: &Case) -> Result<Option<BTreeMap<String, f64>>, String> {
    match case.get("other") {
        None => Ok(None),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, x)| x.as_f64().map(|v| (k.clone(), v)))
            .collect::<Option<_>>()
            .map(Some)
            .ok_or_else(|| "other scores are numbers".to_owned()),
        Some(x) => Err(format!("other must map staff to scores, found {x}")),
    }
}

/// A scores case run by the polars scorer: the files the reference's test writes
/// (`expected.json`, `expected.windows.json`), which must be there already.
fn polars_case(case: &Case) -> Result<Outputs, String> {
    let text = |k: &str| case.need(k).map(str::to_owned).map_err(|e| e.to_string());
    let as_of = match case.str("as_of").map_err(|e| e.to_string())? {
        Some(t) => Some(parse_as_of(t).ok_or(format!("as_of {t:?} is not a date"))?),
        None => None,
    };
    let other = case_other(case)?;
    let envs = case.envelopes().map_err(|e| e.to_string())?;
    let mut out = Outputs::new();
    let school = text("school")?;
    let period = text("period")?;
    let run = (|| -> Result<ScoreRun, String> {
        let tl = Timeline::build(&envs, as_of).map_err(|e| e.to_string())?;
        let world = World::build(&tl);
        let period = Period::parse(&period).map_err(|e| e.to_string())?;
        reports::score_run(&tl, &world, &school, &period, other.as_ref()).map_err(|e| e.to_string())
    })();
    match run {
        Ok(scored) => {
            if let Some(staff) = case.get("windows_of") {
                let staff = staff.as_array().ok_or("windows_of lists staff ids")?;
                let mut wins = serde_json::Map::new();
                for s in staff {
                    let s = s.as_str().ok_or("windows_of lists staff ids")?;
                    wins.insert(s.into(), scored.windows_json(s).unwrap_or(Value::Null));
                }
                out.insert("expected.windows.json".into(), Output::Json(wins.into()));
            }
            out.insert("expected.json".into(), Output::Json(scored.rows_json()));
        }
        Err(e) => {
            out.insert(
                "expected.json".into(),
                Output::Json(serde_json::json!({ "error": e })),
            );
        }
    }
    Ok(out)
}

#[test]
fn given_each_hand_computed_score_case_when_scored_by_polars_then_the_rows_match_expected() {
    let cases = fixtures::cases::suite("scores").expect("the scores cases load");
    match fixtures::cases::check_blessing(&cases, false, polars_case) {
        Ok(n) => assert!(n >= 10, "only {n} cases"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn given_the_seed_school_when_scored_by_polars_then_every_output_equals_the_reference() {
    let envs =
        fixtures::envelopes(fixtures::SEED_SCHOOL_JSONL, "events.jsonl").expect("the seed loads");
    let times: Vec<Option<DateTime<Utc>>> = vec![
        Some(envs[envs.len() / 3].recorded_at),
        Some(envs[envs.len() / 2].recorded_at),
        None,
    ];
    let mut rows = 0;
    for as_of in times {
        let tl = Timeline::build(&envs, as_of).expect("the seed folds");
        let world = World::build(&tl);
        let schools: Vec<&str> = world.schools().map(|s| s.id.as_str()).collect();
        for period in ["2025-2026-1", "2025-2026-2", "2025-2026", "2024-2025"] {
            let p = Period::parse(period).expect("a period");
            rows += same_runs(&tl, &world, &schools, &p, None, "seed school");
        }
    }
    assert!(rows > 0);
}

/// A generated county (3 schools × 80 children) as envelopes.
fn county(seed: u64) -> Vec<Envelope> {
    let now = parse_as_of("2026-09-01T00:00:00+08:00").expect("an instant");
    let cfg = fixtures::GenConfig {
        county: None,
        schools: 3,
        children_per_school: 80,
        seed,
        year: "2025-2026".to_owned(),
    };
    let mut out = Vec::new();
    fixtures::generate(&cfg, now, &mut out).expect("generates");
    fixtures::envelopes(&String::from_utf8(out).expect("utf-8"), "county.jsonl")
        .expect("the county loads")
}

fn check_county(seed: u64) {
    let envs = county(seed);
    let n = envs.len();
    let times: Vec<Option<DateTime<Utc>>> = vec![Some(envs[n / 3].recorded_at), None];
    let mut rows = 0;
    for as_of in times {
        let tl = Timeline::build(&envs, as_of).expect("the county folds");
        let world = World::build(&tl);
        let mut schools: Vec<&str> = world.schools().map(|s| s.id.as_str()).collect();
        schools.push("s-unknown");
        let mut other: BTreeMap<String, f64> = world
            .all_staff()
            .enumerate()
            .filter(|(i, _)| i % 4 != 0)
            .map(|(i, s)| (s.id.clone(), [64.415, 90.0, 68.8, 100.0, 0.0][i % 5]))
            .collect();
        other.insert("zz-nobody".into(), 70.0);
        for period in ["2025-2026-1", "2025-2026-2", "2025-2026"] {
            let p = Period::parse(period).expect("a period");
            let what = format!("seed {seed}, as of {as_of:?}");
            rows += same_runs(&tl, &world, &schools, &p, None, &what);
            rows += same_runs(&tl, &world, &schools, &p, Some(&other), &what);
        }
    }
    assert!(rows > 100, "{rows} rows");
}

#[test]
fn given_generated_county_seed_1_when_scored_by_polars_then_every_output_equals_the_reference() {
    check_county(1);
}
