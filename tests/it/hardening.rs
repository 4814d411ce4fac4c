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
    // The blanking keeps the other changes of the correction.
    assert!(
        exported.contains(r#""changes":{"notes":"","risk":"medium"}"#),
        "{exported}"
    );

    let parquet = dir.path().join("parquet");
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
            "--with-confidential",
            "--out",
            full.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read_to_string(&full).unwrap().contains(NOTE_FIX));
}
