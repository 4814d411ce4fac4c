//! Properties of the views over random logs (a fixed school set-up, then random care records,
//! corrections, retractions, file updates, status changes and pairing ends):
//!
//! - given any log and a cut T, when a view is asked as of T, then appending the events
//!   recorded after T changes no byte of its JSON;
//! - given counseling notes in the log, when any view is shown to a non-counselor, then no
//!   note appears in its JSON or table;
//! - given any log, when its versions (`projections::versions`) are filtered at any recorded
//!   time T — every time an envelope was recorded, and just before it — then the timeline
//!   (facts, retracted events, amendments, head) equals the replay of the prefix as of T, and
//!   so does every view.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::event::{
    Capability, ChildRecord, ChildStatus, Gender, Grade, Guardian, GuardianRelation,
    LeftBehindType, Mood, PairingRole, Parent, ParentInfo, Risk, Role, TermId,
};
use events::time::{local_date, parse_instant};
use events::{Envelope, Event, Hash, SCHEMA, Source};
use projections::archive::{archive, archives};
use projections::backfill::{BackfillOptions, backfill};
use projections::contact_card::contact_card;
use projections::history::history;
use projections::pairings::pairings_on;
use projections::progress::progress;
use projections::versions::Versions;
use projections::worklist::worklist;
use projections::{Timeline, World};
use proptest::prelude::*;
use serde_json::{Value, json};

const SECRET: &str = "SECRET-NOTE";

fn d(s: &str) -> NaiveDate {
    events::time::parse_date(s).expect("a test date is valid")
}

fn guardian(phone: &str) -> Guardian {
    Guardian {
        name: "祖父".into(),
        relation: GuardianRelation::GrandparentPaternal,
        age: Some(66),
        health: String::new(),
        education: String::new(),
        occupation: String::new(),
        address: "荷叶村".into(),
        phone: phone.into(),
        capability: Capability::Good,
    }
}

fn child(id: &str, phone: &str) -> Event {
    Event::ChildRegistered(Box::new(ChildRecord {
        child: id.into(),
        school: "s1".into(),
        grade: Grade::new(4).expect("4 is a grade"),
        class: 1,
        name: format!("学生{id}"),
        gender: Gender::Female,
        birth_date: d("2016-01-01"),
        boarding: false,
        address: "荷叶村".into(),
        left_behind_type: LeftBehindType::BothParentsAway,
        hardship: vec![],
        focus: vec![],
        parents: vec![ParentInfo {
            name: "父".into(),
            relation: Parent::Father,
            work_place: "东莞".into(),
            employer_address: String::new(),
            phone: "13900000000".into(),
            away: true,
        }],
        guardian: guardian(phone),
    }))
}

fn staff(id: &str, roles: Vec<Role>) -> Event {
    Event::StaffJoined {
        staff: id.into(),
        school: "s1".into(),
        name: format!("老师{id}"),
        roles,
        party_member: false,
        phone: "13800000000".into(),
    }
}

/// The fixed set-up, recorded on 2025-08-25.
fn setup() -> Vec<Event> {
    let term = |t: &str, a: &str, b: &str| Event::TermDefined {
        school: "s1".into(),
        term: TermId::parse(t).expect("a valid term"),
        starts_on: d(a),
        ends_on: d(b),
    };
    let pair = |s: &str, c: &str| Event::PairingAssigned {
        staff: s.into(),
        child: c.into(),
        role: PairingRole::Mentor,
        from: d("2025-09-01"),
    };
    vec![
        Event::SchoolRegistered {
            school: "s1".into(),
            name: "荷叶小学".into(),
            county: "沿河县".into(),
            township: "思渠镇".into(),
        },
        term("2025-2026-1", "2025-09-01", "2026-01-16"),
        term("2025-2026-2", "2026-02-24", "2026-07-03"),
        staff("t1", vec![Role::ClassTeacher]),
        staff("t2", vec![Role::Counselor]),
        staff("t3", vec![Role::SubjectTeacher]),
        child("c1", "13900000001"),
        child("c2", ""),
        child("c3", "13900000003"),
        pair("t1", "c1"),
        pair("t1", "c2"),
        pair("t3", "c3"),
        Event::IncidentReported {
            staff: "t1".into(),
            child: "c1".into(),
            incident: "i1".into(),
            category: "意外".into(),
            description: "摔倒".into(),
            severity: "轻微".into(),
            happened_at: parse_instant("2025-08-25").expect("a valid instant"),
        },
    ]
}

