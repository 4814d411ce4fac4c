//! SIGKILL an importing `careledger` whose store signs checkpoints, at random moments, and
//! check on reopen that the tree, the checkpoints and the log agree: `verify` (which walks the
//! stored tree and every checkpoint's root against the log) passes, no checkpoint is past the
//! head, and the head has a checkpoint once the store is opened with its key.

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
    for round in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
            .arg("--db")
            .arg(&db)
            .arg("--keys")
            .arg(&keys)
            .arg("import")
            .args(&files)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..1500)));
        // Kill it wherever it is (it may also have finished: then the kill does nothing).
        let _ = child.kill();
        child.wait().unwrap();

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
}
