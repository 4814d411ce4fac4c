//! `careledger bench …`: benchmarks of whole operations on synthetic data, printed as a table
//! with the machine they ran on. Figures are measured, never asserted in tests.
//!
//! This module owns the benchmark drivers; it must never be used by tests for timing.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use chrono::{Duration, TimeZone, Utc};
use clap::{Args, Subcommand};
use store::event::Mood;
use store::{Draft, Event, Source, Store};

/// `careledger bench …`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Durable bulk import of synthetic events into a fresh store.
    Import {
        /// Number of events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per batch (one atomic, fsynced append each).
        #[arg(long, default_value_t = 1_000_000)]
        batch: u64,
        /// Work directory (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs a benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchWhat::Import { events, batch, dir } => import(events, batch, dir),
    }
}

/// Synthetic talks: 300 children per school, 10 staff per school, spread over a term.
pub fn synthetic_drafts(n: u64) -> Vec<Draft> {
    let start = Utc
        .with_ymd_and_hms(2025, 9, 1, 2, 0, 0)
        .single()
        .expect("a valid instant");
    (0..n)
        .map(|i| {
            let child = i % 30_000;
            let school = child / 300;
            let staff = school * 10 + child % 10;
            Draft {
                id: format!("bench-{i}"),
                occurred_at: start + Duration::minutes((i % 200_000) as i64),
                actor: format!("s{staff}"),
                event: Event::TalkHeld {
                    staff: format!("s{staff}"),
                    child: format!("c{child}"),
                    topic: "学习与生活".to_owned(),
                    summary: "谈了最近的学习情况和与父母通话的安排，孩子情绪平稳".to_owned(),
                    mood: Mood::Ok,
                    follow_up: None,
                },
                recorded_at: None,
            }
        })
        .collect()
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Prints the machine the figures come from.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".to_owned());
    format!("{cpus} cores, {model}")
}

/// `bench import`: durable appends of `events` synthetic events in batches of `batch`.
pub fn import(events: u64, batch: u64, dir: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let path = dir.unwrap_or_else(|| tmp.path().join("bench-store"));
    let t = Instant::now();
    let drafts = synthetic_drafts(events);
    let gen_s = t.elapsed().as_secs_f64();
    let store = Store::create(&path)?;
    let t = Instant::now();
    let mut left = drafts.into_iter().peekable();
    let mut batches = 0u64;
    while left.peek().is_some() {
        let chunk: Vec<Draft> = left.by_ref().take(batch.max(1) as usize).collect();
        store.append(chunk, Source::Import("bench".into()))?;
        batches += 1;
    }
    let append_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scanned = store.scan(None).try_fold(0u64, |n, e| e.map(|_| n + 1))?;
    let scan_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let verified = store.verify()?;
    let verify_s = t.elapsed().as_secs_f64();
    let bytes = dir_size(&path);
    println!("machine: {}", machine());
    println!("| measure | value |");
    println!("|---|---|");
    println!("| events | {events} in {batches} batch(es) |");
    println!("| synthesize drafts (not timed below) | {gen_s:.2} s |");
    println!(
        "| durable import (encode, chain, index, fsync) | {append_s:.2} s = {:.0} events/s |",
        events as f64 / append_s
    );
    println!(
        "| full scan + decode | {scan_s:.2} s = {:.0} events/s ({scanned}) |",
        scanned as f64 / scan_s
    );
    println!(
        "| verify (re-hash chain) | {verify_s:.2} s = {:.0} events/s ({}) |",
        verified.events as f64 / verify_s,
        verified.events
    );
    println!(
        "| disk | {:.1} MB ({:.0} B/event) |",
        bytes as f64 / 1e6,
        bytes as f64 / events.max(1) as f64
    );
    Ok(())
}
