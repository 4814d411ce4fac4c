//! Read commands over projections: archives, contact cards, history, progress, pairings,
//! worklists, back-fill, scores and policies.
//!
//! This module owns how envelopes are fetched for a view — a child's views read the by-child
//! index plus the registry events (no replay); whole-school views replay the log, resuming
//! from a stored snapshot when one fits — and it must never compute a view itself.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use events::Envelope;
use projections::snapshot::{self, Snapshot};
use projections::{Period, Timeline, World};
use serde::Serialize;
use store::Store;

use crate::BadInput;
use crate::cli::{ListOpts, ScoreFormat, ScoreOpts};
use crate::output::{self, Listing};

/// Events between stored snapshots of the whole-log timeline, set by
/// `CARELEDGER_SNAPSHOT_EVERY`. Off (0) by default: a snapshot holds every effective fact, and
/// at county scale resuming from one measured twice as slow as replaying the log
/// (docs/BENCHMARKS.md), so it only pays where decoding the log is the bottleneck.
const SNAPSHOT_EVERY: u64 = 0;

fn snapshot_every() -> u64 {
    std::env::var("CARELEDGER_SNAPSHOT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SNAPSHOT_EVERY)
}

/// A projection input error (unknown child, bad period …) is the user's: exit 1.
fn bad(e: projections::ProjectionError) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// Parses a `--valid-at` / `--on` date.
pub fn date_arg(flag: &str, s: Option<&str>) -> Result<Option<NaiveDate>> {
    s.map(|s| {
        events::time::parse_date(s).ok_or_else(|| {
            BadInput(format!("{flag}: expected a date YYYY-MM-DD, found {s:?}")).into()
        })
    })
    .transpose()
}

/// Everything a single child's views need: the registry-kind events of every school the
/// child's file has named and the child's own events (amendments included), in log order,
/// from the indexes — no replay.
pub fn child_envelopes(
    store: &Store,
    child: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Envelope>> {
    let mut envs = store.by_child(child, as_of)?;
    // The schools the child's file names, as corrected: the timeline applies the amendments
    // (they are indexed under the child too), so a corrected school is followed as well.
    let own = Timeline::build(&envs, as_of).map_err(bad)?;
    let mut schools: Vec<String> = own
        .facts()
        .iter()
        .filter_map(|f| match &f.event {
            events::Event::ChildRegistered(r) => Some(r.school.clone()),
            events::Event::ChildUpdated { changes, .. } => changes.school.clone(),
            _ => None,
        })
        .collect();
    schools.sort();
    schools.dedup();
    for school in &schools {
        envs.extend(store.registry_events(Some(school), as_of)?);
    }
    envs.sort_by_key(|e| e.seq);
    envs.dedup_by_key(|e| e.seq);
    Ok(envs)
}

fn snapshot_name() -> String {
    format!("timeline/{}", snapshot::fingerprint())
}

/// The whole log's timeline as of `as_of`: resumed from the latest fitting snapshot (same
/// code fingerprint, taken before `as_of`), else replayed; a fresh snapshot is stored when
/// the log has grown `SNAPSHOT_EVERY` events past the last one.
pub fn whole_timeline(store: &Store, as_of: Option<DateTime<Utc>>) -> Result<Timeline> {
    let head = store.head().seq;
    let name = snapshot_name();
    let stored = store.snapshot_at_or_before(&name, head)?;
    let mut last_snap = 0;
    if let Some((seq, bytes)) = &stored {
        last_snap = *seq;
        // A snapshot that does not decode or does not fit is ignored: replay is always right.
        if let Ok(snap) = rmp_serde::from_slice::<Snapshot>(bytes)
            && snap.fingerprint == snapshot::fingerprint()
            && as_of.is_none_or(|t| snap.head_recorded_at.is_none_or(|r| r <= t))
        {
            let rest: Vec<Envelope> = store
                .scan_range(snap.head_seq + 1, as_of)
                .collect::<Result<_, _>>()?;
            if let Ok(tl) = snap.resume(rest.iter(), as_of) {
                return Ok(tl);
            }
        }
    }
    // Stream the log into the fold: the timeline is built without a second copy of it.
    let mut read_error = None;
    let envs = store.scan(as_of).map_while(|r| match r {
        Ok(env) => Some(env),
        Err(e) => {
            read_error = Some(e);
            None
        }
    });
    let tl = Timeline::build_owned(envs, as_of).map_err(bad)?;
    if let Some(e) = read_error {
        return Err(e.into());
    }
    let every = snapshot_every();
    if every > 0 && tl.head_seq() == head && head >= last_snap + every {
        let snap = Snapshot::take(&tl);
        store.put_snapshot(&name, head, &rmp_serde::to_vec_named(&snap)?)?;
    }
    Ok(tl)
}

/// Prints a view: its own table (first row = headers) or its JSON / CSV.
fn show<T: Serialize>(view: &T, table: Vec<Vec<String>>, opts: &ListOpts) -> Result<()> {
    let mut table = table.into_iter();
    let headers = table.next().unwrap_or_default();
    let text = output::render(
        &Listing {
            headers,
            rows: table.collect(),
            json: view,
        },
        opts.format,
    )?;
    output::emit(&text, opts.out.as_deref())
}

/// `archive CHILD [--valid-at D]`.
pub fn archive(store: &Store, child: &str, valid_at: Option<&str>, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let valid_at = date_arg("--valid-at", valid_at)?;
    let tl = Timeline::build_owned(child_envelopes(store, child, as_of)?, as_of).map_err(bad)?;
    let world = World::build(&tl);
    let view = projections::archive::archive(&tl, &world, child, valid_at).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `contact-card CHILD [--on D]`.
pub fn contact_card(store: &Store, child: &str, on: Option<&str>, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let on = date_arg("--on", on)?;
    let tl = Timeline::build_owned(child_envelopes(store, child, as_of)?, as_of).map_err(bad)?;
    let world = World::build(&tl);
    let view = projections::archive::contact_card(&tl, &world, child, on).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `history CHILD [--role counselor]`.
pub fn history(store: &Store, child: &str, counselor: bool, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let envs = child_envelopes(store, child, as_of)?;
    let tl = Timeline::build(&envs, as_of).map_err(bad)?;
    let world = World::build(&tl);
    let view = projections::history::history(&envs, &tl, &world, child, counselor).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `progress CHILD [--role counselor]`.
pub fn progress(store: &Store, child: &str, counselor: bool, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let tl = Timeline::build_owned(child_envelopes(store, child, as_of)?, as_of).map_err(bad)?;
    let world = World::build(&tl);
    let view = projections::progress::progress(&tl, &world, child, counselor).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `archives --school S [--incomplete] [--valid-at D]`.
pub fn archives(
    store: &Store,
    school: &str,
    incomplete: bool,
    valid_at: Option<&str>,
    opts: &ListOpts,
) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let valid_at = date_arg("--valid-at", valid_at)?;
    let tl = whole_timeline(store, as_of)?;
    let world = World::build(&tl);
    let view =
        projections::archive::archives(&tl, &world, school, valid_at, incomplete).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// The day "today" means for a command: `--on`, else the as-of date, else today (+08:00).
fn day_of(on: Option<NaiveDate>, as_of: Option<DateTime<Utc>>) -> NaiveDate {
    on.unwrap_or_else(|| events::time::local_date(as_of.unwrap_or_else(Utc::now)))
}

/// `pairings --school S [--on D]`.
pub fn pairings(store: &Store, school: &str, on: Option<&str>, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let on = day_of(date_arg("--on", on)?, as_of);
    let tl = whole_timeline(store, as_of)?;
    let world = World::build(&tl);
    let view = projections::pairings::pairings_on(&world, school, on).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `worklist --staff T [--on D]`. With `--on` and no `--as-of`, only what was recorded by
/// the end of that day counts (what the teacher could have seen that day).
pub fn worklist(store: &Store, staff: &str, on: Option<&str>, opts: &ListOpts) -> Result<()> {
    let on = date_arg("--on", on)?;
    let as_of = match (super::as_of(opts.as_of.as_deref())?, on) {
        (Some(t), _) => Some(t),
        (None, Some(d)) => Some(events::time::end_of_day(d)),
        (None, None) => None,
    };
    let day = day_of(on, as_of);
    let tl = whole_timeline(store, as_of)?;
    let world = World::build(&tl);
    let view = projections::worklist::worklist(&tl, &world, staff, day).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// `backfill --school S [--days N]`.
pub fn backfill(store: &Store, school: &str, days: i64, opts: &ListOpts) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let tl = whole_timeline(store, as_of)?;
    let world = World::build(&tl);
    let options = projections::backfill::BackfillOptions {
        late_after_days: days,
        ..Default::default()
    };
    let view = projections::backfill::backfill(&tl, &world, school, &options).map_err(bad)?;
    show(&view, view.to_table(), opts)
}

/// Reads `staff,score` (a header line first). Errors name file, line and field.
pub fn read_other_scores(path: &Path) -> Result<BTreeMap<String, f64>> {
    let file = path.display().to_string();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| BadInput(format!("{file}: expected a readable CSV file: {e}")))?;
    let headers = r
        .headers()
        .map_err(|e| BadInput(format!("{file}:1: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| BadInput(format!("{file}:1: expected a column named {name}")))
    };
    let (staff_col, score_col) = (col("staff")?, col("score")?);
    let mut out = BTreeMap::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| BadInput(format!("{file}:{line}: {e}")))?;
        let staff = rec.get(staff_col).unwrap_or_default().to_owned();
        if staff.is_empty() {
            return Err(
                BadInput(format!("{file}:{line}: field staff: expected a staff id")).into(),
            );
        }
        let raw = rec.get(score_col).unwrap_or_default();
        let score: f64 = raw
            .parse()
            .ok()
            .filter(|s: &f64| (0.0..=100.0).contains(s))
            .ok_or_else(|| {
                BadInput(format!(
                    "{file}:{line}: field score: expected a number from 0 to 100, found {raw:?}"
                ))
            })?;
        if out.insert(staff.clone(), score).is_some() {
            return Err(BadInput(format!(
                "{file}:{line}: field staff: expected each staff member once, found {staff} again"
            ))
            .into());
        }
    }
    Ok(out)
}

/// `scores --school S --period P [--other-scores F] [--staff T]`: rules §7.
///
/// `--format json` prints the rows of rules §7.9 exactly (the contract other tools read); table,
/// CSV and XLSX print the year-end table of `reports` (ranks, the commended and the
/// disqualified). The log position the run was computed on goes to stderr, and into the
/// table and spreadsheet headers.
pub fn scores(
    store: &Store,
    school: &str,
    period: &str,
    other: Option<&Path>,
    drill_staff: Option<&str>,
    opts: &ScoreOpts,
) -> Result<()> {
    let as_of = super::as_of(opts.as_of.as_deref())?;
    let period = Period::parse(period).map_err(bad)?;
    let other = other.map(read_other_scores).transpose()?;
    let tl = whole_timeline(store, as_of)?;
    let world = World::build(&tl);
    let run = projections::scores(&tl, &world, school, period, other.as_ref()).map_err(bad)?;
    for s in &run.other_unmatched {
        eprintln!("warning: {s} is in the other scores but has no row in this run");
    }
    let head_hash = match store.get(run.head_seq)? {
        Some(e) => e.hash.to_hex(),
        None => events::Hash::ZERO.to_hex(),
    };
    let position = format!(
        "school {school}, period {}, as of {}, log head seq {} hash {head_hash}",
        run.period,
        run.as_of
            .map(events::time::format_local)
            .unwrap_or_else(|| "now".into()),
        run.head_seq
    );
    eprintln!("computed on {position}");
    if let Some(staff) = drill_staff {
        let v = run
            .windows_json(staff)
            .ok_or_else(|| BadInput(format!("--staff: {staff} has no row in this run")))?;
        let text = serde_json::to_string_pretty(&v)? + "\n";
        return output::emit(&text, opts.out.as_deref());
    }
    let bytes = match opts.format {
        ScoreFormat::Json => (serde_json::to_string_pretty(&run.rows_json())? + "\n").into_bytes(),
        ScoreFormat::Table | ScoreFormat::Csv | ScoreFormat::Xlsx => {
            let format = match opts.format {
                ScoreFormat::Table => reports::Format::Table,
                ScoreFormat::Csv => reports::Format::Csv,
                _ => reports::Format::Xlsx,
            };
            let table = reports::year_end_table(&run, other.as_ref())?;
            let mut bytes =
                reports::year_end::render_year_end(&table, format, &position, &head_hash)?;
            if opts.format == ScoreFormat::Table {
                bytes.splice(0..0, format!("# {position}\n").into_bytes());
            }
            bytes
        }
    };
    match opts.out.as_deref() {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))
        }
        None if opts.format == ScoreFormat::Xlsx => {
            Err(BadInput("--format xlsx needs --out FILE.xlsx".into()).into())
        }
        None => {
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
            Ok(())
        }
    }
}

/// `policy adopt --school S --from D FILE.toml`: validated like any event, then appended.
pub fn policy_adopt(
    store: &Store,
    school: &str,
    from: &str,
    file: &Path,
    actor: &str,
) -> Result<()> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| BadInput(format!("{name}: expected a readable TOML file: {e}")))?;
    let policy: events::Policy = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        BadInput(format!("{name}{line}: {}", e.message()))
    })?;
    let problems = policy.problems();
    if !problems.is_empty() {
        let msg: Vec<String> = problems
            .iter()
            .map(|p| format!("{name}: field {}: expected {}", p.field, p.expected))
            .collect();
        return Err(BadInput(msg.join("\n")).into());
    }
    let json = serde_json::json!({
        "occurred_at": events::time::format_local(Utc::now()),
        "actor": actor,
        "school": school,
        "effective_from": from,
        "policy": policy,
    });
    super::log::record(store, "policy_adopted", &json.to_string())
}

/// `policy show --school S [--on D]`: the policy in force, as TOML.
pub fn policy_show(
    store: &Store,
    school: &str,
    on: Option<&str>,
    as_of: Option<&str>,
) -> Result<()> {
    let as_of = super::as_of(as_of)?;
    let on = day_of(date_arg("--on", on)?, as_of);
    let tl =
        Timeline::build_owned(store.registry_events(Some(school), as_of)?, as_of).map_err(bad)?;
    let world = World::build(&tl);
    world.require_school(school).map_err(bad)?;
    let policy = world.policy_on(school, on);
    println!("# policy of {school} in force on {on}");
    print!("{}", toml::to_string(policy)?);
    Ok(())
}
