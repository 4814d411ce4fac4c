//! Every case under `fixtures/bad/<case>/` yields exactly the errors of its `expected.txt`,
//! both against an in-memory log and against a real sled store holding the same prelude.
//!
//! A case (the one layout, docs/fixtures.md) is `case.json` — kind `ingest_bad`, `input`
//! (the file in the folder), `file` (the name the input is parsed under, which the error
//! texts cite), optional `preserve_recorded_at` — the input and `expected.txt`. The cases are
//! checked through `fixtures::cases`, so `BLESS=1` rewrites `expected.txt` (and fails until
//! the diff is reviewed).

use events::Source;
use fixtures::cases::{Case, Output, Outputs};
use ingest::{Known, MemoryKnown, Options, StoreKnown};
use store::Store;

use crate::{at, memory_of, now, parse};

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

/// The errors of one case's input, as printed (one line each), against `known`.
fn errors_of(case: &Case, known: &dyn Known) -> Result<String, String> {
    let input = case.need("input").map_err(|e| e.to_string())?;
    let file = case.need("file").map_err(|e| e.to_string())?;
    let bytes = std::fs::read(case.path(input)).map_err(|e| format!("{input}: {e}"))?;
    let migration = match case.get("preserve_recorded_at") {
        None => false,
        Some(v) => v.as_bool().ok_or("preserve_recorded_at is true or false")?,
    };
    let opts = Options {
        now: now(),
        preserve_recorded_at: migration,
        head_recorded_at: migration.then(prelude_recorded_at),
    };
    Ok(match ingest::parse_bytes(file, &bytes, known, &opts) {
        Ok(p) => format!("(no error: {} drafts)", p.drafts.len()),
        Err(e) => e.to_string(),
    })
}

#[test]
fn every_bad_case_yields_exactly_its_expected_errors_in_memory_and_in_a_store() {
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

    let checked = fixtures::cases::check_suite("bad", "ingest_bad", 40, |case| {
        let in_memory = errors_of(case, &memory)?;
        let in_store = errors_of(case, &on_disk)?;
        if in_memory != in_store {
            return Err(format!(
                "a store gives other errors than memory:\n[memory]\n{in_memory}\n[store]\n{in_store}"
            ));
        }
        // expected.txt ends its last line with a newline; the error text does not.
        Ok(Outputs::from([(
            "expected.txt".to_owned(),
            Output::Text(format!("{in_memory}\n")),
        )]))
    });
    assert!(
        on_disk.take_error().is_none(),
        "the store could not be read"
    );
    if let Err(f) = checked {
        panic!("{f}");
    }
}
