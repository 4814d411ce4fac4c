//! Command handlers: each opens the store, calls the crates, prints the result.
//!
//! This module owns the wiring and the human-facing messages (stderr); it must never
//! implement a rule of its own, nor print a counseling note. Handlers take resolved options
//! (`Request`, built by `resolve` from the command line): they never see clap's types, and
//! which envelopes a view reads is the read plan's (`careledger::plan`).

mod accounts;
mod erase;
pub(crate) mod keys;
mod log;
mod migrate;
mod policy;
mod proofs;
mod retention;
mod scores;
pub(crate) mod sealing;
mod serve;
mod template;
mod views;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use careledger::plan;
use careledger::report_read;
use chrono::{DateTime, NaiveDate, Utc};
use events::EventKind;
use projections::Period;
use store::Store;

use crate::output::Format;
use crate::{BadInput, CliError};
use careledger::plan::Opener;
use vault::Reader;

pub use accounts::AccountsRequest;
pub use log::import_files;
pub use proofs::ProofsRequest;

/// Where a listing goes and what it may see: only what was recorded by `as_of`.
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub as_of: Option<DateTime<Utc>>,
    pub format: Format,
    /// A file instead of stdout.
    pub out: Option<PathBuf>,
}

/// `log`: one child's events, else one staff member's, else all; optionally of one type.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub child: Option<String>,
    pub staff: Option<String>,
    pub kind: Option<EventKind>,
    pub list: ListOptions,
}

/// `export events --format jsonl`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    /// Keep counseling notes (a school's own full backup).
    pub with_confidential: bool,
    /// Write personal fields in clear (opened with the key directory); by default sealed
    /// fields stay sealed.
    pub decrypt: bool,
    pub as_of: Option<DateTime<Utc>>,
}

/// `report term`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub term: String,
    pub scope: reports::Scope,
    pub as_of: Option<DateTime<Utc>>,
    /// At least one; several need `out`.
    pub formats: Vec<reports::Format>,
    /// A folder for one file per format; stdout otherwise.
    pub out: Option<PathBuf>,
}

/// How `scores` prints: the rows as JSON, or the year-end table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreOutput {
    Table,
    Json,
    Csv,
    Xlsx,
}

/// `scores`.
#[derive(Debug, Clone)]
pub struct ScoresOptions {
    /// One school (`--school`), or every school of a county (`--county`).
    pub scope: reports::Scope,
    pub period: Period,
    /// The `staff,score` CSV of the other appraisal parts, read by the handler.
    pub other_scores: Option<PathBuf>,
    /// Print this staff member's per-child, per-window drill-down instead.
    pub drill_staff: Option<String>,
    pub as_of: Option<DateTime<Utc>>,
    pub output: ScoreOutput,
    pub out: Option<PathBuf>,
}

