//! The timeline (rules §4–§5) against cases under `fixtures/timeline/<case>/`, in the one
//! case layout (docs/fixtures.md): `events.jsonl`, `case.json` (kind `timeline`: `as_of`) and
//! `expected.json` — the effective facts (summary), the retracted ids and each amendment's
//! effect, or `{"error": "…"}`.

use events::time::{format_local, parse_as_of};
use fixtures::cases::{Case, Output, Outputs};
use projections::Timeline;
use projections::timeline::{AmendmentEffect, Fact};
use serde_json::{Value, json};

use crate::support::{check, envelopes, read_events, suite};

fn summary(f: &Fact) -> Value {
    let wire = f.to_wire();
    let mut v = json!({
        "seq": f.seq,
        "id": f.id,
        "type": f.event.kind().as_str(),
        "occurred_at": format_local(f.occurred_at),
        "corrected_by": f.corrected_by,
    });
    for key in ["staff", "child", "children", "summary", "happened_at"] {
        if let Some(x) = wire.get(key) {
            v[key] = x.clone();
        }
    }
    v
}

fn effect(e: &AmendmentEffect) -> Value {
    match e {
        AmendmentEffect::Applied { target_seq } => json!({"applied": target_seq}),
        AmendmentEffect::TargetRetracted { target_seq } => json!({"target_retracted": target_seq}),
        AmendmentEffect::UnknownTarget => json!("unknown_target"),
    }
}

fn timeline_case(case: &Case) -> Result<Outputs, String> {
    let envs = case.envelopes().map_err(|e| e.to_string())?;
    let as_of = match case.str("as_of").map_err(|e| e.to_string())? {
        Some(t) => Some(parse_as_of(t).ok_or(format!("as_of {t:?} is not a date or RFC 3339"))?),
        None => None,
    };
    let got = match Timeline::build(&envs, as_of) {
        Ok(t) => json!({
            "head_seq": t.head_seq(),
            "facts": t.facts().iter().map(|f| summary(f)).collect::<Vec<_>>(),
            "retracted": t.retracted().iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
            "amendments": t.amendments().iter()
                .map(|a| json!({"id": a.id, "effect": effect(&a.effect)}))
                .collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e.to_string()}),
    };
    Ok(Outputs::from([(
        "expected.json".to_owned(),
        Output::Json(got),
    )]))
}

#[test]
fn given_each_timeline_case_when_built_then_the_effective_facts_match_expected() {
    check("timeline", "timeline", 1, timeline_case);
}

#[test]
fn given_a_log_when_built_by_reference_or_by_value_then_the_timelines_agree() {
    let dir = crate::support::fixtures_dir().join("seed-school");
    let envs = read_events(&dir);
    let a = Timeline::build(&envs, None).expect("the seed school builds");
    let b = Timeline::build_owned(envs.clone(), None).expect("the seed school builds");
    assert_eq!(a.facts(), b.facts());
    assert_eq!(a.amendments(), b.amendments());
    assert_eq!(a.head_seq(), envs.len() as u64);
    // Every correction in the seed school applied, and the ids resolve.
    for am in a.amendments() {
        assert!(
            matches!(am.effect, AmendmentEffect::Applied { .. }),
            "{}",
            am.id
        );
        assert!(a.lookup(&am.id).is_some());
    }
    let corrected = a
        .facts()
        .iter()
        .filter(|f| !f.corrected_by.is_empty())
        .count()
        + a.retracted().len();
    assert!(corrected > 0, "the seed school has amendments");
}

#[test]
fn given_a_timeline_without_care_events_when_each_is_made_effective_then_it_equals_the_full_build()
{
    let mut logs: Vec<(String, Vec<events::Envelope>)> = Vec::new();
    for case in suite("timeline").iter().chain(&suite("scores")) {
        logs.push((case.name.clone(), envelopes(case)));
    }
    let seed = crate::support::fixtures_dir().join("seed-school");
    logs.push(("seed-school".into(), read_events(&seed)));
    for (name, envs) in logs {
        let Ok(full) = Timeline::build(&envs, None) else {
            continue; // a case whose log cannot be built has nothing to compare
        };
        let partial = Timeline::build(
            envs.iter()
                .filter(|e| !e.event.kind().counts_toward_quota()),
            None,
        )
        .expect("the registry part builds");
        for e in envs.iter().filter(|e| e.event.kind().counts_toward_quota()) {
            let got = partial.effective(e.clone()).expect("the amendments apply");
            let want = full.fact(&e.id);
            assert_eq!(got.as_ref(), want, "{name}: {}", e.id);
        }
    }
}
