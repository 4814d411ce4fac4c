//! SIGKILL an importing `careledger` whose store signs checkpoints, at random moments, and
//! check on reopen that the tree, the checkpoints and the log agree: `verify` (which walks the
//! stored tree and every checkpoint's root against the log) passes, no checkpoint is past the
//! head, and the head has a checkpoint once the store is opened with its key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use store::Store;

use crate::{careledger_ok, prelude, talks};

const FILES: usize = 12;
const PER_FILE: usize = 1200;
const CHILDREN: usize = 20;

#[test]
fn a_killed_signing_import_leaves_tree_checkpoints_and_log_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().unwrap().to_owned();
    careledger_ok(&db, &["--keys", &keys_arg, "init"]);
    let mut files = vec![dir.path().join("prelude.jsonl")];
    std::fs::write(&files[0], prelude(CHILDREN)).unwrap();
    for f in 0..FILES {
        let path = dir.path().join(format!("batch{f:02}.jsonl"));
        std::fs::write(&path, talks(&format!("b{f:02}"), PER_FILE, CHILDREN)).unwrap();
        files.push(path);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7e57);
    let mut killed_alive = 0;
    for round in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
            .arg("--db")
            .arg(&db)
            .arg("--keys")
            .arg(&keys)
            .arg("import")
            .args(&files)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it a random moment after its `round * 2 + 1`-th acknowledged file, so that
        // every round gets further and lands anywhere in the next batch: appending, signing,
        // or between the two.
        // stderr is drained to its end by a thread, so the import never writes to a closed pipe.
        let wait_for = round * 2 + 1;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("imported ") {
                    let _ = tx.send(());
                }
            }
        });
        for _ in 0..wait_for {
            if rx.recv().is_err() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        if status.code().is_none() {
            killed_alive += 1;
        }

        let store = Store::open(&db).unwrap();
        let head = store.head().seq;
        store
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let checkpoints = store.checkpoints().unwrap();
        assert!(
            checkpoints.iter().all(|c| c.size <= head),
            "round {round}: a checkpoint past the head"
        );
        drop(store);
        if head == 0 {
            continue;
        }
        // Opened with its key, the store signs the head if the kill came between the commit
        // and the signing; the checkpoint printed is the head's.
        let note =
            String::from_utf8(careledger_ok(&db, &["--keys", &keys_arg, "checkpoint"]).stdout)
                .unwrap();
        assert_eq!(
            note.lines().nth(1),
            Some(head.to_string().as_str()),
            "round {round}"
        );
        let store = Store::open(&db).unwrap();
        assert_eq!(store.latest_checkpoint().unwrap().unwrap().size, head);
        assert_eq!(
            store.tree_root(head).unwrap().to_base64(),
            note.lines().nth(2).unwrap()
        );
        store.verify().unwrap();
    }
    // The kills landed in running imports (a process that finished first exits 0).
    assert!(killed_alive > 0);
}

#[test]
fn a_kill_between_commit_and_signing_is_signed_on_the_next_open_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().unwrap().to_owned();
    careledger_ok(&db, &["--keys", &keys_arg, "init"]);
    let first = dir.path().join("prelude.jsonl");
    std::fs::write(&first, prelude(CHILDREN)).unwrap();
    careledger_ok(
        &db,
        &["--keys", &keys_arg, "import", first.to_str().unwrap()],
    );
    let signed = Store::open(&db).unwrap().head().seq;
    let second = dir.path().join("talks.jsonl");
    std::fs::write(&second, talks("k", 300, CHILDREN)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
        .arg("--db")
        .arg(&db)
        .arg("--keys")
        .arg(&keys)
        .arg("import")
        .arg(&second)
        .env("CARELEDGER_TEST_PAUSE", "before-sign:1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let paused = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("careledger-test-pause before-sign"));
    assert!(paused.is_some(), "the import never reached the signing");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().code(), None);

    // Committed, not signed: the store is whole, its latest checkpoint is the batch before.
    let store = Store::open(&db).unwrap();
    let head = store.head().seq;
    assert_eq!(head, signed + 300);
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().size, signed);
    store.verify().unwrap();
    drop(store);
    // Opened with its key, the store signs the head.
    let out = careledger_ok(&db, &["--keys", &keys_arg, "checkpoint"]);
    let note = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(note.lines().nth(1), Some(head.to_string().as_str()));
    assert!(crate::stderr(&out).contains("signed the missing checkpoint"));
    Store::open(&db).unwrap().verify().unwrap();
}
