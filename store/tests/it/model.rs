//! Model-based test: random batches (with repeated ids, many children and staff, amendments)
//! appended with random reopens, compared after every step with an in-memory model of the
//! log: ids and order, per-child and per-staff indexes, head hash, and a clean `verify`.

use std::collections::{BTreeMap, HashSet};

use events::{Draft, Envelope, Event, Source};
use proptest::prelude::*;
use store::Store;

use crate::{now, talk};

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<(u16, u8, u8, bool)>), // (id number, child, staff, is retraction of that id)
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec((0u16..300, 0u8..6, 0u8..3, prop::bool::weighted(0.1)), 0..60)
            .prop_map(Step::Append),
        1 => Just(Step::Reopen),
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
    fn the_log_matches_its_model(steps in prop::collection::vec(step(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(dir.path()).unwrap();
        // The model: the drafts that should be in the log, in order.
        let mut model: Vec<Draft> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for s in steps {
            match s {
                Step::Reopen => {
                    drop(store);
                    store = Store::open(dir.path()).unwrap();
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
            prop_assert_eq!(
                log.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                model.iter().map(|d| d.id.as_str()).collect::<Vec<_>>()
            );
            prop_assert!(log.iter().zip(&model).all(|(e, d)| e.event == d.event));
            prop_assert_eq!(store.head().seq as usize, model.len());
            if let Some(last) = log.last() {
                prop_assert_eq!(store.head().hash, last.hash);
            }
            // Indexes: a child's events are its talks plus retractions of them.
            let mut by_child: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let mut by_staff: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let pos: BTreeMap<&str, &Envelope> = log.iter().map(|e| (e.id.as_str(), e)).collect();
            for e in &log {
                let subject = match &e.event {
                    Event::Retracted { target, .. } => {
                        pos.get(target.as_str()).copied().filter(|t| t.seq < e.seq)
                    }
                    _ => Some(e),
                };
                if let Some(Event::TalkHeld { child, staff, .. }) = subject.map(|s| &s.event) {
                    by_child.entry(child.clone()).or_default().push(e.seq);
                    by_staff.entry(staff.clone()).or_default().push(e.seq);
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
