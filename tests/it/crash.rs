//! SIGKILL an importing `careledger` at chosen points inside an append, reopen, and check:
//! `verify` passes, the log holds whole batches only, every acknowledged batch is there, the
//! batch being written is there or not as its crash point implies, and the child, staff and
//! id indexes equal what a full scan of the log gives.
//!
//! The kill is deterministic: the binary runs with `CARELEDGER_TEST_PAUSE=<stage>:<n>`, so
//! the store's `n`-th writing append stops at `stage`, says so on stderr, and blocks until
//! the test kills it (the hook is `test_pause` in store/src/log.rs). The crash points:
//! - `before-head`: every segment of the batch written and flushed, the head not moved — the
//!   batch must be absent after reopen (the head is the commit point);
//! - `in-commit` (small appends only, which write segments, tree hashes and head in one sled
//!   transaction): inside the transaction, the head not inserted — the batch must be absent;
//! - `before-indexes`: the head moved and on disk (the hook flushes sled there), the indexes
//!   not written — the batch must be present and the indexes caught up from the log on open;
//! - `before-read-models`: the head moved and every index written (flushed), the read models
//!   not — the batch must be present and the read models caught up on open, equal to their
//!   rebuild (`verify`) and to what the log gives the school;
//! - `before-ack`: flushed and fsynced, the acknowledgement not yet printed — the batch must
//!   be present, whole, though nobody was told.
//!
//! A second test imports files of more than `store::SCOPES_BESIDE_AT` talks, whose appends
//! derive their read models on a second thread and write them there while the first flushes
//! and fsyncs, and kills the import before they are written and after the batch is fsynced.
//!
//! A fourth test kills small appends inside their transaction and just after it.
//!
//! A third test imports small files (appends of a few events, like the service's commits,
//! which defer their indexes and read models to a later append) and kills the import after
//! many of them: what was deferred was never written, and opening derives it from the log.
//!
//! What this test cannot prove: SIGKILL kills the process, not the machine; the kernel's
//! page cache survives, so whatever sled handed to `write(2)` is read back on reopen whether
//! or not it was fsynced. A store that skipped the fsync would pass here (so did one without
//! its final flush + fsync at all, when tried: sled had written its buffers). The durability rule
//! (an append returns only after flush and fsync of the data file, ARCHITECTURE.md) is kept
//! by `Store::append` calling `Store::sync` before it returns and is checked by reading that
//! code, not by a test: proving it would need a power cut (a VM, or a fault-injecting file
//! system that drops unsynced writes), which this suite does not have.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use store::Store;

use crate::{prelude, talks};

/// More than the rounds can consume (the sum of their depths), so every crash point is reached.
const FILES: usize = 19;
/// 1500 talks make a batch of a few hundred 2 KiB segments: "whole" is a real claim.
const PER_FILE: usize = 1500;
const CHILDREN: usize = 40;
const SIGKILL: i32 = 9;

/// Where each round stops the child: (stage, which writing append of that run). Every stage
/// is hit three times, at different depths into the run; each run resumes the import where
/// the log ends (the already-present files append nothing and are not counted).
/// The first run's first writing append is the prelude, a small append (no `before-head`:
/// it commits in one transaction), so its `before-head` is the second.
const ROUNDS: &[(&str, u64)] = &[
    ("before-head", 2),
    ("before-ack", 1),
    ("before-indexes", 2),
    ("before-head", 2),
    ("before-ack", 2),
    ("before-indexes", 1),
    ("before-head", 3),
    ("before-indexes", 3),
    ("before-ack", 1),
    ("before-read-models", 1),
    ("before-read-models", 2),
];

/// What one killed run said on stderr.
struct Run {
    /// Stems of the files acknowledged (`imported FILE: N new, …`) with their `N`.
    acked: Vec<(String, u64)>,
    /// The crash point reached: stage, first and last seq of the batch being written.
    paused: Option<(String, u64, u64)>,
}

