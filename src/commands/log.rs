//! Commands on the log itself: import, record, verify, log, export, and the demo summary.
//!
//! This module owns the acknowledgement lines (`imported FILE: …`, printed only after the
//! batch is durable); it must never print payload text of counseling sessions.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use events::event::redact_wire;
use events::time::format_local;
use events::{EventKind, Source};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use store::Store;

use super::{ExportOptions, LogOptions, plan_error, sealing};
use crate::output::{self, Listing};
use crate::{BadInput, CliError};
use careledger::plan::Opener;
use events::seal::KeySubject;
use vault::{Reader, Vault, VaultError};

/// What one import did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Imported {
    pub appended: u64,
    pub skipped: u64,
}

/// Imports files in order, one atomic, durable batch per file. Stops at the first file with
/// errors (exit 1): that file appends nothing; files before it stay imported.
pub fn import_files(
    store: &Store,
    files: &[PathBuf],
    preserve_recorded_at: bool,
    dry_run: bool,
    quiet: bool,
) -> Result<Imported> {
    let opts = ImportOpts {
        preserve_recorded_at,
        dry_run,
        quiet,
        actor: None,
        vault: None,
    };
    import_files_as(store, files, &opts)
}

/// How `import` reads its files.
#[derive(Debug, Clone, Copy)]
pub struct ImportOpts<'a> {
    pub preserve_recorded_at: bool,
    pub dry_run: bool,
    pub quiet: bool,
    /// The importing staff member: the actor of workbook rows that name none.
    pub actor: Option<&'a str>,
    /// The key directory's vault: seals each batch before the append, and opens what
    /// validation reads of the store (idempotent re-imports compare in clear).
    pub vault: Option<&'a Vault>,
}

