//! Personal data at rest (docs/privacy.md): a store written with its key directory holds no
//! name, phone, address or note of its input in any byte of any file, its views read as a
//! store in clear would, and a ciphertext moved to another event is refused on read.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::{careledger, careledger_ok, seed_store, stderr};
use fixtures::secrets::hits;

/// The seed school's personal values (`fixtures::secrets`, shared with the service's tests).
pub(crate) fn seed_secrets() -> BTreeSet<String> {
    fixtures::secrets::seed_secrets().expect("the seed school's personal values")
}

/// Every file under `dir`, read whole (`fixtures::secrets::every_file`).
pub(crate) fn every_file(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fixtures::secrets::every_file(dir).expect("the directory reads")
}

#[test]
fn no_byte_of_an_encrypted_store_holds_a_personal_value_of_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    seed_store(tmp.path(), &db);
    let secrets = seed_secrets();
    // The seed school's names, phones, addresses, work places, summaries and notes.
    assert!(secrets.len() > 300, "only {} secrets", secrets.len());
    for probe in ["田雨欣", "18344309564"] {
        assert!(secrets.contains(probe), "{probe} is a secret of the seed");
    }
    // Views still read them (with the key directory): the store is complete.
    let archive = careledger_ok(&db, &["archive", "sq-c01"]);
    assert!(String::from_utf8_lossy(&archive.stdout).contains("田雨欣"));
    careledger_ok(&db, &["verify"]);
    let files = every_file(&db);
    assert!(files.len() > 3, "the store directory has its files");
    let hits = hits(&files, &secrets);
    assert!(
        hits.is_empty(),
        "{} hits: {:?}",
        hits.len(),
        &hits[..hits.len().min(10)]
    );
    // The key directory is beside the store, never inside it.
    assert!(
        tmp.path()
            .join("store.keys")
            .join(vault::MASTER_FILE)
            .exists()
    );
}