fn run_until_pause(db: &Path, files: &[std::path::PathBuf], stage: &str, nth: u64) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
        .arg("--db")
        .arg(db)
        .arg("import")
        .args(files)
        .env("CARELEDGER_TEST_PAUSE", format!("{stage}:{nth}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut run = Run {
        acked: Vec::new(),
        paused: None,
    };
    let mut other = Vec::new();
    let mut lines = BufReader::new(stderr).lines();
    // Read until the crash point is announced; the child then blocks, and is killed there.
    for line in lines.by_ref() {
        let line = line.expect("stderr is readable");
        if let Some(rest) = line.strip_prefix("imported ") {
            let (file, counts) = rest
                .split_once(": ")
                .expect("an acknowledgement names a file");
            let stem = Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .expect("a file name");
            let new = counts
                .split_once(" new")
                .and_then(|(n, _)| n.parse().ok())
                .expect("an acknowledgement counts the new events");
            run.acked.push((stem, new));
        } else if let Some(rest) = line.strip_prefix("careledger-test-pause ") {
            let mut f = rest.split(' ');
            let (s, first, last) = (f.next(), f.next(), f.next());
            run.paused = Some((
                s.unwrap_or_default().to_owned(),
                first.and_then(|x| x.parse().ok()).expect("a first seq"),
                last.and_then(|x| x.parse().ok()).expect("a last seq"),
            ));
            break;
        } else {
            other.push(line);
        }
    }
    child.kill().expect("the child can be killed"); // SIGKILL on Unix
    let status = child.wait().expect("the child is reaped");
    assert!(
        run.paused.is_some(),
        "{stage}:{nth}: the child never reached its crash point (exit {status}); stderr: {other:?}"
    );
    // Killed by our SIGKILL while blocked: not a clean exit, not a panic, not another signal.
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "{stage}:{nth}: the child ended with {status}, not by SIGKILL; stderr: {other:?}"
    );
    run
}

/// The prelude and `count` files of `per_file` talks (`<stem>NN.jsonl`), in import order.
fn import_files(dir: &Path, stem: &str, count: usize, per_file: usize) -> Vec<std::path::PathBuf> {
    let mut files = vec![dir.join("prelude.jsonl")];
    std::fs::write(&files[0], prelude(CHILDREN)).unwrap();
    for f in 0..count {
        let path = dir.join(format!("{stem}{f:02}.jsonl"));
        std::fs::write(&path, talks(&format!("{stem}{f:02}"), per_file, CHILDREN)).unwrap();
        files.push(path);
    }
    files
}

/// Every batch acknowledged so far is in the reopened log.
fn assert_batches_present(
    per_batch: &BTreeMap<String, usize>,
    acked_ever: &BTreeSet<String>,
    round: usize,
) {
    for b in acked_ever {
        assert!(
            per_batch.contains_key(b),
            "round {round}: batch {b} is missing"
        );
    }
}

