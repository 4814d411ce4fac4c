//! Command handlers: each opens the store, calls the crates, prints the result.
//!
//! This module owns the wiring and the human-facing messages (stderr); it must never
//! implement a rule of its own, nor print a counseling note.

pub(crate) mod keys;
mod log;
mod proofs;
pub(crate) mod views;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::cli::{
    Cli, Command, ExportFormat, ExportWhat, FixturesWhat, KeysWhat, PolicyWhat, ProofsCommand,
    ReportWhat, Role,
};
use crate::{BadInput, bench};
use store::Store;

pub use log::import_files;

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let db = cli.db;
    let keys_dir = cli.keys;
    let keys_dir = keys_dir.as_deref();
    match cli.command {
        Command::Init { origin } => keys::init(&db, keys_dir, origin.as_deref()),
        Command::Import {
            files,
            preserve_recorded_at,
            dry_run,
            quiet,
        } => {
            let store = if dry_run {
                open(&db)?
            } else {
                keys::open_signing(&db, keys_dir)?
            };
            import_files(&store, &files, preserve_recorded_at, dry_run, quiet).map(|_| ())
        }
        Command::Record { r#type, json } => {
            log::record(&keys::open_signing(&db, keys_dir)?, &r#type, &json)
        }
        Command::Verify => log::verify(&open(&db)?),
        Command::Log {
            child,
            staff,
            kind,
            list,
        } => log::list(&open(&db)?, child, staff, kind, &list),
        Command::Export {
            what:
                ExportWhat::Events {
                    format: ExportFormat::Jsonl,
                    out,
                    with_confidential,
                    as_of: cut,
                },
        } => log::export_jsonl(&open(&db)?, &out, with_confidential, as_of(cut.as_deref())?),
        Command::Export {
            what:
                ExportWhat::Events {
                    format: ExportFormat::Parquet,
                    out,
                    with_confidential: _,
                    as_of: cut,
                },
        } => {
            let store = open(&db)?;
            let cut = as_of(cut.as_deref())?;
            let summary = reports::export_events_parquet_streamed(|| store.scan(cut), cut, &out)
                .map_err(|e| BadInput(e.to_string()))?;
            eprintln!(
                "exported {} events in {} files under {}",
                summary.rows,
                summary.files.len(),
                out.display()
            );
            Ok(())
        }
        Command::Report {
            what:
                ReportWhat::Term {
                    term,
                    school,
                    county,
                    as_of,
                    format,
                    out,
                },
        } => report_term(
            &open(&db)?,
            &term,
            school,
            county,
            as_of.as_deref(),
            &format,
            out,
        ),
        Command::Archive {
            child,
            valid_at,
            list,
        } => views::archive(&open(&db)?, &child, valid_at.as_deref(), &list),
        Command::Archives {
            school,
            incomplete,
            valid_at,
            list,
        } => views::archives(&open(&db)?, &school, incomplete, valid_at.as_deref(), &list),
        Command::ContactCard { child, on, list } => {
            views::contact_card(&open(&db)?, &child, on.as_deref(), &list)
        }
        Command::History { child, role, list } => {
            views::history(&open(&db)?, &child, role == Some(Role::Counselor), &list)
        }
        Command::Progress { child, role, list } => {
            views::progress(&open(&db)?, &child, role == Some(Role::Counselor), &list)
        }
        Command::Pairings { school, on, list } => {
            views::pairings(&open(&db)?, &school, on.as_deref(), &list)
        }
        Command::Worklist { staff, on, list } => {
            views::worklist(&open(&db)?, &staff, on.as_deref(), &list)
        }
        Command::Backfill { school, days, list } => {
            views::backfill(&open(&db)?, &school, days, &list)
        }
        Command::Scores {
            school,
            period,
            other_scores,
            staff,
            opts,
        } => views::scores(
            &open(&db)?,
            &school,
            &period,
            other_scores.as_deref(),
            staff.as_deref(),
            &opts,
        ),
        Command::Policy {
            what:
                PolicyWhat::Adopt {
                    school,
                    from,
                    file,
                    actor,
                },
        } => views::policy_adopt(
            &keys::open_signing(&db, keys_dir)?,
            &school,
            &from,
            &file,
            &actor,
        ),
        Command::Policy {
            what: PolicyWhat::Show { school, on, as_of },
        } => views::policy_show(&open(&db)?, &school, on.as_deref(), as_of.as_deref()),
        Command::Demo { keep } => crate::commands::demo(keep),
        Command::Bench(args) => bench::run(args),
        Command::Proofs(p) => run_proofs(&db, keys_dir, p),
        Command::Fixtures {
            what:
                FixturesWhat::Generate {
                    schools,
                    children_per_school,
                    seed,
                    year,
                    out,
                },
        } => {
            let cfg = fixtures::GenConfig {
                schools,
                children_per_school,
                seed,
                year,
            };
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let summary = fixtures::generate(&cfg, &mut w).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    BadInput(e.to_string()).into()
                } else {
                    anyhow::Error::from(e)
                }
            })?;
            std::io::Write::flush(&mut w)?;
            eprintln!(
                "wrote {} events ({} schools, {} staff, {} children) to {}",
                summary.events,
                summary.schools,
                summary.staff,
                summary.children,
                out.display()
            );
            Ok(())
        }
    }
}

