//! The read side at scale: a full replay of the projections, teacher scores of one school and
//! of the whole county, one child's archive as of a past time through the by-child index, and
//! the county term report by the polars reporter over the facts the read plan streams.
//!
//! It owns how each read is timed; it must never compute a view itself (that is
//! `projections` and `reports`) nor write to the store.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use events::Event;
use projections::{Period, World};
use reports::Scope;
use store::Store;

use crate::StageOut;
use crate::data::DataArgs;
use crate::import::store_path;
use careledger::plan;

fn open(dir: &Path) -> Result<Store> {
    let path = store_path(dir);
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// The county of the generated schools (every school of the data set is in one county).
fn county_of(store: &Store) -> Result<String> {
    store
        .registry()?
        .schools()
        .next()
        .map(|(_, county)| county.to_owned())
        .context("the imported log registers no school")
}

/// Stage `replay`: the whole log read and folded into a timeline and a world, then scored
/// and reported on.
pub fn replay(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let store = open(dir)?;
    let mut out = StageOut::default();

    // The replay: the reference the read models are tested against.
    let t = Instant::now();
    let tl = careledger::plan::replay(&store, None)?;
    out.set("timeline_s", t.elapsed().as_secs_f64());
    out.set("events", tl.head_seq() as f64);
    let t = Instant::now();
    let world = World::build(&tl);
    out.set("world_s", t.elapsed().as_secs_f64());

    let year = Period::parse(&data.year)?;
    let schools: Vec<String> = world.schools().map(|s| s.id.clone()).collect();
    let first = schools.first().context("the world holds no school")?;
    let t = Instant::now();
    let run = projections::scores(&tl, &world, first, year.clone(), None)?;
    out.set("scores_school_s", t.elapsed().as_secs_f64());
    out.set("scores_school_rows", run.rows.len() as f64);
    out.set(
        "scores_school_children",
        world
            .children()
            .filter(|c| c.registration.school == *first)
            .count() as f64,
    );
    out.note("scores_school", first.clone());

    let t = Instant::now();
    let mut rows = 0;
    for school in &schools {
        rows += projections::scores(&tl, &world, school, year.clone(), None)?
            .rows
            .len();
    }
    out.set("scores_county_s", t.elapsed().as_secs_f64());
    out.set("scores_county_rows", rows as f64);
    out.set("schools", schools.len() as f64);

    // `scores --county`: the same runs on one index of the events.
    let ids: Vec<&str> = schools.iter().map(String::as_str).collect();
    let t = Instant::now();
    let mut indexed_rows = 0;
    for run in projections::scores::scores_of_schools(&tl, &world, &ids, &year, None) {
        indexed_rows += run?.rows.len();
    }
    out.set("scores_county_indexed_s", t.elapsed().as_secs_f64());
    out.set("scores_county_indexed_rows", indexed_rows as f64);

    let county = county_of(&store)?;
    let term = format!("{}-1", data.year);
    let t = Instant::now();
    let report = reports::term_statistics(&tl, &world, Scope::County(county), &term)?;
    out.set("report_memory_s", t.elapsed().as_secs_f64());
    out.set("report_rows", report.frame().height() as f64);
    Ok(out)
}

/// A time before which about two thirds of the log was recorded (the "past" of the as-of
/// figures).
fn past_of(store: &Store) -> Result<chrono::DateTime<chrono::Utc>> {
    let seq = (store.head().seq * 2 / 3).max(1);
    store
        .get(seq)?
        .map(|e| e.recorded_at)
        .context("the imported log is empty")
}

/// Seconds of a closure, with its result.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// Seconds of a closure, with its result and the MiB this process read meanwhile
/// (`machine::bytes_read`; 0 where `/proc` cannot say).
fn timed_read<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, f64, T)> {
    let before = crate::machine::bytes_read();
    let (s, v) = timed(f)?;
    let mib = crate::machine::bytes_read_since(before) as f64 / (1024.0 * 1024.0);
    Ok((s, mib, v))
}

