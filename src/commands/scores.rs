//! `scores`: teacher assessment scores (rules §7) of a school — or of every school of a county,
//! the end-of-term evaluation run — for a term or a school year, with the year-end table of
//! `reports`.
//!
//! This module owns what is printed where (the log position to stderr and into the table
//! headers, one file per school for a county); it must never compute a score or a rank (that
//! is the polars scorer `reports::scorer` and `reports::year_end`). `projections::scores` is
//! the scorer's reference in the tests, never called here (`.ci/run` checks it).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use careledger::{plan, report_read};
use projections::{ProjectionError, ScoreRun, World};
use reports::Scope;
use store::Store;

use super::{ScoreOutput, ScoresOptions, bad, plan_error};
use crate::BadInput;

/// One school's output of a score run: the log position line and the bytes `scores --school`
/// prints (or writes), or the drill-down of one staff member.
struct SchoolOutput {
    position: String,
    bytes: Vec<u8>,
    /// Staff of the other scores with no row in this school's run.
    other_unmatched: Vec<String>,
}

/// Renders one school's score run as `opts` asks (the bytes `scores --school` prints).
fn school_output(
    store: &Store,
    run: ScoreRun,
    school: &str,
    opts: &ScoresOptions,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<SchoolOutput> {
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
    let bytes = if let Some(staff) = &opts.drill_staff {
        let v = run
            .windows_json(staff)
            .ok_or_else(|| BadInput(format!("--staff: {staff} has no row in this run")))?;
        (serde_json::to_string_pretty(&v)? + "\n").into_bytes()
    } else {
        match opts.output {
            ScoreOutput::Json => {
                (serde_json::to_string_pretty(&run.rows_json())? + "\n").into_bytes()
            }
            ScoreOutput::Table | ScoreOutput::Csv | ScoreOutput::Xlsx => {
                let format = match opts.output {
                    ScoreOutput::Table => reports::Format::Table,
                    ScoreOutput::Csv => reports::Format::Csv,
                    _ => reports::Format::Xlsx,
                };
                let table = reports::year_end_table(&run, other)?;
                let mut bytes =
                    reports::year_end::render_year_end(&table, format, &position, &head_hash)?;
                if opts.output == ScoreOutput::Table {
                    bytes.splice(0..0, format!("# {position}\n").into_bytes());
                }
                bytes
            }
        }
    };
    Ok(SchoolOutput {
        position,
        bytes,
        other_unmatched: run.other_unmatched,
    })
}

/// `scores (--school S | --county C) --period P [--other-scores F] [--staff T]`.
///
/// `--format json` prints the rows of rules §7.9 exactly (the contract other tools read); table,
/// CSV and XLSX print the year-end table of `reports` (ranks, the commended and the
/// disqualified). The log position the run was computed on goes to stderr, and into the
/// table and spreadsheet headers. A school's timeline is the school's, from the read models
/// (`plan::scope_timeline`). A county run computes every school of the county on one read of
/// the fact rows (`plan::row_read`): see [`county`].
pub fn scores(store: &Store, opts: &ScoresOptions, open: &plan::Opener<'_>) -> Result<()> {
    let other = opts
        .other_scores
        .as_deref()
        .map(ingest::other_scores::read)
        .transpose()
        .map_err(|e| BadInput(e.to_string()))?;
    // Scores read no personal field; the staff names of the year-end table are opened.
    let school = match &opts.scope {
        Scope::School(s) => s,
        Scope::County(c) => {
            let read = plan::row_read(store, opts.as_of, open).map_err(plan_error)?;
            return county(store, read, c, opts, other.as_ref());
        }
    };
    let read = plan::Scope::School(school.clone());
    let tl = plan::scope_timeline(store, &read, opts.as_of, open).map_err(plan_error)?;
    let world = World::build(&tl);
    let run = reports::score_run(&tl, &world, school, &opts.period, other.as_ref())
        .map_err(score_error)?;
    let one = school_output(store, run, school, opts, other.as_ref())?;
    for s in &one.other_unmatched {
        eprintln!("warning: {s} is in the other scores but has no row in this run");
    }
    eprintln!("computed on {}", one.position);
    let bytes = one.bytes;
    match opts.out.as_deref() {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))
        }
        None if opts.output == ScoreOutput::Xlsx && opts.drill_staff.is_none() => {
            Err(BadInput("--format xlsx needs --out FILE.xlsx".into()).into())
        }
        None => {
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
            Ok(())
        }
    }
}