/// `import_files` with every option (`--actor`).
pub fn import_files_as(store: &Store, files: &[PathBuf], o: &ImportOpts<'_>) -> Result<Imported> {
    let ImportOpts {
        preserve_recorded_at,
        dry_run,
        quiet,
        actor,
        vault,
    } = *o;
    let open = Opener::new(vault, Reader::Counselor);
    // indicatif draws nothing when stderr is not a terminal, so scripts and CI stay quiet.
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {bar:30} {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut total = Imported::default();
    for file in files {
        bar.set_message(format!("validating {}", file.display()));
        let opener = |e| {
            open.open(e)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        };
        let known = ingest::StoreKnown::new(store).opening(&opener);
        let opts = ingest::Options {
            now: chrono::Utc::now(),
            preserve_recorded_at,
            head_recorded_at: store.head().recorded_at,
        };
        let parsed = match read_opened(file, vault)? {
            Some(bytes) => {
                ingest::parse_bytes_as(&file.display().to_string(), &bytes, &known, &opts, actor)
            }
            None => ingest::parse_file_as(file, &known, &opts, actor),
        };
        if let Some(e) = known.take_error() {
            return Err(e)
                .with_context(|| format!("reading the store to check {}", file.display()));
        }
        let parsed = parsed.map_err(|e| BadInput(e.to_string()))?;
        let present = (parsed.already_present + parsed.repeated) as u64;
        let lines: Vec<usize> = parsed.drafts.iter().map(|(l, _)| *l).collect();
        let mut drafts = parsed.into_drafts();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if dry_run {
            bar.suspend(|| {
                eprintln!(
                    "checked {}: {} new events, {present} already present, valid",
                    file.display(),
                    drafts.len()
                )
            });
            bar.inc(1);
            continue;
        }
        if let Some(v) = vault {
            sealing::seal_batch(store, v, &mut drafts).map_err(|r| {
                let at = lines
                    .get(r.index)
                    .map_or(String::new(), |l| format!(":{l}"));
                r.error.context(format!("{}{at}", file.display()))
            })?;
        }
        bar.set_message(format!(
            "appending {} events of {}",
            drafts.len(),
            file.display()
        ));
        let source = if preserve_recorded_at {
            Source::Migration
        } else {
            Source::Import(name)
        };
        let out = store.append(drafts, source).map_err(|e| {
            if e.kind() != store::ErrorKind::BadInput {
                return CliError::from_store(&e, store.path(), true);
            }
            match e.draft_index().and_then(|i| lines.get(i)) {
                Some(l) => CliError::BadInput(format!("{}:{l}: {e}", file.display())),
                None => CliError::BadInput(format!("{}: {e}", file.display())),
            }
        })?;
        total.appended += out.appended;
        total.skipped += out.skipped + present;
        // The acknowledgement: printed only once the batch is on disk.
        bar.suspend(|| {
            eprintln!(
                "imported {}: {} new, {} already present, head seq {}",
                file.display(),
                out.appended,
                out.skipped + present,
                out.head.seq
            )
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(total)
}

/// A JSONL file with sealed lines (an export kept sealed), its lines opened in memory
/// (`sealing::open_jsonl`); `None` for any other file, which ingest reads itself.
fn read_opened(file: &Path, vault: Option<&Vault>) -> Result<Option<Vec<u8>>> {
    let jsonl = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
    if !jsonl {
        return Ok(None);
    }
    // An unreadable file is reported by ingest, in its words.
    let Ok(bytes) = std::fs::read(file) else {
        return Ok(None);
    };
    sealing::open_jsonl(file, &bytes, vault)
}

/// `record TYPE --json '{…}'`: one event, appended durably.
pub fn record(store: &Store, kind: &str, json: &str, vault: Option<&Vault>) -> Result<()> {
    let open = Opener::new(vault, Reader::Counselor);
    let opener = |e| {
        open.open(e)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    };
    let known = ingest::StoreKnown::new(store).opening(&opener);
    let opts = ingest::Options {
        now: chrono::Utc::now(),
        preserve_recorded_at: false,
        head_recorded_at: store.head().recorded_at,
    };
    let parsed = ingest::parse_record(kind, json, None, &known, &opts);
    if let Some(e) = known.take_error() {
        return Err(e).context("reading the store to check the record");
    }
    let parsed = parsed.map_err(|e| BadInput(e.to_string()))?;
    if parsed.drafts.is_empty() {
        eprintln!("the event is already in the log; nothing appended");
        return Ok(());
    }
    let mut drafts = parsed.into_drafts();
    if let Some(v) = vault {
        sealing::seal_batch(store, v, &mut drafts).map_err(|r| r.error)?;
    }
    let id = drafts[0].id.clone();
    let out = store.append(drafts, Source::Cli).map_err(|e| {
        if e.kind() == store::ErrorKind::BadInput {
            CliError::BadInput(e.to_string())
        } else {
            CliError::from_store(&e, store.path(), true)
        }
    })?;
    if out.appended == 0 {
        eprintln!("{id} is already in the log; nothing appended");
    } else {
        eprintln!("recorded {id} as seq {}", out.head.seq);
    }
    Ok(())
}

/// `verify`: exit 3 naming the first bad seq (the error is worded by `CliError`).
pub fn verify(store: &Store) -> Result<()> {
    let v = store.verify()?;
    eprintln!(
        "verified {} events; head hash {}",
        v.events,
        v.head.to_hex()
    );
    Ok(())
}

/// One row of `log`: metadata only, never payload text.
#[derive(serde::Serialize)]
struct LogRow {
    seq: u64,
    id: String,
    r#type: &'static str,
    occurred_at: String,
    recorded_at: String,
    actor: String,
    source: String,
    children: Vec<String>,
    staff: Option<String>,
    target: Option<String>,
}

/// `log [--child] [--staff] [--type]`.
pub fn list(store: &Store, opts: &LogOptions, open: &Opener<'_>) -> Result<()> {
    let LogOptions {
        child,
        staff,
        kind,
        list: opts,
    } = opts;
    let envs = careledger::plan::log_envelopes(
        store,
        child.as_deref(),
        staff.as_deref(),
        opts.as_of,
        open,
    )
    .map_err(plan_error)?;
    let rows: Vec<LogRow> = envs
        .into_iter()
        .filter(|e| kind.is_none_or(|k| e.event.kind() == k))
        .filter(|e| {
            staff
                .as_deref()
                .is_none_or(|t| child.is_none() || e.event.staff() == Some(t))
        })
        .map(|e| LogRow {
            seq: e.seq,
            r#type: e.event.kind().as_str(),
            occurred_at: format_local(e.occurred_at),
            recorded_at: format_local(e.recorded_at),
            actor: e.actor.clone(),
            source: e.source.to_string(),
            children: e.event.children().to_vec(),
            staff: e.event.staff().map(str::to_owned),
            target: e.event.target().map(str::to_owned),
            id: e.id,
        })
        .collect();
    let headers = [
        "seq",
        "id",
        "type",
        "occurred_at",
        "recorded_at",
        "actor",
        "source",
        "child",
        "staff",
        "target",
    ]
    .map(String::from)
    .to_vec();
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                r.id.clone(),
                r.r#type.to_owned(),
                r.occurred_at.clone(),
                r.recorded_at.clone(),
                r.actor.clone(),
                r.source.clone(),
                r.children.join(";"),
                r.staff.clone().unwrap_or_default(),
                r.target.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let text = output::render(
        &Listing {
            headers,
            rows: cells,
            json: &rows,
        },
        opts.format,
    )?;
    output::emit(&text, opts.out.as_deref())
}

/// `export events --format jsonl`: every envelope as a flat line with both times, in log
/// order; re-importable with `--preserve-recorded-at` (docs/privacy.md, "Exports").
///
/// By default a sealed envelope stays sealed: its clear part (with the presence placeholders)
/// and its `sealed` part as stored, so the file re-imports where this store's key directory
/// is and reveals no more than the store directory. With `decrypt` the personal fields are
/// opened (counseling notes only with `with_confidential`). Either way an erased child's
/// envelopes are written in their erased form, without the ciphertext. Counseling notes held
/// in clear are blanked unless `with_confidential`.
pub fn export_jsonl(store: &Store, opts: &ExportOptions, vault: Option<&Vault>) -> Result<()> {
    let ExportOptions {
        out,
        with_confidential,
        decrypt,
        as_of,
    } = opts;
    if *decrypt && vault.is_none() {
        eprintln!(
            "careledger: warning: no master key in the key directory: --decrypt opens nothing, \
             and a sealed event is refused"
        );
    }
    let reader = if *with_confidential {
        Reader::Counselor
    } else {
        Reader::Staff
    };
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut n = 0u64;
    // The kinds of events with confidential fields, by id: a correction of one is blanked by
    // its target's rule (`events::event::redact_wire`). Only those ids are kept.
    let mut confidential: HashMap<String, EventKind> = HashMap::new();
    // Whether each key subject met so far was erased (its tombstone in the key directory).
    let mut erased: HashMap<String, bool> = HashMap::new();
    for env in store.scan(*as_of) {
        let env = env?;
        let kind = env.event.kind();
        if kind.has_confidential_fields() {
            confidential.insert(env.id.clone(), kind);
        }
        let target = env.event.target().map(str::to_owned);
        let mut line = match (env.sealed.clone(), vault) {
            (None, _) => events::wire::envelope_to_wire(&env),
            (Some(_), None) => {
                return Err(CliError::from_vault(&VaultError::NoVault { id: env.id }).into());
            }
            (Some(_), Some(v)) if *decrypt => {
                let opened = v.open(env, reader).map_err(|e| CliError::from_vault(&e))?;
                events::wire::envelope_to_wire(&opened)
            }
            (Some(sealed), Some(v)) => {
                let gone = match erased.get(&sealed.key) {
                    Some(g) => *g,
                    None => {
                        let subject = KeySubject::parse(&sealed.key).ok_or_else(|| {
                            CliError::Damaged(format!(
                                "event {} is sealed under {:?}, which names no child or staff \
                                 member",
                                env.id, sealed.key
                            ))
                        })?;
                        let g = v
                            .erased_commitment(&subject)
                            .map_err(|e| CliError::from_vault(&e))?
                            .is_some();
                        erased.insert(sealed.key.clone(), g);
                        g
                    }
                };
                if gone {
                    // Written as the views show it: nothing of the erased fields, not even
                    // their ciphertext (an old backup of the key directory would open it).
                    let opened = v.open(env, reader).map_err(|e| CliError::from_vault(&e))?;
                    serde_json::to_writer(&mut w, &events::wire::envelope_to_wire(&opened))?;
                    w.write_all(b"\n")?;
                    n += 1;
                    continue;
                }
                let mut line = events::wire::envelope_to_wire(&env);
                line.insert(
                    sealing::SEALED_FIELD.into(),
                    sealing::sealed_to_wire(&sealed),
                );
                // The clear part carries placeholders, never a note: nothing to blank.
                serde_json::to_writer(&mut w, &line)?;
                w.write_all(b"\n")?;
                n += 1;
                continue;
            }
        };
        if !*with_confidential {
            // Targets come before their amendments in the log: an amended id not in
            // `confidential` is an event without confidential fields.
            match target.map(|t| confidential.get(&t).copied()) {
                Some(None) => {}
                target => redact_wire(&mut line, kind, target.flatten(), &Value::from("")),
            }
        }
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    eprintln!("exported {n} events to {}", out.display());
    Ok(())
}

/// What the store holds, by event type (for `demo`).
pub fn summary(store: &Store) -> Result<()> {
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    for env in store.scan(None) {
        *by_kind.entry(env?.event.kind().as_str()).or_default() += 1;
    }
    let registry = store.registry()?;
    println!(
        "the store holds {} events: {} schools, {} staff, {} children",
        store.head().seq,
        registry.schools().count(),
        registry.staff().count(),
        registry.children().count()
    );
    let rows: Vec<Vec<String>> = by_kind
        .iter()
        .map(|(k, n)| vec![(*k).to_owned(), n.to_string()])
        .collect();
    print!(
        "{}",
        output::table(&["type".to_owned(), "events".to_owned()], &rows)
    );
    Ok(())
}
