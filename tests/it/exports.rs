//! `export events` of a sealed store (docs/privacy.md, "Exports"): sealed fields stay sealed
//! by default and the file re-imports into the same store and into one restored from a
//! backup with the same key directory; `--decrypt` opens them (notes only with
//! `--with-confidential`) and re-imports anywhere; re-imports compare in clear; an erased
//! child's fields leave in no form.

use std::path::{Path, PathBuf};

use events::Envelope;
use store::Store;
use vault::{Reader, Vault};

use crate::privacy::seed_secrets;
use crate::{careledger, careledger_ok, stderr};

/// The store's envelopes opened with the key directory `keys`: (id, occurred, recorded,
/// actor, event in clear).
fn opened(db: &Path, keys: &Path) -> Vec<(String, String, String, String, events::Event)> {
    let vault = Vault::open_dir(keys).unwrap().expect("a master key");
    let store = Store::open(db).unwrap();
    store
        .scan(None)
        .map(|e| {
            let e: Envelope = vault.open(e.unwrap(), Reader::Counselor).unwrap();
            (
                e.id,
                e.occurred_at.to_rfc3339(),
                e.recorded_at.to_rfc3339(),
                e.actor,
                e.event,
            )
        })
        .collect()
}

fn export(db: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["export", "events", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    careledger_ok(db, &args);
    std::fs::read_to_string(out).unwrap()
}

fn import(db: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", "--preserve-recorded-at"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    careledger(db, &args)
}

/// Copies a store directory (a backup taken with the store closed).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A sealed store `a` with the first `first` lines of the seed school, a backup of it, then
/// the rest of the seed in `a`.
fn store_and_backup(dir: &Path, first: usize) -> (PathBuf, PathBuf) {
    let (a, backup) = (dir.join("a"), dir.join("backup"));
    let lines: Vec<&str> = fixtures::SEED_SCHOOL_JSONL.lines().collect();
    let (head, tail) = lines.split_at(first);
    let (f1, f2) = (dir.join("part1.jsonl"), dir.join("part2.jsonl"));
    std::fs::write(&f1, head.join("\n")).unwrap();
    std::fs::write(&f2, tail.join("\n")).unwrap();
    careledger_ok(&a, &["init"]);
    assert!(import(&a, &f1, &[]).status.success());
    copy_dir(&a, &backup);
    assert!(import(&a, &f2, &[]).status.success());
    (a, backup)
}

#[test]
fn a_sealed_export_re_imports_into_its_store_and_a_restored_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, backup) = store_and_backup(tmp.path(), 400);
    let keys = tmp.path().join("a.keys");
    let file = tmp.path().join("sealed.jsonl");
    let text = export(&a, &file, &[]);
    // Sealed: no name, phone, address, summary or note of the seed, in any form.
    let hits = fixtures::secrets::hits(
        &[("the export".to_owned(), text.clone().into_bytes())],
        &seed_secrets(),
    );
    assert!(
        hits.is_empty(),
        "{} hits: {:?}",
        hits.len(),
        &hits[..hits.len().min(5)]
    );
    assert!(text.lines().filter(|l| l.contains(r#""sealed":{"#)).count() > 500);

    // Into the same store: every line is already there (compared in clear).
    let out = import(&a, &file, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 0 new, 682 already present"),
        "{}",
        stderr(&out)
    );

    // Into the backup (restored with the same key directory): it catches up exactly.
    let out = import(&backup, &file, &["--keys", keys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 282 new, 400 already present"),
        "{}",
        stderr(&out)
    );
    assert_eq!(opened(&a, &keys), opened(&backup, &keys));
    careledger_ok(&backup, &["--keys", keys.to_str().unwrap(), "verify"]);

    // Into a store with other keys: refused, saying where the keys should come from.
    let other = tmp.path().join("other");
    careledger_ok(&other, &["init"]);
    let out = import(&other, &file, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("--keys"), "{}", stderr(&out));
    assert_eq!(Store::open(&other).unwrap().head().seq, 0);

    // A sealed part moved to another line does not open there: the line is named.
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let talks: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i]["type"] == "talk_held")
        .take(2)
        .collect();
    let moved = lines[talks[0]]["sealed"].clone();
    lines[talks[1]]["sealed"] = moved;
    let forged = tmp.path().join("forged.jsonl");
    let body: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&forged, body.join("\n")).unwrap();
    let out = import(&a, &forged, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("forged.jsonl:{}: field sealed", talks[1] + 1)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_decrypted_export_opens_notes_only_when_asked_and_re_imports_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = store_and_backup(tmp.path(), 400);
    let keys = tmp.path().join("a.keys");
    let note = fixtures::SEED_SCHOOL_JSONL
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "counseling_session")
        .and_then(|v| v["notes"].as_str().map(str::to_owned))
        .expect("the seed has counseling notes");

    let plain = tmp.path().join("plain.jsonl");
    let text = export(&a, &plain, &["--decrypt"]);
    assert!(text.contains("田雨欣"), "personal fields are opened");
    assert!(!text.contains(&note), "notes only with --with-confidential");
    assert!(!text.contains(r#""sealed""#));

    let full = tmp.path().join("full.jsonl");
    let text = export(&a, &full, &["--decrypt", "--with-confidential"]);
    assert!(text.contains(&note));
    // In clear, into the sealed store it came from: compared in clear, nothing is new.
    let out = import(&a, &full, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 0 new, 682 already present"),
        "{}",
        stderr(&out)
    );
    // Into a new store with keys of its own: the same events, ids and times, sealed anew.
    let c = tmp.path().join("c");
    careledger_ok(&c, &["init"]);
    assert!(import(&c, &full, &[]).status.success());
    assert_eq!(opened(&a, &keys), opened(&c, &tmp.path().join("c.keys")));
}

#[test]
fn an_erased_childs_fields_leave_in_no_export_and_the_export_still_re_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, backup) = store_and_backup(tmp.path(), 682);
    let keys = tmp.path().join("a.keys");
    careledger_ok(
        &a,
        &[
            "erase",
            "--child",
            "sq-c01",
            "--basis",
            "PIPL Art. 47",
            "--approved-by",
            "sq-t01",
        ],
    );
    // The erased child's own strings (its name, its guardian's phone).
    let secrets: Vec<String> = fixtures::SEED_SCHOOL_JSONL
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "child_registered" && v["child"] == "sq-c01")
        .flat_map(|v| {
            [
                v["name"].as_str().unwrap().to_owned(),
                v["guardian"]["phone"].as_str().unwrap().to_owned(),
            ]
        })
        .collect();
    assert_eq!(secrets.len(), 2);
    let sealed = tmp.path().join("sealed.jsonl");
    let full = tmp.path().join("full.jsonl");
    for (file, extra) in [
        (&sealed, vec![]),
        (&full, vec!["--decrypt", "--with-confidential"]),
    ] {
        let text = export(&a, file, &extra);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{s} in the export {extra:?}");
        }
        for line in text.lines().filter(|l| l.contains(r#""child":"sq-c01""#)) {
            assert!(
                !line.contains(r#""sealed""#),
                "a ciphertext of sq-c01: {line}"
            );
        }
        assert!(text.contains(events::seal::ERASED));
        // Both re-import into the store they came from: nothing is new.
        let out = import(&a, file, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(": 0 new, 683 already present"),
            "{}",
            stderr(&out)
        );
    }
    // A backup from before the erasure, with the same key directory, takes the erasure too.
    let out = import(&backup, &sealed, &["--keys", keys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 1 new, 682 already present"),
        "{}",
        stderr(&out)
    );
}
