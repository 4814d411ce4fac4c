//! SIGKILL an importing `careledger` at random moments, reopen, and check: `verify` passes,
//! the log holds whole batches only, and every batch acknowledged before the kill is there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use store::Store;

use crate::{prelude, talks};

const FILES: usize = 30;
const PER_FILE: usize = 1500;
const CHILDREN: usize = 40;

#[test]
fn a_killed_import_leaves_whole_acknowledged_batches_and_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut files = vec![dir.path().join("prelude.jsonl")];
    std::fs::write(&files[0], prelude(CHILDREN)).unwrap();
    for f in 0..FILES {
        let path = dir.path().join(format!("batch{f:02}.jsonl"));
        std::fs::write(&path, talks(&format!("b{f:02}"), PER_FILE, CHILDREN)).unwrap();
        files.push(path);
    }
    drop(Store::create(&db).unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acked_ever: Vec<String> = Vec::new();
    let mut interrupted_rounds = 0;
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_careledger"))
            .arg("--db")
            .arg(&db)
            .arg("import")
            .args(&files)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let acked = Arc::clone(&acked);
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("imported ") {
                        let file = rest.split(':').next().unwrap_or_default();
                        let stem = std::path::Path::new(file)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        acked.lock().unwrap().push(stem);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(20..1500)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let acked_now = acked.lock().unwrap().clone();
        if acked_now.len() < files.len() {
            interrupted_rounds += 1;
        }
        acked_ever.extend(acked_now);

        let store = Store::open(&db).unwrap();
        store
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut per_batch: BTreeMap<String, usize> = BTreeMap::new();
        for env in store.scan(None) {
            let id = env.unwrap().id;
            if let Some((b, _)) = id.split_once('-') {
                *per_batch.entry(b.to_owned()).or_default() += 1;
            }
        }
        for (b, n) in &per_batch {
            assert_eq!(*n, PER_FILE, "round {round}: batch {b} is partial");
        }
        for stem in &acked_ever {
            if let Some(b) = stem.strip_prefix("batch") {
                assert_eq!(
                    per_batch.get(&format!("b{b}")),
                    Some(&PER_FILE),
                    "round {round}: acknowledged batch {b} is missing"
                );
            }
        }
    }
    // The kills must have landed mid-import, and progress must have been made across rounds.
    assert!(
        interrupted_rounds >= 3,
        "only {interrupted_rounds} rounds were interrupted"
    );
    assert!(!acked_ever.is_empty(), "no batch was ever acknowledged");
    // An uninterrupted run completes the import.
    let out = crate::careledger(&db, &["import", "--quiet", files[0].to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let rest: Vec<&str> = files[1..].iter().map(|f| f.to_str().unwrap()).collect();
    let mut args = vec!["import"];
    args.extend(rest);
    let out = crate::careledger(&db, &args);
    assert!(out.status.success(), "{}", crate::stderr(&out));
    let store = Store::open(&db).unwrap();
    store.verify().unwrap();
    assert_eq!(store.head().seq as usize, 3 + CHILDREN + FILES * PER_FILE);
}
