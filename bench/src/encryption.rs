//! Stage `encryption` (issue 13, docs/privacy.md): the county import and the county term report
//! with encryption off and on, in the same process on the same generated events, and one
//! child's archive with encryption on.
//!
//! Off: `Store::append` of each batch, as the `import` stage. On: the same batches sealed first
//! by `careledger::sealing::seal_batch` (what `careledger import` does with a key directory),
//! then appended; the time of each includes both. The term report reads no personal field, so
//! it runs on the clear parts of either store and must give the same rows (checked: the stage
//! fails otherwise). The archive of random children is opened with a freshly opened key
//! directory, as one `careledger archive` run opens it. It owns how these are timed; it must never compute a view itself nor
//! keep a key anywhere but the run's own key directory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use events::{Draft, Event, Source};
use fixtures::Generated;
use projections::World;
use reports::Scope;
use store::Store;
use vault::{Reader, Vault};

use crate::StageOut;
use crate::data::DataArgs;
use crate::queries::{percentile, splitmix};
use careledger::plan;

/// Children looked up for the archive with encryption on.
const ARCHIVE_LOOKUPS: usize = 200;

/// The time of importing the generated year into the fresh store at `path`, sealing each
/// batch first when `vault` is given; returns (seconds, of which sealing, events).
fn import(data: &DataArgs, path: &Path, vault: Option<&Vault>) -> Result<(f64, f64, u64)> {
    let store =
        Store::create(path).with_context(|| format!("creating a store at {}", path.display()))?;
    let (mut total, mut sealing) = (Duration::ZERO, Duration::ZERO);
    let mut n = 0u64;
    for batch in data.batches()? {
        let mut drafts: Vec<Draft> = batch.into_iter().map(Generated::into_draft).collect();
        let t = Instant::now();
        if let Some(v) = vault {
            careledger::sealing::seal_batch(&store, v, &mut drafts).map_err(|r| {
                anyhow::anyhow!("sealing draft {} of a batch: {}", r.index, r.error)
            })?;
            sealing += t.elapsed();
        }
        let out = store.append(drafts, Source::Migration)?;
        total += t.elapsed();
        n += out.appended;
    }
    Ok((total.as_secs_f64(), sealing.as_secs_f64(), n))
}

/// The county's term report on the store at `path`, as `report term --county` runs it;
/// returns (seconds, the report as JSON).
fn report(path: &Path, term: &str) -> Result<(f64, Vec<u8>)> {
    let store = Store::open(path).with_context(|| format!("opening {}", path.display()))?;
    let county = store
        .registry()?
        .schools()
        .next()
        .map(|(_, c)| c.to_owned())
        .context("the imported log registers no school")?;
    let t = Instant::now();
    let scan = plan::fact_scan(&store, None)?;
    let mut facts = reports::FactFrame::new();
    for fact in scan.facts(reports::columnar::counted_by_term_report) {
        facts.push(&fact?)?;
    }
    let report = reports::term_report(scan.world(), facts, Scope::County(county), term)?;
    let s = t.elapsed().as_secs_f64();
    Ok((s, reports::render(&report, reports::Format::Json)?))
}

