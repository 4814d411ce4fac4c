//! The inspector and teacher views (archive, archives, contact card, history, progress,
//! pairings, worklist, back-fill) against cases under `fixtures/views/<case>/`:
//!
//! - `events.jsonl`: the log, flat wire JSONL with `recorded_at` (and optionally `source`) on
//!   every line — or `query.json` names another file with `"events"` (relative to the case);
//! - `query.json`: `{"events"?: path, "queries": [{"name", "view", "as_of"?, …parameters,
//!   "forbidden"?: [text that must appear nowhere in the output]}]}`;
//! - `expected.json`: `{name: {"json": view, "table": rows}}` or `{name: {"error": message}}`;
//! - `why.md`: what the case shows and how the expectations were checked by hand.
//!
//! Given the log, when the view is asked as of a time, then it prints the expected JSON and
//! table; and asking again after events recorded later are appended changes no byte.
//! `VIEWS_BLESS=1` rewrites `expected.json` (then read every change before committing).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::time::{parse_as_of, parse_date};
use events::{Envelope, Event, Hash, SCHEMA, Source};
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

use crate::support::{cases, json_diff, read_json};

/// One query of a case.
struct Query {
    name: String,
    view: String,
    as_of: Option<DateTime<Utc>>,
    params: serde_json::Map<String, Value>,
    forbidden: Vec<String>,
}

fn read_queries(dir: &Path) -> (Vec<Envelope>, Vec<Query>) {
    let q = read_json(&dir.join("query.json"));
    let events_path = match q.get("events").and_then(Value::as_str) {
        Some(rel) => dir.join(rel),
        None => dir.join("events.jsonl"),
    };
    let text = std::fs::read_to_string(&events_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", events_path.display()));
    let file = events_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let envs = fixtures::envelopes(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    let queries = q["queries"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: query.json needs a queries list", dir.display()))
        .iter()
        .map(|v| {
            let mut params = v.as_object().expect("a query is an object").clone();
            let mut take = |k: &str| params.remove(k);
            let name = take("name").and_then(|v| v.as_str().map(str::to_owned));
            let view = take("view").and_then(|v| v.as_str().map(str::to_owned));
            let as_of = take("as_of").and_then(|v| v.as_str().map(str::to_owned));
            let forbidden = take("forbidden")
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            Query {
                name: name.expect("a query has a name"),
                view: view.expect("a query names its view"),
                as_of: as_of.map(|t| parse_as_of(&t).expect("as_of is a date or RFC 3339")),
                params,
                forbidden: forbidden
                    .iter()
                    .map(|f| f.as_str().expect("forbidden texts are strings").to_owned())
                    .collect(),
            }
        })
        .collect();
    (envs, queries)
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

#[test]
fn given_each_view_case_when_asked_as_of_a_time_then_json_and_table_match_expected() {
    let all = cases("views");
    assert!(all.len() >= 5, "the views fixtures are missing");
    let bless = std::env::var_os("VIEWS_BLESS").is_some();
    let mut failures = Vec::new();
    for dir in &all {
        let case = dir
            .file_name()
            .expect("a case has a name")
            .to_string_lossy()
            .into_owned();
        assert!(dir.join("why.md").is_file(), "{case}: why.md is missing");
        let (envs, queries) = read_queries(dir);
        assert!(!queries.is_empty(), "{case}: no query");
        let mut got_all: BTreeMap<String, Value> = BTreeMap::new();
        for q in &queries {
            let got = run(&envs, q);
            let text = serde_json::to_string(&got).expect("json prints");
            for f in &q.forbidden {
                if text.contains(f.as_str()) {
                    failures.push(format!(
                        "{case}/{}: output shows forbidden text {f:?}",
                        q.name
                    ));
                }
            }
            // Then: events recorded after the as-of time change no byte.
            if let Some(t) = q.as_of {
                let mut longer = envs.clone();
                longer.extend(later_events(&envs, t));
                let again = serde_json::to_string(&run(&longer, q)).expect("json prints");
                if again != text {
                    failures.push(format!(
                        "{case}/{}: output changed when events recorded after as_of were appended",
                        q.name
                    ));
                }
            }
            got_all.insert(q.name.clone(), got);
        }
        let path = dir.join("expected.json");
        if bless {
            let text = serde_json::to_string_pretty(&got_all).expect("json prints");
            std::fs::write(&path, text + "\n").expect("expected.json is writable");
            continue;
        }
        let want = read_json(&path);
        for q in &queries {
            let got = &got_all[&q.name];
            match want.get(&q.name) {
                None => failures.push(format!("{case}/{}: no expectation", q.name)),
                Some(w) => {
                    if let Some(d) = json_diff(&format!("{case}/{}", q.name), got, w) {
                        failures.push(d);
                    }
                }
            }
        }
        let extra: Vec<&String> = want
            .as_object()
            .map(|o| o.keys().filter(|k| !got_all.contains_key(*k)).collect())
            .unwrap_or_default();
        if !extra.is_empty() {
            failures.push(format!("{case}: expectations without a query: {extra:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
