//! The command line's contract: exit codes, idempotence, atomic files, tamper detection,
//! export round trip.

use store::Store;

use crate::{careledger, prelude, stderr, talks};

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
    let out = careledger(
        &a,
        &["import", "--preserve-recorded-at", seed.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let export = dir.path().join("export.jsonl");
    let out = careledger(
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
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(careledger(&b, &["init"]).status.success());
    let out = careledger(
        &b,
        &["import", "--preserve-recorded-at", export.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
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
        if let store::Event::CounselingHeld { notes, .. } = &e.event {
            assert!(!notes.is_empty() && !text.contains(notes.as_str()));
        }
    }
}
