//! The log's behaviour on concrete cases.

use events::{Envelope, Event, Source};
use store::{Store, StoreError};

use crate::{at, now, talk};

fn ids(store: &Store) -> Vec<String> {
    store.scan(None).map(|e| e.unwrap().id).collect()
}

#[test]
fn given_a_batch_when_appended_then_it_is_chained_indexed_and_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let drafts = vec![
        talk("a", "t1", "c1", 1),
        talk("b", "t1", "c2", 2),
        talk("c", "t2", "c1", 3),
    ];
    let out = store
        .append_at(drafts, Source::Import("x.jsonl".into()), now())
        .unwrap();
    assert_eq!((out.appended, out.skipped, out.head.seq), (3, 0, 3));

    let all: Vec<Envelope> = store.scan(None).map(Result::unwrap).collect();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[0].prev_hash, events::Hash::ZERO);
    assert_eq!(all[1].prev_hash, all[0].hash);
    assert_eq!(all[2].hash, out.head.hash);
    assert!(all.iter().all(|e| e.recorded_at == now()));
    assert_eq!(all[0].source.to_string(), "import:x.jsonl");

    let c1: Vec<u64> = store
        .by_child("c1", None)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(c1, [1, 3]);
    let t1: Vec<u64> = store
        .by_staff("t1", None)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(t1, [1, 2]);
    assert_eq!(store.seq_of("b").unwrap(), Some(2));
    assert_eq!(store.get(2).unwrap().unwrap().id, "b");
    assert_eq!(store.get(4).unwrap(), None);
    let v = store.verify().unwrap();
    assert_eq!((v.events, v.head), (3, out.head.hash));
}

#[test]
fn given_the_same_batch_twice_when_appended_then_nothing_is_added_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let batch = || vec![talk("a", "t1", "c1", 1), talk("b", "t1", "c1", 2)];
    store.append_at(batch(), Source::Cli, now()).unwrap();
    let again = store.append_at(batch(), Source::Cli, now()).unwrap();
    assert_eq!((again.appended, again.skipped), (0, 2));
    // A duplicate inside one batch is skipped too.
    let dup = store
        .append_at(
            vec![talk("z", "t", "c", 1), talk("z", "t", "c", 1)],
            Source::Cli,
            now(),
        )
        .unwrap();
    assert_eq!((dup.appended, dup.skipped), (1, 1));
    assert_eq!(ids(&store), ["a", "b", "z"]);
}

#[test]
fn given_recorded_times_when_the_clock_goes_back_then_recorded_at_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    store
        .append_at(vec![talk("a", "t", "c", 1)], Source::Cli, now())
        .unwrap();
    let earlier = now() - chrono::Duration::hours(1);
    store
        .append_at(vec![talk("b", "t", "c", 1)], Source::Cli, earlier)
        .unwrap();
    let times: Vec<_> = store.scan(None).map(|e| e.unwrap().recorded_at).collect();
    assert_eq!(times, [now(), now()]);
}

#[test]
fn given_migration_rules_when_broken_then_the_whole_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let with = |id: &str, day: u32, rec: u32| {
        let mut d = talk(id, "t", "c", day);
        d.recorded_at = Some(at(rec));
        d
    };
    // Decreasing recorded_at inside the batch.
    let err = store
        .append_at(
            vec![with("a", 1, 5), with("b", 1, 4)],
            Source::Migration,
            now(),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordedAtDecreasing { index: 1, .. }),
        "{err}"
    );
    // occurred after recorded.
    let err = store
        .append_at(vec![with("a", 6, 5)], Source::Migration, now())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::OccurredAfterRecorded { index: 0, .. }),
        "{err}"
    );
    // In the future.
    let err = store
        .append_at(vec![with("a", 1, 400)], Source::Migration, now())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordedAtInFuture { index: 0, .. }),
        "{err}"
    );
    // Missing, or given without the migration source.
    let err = store
        .append_at(vec![talk("a", "t", "c", 1)], Source::Migration, now())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordedAtMissing { index: 0 }),
        "{err}"
    );
    let err = store
        .append_at(vec![with("a", 1, 2)], Source::Cli, now())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordedAtNotAllowed { index: 0 }),
        "{err}"
    );
    assert!(ids(&store).is_empty());

    // A good migration keeps its times and says so; a later one may not go before it.
    store
        .append_at(
            vec![with("a", 1, 2), with("b", 2, 9)],
            Source::Migration,
            now(),
        )
        .unwrap();
    let all: Vec<Envelope> = store.scan(None).map(Result::unwrap).collect();
    assert_eq!(all[1].recorded_at, at(9));
    assert_eq!(all[1].source, Source::Migration);
    let err = store
        .append_at(vec![with("c", 1, 3)], Source::Migration, now())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordedAtDecreasing { index: 0, .. }),
        "{err}"
    );
    // as-of is a prefix of the log.
    let until: Vec<u64> = store.scan(Some(at(5))).map(|e| e.unwrap().seq).collect();
    assert_eq!(until, [1]);
}

