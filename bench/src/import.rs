//! Durable bulk imports into careledger: `bench import --events N` (uniform synthetic talks,
//! issue 2) and the `import` stage of `bench --scale …` (the generated county year).
//!
//! It owns what is timed in an import: only `Store::append` (encode, chain, index, flush and
//! fsync of each batch), never the generation of the drafts. It must never bypass the store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{Duration as Span, TimeZone, Utc};
use events::event::Mood;
use events::{Draft, Event, Source};
use fixtures::Generated;
use store::Store;

use crate::StageOut;
use crate::data::DataArgs;
use crate::machine::{dir_size, machine};

/// Where the careledger store of a run lives inside the work directory.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("careledger")
}

/// Synthetic talks for `bench import`: 300 children per school, 10 staff per school, spread
/// over a term. Uniform on purpose: it measures the append path, not a realistic mix.
pub fn synthetic_drafts(n: u64) -> Vec<Draft> {
    let start = Utc
        .with_ymd_and_hms(2025, 9, 1, 2, 0, 0)
        .single()
        .expect("2025-09-01T02:00Z is a valid instant");
    (0..n)
        .map(|i| {
            let child = i % 30_000;
            let school = child / 300;
            let staff = school * 10 + child % 10;
            Draft {
                sealed: None,
                id: format!("bench-{i}"),
                occurred_at: start + Span::minutes((i % 200_000) as i64),
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

/// `bench import --events N --batch B`: durable appends of `events` synthetic talks in batches
/// of `batch`, then a full scan and a verify of the chain.
pub fn import(events: u64, batch: u64, dir: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let path = dir.unwrap_or_else(|| tmp.path().join("bench-store"));
    let t = Instant::now();
    let drafts = synthetic_drafts(events);
    let gen_s = t.elapsed().as_secs_f64();
    let store =
        Store::create(&path).with_context(|| format!("creating a store at {}", path.display()))?;
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
    println!("machine: {}", machine().describe());
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

/// Events per second over timed batches (events, time of the batch).
fn rate(timed: &[(usize, Duration)]) -> f64 {
    let n: usize = timed.iter().map(|(n, _)| n).sum();
    let s: f64 = timed.iter().map(|(_, d)| d.as_secs_f64()).sum();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

/// Stage `import`: the generated year into a fresh careledger store, one `Store::append` per
/// batch (source `migration`: the generator carries each event's `recorded_at`). First, in
/// the same process, the same import into another fresh store with the read models turned
/// off (`Store::turn_read_models_off_for_bench`), removed afterwards: what the read models
/// cost an import.
pub fn careledger(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let bare = dir.join("careledger-without-read-models");
    let (bare_timed, bare_cpu, _, _) = import_into(data, &bare, false)?;
    std::fs::remove_dir_all(&bare).with_context(|| format!("removing {}", bare.display()))?;
    let path = store_path(dir);
    let (timed, cpu, generate, store) = import_into(data, &path, true)?;
    let events: usize = timed.iter().map(|(n, _)| n).sum();
    let append: f64 = timed.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let quarter = timed.len().div_ceil(4);
    let mut out = StageOut::default();
    out.set("events", events as f64);
    out.set("batches", timed.len() as f64);
    out.set("append_s", append);
    out.set(
        "append_without_read_models_s",
        bare_timed.iter().map(|(_, d)| d.as_secs_f64()).sum(),
    );
    // The process's CPU time over the appends (every thread's): steadier than their wall
    // time on a shared machine, and it counts what the read models cost a second core.
    out.set("append_cpu_s", cpu.as_secs_f64());
    out.set("append_without_read_models_cpu_s", bare_cpu.as_secs_f64());
    out.set("generate_s", generate.as_secs_f64());
    out.set("first_quarter_eps", rate(&timed[..quarter]));
    out.set("last_quarter_eps", rate(&timed[timed.len() - quarter..]));
    out.set("disk_bytes", dir_size(&path) as f64);
    out.note("head_hash", store.head().hash.to_hex());
    Ok(out)
}

/// Each batch's size and append time.
type Timed = Vec<(usize, Duration)>;

/// Imports the generated year into a fresh store at `path`; returns each batch's size and
/// append time, the process's CPU time over the appends, the time spent generating, and the
/// store.
fn import_into(
    data: &DataArgs,
    path: &Path,
    read_models: bool,
) -> Result<(Timed, Duration, Duration, Store)> {
    let store =
        Store::create(path).with_context(|| format!("creating a store at {}", path.display()))?;
    if !read_models {
        store.turn_read_models_off_for_bench();
    }
    let mut batches = data.batches()?;
    let mut generate = Duration::ZERO;
    let mut timed: Timed = Vec::new();
    let mut cpu = Duration::ZERO;
    let cpu_now = || crate::machine::process_cpu().context("reading /proc/self/stat");
    loop {
        let t = Instant::now();
        let Some(batch) = batches.next() else { break };
        let drafts: Vec<Draft> = batch.into_iter().map(Generated::into_draft).collect();
        generate += t.elapsed();
        let n = drafts.len();
        let (t, c) = (Instant::now(), cpu_now()?);
        let out = store.append(drafts, Source::Migration)?;
        timed.push((n, t.elapsed()));
        cpu += cpu_now()?.saturating_sub(c);
        anyhow::ensure!(
            out.appended == n as u64,
            "the generator repeated an id: {} of {n} appended",
            out.appended
        );
    }
    Ok((timed, cpu, generate, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_timed_batches_when_rating_then_events_over_seconds() {
        let timed = [
            (1000, Duration::from_millis(500)),
            (3000, Duration::from_millis(1500)),
        ];
        assert_eq!(rate(&timed), 2000.0);
        assert_eq!(rate(&[]), 0.0);
    }
}
