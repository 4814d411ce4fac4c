//! Damage the store must notice, one break at a time, each with the exact first bad seq:
//! what `verify` finds, what reads refuse, and what opening refuses before it writes.
//! Each break is made by `Store::tamper_*` through sled (so sled's checksums stay valid),
//! repairing whatever an editor could repair, so that only the check under test can catch it.

use events::{Hash, Source};
use store::{Head, Store, StoreError};

use crate::{now, talk};

/// The batch sizes each break is tried with: five batches of 100 are stored in segments (a
/// commit's layout), one batch of 500 in clusters named by a directory (an import's).
const BATCHES: [usize; 2] = [100, 500];

/// A store of 500 talks in batches of `batch`, closed.
fn store_of_500(batch: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    for b in 0..500 / batch {
        let drafts: Vec<_> = (0..batch)
            .map(|i| {
                let n = (b * batch + i) as u32;
                talk(
                    &format!("e{n}"),
                    &format!("t{}", n % 3),
                    &format!("c{}", n % 7),
                    n % 100,
                )
            })
            .collect();
        store.append_at(drafts, Source::Cli, now()).unwrap();
    }
    store.verify().unwrap();
    dir
}

fn damaged_at(r: Result<store::Verified, StoreError>) -> (u64, String) {
    match r {
        Err(e @ StoreError::Damaged { .. }) => (e.damaged_seq().unwrap(), e.to_string()),
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn a_missing_segment_is_named_at_its_first_seq() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        let first = Store::open(dir.path())
            .unwrap()
            .tamper_remove_segment(250)
            .unwrap();
        // A segment of the batch of 201-300, or the directory of seqs 1-500.
        assert!(first <= 250 && (batch == 500 || first > 200), "{first}");
        if batch == 500 {
            // The directory of seqs 1-500 was the log's only value: opening names the gap.
            let err = Store::open(dir.path()).err().expect("refused");
            assert_eq!(err.damaged_seq(), Some(1), "{err}");
            assert!(err.to_string().contains("the log holds 0"), "{err}");
            continue;
        }
        let store = Store::open(dir.path()).unwrap();
        let (seq, what) = damaged_at(store.verify());
        assert_eq!(seq, first, "{what}");
        assert!(what.contains("missing"), "{what}");
        // A scan does not silently skip the gap either.
        let err = store
            .scan(None)
            .find_map(Result::err)
            .expect("the gap is an error");
        assert_eq!(err.damaged_seq(), Some(first), "{err}");
    }
}

#[test]
fn a_missing_cluster_is_named_at_its_first_seq_and_a_stray_one_by_verify() {
    let dir = store_of_500(500);
    let lowest = Store::open(dir.path())
        .unwrap()
        .tamper_remove_cluster(250)
        .unwrap();
    assert!(lowest <= 250, "{lowest}");
    let store = Store::open(dir.path()).unwrap();
    let (seq, what) = damaged_at(store.verify());
    assert_eq!(seq, lowest, "{what}");
    assert!(what.contains("missing"), "{what}");
    let err = store.get(250).expect_err("refused");
    assert_eq!(err.damaged_seq(), Some(250), "{err}");
    let err = store
        .scan(None)
        .find_map(Result::err)
        .expect("the gap is an error");
    assert_eq!(err.damaged_seq(), Some(lowest), "{err}");
    drop(store);

    // A cluster past the log's end is not the log's: verify names it (opening would have
    // removed one a crashed batch left, but this one appeared after the open).
    let dir = store_of_500(500);
    let store = Store::open(dir.path()).unwrap();
    store.tamper_stray_cluster(30).unwrap();
    let (seq, what) = damaged_at(store.verify());
    assert_eq!(seq, 501, "{what}");
    assert!(what.contains("clusters past its last directory"), "{what}");
    // Reopening treats it as the remains of an uncommitted batch, and removes it.
    drop(store);
    Store::open(dir.path()).unwrap().verify().unwrap();
}

#[test]
fn a_wrong_prev_hash_is_named_even_when_the_chain_after_it_was_recomputed() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_rewrite(321, |e| e.prev_hash = Hash([7; 32]))
            .unwrap();
        let (seq, what) = damaged_at(Store::open(dir.path()).unwrap().verify());
        assert_eq!(seq, 321, "{what}");
        assert!(what.contains("prev_hash"), "{what}");
    }
}