/// The key and proof commands (docs/proofs.md).
fn run_proofs(
    db: &std::path::Path,
    keys_dir: Option<&std::path::Path>,
    p: ProofsCommand,
) -> Result<()> {
    match p {
        ProofsCommand::Keys {
            what: KeysWhat::Init { origin },
        } => keys::keys_init(db, keys_dir, origin.as_deref()),
        ProofsCommand::Keys {
            what: KeysWhat::Show,
        } => keys::show(db, keys_dir),
        ProofsCommand::Checkpoint { as_of } => proofs::checkpoint(db, keys_dir, as_of.as_deref()),
        ProofsCommand::Prove {
            event: Some(id),
            checkpoint,
            out,
            ..
        } => proofs::prove_inclusion(db, keys_dir, &id, checkpoint.as_deref(), out.as_deref()),
        ProofsCommand::Prove {
            from: Some(from),
            out,
            ..
        } => proofs::prove_consistency(db, keys_dir, &from, out.as_deref()),
        ProofsCommand::Prove { .. } => {
            Err(BadInput("prove: give an event id or --from FILE".into()).into())
        }
        ProofsCommand::Bundle { child, as_of, out } => {
            proofs::bundle(db, keys_dir, &child, as_of.as_deref(), &out)
        }
    }
}

/// `report term`: rules §8, streamed from the log (two scans, one row of counters per child).
fn report_term(
    store: &Store,
    term: &str,
    school: Option<String>,
    county: Option<String>,
    as_of_arg: Option<&str>,
    format: &str,
    out: Option<std::path::PathBuf>,
) -> Result<()> {
    let as_of = as_of(as_of_arg)?;
    let formats = reports::Format::parse_list(format).map_err(|e| BadInput(e.to_string()))?;
    let scope = match (school, county) {
        (Some(s), _) => reports::Scope::School(s),
        (None, Some(c)) => reports::Scope::County(c),
        (None, None) => return Err(BadInput("give --school or --county".into()).into()),
    };
    let report = reports::term_statistics_streamed(|| store.scan(as_of), as_of, scope, term)
        .map_err(|e| BadInput(e.to_string()))?;
    for s in report.schools_without_term() {
        eprintln!("note: school {s} defined no term {term}; left out");
    }
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for path in reports::write(&report, &dir, &formats)? {
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            let [one] = formats.as_slice() else {
                return Err(BadInput("several formats need --out DIR".into()).into());
            };
            let bytes = reports::render(&report, *one)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
        }
    }
    Ok(())
}

/// Opens an existing store.
pub fn open(db: &std::path::Path) -> Result<Store> {
    Store::open(db).with_context(|| format!("opening {}", db.display()))
}

/// Parses `--as-of`.
pub fn as_of(s: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| {
        events::time::parse_as_of(s).ok_or_else(|| {
            BadInput(format!(
                "--as-of: expected an RFC 3339 time or a date YYYY-MM-DD, found {s:?}"
            ))
            .into()
        })
    })
    .transpose()
}

/// `demo`: a temporary store filled from the embedded seed school, verified, then shown.
pub fn demo(keep: Option<std::path::PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("careledger-demo"));
    let store = Store::create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = tmp.path().join("seed-school.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL)?;
    eprintln!("== importing the seed school into {}", dir.display());
    import_files(&store, std::slice::from_ref(&seed), true, false, false)?;
    eprintln!("== importing it again (idempotent: nothing new)");
    import_files(&store, &[seed], true, false, false)?;
    eprintln!("== verifying the hash chain");
    log::verify(&store)?;
    log::summary(&store)?;
    let opts = crate::cli::ListOpts {
        as_of: None,
        format: crate::output::Format::Table,
        out: None,
    };
    println!("\n== 档案 archive of sq-c01");
    views::archive(&store, "sq-c01", None, &opts)?;
    println!("\n== 联系卡 contact card of sq-c01");
    views::contact_card(&store, "sq-c01", None, &opts)?;
    println!("\n== 工作清单 worklist of sq-t03 on 2025-11-20");
    views::worklist(&store, "sq-t03", Some("2025-11-20"), &opts)?;
    println!("\n== 补录检查 back-fill of school sq");
    views::backfill(&store, "sq", 7, &opts)?;
    println!("\n== 考核得分 term scores of school sq, 2025-2026-1");
    let score_opts = crate::cli::ScoreOpts {
        as_of: None,
        format: crate::cli::ScoreFormat::Table,
        out: None,
    };
    views::scores(&store, "sq", "2025-2026-1", None, None, &score_opts)?;
    // The report outlives the temporary store, so the user can open it.
    let out = std::env::temp_dir().join("careledger-demo-report");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    report_term(
        &store,
        "2025-2026-1",
        Some("sq".into()),
        None,
        None,
        "table",
        None,
    )?;
    report_term(
        &store,
        "2025-2026-1",
        Some("sq".into()),
        None,
        None,
        "csv,json,parquet,xlsx",
        Some(out.clone()),
    )?;
    println!(
        "\n== 学期统计 the term report of school sq was written to {}",
        out.display()
    );
    Ok(())
}
