//! Model-based test: random batches (small ones, as commits are stored, and imports of over 256
//! new ids, stored in clusters; with repeated ids, many children and staff, amendments,
//! transfers of children between two schools, corrections moving talks to another child)
//! appended with random reopens, compared after every step with an in-memory model of the
//! log: ids and order, per-child and per-staff indexes, head hash, each school's read models
//! (every talk about a child or by a teacher who ever belonged to the school, in any version,
//! with its amendments, and none other), and a clean `verify` (which compares the read
//! models with their rebuild).

use std::collections::{BTreeMap, HashSet};

use events::event::ChildChanges;
use events::{Draft, Envelope, Event, Source};
use proptest::prelude::*;
use serde_json::json;
use store::Store;

use crate::{now, talk};

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<(u16, u8, u8, bool)>), // (id number, child, staff, is retraction of that id)
    Reopen,
    /// Child `c{0}` transfers to school `k{1}`.
    Transfer(u8, u8),
    /// The talk `e{0}` is corrected to be about child `c{1}`.
    Move(u16, u8),
}

const SCHOOLS: [&str; 2] = ["k0", "k1"];

/// Two schools; staff t0, t1 at k0 and t2 at k1; children c0–c2 at k0 and c3–c5 at k1.
fn setup() -> Vec<Draft> {
    let d = |id: &str, kind: &str, fields: serde_json::Value| Draft {
        sealed: None,
        id: id.to_owned(),
        occurred_at: crate::at(0),
        actor: "admin".into(),
        event: events::wire::event_from_wire(kind, fields.as_object().expect("an object").clone())
            .expect("a valid event"),
        recorded_at: None,
    };
    let mut out = Vec::new();
    for k in SCHOOLS {
        out.push(d(
            k,
            "school_registered",
            json!({"school": k, "name": "学校", "county": "沿河县", "township": "思渠镇"}),
        ));
    }
    for t in 0..3 {
        let school = SCHOOLS[usize::from(t == 2)];
        out.push(d(&format!("t{t}"), "staff_joined", json!({"staff": format!("t{t}"), "school": school, "name": "老师", "roles": ["class_teacher"], "party_member": false, "phone": "13800000000"})));
    }
    for c in 0..6 {
        let school = SCHOOLS[usize::from(c >= 3)];
        out.push(d(&format!("reg{c}"), "child_registered", json!({"child": format!("c{c}"), "school": school, "grade": 4, "class": 1, "name": "学生", "gender": "female", "birth_date": "2016-01-01", "boarding": false, "address": "村", "left_behind_type": "both_parents_away", "parents": [{"name": "父", "relation": "father", "work_place": "东莞", "phone": "13900000000", "away": true}], "guardian": {"name": "祖母", "relation": "grandparent_paternal", "phone": "13700000000", "capability": "fair"}})));
    }
    out
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec((0u16..300, 0u8..6, 0u8..3, prop::bool::weighted(0.1)), 0..60)
            .prop_map(Step::Append),
        // An import's batch (more than 256 new ids): packed in clusters by school.
        1 => prop::collection::vec((300u16..3000, 0u8..6, 0u8..3, prop::bool::weighted(0.1)), 300..420)
            .prop_map(Step::Append),
        1 => Just(Step::Reopen),
        1 => (0u8..6, 0u8..2).prop_map(|(c, k)| Step::Transfer(c, k)),
        1 => (0u16..300, 0u8..6).prop_map(|(n, c)| Step::Move(n, c)),
    ]
}

