//! Teacher scores (rules §7) against hand-computed cases under `fixtures/scores/<case>/`, in
//! the one case layout (docs/fixtures.md): `events.jsonl` (flat wire JSONL with
//! `recorded_at`), `case.json` (kind `scores`: `school`, `period`, `as_of`, optional `other`
//! and `windows_of`), `expected.json` (the §10 rows, or `{"error": "…"}`), optional
//! `expected.windows.json` (`{staff: drill-down}`) and `why.md` (the hand computation).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use events::time::parse_as_of;
use events::{Envelope, Event, Hash, SCHEMA, Source};
use fixtures::cases::{Case, Output, Outputs};
use projections::calendar::Period;
use projections::scores::{ScoreRun, scores};
use projections::{Timeline, World};
use serde_json::Value;

use crate::support::{check, envelopes, read_events, suite};

struct Run {
    school: String,
    period: String,
    as_of: Option<DateTime<Utc>>,
    other: Option<BTreeMap<String, f64>>,
}

fn read_run(case: &Case) -> Result<Run, String> {
    let text = |k: &str| case.need(k).map(str::to_owned).map_err(|e| e.to_string());
    let as_of = match case.str("as_of").map_err(|e| e.to_string())? {
        Some(t) => Some(parse_as_of(t).ok_or(format!("as_of {t:?} is not a date or RFC 3339"))?),
        None => None,
    };
    let other = match case.get("other") {
        None => None,
        Some(Value::Object(o)) => Some(
            o.iter()
                .map(|(k, x)| x.as_f64().map(|v| (k.clone(), v)))
                .collect::<Option<_>>()
                .ok_or("other scores are numbers")?,
        ),
        Some(x) => return Err(format!("other must map staff to scores, found {x}")),
    };
    Ok(Run {
        school: text("school")?,
        period: text("period")?,
        as_of,
        other,
    })
}

fn run(envs: &[Envelope], r: &Run) -> Result<ScoreRun, projections::ProjectionError> {
    let timeline = Timeline::build(envs, r.as_of)?;
    let world = World::build(&timeline);
    let period = Period::parse(&r.period)?;
    scores(&timeline, &world, &r.school, period, r.other.as_ref())
}

/// A scores case (kind `scores`): `case.json` gives `school`, `period`, `as_of` and
/// optionally `other` (staff → other score) and `windows_of` (staff whose window drill-down
/// is `expected.windows.json`); `expected.json` holds the rules §10 rows or
/// `{"error": "…"}`; `why.md` the hand computation.
fn score_case(case: &Case) -> Result<Outputs, String> {
    if !case.path("why.md").is_file() {
        return Err("why.md (the hand computation) is missing".into());
    }
    let r = read_run(case)?;
    let mut out = Outputs::new();
    match run(&case.envelopes().map_err(|e| e.to_string())?, &r) {
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
                Output::Json(serde_json::json!({ "error": e.to_string() })),
            );
        }
    }
    Ok(out)
}

#[test]
fn given_each_hand_computed_case_when_scored_then_the_rows_match_expected() {
    check("scores", "scores", 10, score_case);
}

/// Events recorded one day after `t` that would change every run if they counted: each
/// care event retracted, every staff member gone, a stricter policy, a redefined term.
fn later_events(envs: &[Envelope], t: DateTime<Utc>) -> Vec<Envelope> {
    let at = t + Duration::days(1);
    let mut extra: Vec<Event> = Vec::new();
    for e in envs {
        if e.event.kind().counts_toward_quota() {
            extra.push(Event::Retracted {
                target: e.id.clone(),
                reason: "later".into(),
            });
        }
        match &e.event {
            Event::StaffJoined { staff, .. } => extra.push(Event::StaffLeft {
                staff: staff.clone(),
                on: chrono::NaiveDate::MIN,
                reason: None,
            }),
            Event::TermDefined {
                school,
                term,
                starts_on,
                ..
            } => extra.push(Event::TermDefined {
                school: school.clone(),
                term: term.clone(),
                starts_on: *starts_on,
                ends_on: *starts_on,
            }),
            Event::SchoolRegistered { school, .. } => {
                let mut policy = events::Policy::default();
                policy.pairing.max_children = 0;
                for q in policy.quota.values_mut() {
                    q.min = 99;
                }
                extra.push(Event::PolicyAdopted {
                    school: school.clone(),
                    effective_from: chrono::NaiveDate::MIN,
                    policy,
                });
            }
            _ => {}
        }
    }
    let first = envs.len() as u64 + 1;
    extra
        .into_iter()
        .enumerate()
        .map(|(i, event)| Envelope {
            sealed: None,
            schema: SCHEMA,
            seq: first + i as u64,
            id: format!("later-{i}"),
            recorded_at: at,
            occurred_at: at,
            actor: "admin".into(),
            source: Source::Cli,
            event,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        })
        .collect()
}

