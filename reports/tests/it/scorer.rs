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
    // Without the drill-down: the same runs, every row's windows empty.
    let mut bare = reports::ScoreRuns::new(world, schools, period, other).without_drill_down();
    for f in tl.facts() {
        bare.add_fact(f);
    }
    let bare = bare
        .run(tl.as_of(), tl.head_seq())
        .expect("polars runs without the drill-down");
    assert_eq!(bare.len(), schools.len(), "{what}: one run per school");
    let mut rows = 0;
    for ((school, got), bare) in schools.iter().zip(together).zip(bare) {
        let mut emptied = got.clone();
        if let Ok(run) = &mut emptied {
            for row in &mut run.rows {
                row.windows.clear();
            }
        }
        assert_eq!(
            bare.map_err(|e| e.to_string()),
            emptied.map_err(|e| e.to_string()),
            "{what}, {school}, {period}: without the drill-down"
        );
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

mod props {
    //! Random small schools: two terms, up to three adopted policies (random quotas of any
    //! `per`, decimal weights, thresholds and shares, `max_children`), staff, pairings that
    //! start and end anywhere (breaks included), talks and home visits on any day, and other
    //! scores with decimals; every period. The polars scorer equals the reference on every
    //! output.

    use std::collections::BTreeMap;
    use std::fmt::Write;

    use chrono::{Days, NaiveDate};
    use projections::calendar::Period;
    use projections::{Timeline, World};
    use proptest::prelude::*;

    use super::same_runs;

    const WEIGHTS: [&str; 6] = ["40", "25.5", "0.1", "33.33", "12.125", "100"];
    const PERS: [&str; 4] = ["week", "month", "term", "year"];
    const EVENTS: [&str; 2] = ["talk_held", "home_visit"];
    const THRESHOLDS: [&str; 5] = ["90", "66.67", "50", "33.335", "0"];
    const SHARES: [&str; 4] = ["0.1", "0.125", "1", "0"];
    const OTHERS: [f64; 5] = [64.415, 90.0, 68.8, 0.0, 100.0];

    fn day(offset: u64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 8, 20).expect("a date") + Days::new(offset)
    }

    /// (quota name index, per, event, min, weight)
    type Quota = (usize, usize, usize, u32, usize);
    /// (effective offset, quotas, outstanding, disqualified, share, max_children)
    type Policy = (u64, Vec<Quota>, usize, usize, usize, u32);

    #[allow(clippy::type_complexity)]
    fn school() -> impl Strategy<
        Value = (
            Vec<Policy>,
            Vec<(usize, usize, u64, Option<u64>)>,
            Vec<(usize, usize, u64, usize)>,
        ),
    > {
        let quota = (0usize..3, 0usize..4, 0usize..2, 1u32..3, 0usize..6);
        let policy = (
            0u64..330,
            prop::collection::vec(quota, 1..4),
            0usize..5,
            0usize..5,
            0usize..4,
            1u32..4,
        );
        (
            prop::collection::vec(policy, 0..3),
            prop::collection::vec(
                (0usize..3, 0usize..5, 0u64..330, prop::option::of(0u64..330)),
                0..9,
            ),
            prop::collection::vec((0usize..3, 0usize..5, 0u64..330, 0usize..2), 0..60),
        )
    }

    fn jsonl(
        policies: &[Policy],
        pairings: &[(usize, usize, u64, Option<u64>)],
        events: &[(usize, usize, u64, usize)],
    ) -> String {
        let mut out = String::new();
        let mut n = 0;
        let mut line = |body: String| {
            n += 1;
            writeln!(
                out,
                "{{\"id\":\"p{n:04}\",\"actor\":\"admin\",\"recorded_at\":\"2026-08-01T10:{:02}:{:02}+08:00\",{body}}}",
                n / 60,
                n % 60
            )
            .expect("written");
        };
        line(r#""type":"school_registered","occurred_at":"2025-08-01","school":"s1","name":"测试中学","county":"测试县","township":"测试镇""#.into());
        line(r#""type":"term_defined","occurred_at":"2025-08-01","school":"s1","term":"2025-2026-1","starts_on":"2025-09-01","ends_on":"2026-01-16""#.into());
        line(r#""type":"term_defined","occurred_at":"2025-08-01","school":"s1","term":"2025-2026-2","starts_on":"2026-02-23","ends_on":"2026-07-03""#.into());
        let mut sorted: Vec<&Policy> = policies.iter().collect();
        sorted.sort_by_key(|p| p.0);
        for (from, quotas, out_i, dq_i, share_i, max) in sorted {
            let mut q = BTreeMap::new();
            for (name, per, event, min, weight) in quotas {
                q.insert(
                    format!("q{name}"),
                    format!(
                        r#""q{name}":{{"event":"{}","per":"{}","min":{min},"weight":{}}}"#,
                        EVENTS[*event], PERS[*per], WEIGHTS[*weight]
                    ),
                );
            }
            let quota: Vec<String> = q.into_values().collect();
            let (out_at, dq) = if THRESHOLDS[*out_i] < THRESHOLDS[*dq_i] {
                (THRESHOLDS[*dq_i], THRESHOLDS[*out_i])
            } else {
                (THRESHOLDS[*out_i], THRESHOLDS[*dq_i])
            };
            line(format!(
                r#""type":"policy_adopted","occurred_at":"2025-08-01","school":"s1","effective_from":"{}","policy":{{"quota":{{{}}},"pairing":{{"min_children":1,"max_children":{max}}},"evaluation":{{"year_end_share":{},"outstanding_at":{out_at},"disqualified_below":{dq}}}}}"#,
                day(*from),
                quota.join(","),
                SHARES[*share_i]
            ));
        }
        for t in 0..3 {
            line(format!(
                r#""type":"staff_joined","occurred_at":"2020-09-01","staff":"t{t}","school":"s1","name":"教师{t}","roles":["class_teacher"],"party_member":false,"phone":"13800000000""#
            ));
        }
        for c in 0..5 {
            line(format!(
                r#""type":"child_registered","occurred_at":"2025-08-01","child":"c{c}","school":"s1","grade":7,"class":1,"name":"学生{c}","gender":"female","birth_date":"2013-03-14","boarding":false,"address":"测试村","left_behind_type":"both_parents_away","hardship":[],"focus":[],"parents":[{{"name":"父亲","relation":"father","work_place":"广东","employer_address":"东莞","phone":"18700000000","away":true}}],"guardian":{{"name":"祖父","relation":"grandparent_paternal","age":66,"phone":"18300000000","capability":"good"}}"#
            ));
        }
        let mut ended = std::collections::BTreeSet::new();
        for (t, c, from, until) in pairings {
            line(format!(
                r#""type":"pairing_assigned","occurred_at":"2025-08-01","staff":"t{t}","child":"c{c}","role":"mentor","from":"{}""#,
                day(*from)
            ));
            if let Some(u) = until.filter(|u| u > from)
                && ended.insert((t, c))
            {
                line(format!(
                    r#""type":"pairing_ended","occurred_at":"2025-08-01","staff":"t{t}","child":"c{c}","on":"{}""#,
                    day(u)
                ));
            }
        }
        for (t, c, on, kind) in events {
            let body = if *kind == 0 {
                r#""type":"talk_held","topic":"学习","summary":"谈心","mood":"ok""#
            } else {
                r#""type":"home_visit","met":["guardian","child"],"findings":"家访""#
            };
            line(format!(
                r#"{body},"occurred_at":"{}","staff":"t{t}","child":"c{c}""#,
                day(*on)
            ));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn polars_scores_equal_the_reference_on_random_schools(
            (policies, pairings, events) in school(),
            other_of in prop::collection::vec(0usize..5, 3),
        ) {
            let text = jsonl(&policies, &pairings, &events);
            let envs = fixtures::envelopes(&text, "random.jsonl").expect("the log loads");
            let tl = Timeline::build(&envs, None).expect("folds");
            let world = World::build(&tl);
            let other: BTreeMap<String, f64> = other_of
                .iter()
                .enumerate()
                .map(|(t, i)| (format!("t{t}"), OTHERS[*i]))
                .collect();
            for period in ["2025-2026-1", "2025-2026-2", "2025-2026"] {
                let p = Period::parse(period).expect("a period");
                same_runs(&tl, &world, &["s1"], &p, None, "random school");
                if p.is_year() {
                    same_runs(&tl, &world, &["s1"], &p, Some(&other), "random school");
                }
            }
        }
    }
}