#[test]
fn given_a_flipped_byte_when_verified_then_that_seq_is_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::create(dir.path()).unwrap();
        let drafts: Vec<_> = (0..500)
            .map(|i| talk(&format!("e{i}"), "t", &format!("c{}", i % 7), i % 100))
            .collect();
        store.append_at(drafts, Source::Cli, now()).unwrap();
        store.verify().unwrap();
        store.tamper_for_test(321).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let err = store.verify().unwrap_err();
    assert_eq!(err.damaged_seq(), Some(321), "{err}");
}

#[test]
fn given_amendments_when_indexed_then_they_are_listed_with_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    store
        .append_at(vec![talk("a", "t1", "c1", 1)], Source::Cli, now())
        .unwrap();
    let retract = events::Draft {
        sealed: None,
        id: "r".into(),
        occurred_at: at(3),
        actor: "admin".into(),
        event: Event::Retracted {
            target: "a".into(),
            reason: "entered twice".into(),
        },
        recorded_at: None,
    };
    store.append_at(vec![retract], Source::Cli, now()).unwrap();
    let c1: Vec<String> = store
        .by_child("c1", None)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(c1, ["a", "r"]);
    assert!(store.registry().unwrap().is_retracted("a"));
    drop(store);
    assert!(
        Store::open(dir.path())
            .unwrap()
            .registry()
            .unwrap()
            .is_retracted("a")
    );
}

#[test]
fn given_amendments_when_read_as_of_a_head_then_amended_rows_are_the_targets_amended_by_then() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let talks = ["a", "b", "c"].map(|id| talk(id, "t1", "c1", 1));
    store.append_at(talks.to_vec(), Source::Cli, now()).unwrap();
    let retract = crate::by_admin(
        "r",
        3,
        Event::Retracted {
            target: "a".into(),
            reason: "entered twice".into(),
        },
    );
    store.append_at(vec![retract], Source::Cli, now()).unwrap();
    let correct = crate::child_corrected("k", 4, "b", "c2");
    store.append_at(vec![correct], Source::Cli, now()).unwrap();
    let again = crate::child_corrected("k2", 5, "b", "c3");
    store.append_at(vec![again], Source::Cli, now()).unwrap();
    // The targets as recorded (`b` still about c1), each once, in log order.
    let rows = |store: &Store, head: u64| -> Vec<(u64, String, Vec<String>)> {
        store
            .amended_rows(head)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.id.clone(), e.event.children().to_vec()))
            .collect()
    };
    let a = (1, "a".to_owned(), vec!["c1".to_owned()]);
    let b = (2, "b".to_owned(), vec!["c1".to_owned()]);
    // Seqs 1-3 the talks, 4 the retraction of `a`, 5 and 6 the corrections of `b`; `c`
    // untouched.
    assert_eq!(rows(&store, 3), []);
    assert_eq!(rows(&store, 4), std::slice::from_ref(&a));
    assert_eq!(rows(&store, u64::MAX), [a.clone(), b.clone()]);
    for (got, want) in store.amended_rows(6).unwrap().iter().zip(1..=2) {
        assert_eq!(Some(got), store.get(want).unwrap().as_ref());
    }
    drop(store);
    assert_eq!(rows(&Store::open(dir.path()).unwrap(), 5), [a, b]);
}

#[test]
fn opening_a_missing_store_is_an_error_and_creating_twice_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(Store::open(&missing), Err(StoreError::Missing(_))));
    drop(Store::create(&missing).unwrap());
    assert!(matches!(
        Store::create(&missing),
        Err(StoreError::Exists(_))
    ));
}
