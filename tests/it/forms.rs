//! The school forms end to end: `template` writes a workbook that `import` reads (a blank one
//! holds nothing), a workbook with an error appends nothing, and `archives --format xlsx`
//! re-imports as a roster giving every child the same file.

use crate::{careledger, careledger_ok, seed_store, stderr};

#[test]
fn archives_as_xlsx_reimport_as_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    seed_store(dir.path(), &a);
    let roster = dir.path().join("roster.xlsx");
    careledger_ok(
        &a,
        &[
            "archives",
            "--school",
            "sq",
            "--format",
            "xlsx",
            "--out",
            roster.to_str().unwrap(),
        ],
    );

    // A store with the school and its staff, but none of its children.
    let registry: String = fixtures::SEED_SCHOOL_JSONL
        .lines()
        .filter(|l| {
            [
                "school_registered",
                "term_defined",
                "policy_adopted",
                "staff_joined",
            ]
            .iter()
            .any(|t| l.contains(&format!("\"type\":\"{t}\"")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let pre = dir.path().join("registry.jsonl");
    std::fs::write(&pre, registry).unwrap();
    careledger_ok(&b, &["init"]);
    careledger_ok(
        &b,
        &["import", "--preserve-recorded-at", pre.to_str().unwrap()],
    );

    // Without --actor and without 记录人, nothing is appended.
    let refused = careledger(&b, &["import", roster.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("field actor"),
        "{}",
        stderr(&refused)
    );
    careledger_ok(
        &b,
        &["import", "--actor", "sq-t01", roster.to_str().unwrap()],
    );

    let list = |db: &std::path::Path| {
        let out = careledger_ok(db, &["archives", "--school", "sq", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["rows"].as_array().unwrap().len()
    };
    assert_eq!(list(&a), 20);
    assert_eq!(list(&b), 20);
    for child in ["sq-c01", "sq-c05", "sq-c17", "sq-c20"] {
        let file = |db: &std::path::Path| {
            let out = careledger_ok(db, &["archive", child, "--format", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["file"].clone()
        };
        assert_eq!(file(&a), file(&b), "{child}");
    }
}

#[test]
fn a_template_imports_and_names_its_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let form = dir.path().join("form.xlsx");
    careledger_ok(&db, &["init"]);
    let out = careledger_ok(
        &db,
        &[
            "template",
            "--type",
            "留守儿童登记表",
            "--type",
            "talk_held",
            "--out",
            form.to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&out).contains("留守儿童登记表, 谈心记录"),
        "{}",
        stderr(&out)
    );
    // Left blank, the form holds nothing to import (its sample row is skipped).
    let out = careledger_ok(&db, &["import", "--actor", "t1", form.to_str().unwrap()]);
    assert!(stderr(&out).contains("0 new"), "{}", stderr(&out));
    let unknown = careledger(
        &db,
        &[
            "template",
            "--type",
            "花名册",
            "--out",
            form.to_str().unwrap(),
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
}
