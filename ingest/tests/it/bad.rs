//! Every file under `fixtures/bad` yields exactly the errors its `.expected` file holds, both
//! against an in-memory log and against a real sled store holding the same prelude.

use std::path::{Path, PathBuf};

use events::Source;
use ingest::{Known, MemoryKnown, Options, StoreKnown};
use store::Store;

use crate::{at, memory_of, now, parse, root};

const PRELUDE: &str = "fixtures/bad/_prelude.jsonl";

fn prelude_recorded_at() -> chrono::DateTime<chrono::Utc> {
    at("2025-09-15T00:00:00+08:00")
}

fn prelude() -> Vec<events::Draft> {
    let opts = Options::new(prelude_recorded_at());
    match parse(PRELUDE, &MemoryKnown::new(), &opts) {
        Ok(p) => p.into_drafts(),
        Err(e) => panic!("the prelude must be valid:\n{e}"),
    }
}

/// The case files (`.jsonl`, `.csv`) under a folder, sorted, skipping `_` files.
fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            cases(&p, out);
        } else if !name.starts_with('_')
            && matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jsonl" | "csv")
            )
        {
            out.push(p);
        }
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .expect("cases are under the root")
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_bad_file_yields_exactly_its_expected_errors() {
    let prelude = prelude();
    let memory = memory_of(&prelude);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::create(&dir.path().join("db")).expect("a new store");
    store
        .append_at(
            prelude.clone(),
            Source::Import(PRELUDE.into()),
            prelude_recorded_at(),
        )
        .expect("the prelude appends");
    let on_disk = StoreKnown::new(&store);

    let mut files = Vec::new();
    cases(&root().join("fixtures/bad"), &mut files);
    assert!(files.len() >= 40, "only {} bad cases found", files.len());

    let mut failures = Vec::new();
    for path in &files {
        let name = rel(path);
        let expected_path = path.with_extension("expected");
        let Ok(expected) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!("=== {name}: no {}", rel(&expected_path)));
            continue;
        };
        let migration = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("migration_"));
        let opts = Options {
            now: now(),
            preserve_recorded_at: migration,
            head_recorded_at: migration.then(prelude_recorded_at),
        };
        for (label, known) in [("memory", &memory as &dyn Known), ("store", &on_disk)] {
            let actual = match parse(&name, known, &opts) {
                Ok(p) => format!("(no error: {} drafts)", p.drafts.len()),
                Err(e) => e.to_string(),
            };
            if actual != expected.trim_end() {
                failures.push(format!("=== {name} [{label}]\n{actual}"));
            }
        }
    }
    assert!(
        on_disk.take_error().is_none(),
        "the store could not be read"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expected_file_has_its_case() {
    let mut files = Vec::new();
    cases(&root().join("fixtures/bad"), &mut files);
    let mut orphans = Vec::new();
    let mut dirs = vec![root().join("fixtures/bad")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("a readable fixtures folder") {
            let p = e.expect("a readable entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().and_then(|e| e.to_str()) == Some("expected")
                && !files.iter().any(|f| f.with_extension("expected") == p)
            {
                orphans.push(rel(&p));
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "expected files without a case: {orphans:?}"
    );
}