#[test]
fn a_wrong_seq_is_named() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_rewrite(137, |e| e.seq = 138)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (seq, what) = damaged_at(store.verify());
        assert_eq!(seq, 137, "{what}");
        assert!(what.contains("says seq 138"), "{what}");
        // Reads refuse it too.
        assert_eq!(
            store.get(137).err().and_then(|e| e.damaged_seq()),
            Some(137)
        );
    }
}

#[test]
fn a_recorded_at_that_goes_back_is_named() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_rewrite(402, |e| e.recorded_at -= chrono::Duration::seconds(1))
            .unwrap();
        let (seq, what) = damaged_at(Store::open(dir.path()).unwrap().verify());
        assert_eq!(seq, 402, "{what}");
        assert!(what.contains("recorded_at goes back"), "{what}");
    }
}

#[test]
fn a_head_marker_that_disagrees_with_the_chain_is_named() {
    for batch in BATCHES {
        // Its hash.
        let dir = store_of_500(batch);
        let store = Store::open(dir.path()).unwrap();
        let head = store.head();
        store
            .tamper_set_meta_head(Head {
                hash: Hash([9; 32]),
                ..head
            })
            .unwrap();
        drop(store);
        // Opening compares the marker with the chain before it writes anything.
        let err = Store::open(dir.path()).err().expect("refused");
        assert_eq!(err.damaged_seq(), Some(500), "{err}");
        assert_eq!(
            store::log::head_file::read(dir.path())
                .unwrap()
                .unwrap()
                .hash,
            head.hash
        );
        // Longer than the log: opening refuses before it writes.
        let dir = store_of_500(batch);
        let store = Store::open(dir.path()).unwrap();
        store
            .tamper_set_meta_head(Head { seq: 520, ..head })
            .unwrap();
        drop(store);
        let err = Store::open(dir.path()).err().expect("refused");
        assert_eq!(err.damaged_seq(), Some(501), "{err}");
        // Shorter than what was acknowledged: the head file says so.
        let dir = store_of_500(batch);
        let store = Store::open(dir.path()).unwrap();
        let at_300 = store.get(300).unwrap().unwrap().hash;
        store
            .tamper_set_meta_head(Head {
                seq: 300,
                hash: at_300,
                ..head
            })
            .unwrap();
        drop(store);
        let err = Store::open(dir.path()).err().expect("refused");
        assert_eq!(err.damaged_seq(), Some(301), "{err}");
        assert!(
            err.to_string()
                .contains("the log ends at seq 300 but seq 500 was acknowledged"),
            "{err}"
        );
        // Nothing was removed by the refused opens: the segments past 300 are still there.
        let head_file = store::log::head_file::read(dir.path()).unwrap().unwrap();
        assert_eq!(head_file.seq, 500);
    }
}

#[test]
fn a_body_edited_in_place_is_refused_by_every_read() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_replace_in_body(77, "谈了期中考试".as_bytes(), "谈了期末考试".as_bytes())
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get(77).err().and_then(|e| e.damaged_seq()), Some(77));
        // Seq 77 is talk e76: about c6 (76 % 7), by t1 (76 % 3).
        let refused =
            |r: Result<Vec<events::Envelope>, StoreError>| r.err().and_then(|e| e.damaged_seq());
        assert_eq!(refused(store.by_child("c6", None)), Some(77));
        assert_eq!(refused(store.by_staff("t1", None)), Some(77));
        let err = store.scan(None).find_map(Result::err).expect("refused");
        assert_eq!(err.damaged_seq(), Some(77));
        assert_eq!(damaged_at(store.verify()).0, 77);
    }
}

#[test]
fn an_index_that_drops_or_adds_an_event_fails_verify() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_unpost(false, "c2", 262)
            .unwrap();
        // Seq 262 is talk e261, about c2 (261 % 7): a read of c2 silently lacks it, verify not.
        let store = Store::open(dir.path()).unwrap();
        assert!(
            !store
                .by_child("c2", None)
                .unwrap()
                .iter()
                .any(|e| e.seq == 262)
        );
        let (seq, what) = damaged_at(store.verify());
        assert_eq!(seq, 262, "{what}");
        assert!(what.contains("not listed under c2"), "{what}");

        let dir = store_of_500(batch);
        // Seq 260 is talk e259, by t1 (259 % 3), posted under t0 as well.
        Store::open(dir.path())
            .unwrap()
            .tamper_post(true, "t0", 260)
            .unwrap();
        let (seq, what) = damaged_at(Store::open(dir.path()).unwrap().verify());
        assert_eq!(seq, 260, "{what}");
        assert!(
            what.contains("listed under t0, which it is not about"),
            "{what}"
        );
    }
}

