//! The inspector and teacher views (archive, archives, contact card, history, progress,
//! pairings, worklist, back-fill) against cases under `fixtures/views/<case>/`, in the one
//! case layout (docs/fixtures.md):
//!
//! - `events.jsonl`: the log, flat wire JSONL with `recorded_at` (and optionally `source`) on
//!   every line — or `case.json` names another file with `"events"` (relative to the case);
//! - `case.json`: kind `views`, `{"events"?: path, "queries": [{"name", "view", "as_of"?,
//!   …parameters, "forbidden"?: [text that must appear nowhere in the output]}], "anchors":
//!   [hand-written facts about the output]}`;
//! - `expected.json`: `{name: {"json": view, "table": rows}}` or `{name: {"error": message}}`;
//! - `why.md`: what the case shows and how the anchors were worked out by hand.
//!
//! Given the log, when the view is asked as of a time, then it prints the expected JSON and
//! table and every anchor holds; and asking again after events recorded later are appended
//! changes no byte. `BLESS=1` rewrites `expected.json` and fails until the diff is reviewed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::time::{parse_as_of, parse_date};
use events::{Envelope, Event, Hash, SCHEMA, Source};
use fixtures::cases::{Case, Output, Outputs};
use projections::archive::{archive, archives};
use projections::backfill::{BackfillOptions, backfill};
use projections::contact_card::contact_card;
use projections::history::history;
use projections::pairings::pairings_on;
use projections::progress::progress;
use projections::worklist::worklist;
use projections::{ProjectionError, Timeline, World};
use serde::Serialize;
use serde_json::{Value, json};

use crate::support::check;

/// One query of a case.
struct Query {
    name: String,
    view: String,
    as_of: Option<DateTime<Utc>>,
    params: serde_json::Map<String, Value>,
    forbidden: Vec<String>,
}

fn read_queries(case: &Case) -> Result<Vec<Query>, String> {
    let list = case
        .get("queries")
        .and_then(Value::as_array)
        .ok_or("case.json needs a queries list")?;
    list.iter()
        .map(|v| {
            let mut params = v.as_object().ok_or("a query is an object")?.clone();
            let mut take = |k: &str| params.remove(k);
            let name = take("name").and_then(|v| v.as_str().map(str::to_owned));
            let view = take("view").and_then(|v| v.as_str().map(str::to_owned));
            let as_of = match take("as_of").and_then(|v| v.as_str().map(str::to_owned)) {
                Some(t) => Some(parse_as_of(&t).ok_or(format!("as_of {t:?} is not a time"))?),
                None => None,
            };
            let forbidden = take("forbidden")
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|f| f.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("forbidden texts are strings")?;
            Ok(Query {
                name: name.ok_or("a query has a name")?,
                view: view.ok_or("a query names its view")?,
                as_of,
                params,
                forbidden,
            })
        })
        .collect()
}

fn rendered<T: Serialize>(view: T, table: Vec<Vec<String>>) -> Value {
    json!({ "json": serde_json::to_value(view).expect("a view serializes"), "table": table })
}