/// A school that cannot be scored (unknown, no such period, bad other scores), a policy
/// whose decimals are beyond the exact range or a run beyond the plan's packed keys is the
/// input's (exit 1); polars failing is not.
fn score_error(e: reports::ReportError) -> anyhow::Error {
    match e {
        reports::ReportError::Projection { source } => bad(source),
        e @ (reports::ReportError::ScoreRange { .. } | reports::ReportError::KeyRange { .. }) => {
            BadInput(e.to_string()).into()
        }
        e => e.into(),
    }
}

/// The file a county run writes for one school into `--out DIR`.
fn school_file(dir: &Path, school: &str, output: ScoreOutput) -> std::path::PathBuf {
    let ext = match output {
        ScoreOutput::Table => "txt",
        ScoreOutput::Json => "json",
        ScoreOutput::Csv => "csv",
        ScoreOutput::Xlsx => "xlsx",
    };
    let safe: String = school
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("scores-{safe}.{ext}"))
}

/// `scores --county C`: every school of the county, by id, on one scoped read, one world and
/// one polars plan over the county's fact rows, grouped by school (`report_read::score_runs`), each
/// with exactly the rows (and bytes) `scores --school` gives it. With `--out DIR` one file per
/// school (`scores-<school>.<ext>`, byte-identical to `scores --school S --out FILE`); on
/// stdout the table is each school's table in turn (a blank line between) and JSON an array
/// of `{"school", "rows"}` with each school's rows; CSV and XLSX need `--out DIR`. A school
/// that has no such period (no term, no term in the year) is left out and named on stderr,
/// as the term report does (rules §8.1); a county none of whose schools has it is an error.
fn county(
    store: &Store,
    read: plan::RowRead<'_>,
    county: &str,
    opts: &ScoresOptions,
    other: Option<&BTreeMap<String, f64>>,
) -> Result<()> {
    if opts.drill_staff.is_some() {
        return Err(
            BadInput("--staff needs --school (a drill-down is one staff member's)".into()).into(),
        );
    }
    let mut schools: Vec<&str> = read
        .world()
        .schools()
        .filter(|s| s.county == county)
        .map(|s| s.id.as_str())
        .collect();
    schools.sort_unstable();
    if schools.is_empty() {
        return Err(BadInput(format!("no school is registered in county {county}")).into());
    }
    if opts.out.is_none() && matches!(opts.output, ScoreOutput::Csv | ScoreOutput::Xlsx) {
        return Err(BadInput(
            "--county with csv or xlsx needs --out DIR (one file per school)".into(),
        )
        .into());
    }
    let mut outputs = Vec::new();
    let mut matched = std::collections::BTreeSet::new();
    let runs =
        report_read::score_runs(&read, &schools, &opts.period, other).map_err(|e| match e {
            report_read::ReportReadError::Plan(e) => plan_error(e),
            report_read::ReportReadError::Report(e) => score_error(e),
        })?;
    // The runs are made: the read is freed while they are written out.
    let schools: Vec<String> = schools.into_iter().map(str::to_owned).collect();
    plan::drop_beside(read.into_world());
    for (school, run) in schools.iter().map(String::as_str).zip(runs) {
        match run {
            Ok(run) => {
                let one = school_output(store, run, school, opts, other)?;
                if let Some(other) = other {
                    matched.extend(
                        other
                            .keys()
                            .filter(|s| !one.other_unmatched.contains(s))
                            .cloned(),
                    );
                }
                eprintln!("computed on {}", one.position);
                outputs.push((school, one));
            }
            Err(
                e @ (ProjectionError::UnknownTerm { .. } | ProjectionError::NoTermsInYear { .. }),
            ) => eprintln!("note: {e}; left out"),
            Err(e) => return Err(bad(e)),
        }
    }
    if outputs.is_empty() {
        return Err(BadInput(format!(
            "no school of county {county} has period {}",
            opts.period
        ))
        .into());
    }
    if let Some(other) = other {
        for s in other.keys().filter(|s| !matched.contains(*s)) {
            eprintln!("warning: {s} is in the other scores but has no row in this run");
        }
    }
    if let Some(dir) = opts.out.as_deref() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (school, one) in &outputs {
            let path = school_file(dir, school, opts.output);
            std::fs::write(&path, &one.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let bytes = match opts.output {
        ScoreOutput::Json => {
            let mut all = Vec::with_capacity(outputs.len());
            for (school, one) in &outputs {
                let rows: serde_json::Value = serde_json::from_slice(&one.bytes)?;
                all.push(serde_json::json!({ "school": school, "rows": rows }));
            }
            (serde_json::to_string_pretty(&all)? + "\n").into_bytes()
        }
        _ => {
            let parts: Vec<&[u8]> = outputs.iter().map(|(_, o)| o.bytes.as_slice()).collect();
            parts.join(&b"\n"[..])
        }
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
    Ok(())
}
