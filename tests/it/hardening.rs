//! Hardening of the binary's inputs and outputs: confidential text through every output, CSV
//! formula injection, terminal control sequences and extreme numbers on the command line.

use std::path::{Path, PathBuf};

use crate::{careledger, careledger_ok, prelude, stderr};

/// A counseling note and its correction: neither may leave the store for a non-counselor.
const NOTE: &str = "孩子说起了家里的秘密";
const NOTE_FIX: &str = "更正后的秘密内容";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("the test file is written");
    p
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A store with one counseling session of child `c0` and a correction of its notes.
fn counseling_store(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    careledger_ok(&db, &["init"]);
    let mut lines = prelude(1);
    lines.push_str(&format!(
        r#"{{"type":"counseling_session","id":"cs1","occurred_at":"2025-10-09","actor":"t1","staff":"t1","child":"c0","risk":"low","notes":"{NOTE}"}}"#
    ));
    lines.push('\n');
    lines.push_str(&format!(
        r#"{{"type":"correction","id":"fix1","occurred_at":"2025-10-10","actor":"t1","target":"cs1","changes":{{"notes":"{NOTE_FIX}","risk":"medium"}},"reason":"补记"}}"#
    ));
    lines.push('\n');
    let file = write(dir, "events.jsonl", &lines);
    careledger_ok(&db, &["import", file.to_str().unwrap()]);
    db
}

fn assert_no_note(what: &str, out: &str) {
    assert!(
        !out.contains(NOTE) && !out.contains(NOTE_FIX),
        "{what} shows a counseling note:\n{out}"
    );
}

#[test]
fn a_correction_of_counseling_notes_leaks_through_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let db = counseling_store(dir.path());

    let jsonl = dir.path().join("export.jsonl");
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--format",
            "jsonl",
            "--out",
            jsonl.to_str().unwrap(),
        ],
    );
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    assert_no_note("export jsonl", &exported);
    // Opened (`--decrypt`), the notes are still blanked; the blanking keeps the other
    // changes of the correction.
    let opened = dir.path().join("opened.jsonl");
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--decrypt",
            "--out",
            opened.to_str().unwrap(),
        ],
    );
    let exported = std::fs::read_to_string(&opened).unwrap();
    assert_no_note("export --decrypt", &exported);
    assert!(
        exported.contains(r#""changes":{"notes":"","risk":"medium"}"#),
        "{exported}"
    );

    let parquet = dir.path().join("parquet");
    let secret = write(
        dir.path(),
        "secret.txt",
        &format!(
            "careledger county secret v1\ncounty: 沿河县\nkey: {}\n",
            "07".repeat(32)
        ),
    );
    careledger_ok(
        &db,
        &["keys", "import-county-secret", secret.to_str().unwrap()],
    );
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--format",
            "parquet",
            "--out",
            parquet.to_str().unwrap(),
        ],
    );
    let mut stack = vec![parquet];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_no_note(
                "export parquet",
                &String::from_utf8_lossy(&std::fs::read(&p).unwrap()),
            );
        }
    }

    for args in [
        vec!["log"],
        vec!["log", "--format", "json"],
        vec!["log", "--format", "csv"],
        vec!["history", "c0"],
        vec!["history", "c0", "--format", "json"],
        vec!["history", "c0", "--format", "csv"],
        vec!["history", "c0", "--role", "teacher", "--format", "json"],
        vec!["progress", "c0", "--format", "json"],
        vec!["archive", "c0", "--format", "json"],
    ] {
        let out = careledger_ok(&db, &args);
        assert_no_note(&args.join(" "), &text(&out));
    }

    // A counselor, and the school's full backup, do see them: the masks above are not
    // hiding everything.
    let out = careledger_ok(
        &db,
        &["history", "c0", "--role", "counselor", "--format", "json"],
    );
    assert!(text(&out).contains(NOTE_FIX));
    let full = dir.path().join("full.jsonl");
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--decrypt",
            "--with-confidential",
            "--out",
            full.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read_to_string(&full).unwrap().contains(NOTE_FIX));
}