/// Runs one query over a log: the view's JSON and its table, or the error.
fn run(envs: &[Envelope], q: &Query) -> Value {
    let p = &q.params;
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    let date = |k: &str| s(k).map(|d| parse_date(d).expect("a query date is YYYY-MM-DD"));
    let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
    let need = |k: &str| s(k).unwrap_or_else(|| panic!("{}: parameter {k} missing", q.name));
    let day = |k: &str| -> NaiveDate {
        date(k).unwrap_or_else(|| panic!("{}: parameter {k} missing", q.name))
    };
    let out = (|| -> Result<Value, ProjectionError> {
        let timeline = Timeline::build(envs, q.as_of)?;
        let world = World::build(&timeline);
        Ok(match q.view.as_str() {
            "archive" => {
                let v = archive(&timeline, &world, need("child"), date("valid_at"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "archives" => {
                let v = archives(
                    &timeline,
                    &world,
                    need("school"),
                    date("valid_at"),
                    flag("incomplete"),
                )?;
                let t = v.to_table();
                rendered(v, t)
            }
            "contact_card" => {
                let v = contact_card(&timeline, &world, need("child"), date("on"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "history" => {
                let v = history(envs, &timeline, &world, need("child"), flag("counselor"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "progress" => {
                let v = progress(&timeline, &world, need("child"), flag("counselor"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "pairings" => {
                let v = pairings_on(&world, need("school"), day("on"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "worklist" => {
                let v = worklist(&timeline, &world, need("staff"), day("on"))?;
                let t = v.to_table();
                rendered(v, t)
            }
            "backfill" => {
                let mut o = BackfillOptions::default();
                if let Some(n) = p.get("days").and_then(Value::as_i64) {
                    o.late_after_days = n;
                }
                if let Some(n) = p.get("burst_min_records").and_then(Value::as_u64) {
                    o.burst_min_records = n as usize;
                }
                let v = backfill(&timeline, &world, need("school"), &o)?;
                let t = v.to_table();
                rendered(v, t)
            }
            other => panic!("{}: unknown view {other}", q.name),
        })
    })();
    out.unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// Events recorded a day after `t` that would change every view if they counted: every
/// care event and registration retracted, talks added for every pairing, every child dropped
/// out, every staff member gone.
pub fn later_events(envs: &[Envelope], t: DateTime<Utc>) -> Vec<Envelope> {
    let at = t + Duration::days(1);
    let mut extra: Vec<Event> = Vec::new();
    for e in envs {
        if e.event.kind().counts_toward_quota() || e.event.kind() == events::EventKind::ChildUpdated
        {
            extra.push(Event::Retracted {
                target: e.id.clone(),
                reason: "later".into(),
            });
        }
        match &e.event {
            Event::PairingAssigned { staff, child, .. } => extra.push(Event::TalkHeld {
                staff: staff.clone(),
                child: child.clone(),
                topic: "later".into(),
                summary: "later".into(),
                mood: events::event::Mood::Low,
                follow_up: None,
            }),
            Event::ChildRegistered(r) => extra.push(Event::ChildStatusChanged {
                child: r.child.clone(),
                status: events::event::ChildStatus::DroppedOut,
                on: NaiveDate::MIN,
                note: None,
            }),
            Event::StaffJoined { staff, .. } => extra.push(Event::StaffLeft {
                staff: staff.clone(),
                on: NaiveDate::MIN,
                reason: None,
            }),
            _ => {}
        }
    }
    let first = envs.last().map_or(1, |e| e.seq + 1);
    extra
        .into_iter()
        .enumerate()
        .map(|(i, event)| Envelope {
            sealed: None,
            schema: SCHEMA,
            seq: first + i as u64,
            id: format!("later-{i}"),
            recorded_at: at.max(envs.last().map_or(at, |e| e.recorded_at)),
            occurred_at: at,
            actor: "admin".into(),
            source: Source::Cli,
            event,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        })
        .collect()
}

/// Runs a views case: every query's view as `expected.json` (`{name: output}`); a forbidden
/// text in an output, or an output that changes when events recorded after its as-of time
/// are appended, fails the case.
fn views_case(case: &Case) -> Result<Outputs, String> {
    if !case.path("why.md").is_file() {
        return Err("why.md is missing".into());
    }
    let envs = case.envelopes().map_err(|e| e.to_string())?;
    let queries = read_queries(case)?;
    if queries.is_empty() {
        return Err("no query".into());
    }
    let mut problems = Vec::new();
    let mut got_all: BTreeMap<String, Value> = BTreeMap::new();
    for q in &queries {
        let got = run(&envs, q);
        let text = serde_json::to_string(&got).expect("json prints");
        for f in &q.forbidden {
            if text.contains(f.as_str()) {
                problems.push(format!("{}: output shows forbidden text {f:?}", q.name));
            }
        }
        // Then: events recorded after the as-of time change no byte.
        if let Some(t) = q.as_of {
            let mut longer = envs.clone();
            longer.extend(later_events(&envs, t));
            let again = serde_json::to_string(&run(&longer, q)).expect("json prints");
            if again != text {
                problems.push(format!(
                    "{}: output changed when events recorded after as_of were appended",
                    q.name
                ));
            }
        }
        if got_all.insert(q.name.clone(), got).is_some() {
            problems.push(format!("{}: two queries have this name", q.name));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let all: serde_json::Map<String, Value> = got_all.into_iter().collect();
    Ok(Outputs::from([(
        "expected.json".to_owned(),
        Output::Json(Value::Object(all)),
    )]))
}

#[test]
fn given_each_view_case_when_asked_as_of_a_time_then_json_and_table_match_expected() {
    check("views", "views", 5, views_case);
}

#[test]
fn every_views_case_states_at_least_three_facts_by_hand() {
    for case in crate::support::suite("views") {
        let n = case
            .anchors()
            .unwrap_or_else(|e| panic!("{}: {e}", case.name))
            .len();
        assert!(
            n >= 3,
            "{}: {n} anchors; state the facts that matter by hand",
            case.name
        );
    }
}
