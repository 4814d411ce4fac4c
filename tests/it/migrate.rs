//! `careledger migrate` (docs/privacy.md, "Migration"): a store in clear copied into a new
//! sealed store gives the same events, ids and times and the same views, and no byte of the
//! new store holds a personal value; an erased child stays erased; a target that exists is
//! refused.

use std::path::Path;

use store::Store;
use vault::{Reader, Vault};

use crate::privacy::{every_file, seed_secrets};
use crate::{careledger, careledger_ok, stderr};

/// The store's envelopes, opened with `keys` when given: (id, occurred, recorded, actor, event).
fn events_of(
    db: &Path,
    keys: Option<&Path>,
) -> Vec<(String, String, String, String, events::Event)> {
    let vault = keys.map(|k| Vault::open_dir(k).unwrap().expect("a master key"));
    let store = Store::open(db).unwrap();
    store
        .scan(None)
        .map(|e| {
            let mut e = e.unwrap();
            if let Some(v) = &vault {
                e = v.open(e, Reader::Counselor).unwrap();
            }
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

/// The views a school reads, as bytes.
fn views(db: &Path) -> Vec<Vec<u8>> {
    [
        vec!["archive", "sq-c01"],
        vec!["archives", "--school", "sq"],
        vec!["contact-card", "sq-c05"],
        vec!["history", "sq-c07", "--role", "counselor"],
        vec!["progress", "sq-c11", "--role", "counselor"],
        vec!["pairings", "--school", "sq"],
        vec!["scores", "--school", "sq", "--period", "2025-2026-1"],
        vec![
            "report",
            "term",
            "--term",
            "2025-2026-1",
            "--school",
            "sq",
            "--format",
            "json",
        ],
    ]
    .iter()
    .map(|v| careledger_ok(db, v).stdout)
    .collect()
}

/// `text` with the log's head hash (64 hex digits, after `hash `) left out: the new store is a
/// new chain, so the hash a listing names is its own.
fn without_head_hash(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("hash ") {
        let (head, tail) = rest.split_at(i + 5);
        out.push_str(head);
        let n = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(if n == 64 { "<head hash>" } else { &tail[..n] });
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// The views are equal, line by line, but for the head hash; a differing line is shown.
fn same_views(before: &[Vec<u8>], after: &[Vec<u8>]) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        let (b, a) = (
            without_head_hash(&String::from_utf8_lossy(b)),
            without_head_hash(&String::from_utf8_lossy(a)),
        );
        for (lb, la) in b.lines().zip(a.lines()) {
            assert_eq!(lb, la, "view {i} differs after the migration");
        }
        assert_eq!(b.lines().count(), a.lines().count(), "view {i}");
    }
}

#[test]
fn a_store_in_clear_migrates_into_a_sealed_store_with_the_same_events_and_views() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    // A store in clear: made before sealing (no master key).
    careledger_ok(&old, &["init"]);
    std::fs::remove_file(tmp.path().join("old.keys").join(vault::MASTER_FILE)).unwrap();
    std::fs::remove_file(tmp.path().join("old.keys").join(vault::COUNSELOR_FILE)).unwrap();
    let seed = tmp.path().join("seed.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL).unwrap();
    careledger_ok(
        &old,
        &["import", "--preserve-recorded-at", seed.to_str().unwrap()],
    );
    let files = every_file(&old);
    assert!(
        !fixtures::secrets::hits(&files, &["田雨欣".to_owned()].into()).is_empty(),
        "the old store holds names in clear"
    );
    let before = views(&old);

    let out = careledger(
        &new,
        &[
            "migrate",
            "--from",
            old.to_str().unwrap(),
            "--to",
            new.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("migrated 682 events"),
        "{}",
        stderr(&out)
    );
    careledger_ok(&new, &["verify"]);
    assert_eq!(
        events_of(&old, None),
        events_of(&new, Some(&tmp.path().join("new.keys")))
    );
    same_views(&before, &views(&new));
    // Not a byte of the new store holds a name, phone, address, summary or note of the seed.
    let secrets = seed_secrets();
    let hits = fixtures::secrets::hits(&every_file(&new), &secrets);
    assert!(
        hits.is_empty(),
        "{} hits: {:?}",
        hits.len(),
        &hits[..hits.len().min(5)]
    );

    // A target that exists is refused, and left as it was.
    let head = Store::open(&new).unwrap().head().seq;
    let out = careledger(
        &new,
        &[
            "migrate",
            "--from",
            old.to_str().unwrap(),
            "--to",
            new.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(Store::open(&new).unwrap().head().seq, head);
}

#[test]
fn an_erased_child_stays_erased_in_the_migrated_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    crate::seed_store(tmp.path(), &old);
    careledger_ok(
        &old,
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
    let before = views(&old);
    careledger_ok(
        &new,
        &[
            "migrate",
            "--from",
            old.to_str().unwrap(),
            "--to",
            new.to_str().unwrap(),
        ],
    );
    careledger_ok(&new, &["verify"]);
    same_views(&before, &views(&new));
    let archive =
        String::from_utf8_lossy(&careledger_ok(&new, &["archive", "sq-c01"]).stdout).into_owned();
    assert!(archive.contains(events::seal::ERASED), "{archive}");
    // Its key is never made in the new key directory.
    crate::privacy::refused_as_erased(&new);
}