/// A school whose id, a child's name, a guardian's phone, an address and a parent's work
/// place begin like spreadsheet formulas.
const FORMULA_ROSTER: &str = r#"{"type":"school_registered","id":"sch","occurred_at":"2025-08-01","actor":"admin","school":"-s1","name":"@思渠中学","county":"沿河县","township":"思渠镇"}
{"type":"term_defined","id":"term1","occurred_at":"2025-08-01","actor":"admin","school":"-s1","term":"2025-2026-1","starts_on":"2025-09-01","ends_on":"2026-01-16"}
{"type":"staff_joined","id":"t1","occurred_at":"2025-08-01","actor":"admin","staff":"t1","school":"-s1","name":"=1+2","roles":["class_teacher"],"party_member":true,"phone":"+8613800000001"}
{"type":"child_registered","id":"reg0","occurred_at":"2025-08-02","actor":"admin","child":"c0","school":"-s1","grade":7,"class":1,"name":"=HYPERLINK(\"http://example.com\",\"点我\")","gender":"female","birth_date":"2012-05-01","boarding":true,"address":"-5","left_behind_type":"both_parents_away","parents":[{"name":"父","relation":"father","work_place":"@x","phone":"+8613900000000","away":true}],"guardian":{"name":"祖母","relation":"grandparent_paternal","phone":"+8613700000000","capability":"fair"}}
"#;

/// No CSV cell begins with a formula character; with `expect_some`, at least one cell was
/// escaped (the output does hold one of the roster's formula-like values).
fn assert_escaped(what: &str, csv_text: &str, expect_some: bool) {
    let mut r = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text.trim_start_matches('\u{feff}').as_bytes());
    let mut escaped = 0;
    for rec in r.records() {
        for cell in rec.unwrap().iter() {
            assert!(
                !cell.starts_with(events::csv_cell::FORMULA_START),
                "{what}: a cell begins like a formula: {cell:?}\n{csv_text}"
            );
            escaped += usize::from(cell.starts_with('\''));
        }
    }
    assert!(
        escaped > 0 || !expect_some,
        "{what}: no escaped cell at all:\n{csv_text}"
    );
}

#[test]
fn csv_outputs_escape_formulas_and_a_written_roster_re_imports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    careledger_ok(&a, &["init"]);
    let jsonl = write(dir.path(), "roster.jsonl", FORMULA_ROSTER);
    careledger_ok(&a, &["import", jsonl.to_str().unwrap()]);

    // (arguments, whether the output holds a cell that begins like a formula)
    for (args, expect_some) in [
        (vec!["archives", "--school=-s1", "--format", "csv"], true),
        (vec!["archive", "c0", "--format", "csv"], true),
        (vec!["contact-card", "c0", "--format", "csv"], true),
        (vec!["pairings", "--school=-s1", "--format", "csv"], false),
        (vec!["log", "--format", "csv"], false),
        (vec!["history", "c0", "--format", "csv"], false),
        (
            vec![
                "scores",
                "--school=-s1",
                "--period",
                "2025-2026-1",
                "--format",
                "csv",
            ],
            false,
        ),
        (
            vec![
                "report",
                "term",
                "--term",
                "2025-2026-1",
                "--school=-s1",
                "--format",
                "csv",
            ],
            true,
        ),
    ] {
        let out = careledger_ok(&a, &args);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_escaped(&args.join(" "), &text, expect_some);
    }

    // The roster as careledger writes CSV input, one file per type.
    let files = fixtures::jsonl_to_csv(FORMULA_ROSTER).unwrap();
    let csv_dir = dir.path().join("csv");
    std::fs::create_dir(&csv_dir).unwrap();
    let b = dir.path().join("b");
    careledger_ok(&b, &["init"]);
    for name in [
        "school_registered.csv",
        "term_defined.csv",
        "staff_joined.csv",
        "child_registered.csv",
    ] {
        let text = &files[name];
        assert_escaped(name, text, true);
        let path = write(&csv_dir, name, text);
        careledger_ok(&b, &["import", path.to_str().unwrap()]);
    }
    let events_of = |db: &Path| {
        let s = store::Store::open(db).unwrap();
        let v: Vec<_> = s
            .scan(None)
            .map(|e| {
                let e = e.unwrap();
                (e.id, e.occurred_at, e.actor, e.event)
            })
            .collect();
        v
    };
    assert_eq!(events_of(&a), events_of(&b));
}