/// Runs the import to its end, uninterrupted, and checks the store as a round does.
fn import_the_rest(
    db: &Path,
    files: &[std::path::PathBuf],
    round: usize,
) -> (Store, BTreeMap<String, usize>) {
    let mut args = vec!["import"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = crate::careledger(db, &args);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    check_store(db, round)
}

/// Checks the reopened store against the log itself; returns events per batch prefix.
fn check_store(db: &Path, round: usize) -> (Store, BTreeMap<String, usize>) {
    let store = Store::open(db).unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
    store
        .verify()
        .unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
    let mut per_batch: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_child: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut by_staff: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ids: Vec<(String, u64)> = Vec::new();
    for env in store.scan(None) {
        let env = env.unwrap_or_else(|e| panic!("round {round}: scan: {e}"));
        let prefix = env.id.split_once('-').map_or("prelude", |(b, _)| b);
        *per_batch.entry(prefix.to_owned()).or_default() += 1;
        let mut seen = BTreeSet::new();
        for c in env.event.children() {
            if seen.insert(c) {
                by_child.entry(c.clone()).or_default().push(env.seq);
            }
        }
        if let Some(s) = env.event.staff() {
            by_staff.entry(s.to_owned()).or_default().push(env.seq);
        }
        ids.push((env.id.clone(), env.seq));
    }
    assert_eq!(
        ids.len() as u64,
        store.head().seq,
        "round {round}: the scan and the head disagree"
    );
    // The indexes: every child and staff member of the data, and every id.
    let seqs = |envs: Vec<events::envelope::Envelope>| envs.iter().map(|e| e.seq).collect();
    for c in (0..CHILDREN).map(|c| format!("c{c}")) {
        let indexed: Vec<u64> = seqs(store.by_child(&c, None).unwrap());
        let scanned = by_child.get(&c).cloned().unwrap_or_default();
        assert_eq!(indexed, scanned, "round {round}: the index of child {c}");
    }
    let indexed: Vec<u64> = seqs(store.by_staff("t1", None).unwrap());
    let scanned = by_staff.get("t1").cloned().unwrap_or_default();
    assert_eq!(indexed, scanned, "round {round}: the index of staff t1");
    for (id, seq) in &ids {
        assert_eq!(
            store.seq_of(id).unwrap(),
            Some(*seq),
            "round {round}: the id index of {id}"
        );
    }
    // The read models (verified above against their rebuild): the one school's envelopes are
    // every envelope of the log, and its one teacher belongs to it (once the prelude is in).
    let school: Vec<u64> = seqs(store.school_envelopes("s1", None).unwrap());
    let all: Vec<u64> = ids.iter().map(|(_, s)| *s).collect();
    assert_eq!(school, all, "round {round}: the read models of school s1");
    if !ids.is_empty() {
        assert_eq!(store.staff_schools("t1").unwrap(), ["s1"], "round {round}");
    }
    (store, per_batch)
}

#[test]
fn a_killed_import_leaves_whole_acknowledged_batches_and_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let files = import_files(dir.path(), "b", FILES, PER_FILE);
    let prelude_events = 3 + CHILDREN;
    let size = |stem: &str| {
        if stem == "prelude" {
            prelude_events
        } else {
            PER_FILE
        }
    };
    drop(Store::create(&db).unwrap());
    let mut acked_ever: BTreeSet<String> = BTreeSet::new();
    for (round, &(stage, nth)) in ROUNDS.iter().enumerate() {
        let head_before = Store::open(&db).unwrap().head().seq;
        let run = run_until_pause(&db, &files, stage, nth);
        let (paused_stage, first, last) = run.paused.clone().expect("checked by run_until_pause");
        assert_eq!(paused_stage, stage);
        acked_ever.extend(run.acked.iter().map(|(b, _)| b.clone()));
        let acked_new: u64 = run.acked.iter().map(|(_, n)| n).sum();

        let (store, per_batch) = check_store(&db, round);
        // Whole batches only.
        for (b, n) in &per_batch {
            assert_eq!(*n, size(b), "round {round}: batch {b} is partial");
        }
        // Every batch acknowledged, in this round or before, is there.
        for b in &acked_ever {
            assert_eq!(
                per_batch.get(b),
                Some(&size(b)),
                "round {round}: acknowledged batch {b} is missing"
            );
        }
        // The batch being written when the child was killed: seqs first..=last.
        let head = store.head().seq;
        // The paused batch starts right after what this run acknowledged.
        assert_eq!(
            first,
            head_before + acked_new + 1,
            "round {round}: the paused batch does not follow the acknowledged ones"
        );
        match stage {
            "before-head" => assert_eq!(
                head,
                first - 1,
                "round {round}: a batch killed before its head moved is visible"
            ),
            "before-ack" => assert_eq!(
                head, last,
                "round {round}: a batch fsynced before the kill is missing"
            ),
            _ => assert_eq!(
                head, last,
                "round {round}: a batch whose head reached the disk is missing"
            ),
        }
    }
    // Every stage was reached with batches behind it: the rounds made progress.
    assert!(
        acked_ever.len() >= 4,
        "only {} batches were acknowledged",
        acked_ever.len()
    );
    // An uninterrupted run completes the import.
    let mut args = vec!["import"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = crate::careledger(&db, &args);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let (store, per_batch) = check_store(&db, ROUNDS.len());
    assert_eq!(store.head().seq as usize, prelude_events + FILES * PER_FILE);
    assert_eq!(per_batch.len(), FILES + 1);
}

#[test]
fn a_killed_large_import_whose_read_models_are_derived_beside_leaves_them_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let per_file = store::SCOPES_BESIDE_AT + 100;
    let files = import_files(dir.path(), "l", 3, per_file);
    drop(Store::create(&db).unwrap());
    let mut acked_ever: BTreeSet<String> = BTreeSet::new();
    // The prelude is the first writing append of the first run; each later run resumes
    // where the log ends. Before the read models: derived on the other thread, not written.
    // Before the acknowledgement is printed: the read models written beside the fsync, the
    // batch fsynced and signed.
    let rounds = [
        ("before-read-models", 2),
        ("before-ack", 1),
        ("before-read-models", 1),
    ];
    for (round, &(stage, nth)) in rounds.iter().enumerate() {
        let run = run_until_pause(&db, &files, stage, nth);
        acked_ever.extend(run.acked.iter().map(|(b, _)| b.clone()));
        let (_, first, last) = run.paused.clone().expect("checked by run_until_pause");
        assert!(
            last - first + 1 >= store::SCOPES_BESIDE_AT as u64,
            "round {round}"
        );
        // Reopened: the paused batch is in (its head moved), and the read models, caught up
        // from the log where they were not written, equal their rebuild (`verify`) and give
        // school s1 every envelope.
        let (store, per_batch) = check_store(&db, round);
        assert_eq!(
            store.head().seq,
            last,
            "round {round}: the paused batch is missing"
        );
        assert_batches_present(&per_batch, &acked_ever, round);
    }
    let (store, per_batch) = import_the_rest(&db, &files, rounds.len());
    assert_eq!(store.head().seq as usize, 3 + CHILDREN + 3 * per_file);
    assert_eq!(per_batch.len(), 4);
}