/// A store of one school (`k1`: its registration, a teacher, a child) and 60 talks.
fn store_of_a_school() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path()).unwrap();
    let school = events::Draft {
        sealed: None,
        id: "k1".into(),
        occurred_at: crate::at(0),
        actor: "admin".into(),
        event: events::Event::SchoolRegistered {
            school: "k1".into(),
            name: "学校".into(),
            county: "沿河县".into(),
            township: "思渠镇".into(),
        },
        recorded_at: None,
    };
    let teacher = events::Draft {
        sealed: None,
        id: "t0".into(),
        occurred_at: crate::at(0),
        actor: "admin".into(),
        event: events::Event::StaffJoined {
            staff: "t0".into(),
            school: "k1".into(),
            name: "老师".into(),
            roles: vec![],
            party_member: false,
            phone: String::new(),
        },
        recorded_at: None,
    };
    store
        .append_at(vec![school, teacher], Source::Cli, now())
        .unwrap();
    let talks: Vec<_> = (0..60)
        .map(|n| talk(&format!("e{n}"), "t0", "c0", n))
        .collect();
    store.append_at(talks, Source::Cli, now()).unwrap();
    store.verify().unwrap();
    dir
}

/// A school's read of thousands of envelopes is fetched on two threads, a half each
/// (`FETCH_SPLIT_AT`, 4,096): it gives what one read in log order gives — every envelope as of
/// each recorded time, whichever half that time ends in — and names damage in the second half
/// unless the read's time ends it in the first, as a read in order would.
#[test]
fn a_fetch_read_on_two_threads_gives_what_one_read_in_order_gives() {
    let dir = store_of_a_school();
    let hour = |h: i64| now() + chrono::Duration::hours(h);
    {
        let store = Store::open(dir.path()).unwrap();
        // Ten batches of 600 talks after the school's 62 envelopes, each recorded an hour later.
        for b in 0..10u32 {
            let talks: Vec<_> = (0..600)
                .map(|n| talk(&format!("b{b}-{n}"), "t0", "c0", n % 200))
                .collect();
            store
                .append_at(talks, Source::Cli, hour(i64::from(b) + 1))
                .unwrap();
        }
        let seqs = |as_of| -> Vec<u64> {
            store
                .school_envelopes("k1", as_of)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(None), (1..=6062).collect::<Vec<u64>>());
        assert_eq!(seqs(Some(now())), (1..=62).collect::<Vec<u64>>());
        for b in 0..10u64 {
            let through = 62 + 600 * (b + 1);
            assert_eq!(
                seqs(Some(hour(b as i64 + 1))),
                (1..=through).collect::<Vec<u64>>()
            );
        }
        // Seq 3,032 begins the second half of the school's 6,062: a run of that half reads it
        // first, before it can see the time it was recorded at.
        store
            .tamper_replace_in_body(3_032, "谈了期中考试".as_bytes(), "谈了期末考试".as_bytes())
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let refused = store.school_envelopes("k1", None).unwrap_err();
    assert_eq!(refused.damaged_seq(), Some(3_032), "{refused}");
    // As of the third batch the read ends in the first half, before the damage.
    assert_eq!(
        store.school_envelopes("k1", Some(hour(3))).unwrap().len(),
        62 + 1_800
    );
    // As of the ninth it runs into it.
    let refused = store.school_envelopes("k1", Some(hour(9))).unwrap_err();
    assert_eq!(refused.damaged_seq(), Some(3_032), "{refused}");
}

#[test]
fn a_changed_read_model_is_refused_on_read_and_a_resealed_one_by_verify() {
    let dir = store_of_a_school();
    Store::open(dir.path())
        .unwrap()
        .tamper_read_model_flip("k1")
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store.school_envelopes("k1", None).unwrap_err();
    assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
    assert!(err.to_string().contains("read model school k1"), "{err}");
    drop(store);

    let dir = store_of_a_school();
    // Seq 30 is a talk by t0, the school's teacher.
    Store::open(dir.path())
        .unwrap()
        .tamper_read_model_drop("k1", 30)
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        !store
            .school_envelopes("k1", None)
            .unwrap()
            .iter()
            .any(|e| e.seq == 30)
    );
    let err = store.verify().unwrap_err();
    assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
    assert!(
        err.to_string()
            .contains("read model school k1: seq 30 is missing"),
        "{err}"
    );
}