/// One random step after the set-up.
#[derive(Debug, Clone)]
enum Op {
    Talk {
        staff: usize,
        child: usize,
        mood: usize,
    },
    Counsel {
        child: usize,
        n: u32,
    },
    Visit {
        staff: usize,
        child: usize,
    },
    Call {
        staff: usize,
        child: usize,
    },
    MoveDate {
        target: usize,
        days: i64,
    },
    ChangeMood {
        target: usize,
        mood: usize,
    },
    ChangeNotes {
        target: usize,
        n: u32,
    },
    ChangeChild {
        target: usize,
        child: usize,
    },
    ChangeStaff {
        target: usize,
        staff: usize,
    },
    Retract {
        target: usize,
    },
    Phone {
        child: usize,
        n: u32,
    },
    Status {
        child: usize,
        back: bool,
    },
    EndPairing {
        child: usize,
    },
    Notify,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..4usize).prop_map(|(staff, child, mood)| Op::Talk { staff, child, mood }),
        2 => (0..3usize, 0..1000u32).prop_map(|(child, n)| Op::Counsel { child, n }),
        1 => (0..3usize, 0..3usize).prop_map(|(staff, child)| Op::Visit { staff, child }),
        1 => (0..3usize, 0..3usize).prop_map(|(staff, child)| Op::Call { staff, child }),
        2 => (0..50usize, -60..60i64).prop_map(|(target, days)| Op::MoveDate { target, days }),
        1 => (0..50usize, 0..4usize).prop_map(|(target, mood)| Op::ChangeMood { target, mood }),
        1 => (0..50usize, 0..1000u32).prop_map(|(target, n)| Op::ChangeNotes { target, n }),
        1 => (0..50usize, 0..3usize).prop_map(|(target, child)| Op::ChangeChild { target, child }),
        1 => (0..50usize, 0..3usize).prop_map(|(target, staff)| Op::ChangeStaff { target, staff }),
        2 => (0..50usize).prop_map(|target| Op::Retract { target }),
        1 => (0..3usize, 0..100u32).prop_map(|(child, n)| Op::Phone { child, n }),
        1 => (0..3usize, any::<bool>()).prop_map(|(child, back)| Op::Status { child, back }),
        1 => (0..3usize).prop_map(|child| Op::EndPairing { child }),
        1 => Just(Op::Notify),
    ]
}

const STAFF: [&str; 3] = ["t1", "t2", "t3"];
const CHILDREN: [&str; 3] = ["c1", "c2", "c3"];
const MOODS: [Mood; 4] = [Mood::Good, Mood::Ok, Mood::Low, Mood::Concerning];