#[test]
fn given_a_run_as_of_t_when_events_recorded_later_are_appended_then_its_output_is_unchanged() {
    for case in suite("scores") {
        let mut envs = envelopes(&case);
        let mut r = read_run(&case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let last = envs
            .last()
            .map(|e| e.recorded_at)
            .expect("a case has events");
        let t = r.as_of.unwrap_or(last);
        r.as_of = Some(t);
        let before = run(&envs, &r)
            .map(|o| o.rows_json())
            .map_err(|e| e.to_string());
        let cut = envs
            .iter()
            .position(|e| e.recorded_at > t)
            .unwrap_or(envs.len());
        let extra = later_events(&envs[..cut], t);
        assert!(!extra.is_empty());
        envs.extend(extra);
        let after = run(&envs, &r)
            .map(|o| o.rows_json())
            .map_err(|e| e.to_string());
        assert_eq!(before, after, "{}", case.name);
        // …and the later events do matter when the run does not stop at T.
        r.as_of = None;
        let all = run(&envs, &r)
            .map(|o| o.rows_json())
            .map_err(|e| e.to_string());
        if before
            .as_ref()
            .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            assert_ne!(
                before, all,
                "{}: the later events changed nothing",
                case.name
            );
        }
    }
}

#[test]
fn given_the_seed_school_when_scored_twice_then_the_output_is_byte_identical_and_in_range() {
    let dir = crate::support::fixtures_dir().join("seed-school");
    let envs = read_events(&dir);
    let r = Run {
        school: "sq".into(),
        period: "2025-2026-1".into(),
        as_of: None,
        other: None,
    };
    let a = serde_json::to_string(&run(&envs, &r).expect("the seed school scores").to_json("x"))
        .expect("json prints");
    let b = serde_json::to_string(&run(&envs, &r).expect("the seed school scores").to_json("x"))
        .expect("json prints");
    assert_eq!(a, b);
    let out = run(&envs, &r).expect("the seed school scores");
    assert!(!out.rows.is_empty());
    for row in &out.rows {
        if let Some(s) = row.score {
            assert!((0.0..=100.0).contains(&s), "{}: {s}", row.staff);
        }
        for c in row.compliance.values() {
            assert!(c.met <= c.due && c.due > 0, "{}", row.staff);
        }
    }
}

#[test]
fn given_generated_counties_when_scored_together_then_each_school_equals_its_own_run() {
    let now = parse_as_of("2026-09-01T00:00:00+08:00").expect("an instant");
    for seed in [1, 2, 3] {
        let cfg = fixtures::GenConfig {
            county: None,
            schools: 3,
            children_per_school: 40,
            seed,
            year: "2025-2026".to_owned(),
        };
        let mut out = Vec::new();
        fixtures::generate(&cfg, now, &mut out).expect("generates");
        let envs = fixtures::envelopes(&String::from_utf8(out).expect("utf-8"), "county.jsonl")
            .expect("the county loads");
        let mid = envs[envs.len() / 2].recorded_at;
        for as_of in [None, Some(mid)] {
            let tl = Timeline::build(&envs, as_of).unwrap();
            let world = World::build(&tl);
            let schools: Vec<&str> = world.schools().map(|s| s.id.as_str()).collect();
            assert_eq!(schools.len(), 3);
            for period in ["2025-2026-1", "2025-2026-2", "2025-2026"] {
                let p = Period::parse(period).unwrap();
                let other: BTreeMap<String, f64> =
                    world.all_staff().map(|s| (s.id.clone(), 77.5)).collect();
                let other = p.is_year().then_some(&other);
                let together =
                    projections::scores::scores_of_schools(&tl, &world, &schools, &p, other);
                for (school, run) in schools.iter().zip(together) {
                    let alone = scores(&tl, &world, school, p.clone(), other);
                    match (run, alone) {
                        (Ok(a), Ok(b)) => {
                            assert!(!a.rows.is_empty(), "seed {seed} {school} {period}");
                            assert_eq!(a, b, "seed {seed}, {school}, {period}, as of {as_of:?}");
                        }
                        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                        (a, b) => panic!("{school} {period}: {:?} vs {:?}", a.err(), b.err()),
                    }
                }
            }
        }
    }
}