#[test]
fn a_changed_fact_row_is_refused_on_read_and_a_resealed_one_by_verify() {
    let rows = |store: &Store| -> Result<Vec<u64>, store::StoreError> {
        let mut seqs = Vec::new();
        store.fact_rows(u64::MAX, |r| {
            seqs.push(r.seq);
            Ok::<_, store::StoreError>(())
        })?;
        Ok(seqs)
    };
    let split = |store: &Store| {
        let mut shares = vec![Vec::new(); 2];
        store
            .fact_values(u64::MAX)
            .split(&mut shares, |share, r| share.push(r.seq))
    };
    let dir = store_of_a_school();
    {
        let store = Store::open(dir.path()).unwrap();
        // The 60 talks have rows; the school and its teacher are the world's.
        assert_eq!(rows(&store).unwrap(), (3..=62).collect::<Vec<u64>>());
        assert!(split(&store));
        store.tamper_fact_rows_flip().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    // Split among threads, the damage is not passed over: the caller is told to read the
    // rows in order, which refuses it.
    assert!(!split(&store));
    let err = rows(&store).unwrap_err();
    assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
    assert!(err.to_string().contains("read model fact rows"), "{err}");
    drop(store);

    let dir = store_of_a_school();
    Store::open(dir.path())
        .unwrap()
        .tamper_fact_row_drop(30)
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!rows(&store).unwrap().contains(&30));
    let err = store.verify().unwrap_err();
    assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
    assert!(
        err.to_string()
            .contains("read model fact rows: seq 30 is missing"),
        "{err}"
    );
}

#[test]
fn a_changed_world_envelope_or_amended_row_is_refused_on_read_and_a_resealed_one_by_verify() {
    let world = |store: &Store| -> Result<Vec<u64>, store::StoreError> {
        Ok(store.world_envelopes(None)?.iter().map(|e| e.seq).collect())
    };
    let amended = |store: &Store| -> Result<Vec<u64>, store::StoreError> {
        Ok(store
            .amended_rows(u64::MAX)?
            .iter()
            .map(|e| e.seq)
            .collect())
    };
    // The school's store, and a retraction (seq 63) of the talk at seq 30.
    let school_with_a_retraction = || {
        let dir = store_of_a_school();
        let store = Store::open(dir.path()).unwrap();
        let retract = crate::by_admin(
            "r30",
            90,
            events::Event::Retracted {
                target: "e27".into(),
                reason: "entered twice".into(),
            },
        );
        store.append_at(vec![retract], Source::Cli, now()).unwrap();
        store.verify().unwrap();
        assert_eq!(store.get(30).unwrap().unwrap().id, "e27");
        assert_eq!(world(&store).unwrap(), [1, 2, 63]);
        assert_eq!(amended(&store).unwrap(), [30]);
        drop(store);
        dir
    };
    for targets in [false, true] {
        let dir = school_with_a_retraction();
        Store::open(dir.path())
            .unwrap()
            .tamper_world_flip(targets)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = if targets {
            amended(&store).unwrap_err()
        } else {
            world(&store).unwrap_err()
        };
        assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
        assert!(err.to_string().contains("read model"), "{err}");
        drop(store);

        let dir = school_with_a_retraction();
        let seq = if targets { 30 } else { 2 };
        Store::open(dir.path())
            .unwrap()
            .tamper_world_drop(targets, seq)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.verify().unwrap_err();
        assert_eq!(err.kind(), store::ErrorKind::Damaged, "{err}");
        let want = if targets {
            "read model amended rows: seq 30 amended by seq 63 is missing"
        } else {
            "read model world envelopes: seq 2 is missing"
        };
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn read_models_of_an_earlier_layout_are_rebuilt_on_open_and_then_verify() {
    let dir = store_of_a_school();
    let seqs = |envs: Vec<events::Envelope>| envs.iter().map(|e| e.seq).collect::<Vec<_>>();
    let (school, child) = {
        let store = Store::open(dir.path()).unwrap();
        let school = seqs(store.school_envelopes("k1", None).unwrap());
        let child = seqs(store.child_envelopes("c0", None).unwrap());
        store.tamper_read_models_to_an_earlier_layout().unwrap();
        (school, child)
    };
    assert_eq!(school.len(), 62);
    assert_eq!(child.len(), 60);
    let store = Store::open(dir.path()).unwrap();
    assert!(
        store
            .notices()
            .iter()
            .any(|n| n.contains("read models were of an earlier layout: rebuilt")),
        "{:?}",
        store.notices()
    );
    store.verify().unwrap();
    assert_eq!(seqs(store.school_envelopes("k1", None).unwrap()), school);
    assert_eq!(seqs(store.child_envelopes("c0", None).unwrap()), child);
    drop(store);
    // Once rebuilt, a store opens without a word.
    assert!(Store::open(dir.path()).unwrap().notices().is_empty());
}

#[test]
fn a_missing_head_file_is_damage_but_an_older_store_is_adopted_once() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        std::fs::remove_file(dir.path().join("head")).unwrap();
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("head file is missing"), "{err}");

        // A store made before head files: no file and no marker in sled.
        let dir = store_of_500(batch);
        Store::open(dir.path())
            .unwrap()
            .tamper_forget_head_file()
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.notices().len(), 1, "{:?}", store.notices());
        assert!(store.notices()[0].contains("adopted"));
        drop(store);
        // Adopted once: the next open says nothing and checks it.
        assert!(Store::open(dir.path()).unwrap().notices().is_empty());
        assert_eq!(
            store::log::head_file::read(dir.path())
                .unwrap()
                .unwrap()
                .seq,
            500
        );
    }
}

