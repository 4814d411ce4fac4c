//! `scores`: teacher assessment scores (rules §7) of a school for a term or a school year,
//! with the year-end table of `reports`.
//!
//! This module owns what is printed where (the log position to stderr and into the table
//! headers); it must never compute a score or a rank (that is `projections::scores` and
//! `reports::year_end`).

use anyhow::{Context, Result};
use careledger::plan;
use projections::World;
use store::Store;

use super::{ScoreOutput, ScoresOptions, bad, plan_error};
use crate::BadInput;
use crate::output;

/// `scores --school S --period P [--other-scores F] [--staff T]`.
///
/// `--format json` prints the rows of rules §7.9 exactly (the contract other tools read); table,
/// CSV and XLSX print the year-end table of `reports` (ranks, the commended and the
/// disqualified). The log position the run was computed on goes to stderr, and into the
/// table and spreadsheet headers.
pub fn scores(store: &Store, opts: &ScoresOptions, open: &plan::Opener<'_>) -> Result<()> {
    let ScoresOptions {
        school,
        period,
        other_scores,
        drill_staff,
        as_of,
        output,
        out,
    } = opts;
    let other = other_scores
        .as_deref()
        .map(ingest::other_scores::read)
        .transpose()
        .map_err(|e| BadInput(e.to_string()))?;
    // Scores read no personal field; the staff names of the year-end table are opened.
    let tl = plan::scope_timeline(store, &plan::Scope::School(school.clone()), *as_of, open)
        .map_err(plan_error)?;
    let world = World::build(&tl);
    let run =
        projections::scores(&tl, &world, school, period.clone(), other.as_ref()).map_err(bad)?;
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
        return output::emit(&text, out.as_deref());
    }
    let bytes = match output {
        ScoreOutput::Json => (serde_json::to_string_pretty(&run.rows_json())? + "\n").into_bytes(),
        ScoreOutput::Table | ScoreOutput::Csv | ScoreOutput::Xlsx => {
            let format = match output {
                ScoreOutput::Table => reports::Format::Table,
                ScoreOutput::Csv => reports::Format::Csv,
                _ => reports::Format::Xlsx,
            };
            let table = reports::year_end_table(&run, other.as_ref())?;
            let mut bytes =
                reports::year_end::render_year_end(&table, format, &position, &head_hash)?;
            if *output == ScoreOutput::Table {
                bytes.splice(0..0, format!("# {position}\n").into_bytes());
            }
            bytes
        }
    };
    match out.as_deref() {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))
        }
        None if *output == ScoreOutput::Xlsx => {
            Err(BadInput("--format xlsx needs --out FILE.xlsx".into()).into())
        }
        None => {
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
            Ok(())
        }
    }
}