#[test]
fn a_killed_run_of_small_appends_loses_no_deferred_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Appends of 7 talks each: far below what an append defers; fewer of them than write
    // the deferred values (every 32nd append), so everything after the prelude is deferred.
    let small = 20;
    let files = import_files(dir.path(), "s", small, 7);
    drop(Store::create(&db).unwrap());
    let nth = small as u64; // the prelude is the first append: the last file's is paused
    let run = run_until_pause(&db, &files, "before-ack", nth);
    assert_eq!(run.acked.len() as u64, nth - 1, "{:?}", run.acked);
    // Reopened: verify passes (every derived tree equals its rebuild from the log), and the
    // child, staff, id and school reads equal a scan of the log.
    let (store, per_batch) = check_store(&db, 0);
    assert_eq!(per_batch.get("prelude"), Some(&(3 + CHILDREN)));
    for (b, _) in &run.acked {
        if b != "prelude" {
            assert_eq!(per_batch.get(b), Some(&7), "batch {b}");
        }
    }
    assert_eq!(store.head().seq as usize, 3 + CHILDREN + 7 * (small - 1));
}

#[test]
fn a_small_append_killed_inside_its_transaction_is_absent_and_after_it_present() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Appends of 7 talks: each commits its segments, tree hashes and head in one sled
    // transaction, with no flush before it.
    let files = import_files(dir.path(), "t", 6, 7);
    drop(Store::create(&db).unwrap());
    // (stage, which writing append of the run, whether the paused batch is in after reopen).
    // `in-commit`: segments and tree hashes inserted in the transaction, the head not — the
    // batch must be absent; `before-indexes`: the transaction committed and flushed — present.
    let rounds = [
        ("in-commit", 3, false),
        ("before-indexes", 2, true),
        ("in-commit", 1, false),
        ("before-indexes", 1, true),
    ];
    let mut acked_ever: BTreeSet<String> = BTreeSet::new();
    for (round, &(stage, nth, present)) in rounds.iter().enumerate() {
        let run = run_until_pause(&db, &files, stage, nth);
        acked_ever.extend(run.acked.iter().map(|(b, _)| b.clone()));
        let (_, first, last) = run.paused.clone().expect("checked by run_until_pause");
        assert!(last - first < 256, "round {round}: not a small append");
        let (store, per_batch) = check_store(&db, round);
        let expected = if present { last } else { first - 1 };
        assert_eq!(
            store.head().seq,
            expected,
            "round {round}: {stage} left the wrong head"
        );
        assert_batches_present(&per_batch, &acked_ever, round);
    }
    let (store, per_batch) = import_the_rest(&db, &files, rounds.len());
    assert_eq!(store.head().seq as usize, 3 + CHILDREN + 6 * 7);
    assert_eq!(per_batch.len(), 7);
}