/// What the command line asks for, resolved.
#[derive(Debug)]
pub enum Request {
    Init {
        /// The log's name in its checkpoints; a default from the store's directory.
        origin: Option<String>,
    },
    /// The key and proof commands (docs/proofs.md).
    Proofs(ProofsRequest),
    Import {
        files: Vec<PathBuf>,
        preserve_recorded_at: bool,
        dry_run: bool,
        quiet: bool,
        /// The importing staff member: the actor of workbook rows that name none.
        actor: Option<String>,
    },
    /// A blank workbook of these forms (event types or form names, as given).
    Template {
        types: Vec<String>,
        out: PathBuf,
    },
    Record {
        kind: String,
        json: String,
    },
    Verify,
    /// `migrate --from OLD --to NEW`: a new sealed store holding the old one's events.
    Migrate {
        from: PathBuf,
        to: PathBuf,
        from_keys: Option<PathBuf>,
        to_keys: Option<PathBuf>,
    },
    /// `erase --child C --basis TEXT --approved-by STAFF`.
    Erase {
        child: String,
        basis: String,
        approved_by: String,
    },
    /// `retention [--dry-run] [--on DATE] [--approved-by STAFF]` (rules §13.3).
    Retention {
        dry_run: bool,
        /// The day to judge on; today (+08:00) when `None`.
        on: Option<NaiveDate>,
        approved_by: Option<String>,
        list: ListOptions,
    },
    Log(LogOptions),
    ExportJsonl(ExportOptions),
    ExportParquet {
        out: PathBuf,
        as_of: Option<DateTime<Utc>>,
    },
    /// `export child-terms` (docs/province.md).
    ExportChildTerms {
        term: String,
        /// A school or a county; `None` is the installed county secret's county.
        scope: Option<reports::Scope>,
        out: PathBuf,
        as_of: Option<DateTime<Utc>>,
    },
    ReportTerm(ReportOptions),
    Archive {
        child: String,
        valid_at: Option<NaiveDate>,
        list: ListOptions,
    },
    Archives {
        school: String,
        incomplete: bool,
        valid_at: Option<NaiveDate>,
        list: ListOptions,
    },
    ContactCard {
        child: String,
        on: Option<NaiveDate>,
        list: ListOptions,
    },
    History {
        child: String,
        counselor: bool,
        list: ListOptions,
    },
    Progress {
        child: String,
        counselor: bool,
        list: ListOptions,
    },
    Pairings {
        school: String,
        on: Option<NaiveDate>,
        list: ListOptions,
    },
    Worklist {
        staff: String,
        on: Option<NaiveDate>,
        list: ListOptions,
    },
    Backfill {
        school: String,
        days: i64,
        list: ListOptions,
    },
    Scores(ScoresOptions),
    PolicyAdopt {
        school: String,
        from: String,
        file: PathBuf,
        actor: String,
    },
    PolicyShow {
        school: String,
        on: Option<NaiveDate>,
        as_of: Option<DateTime<Utc>>,
    },
    Demo {
        keep: Option<PathBuf>,
    },
    /// `user`, `token`, `access-log`: the service's accounts and access log.
    Accounts(AccountsRequest),
    /// `serve`: the service (docs/service.md).
    Serve {
        listen: std::net::SocketAddr,
        demo: bool,
    },
    FixturesGenerate {
        config: fixtures::GenConfig,
        out: PathBuf,
    },
}

impl Request {
    /// Whether the request reads a whole county's fact rows (`report term --county`, `scores
    /// --county`): hundreds of MiB allocated once and read once, where transparent huge pages
    /// cost more than they save (`crate::memory`).
    pub fn reads_a_county(&self) -> bool {
        match self {
            Request::ReportTerm(o) => matches!(o.scope, reports::Scope::County(_)),
            Request::Scores(o) => matches!(o.scope, reports::Scope::County(_)),
            _ => false,
        }
    }
}

/// Runs one request; every failure comes back placed and worded (`CliError`).
pub fn run(stores: Stores, request: Request) -> Result<(), CliError> {
    let db = stores.db.clone();
    dispatch(&stores, request).map_err(|e| CliError::classify(e, &db))
}