/// A talk about the erased child sq-c01 recorded into `db` is refused: its key can never be
/// made again.
pub(crate) fn refused_as_erased(db: &Path) {
    let out = careledger(
        db,
        &[
            "record",
            "talk_held",
            "--json",
            r#"{"actor":"sq-t02","staff":"sq-t02","child":"sq-c01","topic":"学习","summary":"新的","mood":"good"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("can never be made again"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_the_key_directory_a_view_of_a_sealed_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    seed_store(tmp.path(), &db);
    let elsewhere = tmp.path().join("no-keys");
    let out = careledger(
        &db,
        &["--keys", elsewhere.to_str().unwrap(), "archive", "sq-c01"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("no master key"), "{}", stderr(&out));
    // Term statistics read no personal field: no key needed.
    let report = careledger(
        &db,
        &[
            "--keys",
            elsewhere.to_str().unwrap(),
            "report",
            "term",
            "--term",
            "2025-2026-1",
            "--school",
            "sq",
        ],
    );
    assert!(report.status.success(), "{}", stderr(&report));
}

#[test]
fn a_ciphertext_moved_to_another_event_is_detected_on_read() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    careledger_ok(&db, &["init"]);
    let keys = tmp.path().join("store.keys");
    let v = vault::Vault::open_dir(&keys)
        .unwrap()
        .expect("init made a master key");
    let talk = |id: &str, summary: &str| {
        let event: events::Event = serde_json::from_value(serde_json::json!({"talk_held": {
            "staff": "t1", "child": "c1", "topic": "学习", "summary": summary, "mood": "good"
        }}))
        .unwrap();
        let mut d = events::Draft {
            id: id.into(),
            occurred_at: events::time::parse_instant("2025-09-02T10:00:00+08:00").unwrap(),
            actor: "t1".into(),
            event,
            recorded_at: None,
            sealed: None,
        };
        v.seal(&mut d, None).unwrap();
        d
    };
    let registry = crate::prelude(2);
    let seed = tmp.path().join("prelude.jsonl");
    std::fs::write(&seed, registry).unwrap();
    careledger_ok(&db, &["import", seed.to_str().unwrap()]);
    // Someone who can write the store (and so re-chain it) moves the sealed summary of one
    // talk into another: every hash checks, the AEAD's associated data does not.
    let a = talk("talk-a", "想妈妈了");
    let mut b = talk("talk-b", "成绩进步");
    b.sealed = a.sealed.clone();
    let store = store::Store::open(&db).unwrap();
    store.append(vec![a, b], events::Source::Cli).unwrap();
    store.close();
    careledger_ok(&db, &["verify"]);
    let out = careledger(&db, &["history", "c1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("talk-b") && stderr(&out).contains("moved from another event"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("想妈妈了"));
}

/// The sensitive strings of the seed that only events about `children` carry: what must be
/// gone once they are erased (a work place two families share is not one child's secret).
fn secrets_of(children: &[&str]) -> BTreeSet<String> {
    let all = seed_secrets();
    let mut theirs = BTreeSet::new();
    let mut others = BTreeSet::new();
    for line in fixtures::SEED_SCHOOL_JSONL.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        let about = v["child"].as_str().is_some_and(|c| children.contains(&c));
        let mut strings = Vec::new();
        fn strings_of(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|x| strings_of(x, out)),
                Value::Object(m) => m.values().for_each(|x| strings_of(x, out)),
                _ => {}
            }
        }
        strings_of(&v, &mut strings);
        for s in strings {
            if about && all.contains(&s) {
                theirs.insert(s);
            } else if !about {
                others.insert(s);
            }
        }
    }
    // A secret of theirs that another family's text contains ("高血压" in "高血压、糖尿病") may
    // rightly still be seen.
    theirs.retain(|s| !others.iter().any(|o| o.contains(s.as_str())));
    theirs
}

fn stdout_of(db: &Path, args: &[&str]) -> Vec<u8> {
    careledger_ok(db, args).stdout
}

#[test]
fn erasing_three_children_changes_no_score_or_term_statistic_and_leaves_no_trace_of_them() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    seed_store(tmp.path(), &db);
    let erased = ["sq-c01", "sq-c02", "sq-c03"];
    let secrets = secrets_of(&erased);
    assert!(
        secrets.len() > 30,
        "only {} secrets of three children",
        secrets.len()
    );
    // A time after the seed and before the erasure.
    let before_erasure = events::time::format_local(chrono::Utc::now());
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Every period and every term, as of now and as of a time before the erasure.
    let runs: Vec<Vec<String>> = {
        let mut runs = Vec::new();
        for as_of in [None, Some(before_erasure.as_str())] {
            let with = |a: Vec<&str>| {
                let mut a: Vec<String> = a.into_iter().map(str::to_owned).collect();
                if let Some(t) = as_of {
                    a.extend(["--as-of".to_owned(), t.to_owned()]);
                }
                a
            };
            for period in ["2025-2026-1", "2025-2026-2", "2025-2026"] {
                for format in ["json", "csv"] {
                    runs.push(with(vec![
                        "scores", "--school", "sq", "--period", period, "--format", format,
                    ]));
                }
            }
            for term in ["2025-2026-1", "2025-2026-2"] {
                for format in ["json", "csv"] {
                    runs.push(with(vec![
                        "report", "term", "--term", term, "--school", "sq", "--format", format,
                    ]));
                }
            }
        }
        runs
    };
    let outputs = |db: &Path| -> Vec<Vec<u8>> {
        runs.iter()
            .map(|r| stdout_of(db, &r.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect()
    };
    let before = outputs(&db);
    assert!(
        before.iter().all(|o| o.len() > 100),
        "every run printed its rows"
    );
    for child in erased {
        careledger_ok(
            &db,
            &[
                "erase",
                "--child",
                child,
                "--basis",
                "PIPL Art. 47: the guardian asked for deletion",
                "--approved-by",
                "sq-t01",
            ],
        );
    }
    careledger_ok(&db, &["verify"]);
    let after = outputs(&db);
    for ((run, b), a) in runs.iter().zip(&before).zip(&after) {
        assert!(b == a, "{run:?} changed after the erasure");
    }
    // No view, export or listing shows a personal field of an erased child.
    let export = tmp.path().join("export.jsonl");
    let export_all = tmp.path().join("export-all.jsonl");
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for child in erased {
        for view in [
            vec!["archive", child],
            vec!["contact-card", child],
            vec!["history", child],
            vec!["history", child, "--role", "counselor"],
            vec!["progress", child, "--role", "counselor"],
            vec!["log", "--child", child],
        ] {
            seen.push((format!("{view:?}"), stdout_of(&db, &view)));
        }
    }
    seen.push((
        "archives".into(),
        stdout_of(&db, &["archives", "--school", "sq"]),
    ));
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--format",
            "jsonl",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    careledger_ok(
        &db,
        &[
            "export",
            "events",
            "--format",
            "jsonl",
            "--decrypt",
            "--with-confidential",
            "--out",
            export_all.to_str().unwrap(),
        ],
    );
    seen.push(("export".into(), std::fs::read(&export).unwrap()));
    seen.push((
        "export --decrypt --with-confidential".into(),
        std::fs::read(&export_all).unwrap(),
    ));
    let archive = String::from_utf8_lossy(&seen[0].1).into_owned();
    assert!(archive.contains(events::seal::ERASED), "{archive}");
    let found = hits(&seen, &secrets);
    assert!(
        found.is_empty(),
        "{} hits: {:?}",
        found.len(),
        &found[..found.len().min(10)]
    );
    // Nor does any byte of the store or of the key directory.
    let mut files = every_file(&db);
    files.extend(every_file(&tmp.path().join("store.keys")));
    let found = hits(&files, &secrets);
    assert!(found.is_empty(), "{found:?}");
    // A key is never made again for an erased child: an event about it is refused.
    refused_as_erased(&db);
    // Erasing twice is refused; the others' files still read in clear.
    let again = careledger(
        &db,
        &[
            "erase",
            "--child",
            "sq-c01",
            "--basis",
            "again",
            "--approved-by",
            "sq-t01",
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let other = String::from_utf8_lossy(&stdout_of(&db, &["archive", "sq-c04"])).into_owned();
    assert!(!other.contains(events::seal::ERASED), "{other}");
}

#[test]
fn rotating_the_master_key_keeps_every_view_and_erased_keys_erased() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    seed_store(tmp.path(), &db);
    let keys = tmp.path().join("store.keys");
    careledger_ok(
        &db,
        &[
            "erase",
            "--child",
            "sq-c02",
            "--basis",
            "PIPL Art. 47",
            "--approved-by",
            "sq-t01",
        ],
    );
    let views = |db: &Path| -> Vec<Vec<u8>> {
        [
            vec!["archive", "sq-c01"],
            vec!["archive", "sq-c02"],
            vec!["history", "sq-c07", "--role", "counselor"],
            vec!["scores", "--school", "sq", "--period", "2025-2026-1"],
        ]
        .iter()
        .map(|v| careledger_ok(db, v).stdout)
        .collect()
    };
    let before = views(&db);
    let export = tmp.path().join("sealed.jsonl");
    careledger_ok(
        &db,
        &["export", "events", "--out", export.to_str().unwrap()],
    );
    let master = std::fs::read(keys.join("master.key")).unwrap();
    let out = careledger_ok(&db, &["keys", "rotate"]);
    assert!(stderr(&out).contains("re-wrapped"), "{}", stderr(&out));
    assert_ne!(std::fs::read(keys.join("master.key")).unwrap(), master);
    assert!(!keys.join("rotation").exists());
    assert!(views(&db) == before, "a view changed with the rotation");
    careledger_ok(&db, &["verify"]);
    // The data keys kept their values: the sealed export made before still re-imports.
    let out = careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", export.to_str().unwrap()],
    );
    assert!(stderr(&out).contains(" 0 new"), "{}", stderr(&out));
    // The erased key stays erased.
    let out = careledger(
        &db,
        &[
            "record",
            "talk_held",
            "--json",
            r#"{"actor":"sq-t02","staff":"sq-t02","child":"sq-c02","topic":"学习","summary":"新的","mood":"good"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn a_worklist_opens_only_what_the_world_reads_and_equals_one_read_with_every_envelope_opened() {
    use careledger::plan::{self, Opener, Scope};
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store");
    seed_store(tmp.path(), &db);
    let store = store::Store::open(&db).unwrap();
    let keys = tmp.path().join("store.keys");
    let v = vault::Vault::open_dir(&keys)
        .unwrap()
        .expect("a master key");
    let open = Opener::new(Some(&v), vault::Reader::Staff);
    let staff: Vec<String> = store
        .registry()
        .unwrap()
        .staff()
        .map(|(t, _)| t.to_owned())
        .collect();
    assert!(!staff.is_empty());
    let day = chrono::NaiveDate::from_ymd_opt(2025, 11, 20).unwrap();
    let as_of = Some(events::time::end_of_day(day));
    for t in &staff {
        let fast = plan::staff_timeline(&store, t, as_of, &open).unwrap();
        let schools = store.staff_schools(t).unwrap();
        let full = plan::scope_timeline(&store, &Scope::Schools(schools), as_of, &open).unwrap();
        let view = |tl: &projections::Timeline| {
            let world = projections::World::build(tl);
            serde_json::to_string(&projections::worklist::worklist(tl, &world, t, day).unwrap())
                .unwrap()
        };
        let (a, b) = (view(&fast), view(&full));
        assert_eq!(a, b, "worklist of {t}");
        // The names are opened, not placeholders.
        assert!(!a.contains(events::seal::PRESENT), "{a}");
    }
}