/// The log: the set-up, then each op recorded `gap` minutes after the previous one and
/// occurred `delay` hours before it was recorded.
fn build_log(ops: &[(Op, i64, i64)]) -> Vec<Envelope> {
    let start = parse_instant("2025-08-25T09:00:00+08:00").expect("a valid instant");
    let mut envs: Vec<Envelope> = Vec::new();
    let push = |envs: &mut Vec<Envelope>, event: Event, recorded: DateTime<Utc>, occurred| {
        let seq = envs.len() as u64 + 1;
        envs.push(Envelope {
            sealed: None,
            schema: SCHEMA,
            seq,
            id: format!("e{seq}"),
            recorded_at: recorded,
            occurred_at: occurred,
            actor: "t1".into(),
            source: if seq.is_multiple_of(7) {
                Source::Migration
            } else {
                Source::Cli
            },
            event,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        });
    };
    for (i, e) in setup().into_iter().enumerate() {
        let t = start + Duration::minutes(i as i64);
        push(&mut envs, e, t, t);
    }
    // Ids of care events (targets for amendments), and of counseling sessions.
    let mut care: Vec<String> = Vec::new();
    let mut counsel: Vec<String> = Vec::new();
    let mut talks: Vec<String> = Vec::new();
    let mut now = parse_instant("2025-09-01T08:00:00+08:00").expect("a valid instant");
    for (op, gap, delay) in ops {
        now += Duration::minutes(*gap);
        let occurred = now - Duration::hours(*delay);
        let pick = |v: &Vec<String>, i: usize| (!v.is_empty()).then(|| v[i % v.len()].clone());
        let event = match op {
            Op::Talk { staff, child, mood } => Event::TalkHeld {
                staff: STAFF[*staff].into(),
                child: CHILDREN[*child].into(),
                topic: "谈心".into(),
                summary: "情况".into(),
                mood: MOODS[*mood],
                follow_up: None,
            },
            Op::Counsel { child, n } => Event::CounselingHeld {
                staff: "t2".into(),
                child: CHILDREN[*child].into(),
                risk: Risk::Low,
                notes: format!("{SECRET}-{n}"),
            },
            Op::Visit { staff, child } => Event::HomeVisited {
                staff: STAFF[*staff].into(),
                child: CHILDREN[*child].into(),
                met: vec![],
                findings: "家访".into(),
                next_steps: None,
            },
            Op::Call { staff, child } => Event::ParentCalled {
                staff: STAFF[*staff].into(),
                child: CHILDREN[*child].into(),
                parent: Parent::Mother,
                minutes: 5,
                summary: None,
            },
            Op::MoveDate { target, days } => match pick(&care, *target) {
                Some(t) => Event::Corrected {
                    target: t,
                    changes: [(
                        "occurred_at".to_owned(),
                        json!(events::time::format_local(occurred + Duration::days(*days))),
                    )]
                    .into(),
                    reason: "日期".into(),
                },
                None => continue,
            },
            Op::ChangeMood { target, mood } => match pick(&talks, *target) {
                Some(t) => Event::Corrected {
                    target: t,
                    changes: [("mood".to_owned(), json!(MOODS[*mood].as_str()))].into(),
                    reason: "情绪".into(),
                },
                None => continue,
            },
            Op::ChangeNotes { target, n } => match pick(&counsel, *target) {
                Some(t) => Event::Corrected {
                    target: t,
                    changes: [("notes".to_owned(), json!(format!("{SECRET}-fix-{n}")))].into(),
                    reason: "补充".into(),
                },
                None => continue,
            },
            Op::ChangeChild { target, child } => match pick(&talks, *target) {
                Some(t) => Event::Corrected {
                    target: t,
                    changes: [("child".to_owned(), json!(CHILDREN[*child]))].into(),
                    reason: "学生录错".into(),
                },
                None => continue,
            },
            Op::ChangeStaff { target, staff } => match pick(&talks, *target) {
                Some(t) => Event::Corrected {
                    target: t,
                    changes: [("staff".to_owned(), json!(STAFF[*staff]))].into(),
                    reason: "教师录错".into(),
                },
                None => continue,
            },
            Op::Retract { target } => match pick(&care, *target) {
                Some(t) => Event::Retracted {
                    target: t,
                    reason: "误录".into(),
                },
                None => continue,
            },
            Op::Phone { child, n } => Event::ChildUpdated {
                child: CHILDREN[*child].into(),
                changes: Box::new(events::event::ChildChanges {
                    guardian: Some(guardian(&format!("139{n:08}"))),
                    ..Default::default()
                }),
            },
            Op::Status { child, back } => Event::ChildStatusChanged {
                child: CHILDREN[*child].into(),
                status: if *back {
                    ChildStatus::ReturnedToSchool
                } else {
                    ChildStatus::DroppedOut
                },
                on: local_date(occurred),
                note: None,
            },
            Op::EndPairing { child } => Event::PairingEnded {
                staff: if *child == 2 { "t3" } else { "t1" }.into(),
                child: CHILDREN[*child].into(),
                on: local_date(occurred),
                reason: None,
            },
            Op::Notify => Event::IncidentNotified {
                staff: "t1".into(),
                incident: "i1".into(),
                party: events::event::NotifiedParty::Guardian,
                notified_at: occurred,
            },
        };
        let id = format!("e{}", envs.len() + 1);
        match &event {
            Event::TalkHeld { .. } => {
                talks.push(id.clone());
                care.push(id);
            }
            Event::CounselingHeld { .. } => {
                counsel.push(id.clone());
                care.push(id);
            }
            e if e.kind().counts_toward_quota() => care.push(id),
            _ => {}
        }
        push(&mut envs, event, now, occurred);
    }
    envs
}