fn dispatch(stores: &Stores, request: Request) -> Result<()> {
    let db = stores.db.as_path();
    // The key directory's vault: opens the sealed fields a view shows and seals new ones.
    let vault = || sealing::load(db, stores.keys.as_deref());

    match request {
        Request::Init { origin } => {
            stores.refuse_copy()?;
            keys::init(db, stores.keys.as_deref(), origin.as_deref())
        }
        // The county secret belongs to the key directory, not the store: no store is opened.
        Request::Proofs(ProofsRequest::ImportCountySecret { file }) => {
            keys::import_county_secret(db, stores.keys.as_deref(), &file)
        }
        Request::Proofs(p) => {
            let store = stores.write()?;
            proofs::run(&store, db, stores.keys.as_deref(), p)
        }
        Request::Import {
            files,
            preserve_recorded_at,
            dry_run,
            quiet,
            actor,
        } => {
            let store = if dry_run {
                stores.read()?
            } else {
                let store = stores.write()?;
                keys::for_append(&store, db, stores.keys.as_deref())?;
                store
            };
            let v = vault()?;
            let opts = log::ImportOpts {
                preserve_recorded_at,
                dry_run,
                quiet,
                actor: actor.as_deref(),
                vault: v.as_ref(),
            };
            log::import_files_as(&store, &files, &opts).map(|_| ())
        }
        Request::Template { types, out } => template::write(&types, &out),
        Request::Record { kind, json } => {
            let store = stores.write()?;
            keys::for_append(&store, db, stores.keys.as_deref())?;
            log::record(&store, &kind, &json, vault()?.as_ref())
        }
        Request::Verify => log::verify(&*stores.read()?),
        Request::Migrate {
            from,
            to,
            from_keys,
            to_keys,
        } => {
            let old = Stores {
                db: from,
                copy: stores.copy,
                command: stores.command.clone(),
                keys: from_keys,
            };
            let new = Stores {
                db: to,
                copy: false,
                command: stores.command.clone(),
                keys: to_keys,
            };
            migrate::migrate(&old, &new)
        }
        Request::Erase {
            child,
            basis,
            approved_by,
        } => {
            // A running service holds the store (and its keys): it erases on its writer.
            let e = server::admin::EraseRequest {
                child,
                basis,
                approved_by,
            };
            let request = server::admin::AdminRequest::Erase(e.clone());
            if let Some(answer) = server::admin::send(db, &request) {
                eprintln!("careledger: through the running service");
                let answer = answer.map_err(|e| {
                    CliError::Environment(format!("talking to the running service: {e}"))
                })?;
                return accounts::finish(answer, None);
            }
            let store = stores.write()?;
            keys::for_append(&store, db, stores.keys.as_deref())?;
            erase::erase(
                &store,
                vault()?.as_ref(),
                &e.child,
                &e.basis,
                &e.approved_by,
            )
        }
        Request::Retention {
            dry_run,
            on,
            approved_by,
            list,
        } => {
            let on = on.unwrap_or_else(|| events::time::local_date(chrono::Utc::now()));
            if dry_run {
                return retention::list(&*stores.read()?, on, &list).map(|_| ());
            }
            let store = stores.write()?;
            keys::for_append(&store, db, stores.keys.as_deref())?;
            retention::erase_due(&store, vault()?.as_ref(), on, approved_by.as_deref(), &list)
        }
        // `log` lists metadata only (ids, types, times): the clear parts suffice.
        Request::Log(opts) => log::list(&*stores.read()?, &opts, &Opener::sealed()),
        Request::ExportJsonl(opts) => {
            let v = vault()?;
            log::export_jsonl(&*stores.read()?, &opts, v.as_ref())
        }
        Request::ExportParquet { out, as_of: cut } => {
            // The secret first: without it nothing is read or written (the feed carries
            // pseudonyms, never a school's own ids).
            let secret = keys::load_county_secret(db, stores.keys.as_deref())?;
            let store = stores.read()?;
            let scan = plan::fact_scan(&store, cut).map_err(plan_error)?;
            let mut export =
                reports::BureauExport::create(scan.world(), &secret, &out).map_err(feed_error)?;
            for fact in scan.facts(|_| true) {
                export
                    .push(&fact.map_err(plan_error)?)
                    .map_err(|e| BadInput(e.to_string()))?;
            }
            let summary = export.finish().map_err(|e| BadInput(e.to_string()))?;
            eprintln!(
                "exported {} events in {} files under {}",
                summary.rows,
                summary.files.len(),
                out.display()
            );
            Ok(())
        }
        Request::ExportChildTerms {
            term,
            scope,
            out,
            as_of: cut,
        } => {
            // The secret first: without it nothing is read or written.
            let secret = keys::load_county_secret(db, stores.keys.as_deref())?;
            let store = stores.read()?;
            let scope = scope.unwrap_or_else(|| reports::Scope::County(secret.county().to_owned()));
            // The feed reads no personal field: the clear parts as stored.
            let tl = plan::scope_timeline(
                &store,
                &plan::Scope::of_report(&scope),
                cut,
                &Opener::sealed(),
            )
            .map_err(plan_error)?;
            let world = projections::World::build(&tl);
            let summary = reports::export_child_terms(&tl, &world, scope, &term, &secret, &out)
                .map_err(feed_error)?;
            eprintln!(
                "exported {} children of term {term} (county {}) in {} files under {}",
                summary.rows,
                summary.county,
                summary.files.len(),
                out.display()
            );
            Ok(())
        }
        Request::ReportTerm(opts) => report_term(&*stores.read()?, &opts),
        Request::Archive {
            child,
            valid_at,
            list,
        } => views::archive(&*stores.read()?, &child, valid_at, &list, &staff(&vault()?)),
        Request::Archives {
            school,
            incomplete,
            valid_at,
            list,
        } => views::archives(
            &*stores.read()?,
            &school,
            incomplete,
            valid_at,
            &list,
            &staff(&vault()?),
        ),
        Request::ContactCard { child, on, list } => {
            views::contact_card(&*stores.read()?, &child, on, &list, &staff(&vault()?))
        }
        Request::History {
            child,
            counselor,
            list,
        } => {
            let v = vault()?;
            views::history(
                &*stores.read()?,
                &child,
                counselor,
                &list,
                &reader(&v, counselor),
            )
        }
        Request::Progress {
            child,
            counselor,
            list,
        } => {
            let v = vault()?;
            views::progress(
                &*stores.read()?,
                &child,
                counselor,
                &list,
                &reader(&v, counselor),
            )
        }
        Request::Pairings { school, on, list } => {
            views::pairings(&*stores.read()?, &school, on, &list, &staff(&vault()?))
        }
        Request::Worklist {
            staff: staff_id,
            on,
            list,
        } => views::worklist(&*stores.read()?, &staff_id, on, &list, &staff(&vault()?)),
        Request::Backfill { school, days, list } => {
            views::backfill(&*stores.read()?, &school, days, &list, &staff(&vault()?))
        }
        Request::Scores(opts) => scores::scores(&*stores.read()?, &opts, &staff(&vault()?)),
        Request::PolicyAdopt {
            school,
            from,
            file,
            actor,
        } => {
            let store = stores.write()?;
            keys::for_append(&store, db, stores.keys.as_deref())?;
            policy::adopt(&store, &school, &from, &file, &actor, vault()?.as_ref())
        }
        Request::PolicyShow { school, on, as_of } => {
            policy::show(&*stores.read()?, &school, on, as_of)
        }
        Request::Demo { keep } => demo(keep),
        Request::Accounts(r) => accounts::run(stores, r),
        Request::Serve { listen, demo } => {
            if demo {
                serve::demo(listen)
            } else {
                let store = stores.write()?;
                keys::for_append(&store, db, stores.keys.as_deref())?;
                // Encryption on: the writer seals under the key directory's keys, the views
                // open for the caller's role (docs/service.md).
                let v = vault()?;
                serve::serve(store.into_store(), v, listen)
            }
        }
        Request::FixturesGenerate { config, out } => {
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let summary = fixtures::generate(&config, chrono::Utc::now(), &mut w).map_err(|e| {
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

/// The opener of a staff member's view.
fn staff(v: &Option<vault::Vault>) -> Opener<'_> {
    Opener::new(v.as_ref(), Reader::Staff)
}

/// The opener of a view that may show counseling notes (`--role counselor`,
/// `--with-confidential`).
fn reader(v: &Option<vault::Vault>, counselor: bool) -> Opener<'_> {
    let r = if counselor {
        Reader::Counselor
    } else {
        Reader::Staff
    };
    Opener::new(v.as_ref(), r)
}

/// A read plan's failure: a log whose content does not fold is the user's (exit 1, like any
/// refused input); a store that cannot be read is not.
fn plan_error(e: careledger::plan::PlanError) -> anyhow::Error {
    match e {
        careledger::plan::PlanError::Projection(e) => BadInput(e.to_string()).into(),
        careledger::plan::PlanError::Store(e) => e.into(),
        careledger::plan::PlanError::Vault(e) => CliError::from_vault(&e).into(),
    }
}

/// A feed that cannot be written is the machine's (exit 4); any other refusal is the input's.
fn feed_error(e: reports::ReportError) -> anyhow::Error {
    match e {
        reports::ReportError::Io { .. } => CliError::Environment(e.to_string()).into(),
        e => BadInput(e.to_string()).into(),
    }
}

/// A projection input error (unknown child, bad period …) is the user's: exit 1.
fn bad(e: projections::ProjectionError) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// `report term`: rules §8 by the polars reporter over the scope's read
/// (`careledger::report_read`: a school through the read models, a county from the fact
/// rows; a school's read models hold the terms of every school it shares a child with,
/// rules §8.2).
fn report_term(store: &Store, opts: &ReportOptions) -> Result<()> {
    let ReportOptions {
        term,
        scope,
        as_of,
        formats,
        out,
    } = opts;
    let report = report_read::term_report(store, scope, term, *as_of).map_err(|e| match e {
        report_read::ReportReadError::Plan(e) => plan_error(e),
        report_read::ReportReadError::Report(e) => BadInput(e.to_string()).into(),
    })?;
    for s in report.schools_without_term() {
        eprintln!("note: school {s} defined no term {term}; left out");
    }
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for path in reports::write(&report, dir, formats)? {
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

/// How this command opens the store: the `--db` path, whether `--copy` was given, and the
/// command's name (written to the store's owner file, so that a second process can say who
/// holds the store).
pub struct Stores {
    /// The `--db` path.
    pub db: PathBuf,
    /// `--copy`: read commands work on a private temporary copy.
    pub copy: bool,
    /// The command's name as typed (`import`, `verify`, …).
    pub command: String,
    /// `--keys`: the key directory of the checkpoint signing key (`keys::key_dir`).
    pub keys: Option<PathBuf>,
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

impl Opened {
    /// The store itself, for a command that keeps it open past this handle (`serve`), which
    /// then closes it itself.
    fn into_store(mut self) -> Store {
        self.store.take().expect("open until taken")
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

/// `demo`: a temporary store filled from the embedded seed school, verified, then shown.
fn demo(keep: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("careledger-demo"));
    let store = Store::create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = tmp.path().join("seed-school.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL)?;
    eprintln!("== importing the seed school into {}", dir.display());
    import_files(&store, std::slice::from_ref(&seed), true, false, false)?;
    eprintln!("== importing it again (idempotent: nothing new)");
    import_files(&store, &[seed], true, false, false)?;
    // The demo's store is a temporary one in clear (no key directory).
    let open = Opener::sealed();
    eprintln!("== verifying the hash chain");
    log::verify(&store)?;
    log::summary(&store)?;
    let opts = ListOptions {
        as_of: None,
        format: Format::Table,
        out: None,
    };
    println!("\n== 档案 archive of sq-c01");
    views::archive(&store, "sq-c01", None, &opts, &open)?;
    println!("\n== 联系卡 contact card of sq-c01");
    views::contact_card(&store, "sq-c01", None, &opts, &open)?;
    println!("\n== 工作清单 worklist of sq-t03 on 2025-11-20");
    views::worklist(
        &store,
        "sq-t03",
        events::time::parse_date("2025-11-20"),
        &opts,
        &open,
    )?;
    println!("\n== 补录检查 back-fill of school sq");
    views::backfill(&store, "sq", 7, &opts, &open)?;
    println!("\n== 考核得分 term scores of school sq, 2025-2026-1");
    let score_opts = ScoresOptions {
        scope: reports::Scope::School("sq".into()),
        period: Period::parse("2025-2026-1").map_err(bad)?,
        other_scores: None,
        drill_staff: None,
        as_of: None,
        output: ScoreOutput::Table,
        out: None,
    };
    scores::scores(&store, &score_opts, &open)?;
    // The report outlives the temporary store, so the user can open it.
    let out = std::env::temp_dir().join("careledger-demo-report");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let report = |formats: Vec<reports::Format>, out: Option<PathBuf>| ReportOptions {
        term: "2025-2026-1".into(),
        scope: reports::Scope::School("sq".into()),
        as_of: None,
        formats,
        out,
    };
    report_term(&store, &report(vec![reports::Format::Table], None))?;
    use reports::Format::{Csv, Json, Parquet, Xlsx};
    report_term(
        &store,
        &report(vec![Csv, Json, Parquet, Xlsx], Some(out.clone())),
    )?;
    println!(
        "\n== 学期统计 the term report of school sq was written to {}",
        out.display()
    );
    Ok(())
}
