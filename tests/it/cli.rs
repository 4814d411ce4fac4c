//! The command line's contract: exit codes, idempotence, atomic files, tamper detection,
//! export round trip.

use store::Store;

use crate::{careledger, careledger_env, careledger_ok, prelude, stderr, talks};

#[test]
fn importing_the_same_file_twice_appends_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("school.jsonl");
    std::fs::write(&file, prelude(3) + &talks("t", 10, 3)).unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    let first = careledger(&db, &["import", file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("16 new, 0 already present"),
        "{}",
        stderr(&first)
    );
    let second = careledger(&db, &["import", file.to_str().unwrap()]);
    assert!(
        stderr(&second).contains("0 new, 16 already present"),
        "{}",
        stderr(&second)
    );
    assert_eq!(Store::open(&db).unwrap().head().seq, 16);
}

#[test]
fn a_bad_line_in_the_middle_appends_nothing_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("bad.jsonl");
    let mut lines: Vec<String> = (prelude(2) + &talks("t", 6, 2))
        .lines()
        .map(String::from)
        .collect();
    // Line 7 (1-based) talks with a child nobody registered.
    lines[6] = lines[6]
        .replace("\"child\":\"c0\"", "\"child\":\"c99\"")
        .replace("\"child\":\"c1\"", "\"child\":\"c99\"");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    let out = careledger(&db, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:7"), "{err}");
    assert!(err.contains("child"), "{err}");
    assert_eq!(Store::open(&db).unwrap().head().seq, 0);
}

