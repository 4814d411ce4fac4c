//! `careledger retention` (rules §13.3) on the cases of fixtures/retention: the dry run lists
//! the children past their school's retention period (the expected file) and appends nothing;
//! the run erases exactly those, one `child_erased` event each with a retention basis and the
//! approver; a second run finds no one.

use std::path::Path;

use events::Event;
use serde_json::Value;
use store::Store;

use crate::{careledger, careledger_ok, stderr};

fn run_case(case: &fixtures::cases::Case) -> Result<fixtures::cases::Outputs, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("db");
    let files = case.event_files().map_err(|e| e.to_string())?;
    let [events] = files.as_slice() else {
        return Err("one events file".into());
    };
    careledger_ok(&db, &["init"]);
    careledger_ok(
        &db,
        &["import", "--preserve-recorded-at", events.to_str().unwrap()],
    );
    let on = case.need("on").map_err(|e| e.to_string())?;
    let approver = case.need("approved_by").map_err(|e| e.to_string())?;
    let head = |db: &Path| Store::open(db).map(|s| s.head().seq).unwrap_or(0);
    let before = head(&db);

    let dry = careledger_ok(
        &db,
        &["retention", "--dry-run", "--on", on, "--format", "json"],
    );
    let listed: Value = serde_json::from_slice(&dry.stdout).map_err(|e| e.to_string())?;
    if head(&db) != before {
        return Err("the dry run appended to the log".into());
    }
    let children: Vec<String> = listed
        .as_array()
        .ok_or("the listing is an array")?
        .iter()
        .map(|r| r["child"].as_str().unwrap_or_default().to_owned())
        .collect();

    // Without an approver nothing runs (a usage error).
    let out = careledger(&db, &["retention", "--on", on]);
    if out.status.code() != Some(2) {
        return Err(format!(
            "no --approved-by: {:?} {}",
            out.status,
            stderr(&out)
        ));
    }
    let run = careledger_ok(
        &db,
        &[
            "retention",
            "--on",
            on,
            "--approved-by",
            approver,
            "--format",
            "json",
        ],
    );
    let erased: Value = serde_json::from_slice(&run.stdout).map_err(|e| e.to_string())?;
    for (l, e) in listed
        .as_array()
        .into_iter()
        .flatten()
        .zip(erased.as_array().into_iter().flatten())
    {
        if l["child"] != e["child"] || e["erased"] != true {
            return Err(format!("listed {l} but the run says {e}"));
        }
    }
    let store = Store::open(&db).map_err(|e| e.to_string())?;
    let mut erasures: Vec<String> = Vec::new();
    for env in store.scan(None).skip(before as usize) {
        let env = env.map_err(|e| e.to_string())?;
        match &env.event {
            Event::ChildErased {
                child,
                basis,
                approved_by,
                ..
            } if basis.starts_with("retention: ") && approved_by == approver => {
                erasures.push(child.clone());
            }
            other => return Err(format!("the run appended {other:?}")),
        }
    }
    drop(store);
    if erasures != children {
        return Err(format!("erased {erasures:?}, listed {children:?}"));
    }
    for c in &children {
        let archive = careledger_ok(&db, &["archive", c]);
        if !String::from_utf8_lossy(&archive.stdout).contains(events::seal::ERASED) {
            return Err(format!("the archive of {c} is not erased"));
        }
    }
    careledger_ok(&db, &["verify"]);
    let again = careledger_ok(
        &db,
        &["retention", "--dry-run", "--on", on, "--format", "json"],
    );
    if serde_json::from_slice::<Value>(&again.stdout).map_err(|e| e.to_string())?
        != Value::Array(vec![])
    {
        return Err("a second run still lists children".into());
    }
    let mut outputs = fixtures::cases::Outputs::new();
    outputs.insert(
        "expected.json".into(),
        fixtures::cases::Output::Json(listed),
    );
    Ok(outputs)
}

#[test]
fn given_the_retention_cases_when_run_then_exactly_the_listed_children_are_erased() {
    let checked = fixtures::cases::check_suite("retention", "retention", 1, run_case);
    match checked {
        Ok(n) => assert!(n >= 1),
        Err(f) => panic!("{f}"),
    }
}