fn draft(n: u16, child: u8, staff: u8, retraction: bool) -> Draft {
    if retraction {
        Draft {
            sealed: None,
            id: format!("r{n}"),
            occurred_at: crate::at(0),
            actor: "admin".into(),
            event: Event::Retracted {
                target: format!("e{n}"),
                reason: "test".into(),
            },
            recorded_at: None,
        }
    } else {
        talk(
            &format!("e{n}"),
            &format!("t{staff}"),
            &format!("c{child}"),
            u32::from(n % 50),
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn the_log_matches_its_model(
        steps in prop::collection::vec(step(), 1..12),
        // Small appends stage their postings; a low limit merges them every few appends.
        staging in prop_oneof![Just(None), (1usize..40).prop_map(Some)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(dir.path()).unwrap();
        if let Some(pairs) = staging {
            store.set_staging_limit_for_tests(pairs);
        }
        // The model: the drafts that should be in the log, in order.
        let mut model: Vec<Draft> = setup();
        let mut seen: HashSet<String> = model.iter().map(|d| d.id.clone()).collect();
        store.append_at(model.clone(), Source::Cli, now()).unwrap();
        let mut extra = 0u32;
        // Per school, what a reader keeping its seqs has read (`school_seqs_between` from its
        // last `through` on, as the service's kept versions read), and that `through`.
        let mut kept: BTreeMap<&str, (u64, std::collections::BTreeSet<u64>)> = BTreeMap::new();
        for s in steps {
            let mut one = |event: Event, store: &Store, model: &mut Vec<Draft>| {
                extra += 1;
                let d = Draft { sealed: None,
                    id: format!("x{extra}"),
                    occurred_at: crate::at(1),
                    actor: "admin".into(),
                    event,
                    recorded_at: None,
                };
                model.push(d.clone());
                store.append_at(vec![d], Source::Cli, now()).unwrap();
            };
            match s {
                Step::Transfer(c, k) => one(
                    Event::ChildUpdated {
                        child: format!("c{c}"),
                        changes: Box::new(ChildChanges {
                            school: Some(SCHOOLS[usize::from(k)].into()),
                            ..Default::default()
                        }),
                    },
                    &store,
                    &mut model,
                ),
                Step::Move(n, c) => {
                    // Only a talk in the log, not retracted, can be moved.
                    let talk = format!("e{n}");
                    let live = seen.contains(&talk) && !seen.contains(&format!("r{n}"));
                    if live {
                        one(
                            Event::Corrected {
                                target: talk,
                                changes: [("child".to_owned(), json!(format!("c{c}")))].into(),
                                reason: "录错".into(),
                            },
                            &store,
                            &mut model,
                        );
                    }
                }
                Step::Reopen => {
                    drop(store);
                    store = Store::open(dir.path()).unwrap();
                    if let Some(pairs) = staging {
                        store.set_staging_limit_for_tests(pairs);
                    }
                }
                Step::Append(batch) => {
                    let drafts: Vec<Draft> =
                        batch.iter().map(|&(n, c, t, r)| draft(n, c, t, r)).collect();
                    let before = model.len();
                    for d in &drafts {
                        if seen.insert(d.id.clone()) {
                            model.push(d.clone());
                        }
                    }
                    let out = store.append_at(drafts, Source::Cli, now()).unwrap();
                    prop_assert_eq!(out.appended as usize, model.len() - before);
                }
            }
            let log: Vec<Envelope> = store.scan(None).map(Result::unwrap).collect();
            // The read models: which school each child and staff member ever belonged to, the
            // children each talk was ever about, and so each school's talks and amendments.
            let mut members: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
            let mut talk_children: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for e in &log {
                match &e.event {
                    Event::ChildRegistered(r) => {
                        members.entry(r.child.clone()).or_default().insert(&r.school);
                    }
                    Event::ChildUpdated { child, changes } => {
                        if let Some(k) = &changes.school {
                            members.entry(child.clone()).or_default().insert(k);
                        }
                    }
                    Event::StaffJoined { staff, school, .. } => {
                        members.entry(staff.clone()).or_default().insert(school);
                    }
                    Event::TalkHeld { child, .. } => {
                        talk_children.entry(&e.id).or_default().push(child.clone());
                    }
                    Event::Corrected { target, changes, .. } => {
                        if let (Some(c), Some(list)) =
                            (changes.get("child"), talk_children.get_mut(target.as_str()))
                        {
                            list.push(c.as_str().unwrap_or_default().to_owned());
                        }
                    }
                    _ => {}
                }
            }
            for k in SCHOOLS {
                let in_school = |who: &str| members.get(who).is_some_and(|m| m.contains(k));
                let mut want: Vec<u64> = Vec::new();
                let talk_in = |id: &str, staff: &str| {
                    in_school(staff)
                        || talk_children.get(id).is_some_and(|cs| cs.iter().any(|c| in_school(c)))
                };
                let by_id: BTreeMap<&str, &Envelope> =
                    log.iter().map(|e| (e.id.as_str(), e)).collect();
                for e in &log {
                    let talk = match &e.event {
                        Event::TalkHeld { staff, .. } => Some((e.id.as_str(), staff.as_str())),
                        Event::Retracted { target, .. } | Event::Corrected { target, .. } => {
                            by_id.get(target.as_str()).filter(|t| t.seq < e.seq).and_then(|t| {
                                match &t.event {
                                    Event::TalkHeld { staff, .. } => {
                                        Some((t.id.as_str(), staff.as_str()))
                                    }
                                    _ => None,
                                }
                            })
                        }
                        _ => None,
                    };
                    if talk.is_some_and(|(id, staff)| talk_in(id, staff)) {
                        want.push(e.seq);
                    }
                }
                let got: Vec<u64> = store
                    .school_envelopes(k, None)
                    .unwrap()
                    .iter()
                    .filter(|e| {
                        matches!(&e.event, Event::TalkHeld { .. })
                            || matches!(&e.event, Event::Retracted { target, .. } | Event::Corrected { target, .. } if target.starts_with('e'))
                    })
                    .map(|e| e.seq)
                    .collect();
                prop_assert_eq!(got, want, "the talks of school {}", k);
                let (after, read) = kept.entry(k).or_default();
                let through = store.read_models_through().unwrap();
                read.extend(store.school_seqs_between(k, *after, through).unwrap());
                *after = through;
                let all: std::collections::BTreeSet<u64> =
                    store.school_seqs(k).unwrap().into_iter().collect();
                prop_assert_eq!(&*read, &all, "school {} read step by step", k);
            }
            // Fact rows: every talk's, in log order; split among threads, the same rows, each
            // once, as of the head and as of halfway.
            let want: Vec<u64> = log
                .iter()
                .filter(|e| matches!(&e.event, Event::TalkHeld { .. }))
                .map(|e| e.seq)
                .collect();
            for head in [u64::MAX, model.len() as u64 / 2] {
                let mut rows = Vec::new();
                store
                    .fact_rows(head, |r| {
                        rows.push(r.seq);
                        Ok::<_, store::StoreError>(())
                    })
                    .unwrap();
                let upto: Vec<u64> = want.iter().copied().filter(|&s| s <= head).collect();
                prop_assert_eq!(&rows, &upto, "fact rows up to {}", head);
                let mut shares = vec![Vec::new(); 3];
                prop_assert!(store.fact_values(head).split(&mut shares, |share, r| share.push(r.seq)));
                let mut split: Vec<u64> = shares.concat();
                split.sort_unstable();
                prop_assert_eq!(&split, &upto, "fact rows split up to {}", head);
            }
            prop_assert_eq!(
                log.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                model.iter().map(|d| d.id.as_str()).collect::<Vec<_>>()
            );
            prop_assert!(log.iter().zip(&model).all(|(e, d)| e.event == d.event));
            prop_assert_eq!(store.head().seq as usize, model.len());
            if let Some(last) = log.last() {
                prop_assert_eq!(store.head().hash, last.hash);
            }
            // Indexes: a child's events are its registration, transfers and talks (as recorded)
            // plus the amendments of those talks; a staff member's, their joining and talks.
            let mut by_child: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let mut by_staff: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let pos: BTreeMap<&str, &Envelope> = log.iter().map(|e| (e.id.as_str(), e)).collect();
            for e in &log {
                let subject = match &e.event {
                    Event::Retracted { target, .. } | Event::Corrected { target, .. } => {
                        pos.get(target.as_str()).copied().filter(|t| t.seq < e.seq)
                    }
                    _ => Some(e),
                };
                match subject.map(|s| &s.event) {
                    Some(Event::TalkHeld { child, staff, .. }) => {
                        by_child.entry(child.clone()).or_default().push(e.seq);
                        by_staff.entry(staff.clone()).or_default().push(e.seq);
                    }
                    Some(Event::ChildRegistered(r)) => {
                        by_child.entry(r.child.clone()).or_default().push(e.seq);
                    }
                    Some(Event::ChildUpdated { child, .. }) => {
                        by_child.entry(child.clone()).or_default().push(e.seq);
                    }
                    Some(Event::StaffJoined { staff, .. }) => {
                        by_staff.entry(staff.clone()).or_default().push(e.seq);
                    }
                    _ => {}
                }
                prop_assert_eq!(store.seq_of(&e.id).unwrap(), Some(e.seq));
            }
            for c in 0..6 {
                let id = format!("c{c}");
                let got: Vec<u64> = store.by_child(&id, None).unwrap().iter().map(|e| e.seq).collect();
                prop_assert_eq!(got, by_child.get(&id).cloned().unwrap_or_default());
            }
            for t in 0..3 {
                let id = format!("t{t}");
                let got: Vec<u64> = store.by_staff(&id, None).unwrap().iter().map(|e| e.seq).collect();
                prop_assert_eq!(got, by_staff.get(&id).cloned().unwrap_or_default());
            }
            prop_assert_eq!(store.verify().unwrap().events as usize, model.len());
        }
    }
}
