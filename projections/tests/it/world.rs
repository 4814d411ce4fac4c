//! The world (rules §5–§6) against cases under `fixtures/world/<case>/`, in the one case
//! layout (docs/fixtures.md): `events.jsonl`, `case.json` (kind `world`: `queries`, a list of
//! `{ask, …}` questions put to the world folded from the whole log) and `expected.json`, the
//! same questions each with its hand-written `answer`.

use events::time::parse_date;
use fixtures::cases::{Case, Output, Outputs};
use projections::calendar::Period;
use projections::{Timeline, World};
use serde_json::{Value, json};

use crate::support::check;

fn date(q: &Value, key: &str) -> chrono::NaiveDate {
    q[key]
        .as_str()
        .and_then(parse_date)
        .unwrap_or_else(|| panic!("query {q}: {key} must be a date"))
}

fn text<'a>(q: &'a Value, key: &str) -> &'a str {
    q[key]
        .as_str()
        .unwrap_or_else(|| panic!("query {q}: {key} must be a string"))
}

fn ranges(set: &projections::DaySet) -> Value {
    Value::Array(
        set.ranges()
            .iter()
            .map(|(a, b)| {
                let end = if *b == chrono::NaiveDate::MAX {
                    Value::Null
                } else {
                    Value::from(b.to_string())
                };
                json!([a.to_string(), end])
            })
            .collect(),
    )
}

fn answer(world: &World, q: &Value) -> Value {
    match text(q, "ask") {
        "active_on" => json!(world.active_on(text(q, "child"), date(q, "on"))),
        "pairing_active_on" => {
            json!(world.pairing_active_on(text(q, "staff"), text(q, "child"), date(q, "on")))
        }
        "assignments" => world
            .pairing(text(q, "staff"), text(q, "child"))
            .map_or(Value::Null, |p| {
                p.assignments()
                    .iter()
                    .map(|a| json!([a.from.to_string(), a.until.map(|u| u.to_string())]))
                    .collect()
            }),
        "pairing_active_days" => world
            .pairing(text(q, "staff"), text(q, "child"))
            .map_or(Value::Null, |p| ranges(p.active_days())),
        "child_active_days" => world
            .child(text(q, "child"))
            .map_or(Value::Null, |c| ranges(c.active_days())),
        "policy_on" => {
            let p = world.policy_on(text(q, "school"), date(q, "on"));
            let quota: serde_json::Map<String, Value> = p
                .quota
                .iter()
                .map(|(k, x)| {
                    (k.clone(), json!(format!("{} per {} min {} weight {}", x.event, x.per, x.min, x.weight)))
                })
                .collect();
            json!({"quota": quota, "max_children": p.pairing.max_children})
        }
        "file_on" => {
            let c = world.child(text(q, "child")).expect("the child exists");
            let file = serde_json::to_value(c.file_on(date(q, "on"))).expect("a file serializes");
            let fields = q["fields"].as_array().expect("file_on lists fields");
            fields
                .iter()
                .map(|f| {
                    let f = f.as_str().expect("field names are strings");
                    (f.to_owned(), file[f].clone())
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
        "staff" => world.staff(text(q, "staff")).map_or(Value::Null, |s| {
            json!({"joined_on": s.joined_on.to_string(), "left_on": s.left_on.map(|d| d.to_string()), "school": s.school})
        }),
        "period_days" => {
            let period = Period::parse(text(q, "period")).expect("a period");
            match world.require_school(text(q, "school")).and_then(|s| s.period_days(&period)) {
                Ok(days) => ranges(&days),
                Err(e) => json!({"error": e.to_string()}),
            }
        }
        other => panic!("unknown query {other}"),
    }
}

fn world_case(case: &Case) -> Result<Outputs, String> {
    let envs = case.envelopes().map_err(|e| e.to_string())?;
    let timeline = Timeline::build(&envs, None).map_err(|e| e.to_string())?;
    let world = World::build(&timeline);
    let queries = case
        .get("queries")
        .and_then(Value::as_array)
        .ok_or("case.json needs a queries list")?;
    let answered: Vec<Value> = queries
        .iter()
        .map(|q| {
            let mut a = q.clone();
            a["answer"] = answer(&world, q);
            a
        })
        .collect();
    Ok(Outputs::from([(
        "expected.json".to_owned(),
        Output::Json(Value::Array(answered)),
    )]))
}

#[test]
fn given_each_world_case_when_asked_then_the_answers_match_expected() {
    check("world", "world", 1, world_case);
}