/// Stage `readmodels`: the school-scoped reads as the commands run them through the read models
/// (`plan::scope_timeline`, `plan::worklist_timeline`, `plan::child_timeline`), each from a fresh
/// `Store::open` (store open included, as a user's command pays it): one school's scores as
/// of now and as of a past time, one teacher's worklist, every school's scores, the county's
/// term report as of now and a past time. Then, when the `careledger` binary sits beside this
/// one, the same commands as whole processes (wall time, output discarded).
pub fn readmodels(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let mut out = StageOut::default();
    let (open_s, store) = timed(|| open(dir))?;
    out.set("open_s", open_s);
    let past = past_of(&store)?;
    let county = county_of(&store)?;
    let year = Period::parse(&data.year)?;
    let school = "s001".to_owned();
    // The teacher, whose generated pairings may leave the day's list empty, and the
    // next one, who has children that day (checked below): a worklist figure of an empty list
    // alone would flatter the read.
    let staff = "s001-t01".to_owned();
    let staff2 = "s001-t02".to_owned();
    // A school day of the second term: the day the past instant was recorded.
    let day = events::time::local_date(past);
    // What a school's read needs, against what it reads (`scores_school_read_mib`).
    out.set("school_envelopes", store.school_seqs(&school)?.len() as f64);
    out.set("log_envelopes", store.head().seq as f64);
    drop(store);
    out.set(
        "store_mib",
        crate::machine::dir_size(&store_path(dir)) as f64 / (1024.0 * 1024.0),
    );
    let scores = |as_of| -> Result<usize> {
        let store = open(dir)?;
        let tl = plan::scope_timeline(
            &store,
            &plan::Scope::School(school.clone()),
            as_of,
            &plan::Opener::sealed(),
        )?;
        let world = World::build(&tl);
        // The polars scorer, as `careledger scores --school` runs it.
        Ok(reports::score_run(&tl, &world, &school, &year, None)?
            .rows
            .len())
    };
    let (s, mib, rows) = timed_read(|| scores(None))?;
    out.set("scores_school_s", s);
    out.set("scores_school_read_mib", mib);
    out.set("scores_school_rows", rows as f64);
    let (s, _) = timed(|| scores(Some(past)))?;
    out.set("scores_school_past_s", s);
    let worklist = |staff: &str| -> Result<usize> {
        let store = open(dir)?;
        let tl = plan::worklist_timeline(&store, staff, None, &plan::Opener::sealed())?;
        let world = World::build(&tl);
        let w = projections::worklist::worklist(&tl, &world, staff, day)?;
        Ok(w.current.len() + w.missed.len())
    };
    for (key, staff, with_children) in [("worklist", &staff, false), ("worklist2", &staff2, true)] {
        let (s, mib, n) = timed_read(|| worklist(staff))?;
        anyhow::ensure!(
            n > 0 || !with_children,
            "{staff} has nothing to do on {day}: the worklist figure needs a teacher with children"
        );
        out.set(&format!("{key}_s"), s);
        out.set(&format!("{key}_read_mib"), mib);
        out.set(&format!("{key}_items"), n as f64);
    }
    let county_schools = |store: &Store| -> Result<Vec<String>> {
        let mut schools = store.county_schools(&county)?;
        schools.sort_unstable();
        Ok(schools)
    };
    let (s, rows) = timed(|| {
        // As `careledger scores --county` runs it: the fact rows and the world's envelopes,
        // one world, one polars plan grouped by school.
        let store = open(dir)?;
        let read = plan::row_read(&store, None, &plan::Opener::sealed())?;
        let schools = county_schools(&store)?;
        let ids: Vec<&str> = schools.iter().map(String::as_str).collect();
        let mut rows = 0;
        for run in careledger::report_read::score_runs(&read, &ids, &year, None)? {
            rows += run?.rows.len();
        }
        Ok(rows)
    })?;
    out.set("scores_county_s", s);
    out.set("scores_county_rows", rows as f64);
    let (s, _) = timed(|| {
        // The replay path beside it: the whole log folded, the same scorer.
        let store = open(dir)?;
        let tl = plan::replay(&store, None)?;
        let world = World::build(&tl);
        let schools = county_schools(&store)?;
        let ids: Vec<&str> = schools.iter().map(String::as_str).collect();
        let mut rows = 0;
        for run in reports::score_runs(&tl, &world, &ids, &year, None)? {
            rows += run?.rows.len();
        }
        Ok(rows)
    })?;
    out.set("scores_county_replay_s", s);
    let term = format!("{}-1", data.year);
    let report = |as_of| -> Result<usize> {
        // As `careledger report term --county` runs it: the fact rows.
        let store = open(dir)?;
        let r = careledger::report_read::term_report(
            &store,
            &Scope::County(county.clone()),
            &term,
            as_of,
        )?;
        Ok(r.frame().height())
    };
    let replayed = |as_of| -> Result<usize> {
        let store = open(dir)?;
        let tl = plan::replay(&store, as_of)?;
        let world = World::build(&tl);
        let r = reports::term_statistics(&tl, &world, Scope::County(county.clone()), &term)?;
        Ok(r.frame().height())
    };
    let (s, _) = timed(|| report(None))?;
    out.set("report_county_s", s);
    let (s, _) = timed(|| report(Some(past)))?;
    out.set("report_county_past_s", s);
    let (s, _) = timed(|| replayed(None))?;
    out.set("report_county_replay_s", s);
    let (s, _) = timed(|| replayed(Some(past)))?;
    out.set("report_county_past_replay_s", s);
    out.note("school", school.clone());
    out.note("staff", staff.clone());
    out.note("staff2", staff2.clone());
    out.note("day", day.to_string());
    out.note("past", events::time::format_local(past));
    // The same, as whole `careledger` processes.
    let exe = std::env::current_exe()?.with_file_name("careledger");
    if exe.exists() {
        let db = store_path(dir);
        let past = events::time::format_local(past);
        let day = day.to_string();
        let runs: [(&str, Vec<&str>); 7] = [
            (
                "cli_scores_s",
                vec![
                    "scores", "--school", &school, "--period", &data.year, "--format", "json",
                ],
            ),
            (
                "cli_scores_past_s",
                vec![
                    "scores", "--school", &school, "--period", &data.year, "--format", "json",
                    "--as-of", &past,
                ],
            ),
            (
                "cli_scores_county_s",
                vec![
                    "scores", "--county", &county, "--period", &data.year, "--format", "json",
                ],
            ),
            (
                "cli_worklist_s",
                vec![
                    "worklist", "--staff", &staff, "--on", &day, "--format", "json",
                ],
            ),
            (
                "cli_worklist2_s",
                vec![
                    "worklist", "--staff", &staff2, "--on", &day, "--format", "json",
                ],
            ),
            (
                "cli_report_s",
                vec![
                    "report", "term", "--term", &term, "--county", &county, "--format", "csv",
                ],
            ),
            (
                "cli_report_past_s",
                vec![
                    "report", "term", "--term", &term, "--county", &county, "--format", "csv",
                    "--as-of", &past,
                ],
            ),
        ];
        for (name, args) in runs {
            let t = Instant::now();
            let status = std::process::Command::new(&exe)
                .arg("--db")
                .arg(&db)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "careledger {args:?} failed: {status}");
            out.set(name, t.elapsed().as_secs_f64());
        }
    }
    Ok(out)
}