#[test]
fn a_flipped_byte_makes_verify_exit_3_and_name_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("school.jsonl");
    std::fs::write(&file, prelude(5) + &talks("t", 200, 5)).unwrap();
    assert!(careledger(&db, &["init"]).status.success());
    assert!(
        careledger(&db, &["import", file.to_str().unwrap()])
            .status
            .success()
    );
    assert!(careledger(&db, &["verify"]).status.success());
    Store::open(&db).unwrap().tamper_for_test(150).unwrap();
    let out = careledger(&db, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("seq 150"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = careledger(dir.path(), &["import"]);
    assert_eq!(out.status.code(), Some(2));
    let out = careledger(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_export_re_imports_to_the_same_events_ids_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let seed = dir.path().join("seed.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL).unwrap();
    assert!(careledger(&a, &["init"]).status.success());
    careledger_ok(
        &a,
        &["import", "--preserve-recorded-at", seed.to_str().unwrap()],
    );
    let export = dir.path().join("export.jsonl");
    careledger_ok(
        &a,
        &[
            "export",
            "events",
            "--format",
            "jsonl",
            "--with-confidential",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert!(careledger(&b, &["init"]).status.success());
    careledger_ok(
        &b,
        &["import", "--preserve-recorded-at", export.to_str().unwrap()],
    );
    let (sa, sb) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    let ea: Vec<_> = sa.scan(None).map(Result::unwrap).collect();
    let eb: Vec<_> = sb.scan(None).map(Result::unwrap).collect();
    assert_eq!(ea.len(), eb.len());
    for (x, y) in ea.iter().zip(&eb) {
        assert_eq!(
            (&x.id, x.occurred_at, x.recorded_at, &x.actor, &x.event),
            (&y.id, y.occurred_at, y.recorded_at, &y.actor, &y.event)
        );
    }
    drop((sa, sb));
    // Without the flag, counseling notes do not leave the store.
    let plain = dir.path().join("plain.jsonl");
    assert!(
        careledger(
            &a,
            &[
                "export",
                "events",
                "--format",
                "jsonl",
                "--out",
                plain.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let text = std::fs::read_to_string(&plain).unwrap();
    for e in &ea {
        if let events::Event::CounselingHeld { notes, .. } = &e.event {
            assert!(!notes.is_empty() && !text.contains(notes.as_str()));
        }
    }
}

/// Whole-school views resume from a stored snapshot: the output must equal a full replay,
/// and an as-of run before the snapshot must still replay correctly. The reference side is a
/// second store with the same log that never holds a snapshot, so it always replays: a store
/// that holds one resumes from it whatever `CARELEDGER_SNAPSHOT_EVERY` says (that variable
/// only controls writing one).
#[test]
fn a_snapshot_assisted_run_equals_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let reference = dir.path().join("reference");
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    std::fs::write(&first, fixtures::SEED_SCHOOL_JSONL).unwrap();
    // Late talks with their recorded_at given, so both stores hold byte-identical logs.
    std::fs::write(
        &second,
        crate::talks("late", 30, 1)
            .replace("\"c0\"", "\"sq-c01\"")
            .replace("\"t1\"", "\"sq-t02\"")
            .replace(
                "\"occurred_at\"",
                "\"recorded_at\":\"2026-02-01T08:00:00+08:00\",\"occurred_at\"",
            ),
    )
    .unwrap();
    let import = |file: &std::path::Path| {
        for d in [&db, &reference] {
            careledger_ok(
                d,
                &["import", "--preserve-recorded-at", file.to_str().unwrap()],
            );
        }
    };
    for d in [&db, &reference] {
        assert!(careledger(d, &["init"]).status.success());
    }
    import(&first);
    let name = format!("timeline/{}", projections::snapshot::fingerprint());
    let snapshot_seq = |d: &std::path::Path| {
        Store::open(d)
            .unwrap()
            .snapshot_at_or_before(&name, u64::MAX)
            .unwrap()
            .map(|(seq, _)| seq)
    };
    let run = |d: &std::path::Path, args: &[&str], every: &str| {
        let out = careledger_env(d, args, &[("CARELEDGER_SNAPSHOT_EVERY", every)]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).expect("the output is UTF-8")
    };
    // A true replay: the reference store never holds a snapshot.
    let replay = |args: &[&str]| {
        let out = run(&reference, args, "0");
        assert_eq!(
            snapshot_seq(&reference),
            None,
            "the reference store has a snapshot"
        );
        out
    };
    let scores = [
        "scores",
        "--school",
        "sq",
        "--period",
        "2025-2026-1",
        "--format",
        "json",
    ];
    let replayed = replay(&scores);
    // This run stores a snapshot at the head; the next one resumes from it.
    assert_eq!(snapshot_seq(&db), None);
    assert_eq!(run(&db, &scores, "100"), replayed);
    assert_eq!(snapshot_seq(&db), Some(682));
    assert_eq!(run(&db, &scores, "100"), replayed);
    // More events after the snapshot: resume + the rest equals a replay of everything.
    import(&second);
    let worklist = [
        "worklist",
        "--staff",
        "sq-t02",
        "--on",
        "2025-10-20",
        "--format",
        "json",
    ];
    let backfill = ["backfill", "--school", "sq", "--format", "json"];
    for args in [&scores[..], &worklist[..], &backfill[..]] {
        assert_eq!(run(&db, args, "100000"), replay(args), "{args:?}");
    }
    // Those runs resumed from the snapshot at 682 and read the 30 later events after it.
    assert_eq!(snapshot_seq(&db), Some(682));
    // As of a time before the snapshot, the snapshot does not fit and a replay answers.
    let early = [
        "scores",
        "--school",
        "sq",
        "--period",
        "2025-2026-1",
        "--format",
        "json",
        "--as-of",
        "2025-10-31",
    ];
    assert_eq!(run(&db, &early, "100"), replay(&early));
}

/// A child's views read only the by-child index and its schools' registry events; they must
/// equal the same views over a replay of the whole log, for every child, as of several times.
#[test]
fn views_from_the_index_equal_views_from_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("county.jsonl");
    careledger_ok(
        &db,
        &[
            "fixtures",
            "generate",
            "--schools",
            "2",
            "--children-per-school",
            "12",
            "--seed",
            "7",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(careledger(&db, &["init"]).status.success());
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", file.to_str().unwrap()],
    );
    let store = Store::open(&db).unwrap();
    let envs: Vec<events::Envelope> = store.scan(None).map(Result::unwrap).collect();
    let children: Vec<String> = store
        .registry()
        .children()
        .map(|(c, _)| c.to_owned())
        .collect();
    drop(store);
    assert!(children.len() >= 24);
    // Every child looked at is either compared (both paths answer, alike) or refused by both
    // with the same message (not yet registered as of that date); none is passed over.
    let (mut compared, mut refused) = (0, 0);
    for as_of in ["2025-11-15", "2026-07-01"] {
        let t = events::time::parse_as_of(as_of).unwrap();
        let tl = projections::Timeline::build(&envs, Some(t)).unwrap();
        let world = projections::World::build(&tl);
        for child in children.iter().step_by(3) {
            let out = careledger(
                &db,
                &["archive", child, "--as-of", as_of, "--format", "json"],
            );
            let full = match projections::archive::archive(&tl, &world, child, None) {
                Ok(full) => full,
                Err(e) => {
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{child} as of {as_of}: the full replay refuses ({e}), the CLI does not"
                    );
                    assert!(
                        stderr(&out).contains(&e.to_string()),
                        "{child} as of {as_of}: refused for another reason: {} vs {e}",
                        stderr(&out)
                    );
                    refused += 1;
                    continue;
                }
            };
            assert!(out.status.success(), "{child}: {}", stderr(&out));
            let indexed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                indexed,
                serde_json::to_value(&full).unwrap(),
                "{child} as of {as_of}"
            );
            let hist = projections::history::history(&envs, &tl, &world, child, false).unwrap();
            let out = careledger(
                &db,
                &["history", child, "--as-of", as_of, "--format", "json"],
            );
            assert!(out.status.success(), "history of {child}: {}", stderr(&out));
            let mut indexed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut full = serde_json::to_value(&hist).unwrap();
            // The head a view was computed on differs by construction: the child's last
            // event versus the log's; everything the view shows must not.
            indexed.as_object_mut().unwrap().remove("head_seq");
            full.as_object_mut().unwrap().remove("head_seq");
            assert!(indexed == full, "history of {child} as of {as_of} differs");
            compared += 1;
        }
    }
    let looked_at = 2 * children.len().div_ceil(3);
    assert_eq!(compared + refused, looked_at);
    // Most children are registered at the start of the year: a run where most views are
    // refused compares too little to prove anything.
    assert!(
        compared >= looked_at * 3 / 4,
        "only {compared} of {looked_at} views compared ({refused} refused by both)"
    );
}