/// `ARCHIVE_LOOKUPS` random children's archives as of the log's midpoint, each opened with
/// the key directory `keys` opened afresh (as one `careledger archive CHILD --as-of T` run
/// reads it: no key is unwrapped yet); returns (p50, p99) in ms.
fn archive(path: &Path, keys: &Path, seed: u64) -> Result<(f64, f64)> {
    let store = Store::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mid = store.head().seq / 2;
    let as_of = store
        .get(mid.max(1))?
        .map(|e| e.recorded_at)
        .context("the imported log is empty")?;
    let children: Vec<String> = store
        .registry_events(None, Some(as_of))?
        .iter()
        .filter_map(|e| match &e.event {
            Event::ChildRegistered(c) => Some(c.child.clone()),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!children.is_empty(), "no child registered by {as_of}");
    let mut state = seed;
    let mut times = Vec::with_capacity(ARCHIVE_LOOKUPS);
    for _ in 0..ARCHIVE_LOOKUPS {
        let child = &children[(splitmix(&mut state) % children.len() as u64) as usize];
        let t = Instant::now();
        let vault =
            Vault::open_dir(keys)?.context("the run's key directory lost its master key")?;
        let open = plan::Opener::new(Some(&vault), Reader::Staff);
        let tl = plan::child_timeline(&store, child, Some(as_of), &open)?;
        let world = World::build(&tl);
        std::hint::black_box(projections::archive::archive(&tl, &world, child, None)?);
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let ms = |p| percentile(&times, p).as_secs_f64() * 1e3;
    Ok((ms(50.0), ms(99.0)))
}

/// Stage `encryption`.
pub fn encryption(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let (off, on) = (dir.join("encryption-off"), dir.join("encryption-on"));
    let keys = dir.join("encryption-on.keys");
    let vault = Vault::create(&keys)?;
    let (off_s, _, events) = import(data, &off, None)?;
    let (on_s, seal_s, events_on) = import(data, &on, Some(&vault))?;
    anyhow::ensure!(
        events == events_on,
        "the two imports appended {events} and {events_on} events"
    );
    let term = format!("{}-1", data.year);
    // Off, on, on, off: a drift of the machine's state over the four runs (the page cache
    // holding one store more than the other) falls on both sides alike.
    let (off_1, rows_off) = report(&off, &term)?;
    let (on_1, rows_on) = report(&on, &term)?;
    let (on_2, _) = report(&on, &term)?;
    let (off_2, _) = report(&off, &term)?;
    anyhow::ensure!(
        rows_off == rows_on,
        "the term report differs with encryption on: it must read no personal field"
    );
    let (report_off_s, report_on_s) = ((off_1 + off_2) / 2.0, (on_1 + on_2) / 2.0);
    let (p50, p99) = archive(&on, &keys, data.seed)?;
    let mut out = StageOut::default();
    out.set("events", events as f64);
    out.set("import_off_s", off_s);
    out.set("import_on_s", on_s);
    out.set("seal_s", seal_s);
    out.set("report_off_s", report_off_s);
    out.set("report_on_s", report_on_s);
    out.note(
        "report_runs",
        format!("off {off_1:.2} s, on {on_1:.2} s, on {on_2:.2} s, off {off_2:.2} s"),
    );
    out.set("archive_on_p50_ms", p50);
    out.set("archive_on_p99_ms", p99);
    out.set("lookups", ARCHIVE_LOOKUPS as f64);
    out.set("disk_off_bytes", crate::machine::dir_size(&off) as f64);
    out.set("disk_on_bytes", crate::machine::dir_size(&on) as f64);
    out.note("report_equal", "yes");
    out.note("term", term);
    Ok(out)
}

/// The table rows of the stage: import and report off vs on, and the archive with encryption
/// on (`[measure, how, result, peak]`).
pub fn rows(out: Option<&StageOut>) -> Vec<[String; 4]> {
    let Some(o) = out else {
        return Vec::new();
    };
    let f = |k: &str| o.figures.get(k).copied().unwrap_or(f64::NAN);
    let peak = o
        .peak_rss_kib
        .map(|kib| format!("{:.0} MiB", kib as f64 / 1024.0))
        .unwrap_or_default();
    let events = f("events");
    let pct = |on: f64, off: f64| (on / off - 1.0) * 100.0;
    vec![
        [
            "encryption: county import, off vs on".to_owned(),
            format!(
                "the same {events:.0} generated events into two fresh stores in one process: `Store::append` per batch; on: `careledger::sealing::seal_batch` (XChaCha20-Poly1305 per event, per-child keys) first; seal {:.2} s of it",
                f("seal_s")
            ),
            format!(
                "off {:.2} s ({:.0} events/s), on {:.2} s ({:.0} events/s): {:+.1}%; disk off {:.1} MB, on {:.1} MB",
                f("import_off_s"),
                events / f("import_off_s"),
                f("import_on_s"),
                events / f("import_on_s"),
                pct(f("import_on_s"), f("import_off_s")),
                f("disk_off_bytes") / 1e6,
                f("disk_on_bytes") / 1e6
            ),
            peak,
        ],
        [
            "encryption: county term report, off vs on".to_owned(),
            format!(
                "`plan::fact_scan` + polars `term_report`, term {}, on each store (no key: it reads clear parts), run off, on, on, off ({}); rows equal: {}",
                o.notes.get("term").cloned().unwrap_or_default(),
                o.notes.get("report_runs").cloned().unwrap_or_default(),
                o.notes.get("report_equal").cloned().unwrap_or_default()
            ),
            format!(
                "mean off {:.2} s, on {:.2} s: {:+.1}%",
                f("report_off_s"),
                f("report_on_s"),
                pct(f("report_on_s"), f("report_off_s"))
            ),
            String::new(),
        ],
        [
            "encryption: one child's archive, on".to_owned(),
            format!(
                "{:.0} random children as of the log's midpoint, each as one `careledger archive` run reads it: the key directory opened afresh, `plan::child_timeline` opened with it (`Opener`: every sealed envelope read, registry events of the county included, unwraps its subject's key once), world, `archive`",
                f("lookups")
            ),
            format!(
                "p50 {:.1} ms, p99 {:.1} ms",
                f("archive_on_p50_ms"),
                f("archive_on_p99_ms")
            ),
            String::new(),
        ],
    ]
}