/// `SplitMix64`: a fixed, dependency-free choice of "random" children, the same every run.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value at percentile `p` (nearest rank) of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Children looked up by the archive stage.
const ARCHIVE_LOOKUPS: usize = 200;

/// Stage `archive`: `ARCHIVE_LOOKUPS` children drawn at random (with replacement, fixed
/// seed) among those registered by the log's midpoint; each one's archive as known then,
/// as `careledger archive CHILD --as-of T` computes it (`plan::child_timeline`):
/// `plan::child_envelopes` (registry events and the child's own, from the read models), their
/// versions filtered as of T, a world of those, the view.
pub fn archive(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let store = open(dir)?;
    let mid = store.head().seq / 2;
    let as_of = store
        .get(mid.max(1))?
        .map(|e| e.recorded_at)
        .context("the imported log is empty")?;
    let registry = store.registry_events(None, Some(as_of))?;
    let children: Vec<String> = registry
        .iter()
        .filter_map(|e| match &e.event {
            Event::ChildRegistered(c) => Some(c.child.clone()),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!children.is_empty(), "no child registered by {as_of}");
    let mut state = data.seed;
    let (mut fetch, mut project) = (Duration::ZERO, Duration::ZERO);
    // Each lookup's time, its place in the run (the first ones find sled's cache cold) and
    // what it read: which lookups make the tail.
    let mut each: Vec<(Duration, usize, usize)> = Vec::with_capacity(ARCHIVE_LOOKUPS);
    let mut read = 0usize;
    let bytes_before = crate::machine::bytes_read();
    for nth in 0..ARCHIVE_LOOKUPS {
        let child = &children[(splitmix(&mut state) % children.len() as u64) as usize];
        let t = Instant::now();
        let envs = plan::child_envelopes(&store, child, Some(as_of), &plan::Opener::sealed())?;
        let n = envs.len();
        read += n;
        let fetched = t.elapsed();
        let (head_seq, head_at) = store.head_as_of(Some(as_of))?;
        let tl = projections::versions::Versions::build(envs).timeline_with_head(
            Some(as_of),
            head_seq,
            head_at,
        )?;
        let world = World::build(&tl);
        std::hint::black_box(projections::archive::archive(&tl, &world, child, None)?);
        let total = t.elapsed();
        fetch += fetched;
        project += total - fetched;
        each.push((total, nth, n));
    }
    let read_kib = crate::machine::bytes_read_since(bytes_before) as f64 / 1024.0;
    each.sort_unstable_by(|a, b| b.cmp(a));
    let times: Vec<Duration> = each.iter().rev().map(|(t, _, _)| *t).collect();
    let slowest: Vec<String> = each
        .iter()
        .take(3)
        .map(|(t, nth, n)| {
            format!(
                "{:.1} ms (lookup {} of the run, {n} envelopes)",
                t.as_secs_f64() * 1e3,
                nth + 1
            )
        })
        .collect();
    let n = times.len() as f64;
    let mut out = StageOut::default();
    out.set("lookups", n);
    out.set("p50_ms", percentile(&times, 50.0).as_secs_f64() * 1e3);
    out.set("p99_ms", percentile(&times, 99.0).as_secs_f64() * 1e3);
    out.set("fetch_ms_mean", fetch.as_secs_f64() * 1e3 / n);
    out.set("project_ms_mean", project.as_secs_f64() * 1e3 / n);
    out.set("envelopes_mean", read as f64 / n);
    out.set("read_kib_mean", read_kib / n);
    out.set("registry_envelopes", registry.len() as f64);
    out.set("as_of_seq", mid as f64);
    out.note("as_of", events::time::format_local(as_of));
    out.note("slowest", slowest.join(", "));
    Ok(out)
}

/// Stage `report`: the county's term report (rules §8) as `report term --county` runs it,
/// alone in its process (its peak memory is the stage's): the fact rows and the world's
/// envelopes (`careledger::report_read::term_report`), then the polars reporter.
pub fn report(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let store = open(dir)?;
    let county = county_of(&store)?;
    let term = format!("{}-1", data.year);
    let t = Instant::now();
    let report = careledger::report_read::term_report(&store, &Scope::County(county), &term, None)?;
    let mut out = StageOut::default();
    out.set("report_s", t.elapsed().as_secs_f64());
    out.set("report_rows", report.frame().height() as f64);
    out.set("events", store.head().seq as f64);
    out.note("term", term);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_sorted_durations_when_taking_percentiles_then_nearest_rank() {
        let d: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 50.0), Duration::from_millis(100));
        assert_eq!(percentile(&d, 99.0), Duration::from_millis(198));
        assert_eq!(percentile(&d[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn given_a_seed_when_drawing_then_the_sequence_repeats() {
        let (mut a, mut b) = (7, 7);
        let x: Vec<u64> = (0..5).map(|_| splitmix(&mut a)).collect();
        let y: Vec<u64> = (0..5).map(|_| splitmix(&mut b)).collect();
        assert_eq!(x, y);
        assert_ne!(x[0], x[1]);
    }
}
