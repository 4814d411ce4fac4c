//! End-to-end tests of the `careledger` binary: exit codes, idempotent imports, atomic
//! batches under SIGKILL, tamper detection and the export round trip.

mod cli;
mod crash;
mod exports;
mod fact_scan;
mod forms;
mod hardening;
mod migrate;
mod polscores;
mod privacy;
mod proofs;
mod proofs_crash;
mod province;
mod read_models;
mod retention;
mod scores_county;
mod serve;
mod staff_cache;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `--db db` and `args`.
pub fn careledger(db: &Path, args: &[&str]) -> Output {
    careledger_env(db, args, &[])
}

/// Runs the binary with extra environment variables.
pub fn careledger_env(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_careledger"))
        .arg("--db")
        .arg(db)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// Runs the binary and requires success, showing its stderr otherwise.
pub fn careledger_ok(db: &Path, args: &[&str]) -> Output {
    let out = careledger(db, args);
    assert!(
        out.status.success(),
        "careledger {args:?}: {}",
        stderr(&out)
    );
    out
}

/// A store at `db` holding the seed school, imported as a migration (its own recorded times);
/// `dir` takes the seed file.
pub fn seed_store(dir: &Path, db: &Path) {
    let seed = dir.join("seed.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL).unwrap();
    careledger_ok(db, &["init"]);
    careledger_ok(
        db,
        &["import", "--preserve-recorded-at", seed.to_str().unwrap()],
    );
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A school, a term, a teacher and `children` children, in the wire format.
pub fn prelude(children: usize) -> String {
    let mut s = String::new();
    s.push_str(r#"{"type":"school_registered","id":"sch","occurred_at":"2025-08-01","actor":"admin","school":"s1","name":"思渠中学","county":"沿河县","township":"思渠镇"}"#);
    s.push('\n');
    s.push_str(r#"{"type":"term_defined","id":"term1","occurred_at":"2025-08-01","actor":"admin","school":"s1","term":"2025-2026-1","starts_on":"2025-09-01","ends_on":"2026-01-16"}"#);
    s.push('\n');
    s.push_str(r#"{"type":"staff_joined","id":"t1","occurred_at":"2025-08-01","actor":"admin","staff":"t1","school":"s1","name":"王老师","roles":["class_teacher"],"party_member":true,"phone":"13800000001"}"#);
    s.push('\n');
    for c in 0..children {
        s.push_str(&format!(
            r#"{{"type":"child_registered","id":"reg{c}","occurred_at":"2025-08-02","actor":"admin","child":"c{c}","school":"s1","grade":7,"class":1,"name":"学生{c}","gender":"female","birth_date":"2012-05-01","boarding":true,"address":"思渠镇","left_behind_type":"both_parents_away","parents":[{{"name":"父{c}","relation":"father","work_place":"广东东莞","phone":"13900000000","away":true}}],"guardian":{{"name":"祖母{c}","relation":"grandparent_paternal","phone":"13700000000","capability":"fair"}}}}"#
        ));
        s.push('\n');
    }
    s
}

/// `n` talks with ids `{prefix}-{i}`, in the wire format.
pub fn talks(prefix: &str, n: usize, children: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"type":"talk_held","id":"{prefix}-{i}","occurred_at":"2025-10-{:02}","actor":"t1","staff":"t1","child":"c{}","topic":"学习","summary":"谈心","mood":"ok"}}"#,
            1 + i % 28,
            i % children
        ));
        s.push('\n');
    }
    s
}