#[test]
fn control_sequences_are_refused_and_never_printed_raw() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    careledger_ok(&db, &["init"]);
    let lines = prelude(1);
    let file = write(dir.path(), "p.jsonl", &lines);
    careledger_ok(&db, &["import", file.to_str().unwrap()]);

    let evil = "\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let talk = format!(
        r#"{{"type":"talk_held","id":"evil","occurred_at":"2025-10-08","actor":"t1","staff":"t1","child":"c0","topic":"{}","summary":"x","mood":"ok"}}"#,
        evil.escape_default()
            .to_string()
            .replace("\\u{1b}", "\\u001b")
            .replace("\\u{7}", "\\u0007")
    );
    let bad = write(dir.path(), "evil.jsonl", &format!("{talk}\n"));
    let out = careledger(&db, &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("field topic: expected text without control characters"));
    assert!(!out.stderr.contains(&0x1b), "the error printed a raw ESC");

    // A record that reached the log by another way (an older version) is still shown
    // escaped in a table.
    let store = store::Store::open(&db).unwrap();
    store
        .append(
            vec![events::Draft {
                sealed: None,
                id: "old".into(),
                occurred_at: events::time::parse_instant("2025-10-09").unwrap(),
                actor: "t1".into(),
                event: events::Event::TalkHeld {
                    staff: "t1".into(),
                    child: "c0".into(),
                    topic: evil.into(),
                    summary: "x".into(),
                    mood: events::event::Mood::Ok,
                    follow_up: None,
                },
                recorded_at: None,
            }],
            events::Source::Cli,
        )
        .unwrap();
    drop(store);
    for args in [vec!["history", "c0"], vec!["log"], vec!["progress", "c0"]] {
        let out = careledger_ok(&db, &args);
        assert!(
            !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
            "{args:?} printed a control character raw"
        );
    }
    let out = careledger_ok(&db, &["history", "c0"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{1b}[2J"));
}

mod numbers {
    //! Every numeric option of the command line, driven with extreme values: a usage error
    //! (exit 2) naming the option when out of range, never a panic (exit 101).

    use proptest::prelude::*;

    use crate::{careledger, careledger_ok, prelude};

    fn extreme_i64() -> impl Strategy<Value = i128> {
        prop_oneof![
            Just(i128::from(i64::MIN)),
            Just(-1),
            Just(0),
            Just(36_500),
            Just(36_501),
            Just(106_751_991_167_300),
            Just(i128::from(i64::MAX)),
            Just(i128::from(u64::MAX)),
            Just(i128::from(u64::MAX) + 1),
            any::<i64>().prop_map(i128::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn backfill_days_is_checked(days in extreme_i64()) {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("db");
            careledger_ok(&db, &["init"]);
            let file = dir.path().join("p.jsonl");
            std::fs::write(&file, prelude(1)).unwrap();
            careledger_ok(&db, &["import", file.to_str().unwrap()]);
            let days = days.to_string();
            // `--days=-1`: with a space, clap reads `-1` as a flag and says so instead.
            let arg = format!("--days={days}");
            let out = careledger(&db, &["backfill", "--school", "s1", &arg]);
            let code = out.status.code();
            prop_assert_ne!(code, Some(101), "--days {} panicked", days);
            let in_range = days.parse::<i64>().is_ok_and(|d| (0..=36_500).contains(&d));
            if in_range {
                prop_assert_eq!(code, Some(0));
            } else {
                prop_assert_eq!(code, Some(2));
                prop_assert!(String::from_utf8_lossy(&out.stderr).contains("--days"));
            }
        }

        #[test]
        fn generator_sizes_out_of_range_are_usage_errors(
            option in prop_oneof![Just("--schools"), Just("--children-per-school")],
            n in prop_oneof![
                Just(-1i128),
                Just(0),
                Just(10_000),
                Just(i128::from(u32::MAX) + 1),
                Just(i128::from(u64::MAX)),
                (10_000i128..=i128::from(u64::MAX)),
            ],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let n = n.to_string();
            let out_dir = dir.path().join("out");
            let arg = format!("{option}={n}");
            let out = careledger(
                &dir.path().join("db"),
                &["fixtures", "generate", &arg, "--out", out_dir.to_str().unwrap()],
            );
            prop_assert_ne!(out.status.code(), Some(101));
            prop_assert_eq!(out.status.code(), Some(2), "{} {}", option, n);
            prop_assert!(String::from_utf8_lossy(&out.stderr).contains(option));
        }
    }
}