/// Every view over a log as of `as_of`, as (name, JSON, table) — the non-counselor ones first,
/// then the counselor's. Every view must answer once the set-up is recorded (every child,
/// staff member and the school exist): a view that errs panics here, which fails the property
/// (an error is never turned into a value both sides could share).
fn all_views(
    envs: &[Envelope],
    as_of: Option<DateTime<Utc>>,
) -> (Vec<(String, String, String)>, Vec<String>) {
    let timeline = Timeline::build(envs, as_of).expect("random corrections are valid");
    let world = World::build(&timeline);
    let day = local_date(
        as_of
            .or(timeline.head_recorded_at())
            .expect("the log is not empty"),
    );
    let mut out: Vec<(String, String, String)> = Vec::new();
    fn show<T: serde::Serialize>(v: &T, t: Vec<Vec<String>>) -> (String, String) {
        (
            serde_json::to_string(v).expect("a view serializes"),
            serde_json::to_string(&t).expect("a table serializes"),
        )
    }
    let mut add = |name: String, r: Result<(String, String), projections::ProjectionError>| {
        let (j, t) = r.unwrap_or_else(|e| panic!("{name} as of {as_of:?}: {e}"));
        out.push((name, j, t));
    };
    for c in CHILDREN {
        add(
            format!("archive {c}"),
            archive(&timeline, &world, c, None).map(|v| show(&v, v.to_table())),
        );
        add(
            format!("archive {c} valid at"),
            archive(&timeline, &world, c, Some(d("2025-10-15"))).map(|v| show(&v, v.to_table())),
        );
        add(
            format!("card {c}"),
            contact_card(&timeline, &world, c, None).map(|v| show(&v, v.to_table())),
        );
        add(
            format!("history {c}"),
            history(envs, &timeline, &world, c, false).map(|v| show(&v, v.to_table())),
        );
        add(
            format!("progress {c}"),
            progress(&timeline, &world, c, false).map(|v| show(&v, v.to_table())),
        );
    }
    add(
        "archives".into(),
        archives(&timeline, &world, "s1", None, false).map(|v| show(&v, v.to_table())),
    );
    add(
        "pairings".into(),
        pairings_on(&world, "s1", day).map(|v| show(&v, v.to_table())),
    );
    for s in STAFF {
        add(
            format!("worklist {s}"),
            worklist(&timeline, &world, s, day).map(|v| show(&v, v.to_table())),
        );
    }
    add(
        "backfill".into(),
        backfill(&timeline, &world, "s1", &BackfillOptions::default())
            .map(|v| show(&v, v.to_table())),
    );
    let mut counselor = Vec::new();
    for c in CHILDREN {
        let v = history(envs, &timeline, &world, c, true)
            .unwrap_or_else(|e| panic!("counselor history {c} as of {as_of:?}: {e}"));
        counselor.push(serde_json::to_string(&v).expect("a view serializes"));
        let v = progress(&timeline, &world, c, true)
            .unwrap_or_else(|e| panic!("counselor progress {c} as of {as_of:?}: {e}"));
        counselor.push(serde_json::to_string(&v).expect("a view serializes"));
    }
    (out, counselor)
}

fn timeline_parts(t: &Timeline) -> Value {
    json!({
        "facts": format!("{:?}", t.facts()),
        "retracted": format!("{:?}", t.retracted()),
        "amendments": format!("{:?}", t.amendments()),
        "head_seq": t.head_seq(),
        "head_recorded_at": t.head_recorded_at().map(|x| x.to_rfc3339()),
    })
}

