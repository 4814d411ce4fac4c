//! Command handlers: each opens the store, calls the crates, prints the result.
//!
//! This module owns the wiring and the human-facing messages (stderr); it must never
//! implement a rule of its own, nor print a counseling note.

mod log;
pub(crate) mod views;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::cli::{
    Cli, Command, ExportFormat, ExportWhat, FixturesWhat, PolicyWhat, ReportWhat, Role,
};
use crate::{BadInput, CliError, bench};
use store::Store;

pub use log::import_files;

/// Runs one parsed command line (`command`: its name as typed); every failure comes back
/// placed and worded (`CliError`).
pub fn run(cli: Cli, command: String) -> Result<(), CliError> {
    let db = cli.db.clone();
    dispatch(cli, command).map_err(|e| CliError::classify(e, &db))
}

fn dispatch(cli: Cli, command: String) -> Result<()> {
    let stores = Stores {
        db: cli.db.clone(),
        copy: cli.copy,
        command,
    };
    let db = cli.db;
    match cli.command {
        Command::Init => {
            stores.refuse_copy()?;
            Store::create(&db).map_err(|e| CliError::from_store(&e, &db, true))?;
            eprintln!("created an empty store at {}", db.display());
            Ok(())
        }
        Command::Import {
            files,
            preserve_recorded_at,
            dry_run,
            quiet,
        } => {
            let store = if dry_run {
                stores.read()?
            } else {
                stores.write()?
            };
            import_files(&store, &files, preserve_recorded_at, dry_run, quiet).map(|_| ())
        }
        Command::Record { r#type, json } => log::record(&*stores.write()?, &r#type, &json),
        Command::Verify => log::verify(&*stores.read()?),
        Command::Log {
            child,
            staff,
            kind,
            list,
        } => log::list(&*stores.read()?, child, staff, kind, &list),
        Command::Export {
            what:
                ExportWhat::Events {
                    format: ExportFormat::Jsonl,
                    out,
                    with_confidential,
                    as_of: cut,
                },
        } => log::export_jsonl(
            &*stores.read()?,
            &out,
            with_confidential,
            as_of(cut.as_deref())?,
        ),
        Command::Export {
            what:
                ExportWhat::Events {
                    format: ExportFormat::Parquet,
                    out,
                    with_confidential: _,
                    as_of: cut,
                },
        } => {
            let store = stores.read()?;
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
            &*stores.read()?,
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
        } => views::archive(&*stores.read()?, &child, valid_at.as_deref(), &list),
        Command::Archives {
            school,
            incomplete,
            valid_at,
            list,
        } => views::archives(
            &*stores.read()?,
            &school,
            incomplete,
            valid_at.as_deref(),
            &list,
        ),
        Command::ContactCard { child, on, list } => {
            views::contact_card(&*stores.read()?, &child, on.as_deref(), &list)
        }
        Command::History { child, role, list } => views::history(
            &*stores.read()?,
            &child,
            role == Some(Role::Counselor),
            &list,
        ),
        Command::Progress { child, role, list } => views::progress(
            &*stores.read()?,
            &child,
            role == Some(Role::Counselor),
            &list,
        ),
        Command::Pairings { school, on, list } => {
            views::pairings(&*stores.read()?, &school, on.as_deref(), &list)
        }
        Command::Worklist { staff, on, list } => {
            views::worklist(&*stores.read()?, &staff, on.as_deref(), &list)
        }
        Command::Backfill { school, days, list } => {
            views::backfill(&*stores.read()?, &school, days, &list)
        }
        Command::Scores {
            school,
            period,
            other_scores,
            staff,
            opts,
        } => views::scores(
            &*stores.read()?,
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
        } => views::policy_adopt(&*stores.write()?, &school, &from, &file, &actor),
        Command::Policy {
            what: PolicyWhat::Show { school, on, as_of },
        } => views::policy_show(&*stores.read()?, &school, on.as_deref(), as_of.as_deref()),
        Command::Demo { keep } => crate::commands::demo(keep),
        Command::Bench(args) => bench::run(args),
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

/// `report term`: DESIGN §8, streamed from the log (two scans, one row of counters per child).
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
        (None, None) => return Err(CliError::Usage("give --school or --county".into()).into()),
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
                return Err(CliError::Usage("several formats need --out DIR".into()).into());
            };
            let bytes = reports::render(&report, *one)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
        }
    }
    Ok(())
}

/// How this command opens the store: the `--db` path, whether `--copy` was given, and the
/// command's name (written to the store's owner file, so that a second process can say who
/// holds the store).
struct Stores {
    db: PathBuf,
    copy: bool,
    command: String,
}

/// An open store, and the temporary directory of its copy under `--copy` (removed after the
/// store is closed). A store opened to write is closed with `Store::close`, so that sled's
/// snapshot covers what the command wrote.
pub struct Opened {
    store: Option<Store>,
    writes: bool,
    _copy: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Opened {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("open until dropped")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(store) = self.store.take()
            && self.writes
        {
            store.close();
        }
    }
}

impl Stores {
    /// Opens the store to read it (or, with `--copy`, a private copy of it).
    fn read(&self) -> Result<Opened, CliError> {
        if !self.copy {
            return self.open(&self.db, false, None);
        }
        let fail = |e: &store::StoreError| CliError::from_store(e, &self.db, false);
        let tmp = tempfile::Builder::new()
            .prefix("careledger-copy-")
            .tempdir()
            .map_err(|e| {
                CliError::Environment(format!(
                    "could not make a temporary directory for --copy: {e}; set TMPDIR to a \
                     writable place with room for the store"
                ))
            })?;
        let to = tmp.path().join("store");
        let bytes = store::copy_store(&self.db, &to).map_err(|e| fail(&e))?;
        eprintln!(
            "careledger: working on a private copy of {} in {} ({bytes} bytes), removed when \
             this command ends; the store itself is not touched",
            self.db.display(),
            to.display()
        );
        self.open(&to, false, Some(tmp))
    }

    /// Opens the store to write it; `--copy` makes no sense here.
    fn write(&self) -> Result<Opened, CliError> {
        self.refuse_copy()?;
        self.open(&self.db, true, None)
    }

    fn refuse_copy(&self) -> Result<(), CliError> {
        if self.copy {
            return Err(CliError::Usage(format!(
                "--copy works on a private copy that is thrown away, so it is only for read \
                 commands and `verify`; `{}` must write the store itself",
                self.command
            )));
        }
        Ok(())
    }

    fn open(
        &self,
        at: &Path,
        writes: bool,
        copy: Option<tempfile::TempDir>,
    ) -> Result<Opened, CliError> {
        let store = Store::open_as(at, &self.command)
            .map_err(|e| CliError::from_store(&e, &self.db, writes))?;
        for notice in store.notices() {
            eprintln!("careledger: warning: {notice}");
        }
        Ok(Opened {
            store: Some(store),
            writes,
            _copy: copy,
        })
    }
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