#[test]
fn an_unfinished_sled_snapshot_does_not_make_the_store_unopenable() {
    for batch in BATCHES {
        // What a snapshot sled failed to write on a full disk leaves behind: an empty
        // `snap.<lsn>.generating`, which sled 0.34 would read as its newest snapshot.
        let dir = store_of_500(batch);
        std::fs::write(dir.path().join("snap.FFFFFFFFFFFFFFF0.generating"), b"").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verify().unwrap().events, 500);
        assert!(!dir.path().join("snap.FFFFFFFFFFFFFFF0.generating").exists());
    }
}

#[test]
fn what_is_not_a_store_is_named_for_what_it_is() {
    for batch in BATCHES {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            Store::open(&file),
            Err(StoreError::NotAStore { .. })
        ));
        assert!(matches!(
            Store::create(&file),
            Err(StoreError::NotAStore { .. })
        ));
        // A stray two-byte `db`: not opened (sled would take it for an empty store).
        let stray = dir.path().join("stray");
        std::fs::create_dir(&stray).unwrap();
        std::fs::write(stray.join("db"), b"hi").unwrap();
        assert!(matches!(
            Store::open(&stray),
            Err(StoreError::NotAStore { .. })
        ));
        assert_eq!(std::fs::read(stray.join("db")).unwrap(), b"hi");
        // A store whose `db` was deleted: damage, and `create` does not make one over it.
        let store = store_of_500(batch);
        std::fs::remove_file(store.path().join("db")).unwrap();
        assert!(matches!(
            Store::open(store.path()),
            Err(StoreError::Lost {
                acknowledged: Some(500),
                ..
            })
        ));
        assert!(matches!(
            Store::create(store.path()),
            Err(StoreError::Lost { .. })
        ));
        // The same store with a two-byte `db`: too short for what was acknowledged.
        std::fs::write(store.path().join("db"), b"hi").unwrap();
        assert_eq!(
            Store::open(store.path())
                .err()
                .and_then(|e| e.damaged_seq()),
            Some(1)
        );
    }
}

#[test]
fn a_store_held_by_another_handle_is_in_use_and_names_the_holder() {
    for batch in BATCHES {
        let dir = store_of_500(batch);
        let held = Store::open_as(dir.path(), "import").unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::InUse { holder, .. }) => {
                let holder = holder.expect("the owner file names it");
                assert!(holder.contains("careledger import"), "{holder}");
                assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            }
            other => panic!("expected in use, got {:?}", other.map(|_| ())),
        }
        drop(held);
        assert!(!dir.path().join("owner").exists());
        Store::open(dir.path()).unwrap();
    }
}