fn ops() -> impl Strategy<Value = Vec<(Op, i64, i64)>> {
    prop::collection::vec((op(), 1..6000i64, 0..400i64), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn given_any_log_when_viewed_as_of_t_then_later_events_change_no_byte(
        ops in ops(),
        cut in 0.0..1.0f64,
    ) {
        let envs = build_log(&ops);
        // A cut at or after the set-up's last envelope: before it, a child or the school is
        // not known yet and the views rightly refuse.
        let first = setup().len() - 1;
        let k = first + (((envs.len() - first) as f64) * cut) as usize;
        let t = envs[k.min(envs.len() - 1)].recorded_at;
        let prefix: Vec<Envelope> = envs.iter().filter(|e| e.recorded_at <= t).cloned().collect();
        let (short, short_c) = all_views(&prefix, Some(t));
        let (long, long_c) = all_views(&envs, Some(t));
        prop_assert_eq!(short, long);
        prop_assert_eq!(short_c, long_c);
    }

    #[test]
    fn given_counseling_notes_when_viewed_by_a_non_counselor_then_no_note_shows(ops in ops()) {
        let envs = build_log(&ops);
        let (views, counselor) = all_views(&envs, None);
        for (name, j, t) in &views {
            prop_assert!(!j.contains(SECRET) && !t.contains(SECRET), "{} shows a note", name);
        }
        let notes_in_log = envs.iter().any(|e| matches!(e.event, Event::CounselingHeld { .. }));
        if notes_in_log {
            // The counselor does see them (so the check above is not vacuous).
            prop_assert!(counselor.iter().any(|v| v.contains(SECRET)));
        }
    }

    #[test]
    fn given_any_log_when_versions_are_filtered_at_t_then_they_equal_the_replay_as_of_t(
        ops in ops(),
    ) {
        let envs = build_log(&ops);
        let versions = Versions::build(envs.iter().cloned());
        // Folded in pieces (a service folds what was appended since its last read), the same
        // versions: at every cut, extended from there, each timeline equals the one-shot one.
        for cut in [1, envs.len() / 3, envs.len() / 2, envs.len().saturating_sub(1)] {
            let cut = cut.min(envs.len());
            let mut pieces = Versions::build(envs[..cut].iter().cloned());
            pieces.extend(envs[cut..].iter().cloned());
            for t in [None, Some(envs[cut.saturating_sub(1)].recorded_at)] {
                prop_assert_eq!(
                    timeline_parts(&pieces.timeline(t).expect("valid")),
                    timeline_parts(&versions.timeline(t).expect("valid"))
                );
            }
        }
        // Every recorded time, a microsecond before each, and "now": so every cut between an
        // event and a correction or retraction of it is among them.
        let mut cuts: Vec<Option<DateTime<Utc>>> = vec![None];
        for e in &envs {
            cuts.push(Some(e.recorded_at));
            cuts.push(Some(e.recorded_at - Duration::microseconds(1)));
        }
        for t in cuts {
            let replay = Timeline::build(&envs, t).expect("random corrections are valid");
            let filtered = versions.timeline(t).expect("random corrections are valid");
            prop_assert_eq!(timeline_parts(&filtered), timeline_parts(&replay));
            let facts: Vec<_> = versions.facts_at(t).collect();
            let replayed: Vec<_> = replay.facts().iter().map(|f| &**f).collect();
            prop_assert_eq!(facts, replayed);
        }
        // Views over the filtered timeline equal the replay's, after the set-up.
        let first = setup().len() - 1;
        for k in [first, (first + envs.len()) / 2, envs.len() - 1] {
            let t = Some(envs[k].recorded_at);
            let filtered = versions.timeline(t).expect("valid");
            let replay = Timeline::build(&envs, t).expect("valid");
            let (w1, w2) = (World::build(&filtered), World::build(&replay));
            let day = local_date(envs[k].recorded_at);
            for s in STAFF {
                let a = worklist(&filtered, &w1, s, day).expect("staff exists");
                let b = worklist(&replay, &w2, s, day).expect("staff exists");
                // Indexing only the staff member's events, as `worklist` does, gives what the
                // school's whole index gives.
                let r = projections::worklist::worklist_indexing_the_school(&replay, &w2, s, day)
                    .expect("staff exists");
                prop_assert_eq!(
                    serde_json::to_string(&b).expect("json"),
                    serde_json::to_string(&r).expect("json")
                );
                prop_assert_eq!(
                    serde_json::to_string(&a).expect("json"),
                    serde_json::to_string(&b).expect("json")
                );
            }
            let a = archives(&filtered, &w1, "s1", None, false).expect("s1 exists");
            let b = archives(&replay, &w2, "s1", None, false).expect("s1 exists");
            prop_assert_eq!(
                serde_json::to_string(&a).expect("json"),
                serde_json::to_string(&b).expect("json")
            );
        }
    }
}
