//! What keeping the Merkle tree and signing checkpoints costs (docs/proofs.md, "Cost"): the same
//! synthetic batches appended to fresh stores with the tree and a signing key, and without the
//! tree, alternating, in one run; then, on the last store with the tree, inclusion proof times
//! (p50, p99 of random leaves at the head), consistency proof times (from a size one batch back
//! and from half the log), and the size of one child's bundle.
//!
//! `cargo run --release -p store --example tree_overhead -- EVENTS BATCH CHILDREN DIR`
//!
//! It owns nothing the store relies on; it must never be pointed at real data (DIR is emptied).

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use events::envelope::Source;
use events::event::Mood;
use events::{Draft, Event};
use store::Store;

fn talk(i: u64, children: u64) -> Draft {
    Draft {
        sealed: None,
        id: format!("talk-{i:09}"),
        occurred_at: Utc.with_ymd_and_hms(2025, 9, 1, 4, 0, 0).unwrap()
            + Duration::minutes((i % 200_000) as i64),
        actor: format!("t{:04}", i % (children / 7 + 1)),
        event: Event::TalkHeld {
            staff: format!("t{:04}", i % (children / 7 + 1)),
            child: format!("c{:06}", i % children),
            topic: "学习与生活".to_owned(),
            summary: "谈了期中考试的准备情况，鼓励其制定每周学习计划，按时就寝。".to_owned(),
            mood: Mood::Ok,
            follow_up: None,
        },
        recorded_at: None,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// Appends every batch; returns the seconds taken.
fn import(
    path: &std::path::Path,
    events: u64,
    batch: u64,
    children: u64,
    tree: bool,
) -> (f64, Store) {
    let store = Store::create(path).expect("a fresh store");
    if tree {
        let signer = tlog::NoteSigner::new(
            "careledger.example/bench",
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        )
        .expect("a valid key name");
        store
            .set_signer(signer)
            .expect("an empty store takes any key");
    } else {
        store.turn_tree_off_for_bench();
    }
    let start = Instant::now();
    let mut i = 0;
    while i < events {
        let n = batch.min(events - i);
        let drafts: Vec<Draft> = (i..i + n).map(|k| talk(k, children)).collect();
        store.append_at(drafts, Source::Cli, now()).expect("append");
        i += n;
    }
    (start.elapsed().as_secs_f64(), store)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, events, batch, children, dir] = &args[..] else {
        eprintln!("usage: tree_overhead EVENTS BATCH CHILDREN DIR");
        std::process::exit(2);
    };
    let events: u64 = events.parse().expect("EVENTS is a number");
    let batch: u64 = batch.parse().expect("BATCH is a number");
    let children: u64 = children.parse().expect("CHILDREN is a number");
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("DIR can be made");
    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut last = None;
    for round in 0..4 {
        let tree = round % 2 == 1;
        let path = dir.join(format!("round{round}"));
        let (secs, store) = import(&path, events, batch, children, tree);
        println!(
            "import {} tree: {events} events in {secs:.2} s ({:.0} events/s)",
            if tree { "with" } else { "without" },
            events as f64 / secs
        );
        if tree {
            with.push(secs);
            store.verify().expect("the tree verifies");
            drop(last.replace((store, path)));
        } else {
            without.push(secs);
            drop(store);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "overhead of the tree and checkpoints: {:+.1} % (mean of {} runs each)",
        (mean(&with) / mean(&without) - 1.0) * 100.0,
        with.len()
    );
    let (store, _) = last.expect("a run with the tree");
    let head = store.head().seq;
    let mut times = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let leaf = x % head;
        let t = Instant::now();
        store.inclusion_proof(head, leaf).expect("a proof");
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "inclusion proof at size {head}: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (2,000 random leaves)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
    for old in [head.saturating_sub(batch).max(1), head / 2] {
        let t = Instant::now();
        let p = store.consistency_proof(old, head).expect("a proof");
        println!(
            "consistency proof {old} -> {head}: {} hashes in {:.0} µs",
            p.len(),
            t.elapsed().as_secs_f64() * 1e6
        );
    }
    // One child's bundle, as `careledger bundle` writes it (entries only: these talks carry no
    // notes to withhold).
    let child = "c000042";
    let t = Instant::now();
    let envs = store.by_child(child, None).expect("the child's events");
    let cp = store
        .latest_checkpoint()
        .expect("read")
        .expect("a checkpoint");
    let entries: Vec<serde_json::Value> = envs
        .iter()
        .map(|e| {
            let (hash, body) = store.stored_leaf(e.seq).expect("read").expect("stored");
            serde_json::json!({
                "leaf_index": e.seq - 1,
                "envelope": STANDARD.encode(&body),
                "hash": STANDARD.encode(hash.0),
                "proof": store.inclusion_proof(cp.size, e.seq - 1).expect("a proof")
                    .iter().map(|h| h.to_base64()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let bundle = serde_json::json!({
        "format": "careledger-bundle", "version": 2, "checkpoint": cp.note,
        "child": child, "entries": entries,
    });
    let text = serde_json::to_string_pretty(&bundle).expect("json");
    println!(
        "bundle of {child}: {} envelopes, {} bytes, made in {:.0} ms",
        envs.len(),
        text.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}
