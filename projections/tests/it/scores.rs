//! Teacher scores (rules §7) against hand-computed cases under `fixtures/scores/<case>/`:
//! `events.jsonl` (flat wire JSONL with `recorded_at`), `run.json` (`school`, `period`,
//! `as_of`, optional `other`), `expected.json` (the §10 rows, or `{"error": "…"}`), optional
//! `windows.json` (`{staff: drill-down}`) and `why.md` (the hand computation).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use events::time::parse_as_of;
use events::{Envelope, Event, Hash, SCHEMA, Source};
use projections::calendar::Period;
use projections::scores::{ScoreRun, scores};
use projections::{Timeline, World};
use serde_json::Value;

use crate::support::{cases, json_diff, read_events, read_json};

struct Run {
    school: String,
    period: String,
    as_of: Option<DateTime<Utc>>,
    other: Option<BTreeMap<String, f64>>,
}

fn read_run(dir: &Path) -> Run {
    let v = read_json(&dir.join("run.json"));
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    Run {
        school: s("school").expect("run.json names a school"),
        period: s("period").expect("run.json names a period"),
        as_of: s("as_of").map(|t| parse_as_of(&t).expect("run.json as_of is a date or RFC 3339")),
        other: v.get("other").and_then(Value::as_object).map(|o| {
            o.iter()
                .map(|(k, x)| (k.clone(), x.as_f64().expect("other scores are numbers")))
                .collect()
        }),
    }
}

fn run(envs: &[Envelope], r: &Run) -> Result<ScoreRun, projections::ProjectionError> {
    let timeline = Timeline::build(envs, r.as_of)?;
    let world = World::build(&timeline);
    let period = Period::parse(&r.period)?;
    scores(&timeline, &world, &r.school, period, r.other.as_ref())
}

#[test]
fn given_each_hand_computed_case_when_scored_then_the_rows_match_expected() {
    let all = cases("scores");
    assert!(all.len() >= 10, "the scores fixtures are missing");
    let mut failures = Vec::new();
    for dir in &all {
        let name = dir
            .file_name()
            .expect("a case has a name")
            .to_string_lossy()
            .into_owned();
        if !dir.join("why.md").is_file() {
            failures.push(format!("{name}: why.md (the hand computation) is missing"));
        }
        let envs = read_events(dir);
        let r = read_run(dir);
        let want = read_json(&dir.join("expected.json"));
        let got = match run(&envs, &r) {
            Ok(out) => {
                if let Ok(text) = std::fs::read_to_string(dir.join("windows.json")) {
                    let wins: Value = serde_json::from_str(&text).expect("windows.json parses");
                    for (staff, want_w) in wins.as_object().expect("windows.json is an object") {
                        let got_w = out.windows_json(staff).unwrap_or(Value::Null);
                        if let Some(d) =
                            json_diff(&format!("{name} windows {staff}"), &got_w, want_w)
                        {
                            failures.push(d);
                        }
                    }
                }
                out.rows_json()
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        if let Some(d) = json_diff(&name, &got, &want) {
            failures.push(format!(
                "{d}\n  full output: {}",
                serde_json::to_string(&got).expect("json prints")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
    for dir in cases("scores") {
        let mut envs = read_events(&dir);
        let mut r = read_run(&dir);
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
        assert_eq!(before, after, "{}", dir.display());
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
                before,
                all,
                "{}: the later events changed nothing",
                dir.display()
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
