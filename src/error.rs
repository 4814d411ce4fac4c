//! The binary's errors: four kinds, one exit code each, one message each that names the
//! cause once and says what to do.
//!
//! | exit | kind | e.g. |
//! |---|---|---|
//! | 1 | `BadInput`: the input was refused; nothing was written | a bad line, no store at `--db` |
//! | 2 | `Usage`: the command line is wrong (clap's own errors exit 2 too) | `--copy` on `import` |
//! | 3 | `Damaged`: the store is damaged or was altered | a flipped byte, a shortened log |
//! | 4 | `Environment`: the machine refused | disk full, permission, read-only, store in use |
//!
//! Every `StoreError` is placed by `store::ErrorKind` and worded here; other errors reaching
//! `main` through `anyhow` are placed by what their chain holds (`classify`). This module
//! owns the wording and the codes; it must never decide whether something is an error.

use std::path::Path;

use store::{ErrorKind, StoreError};

/// An error that means the user's input was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A failure of one of the four kinds, with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// Exit 1: the input was refused and nothing was written.
    #[error("{0}")]
    BadInput(String),
    /// Exit 2: the command line itself is wrong.
    #[error("{0}")]
    Usage(String),
    /// Exit 3: the store is damaged or shorter than acknowledged.
    #[error("{0}")]
    Damaged(String),
    /// Exit 4: the machine refused (disk full, permission, read-only, in use, I/O).
    #[error("{0}")]
    Environment(String),
}

impl CliError {
    /// The exit code (README "Exit status").
    pub fn code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Damaged(_) => 3,
            CliError::Environment(_) => 4,
        }
    }

    /// A key directory's error: a sealed field that does not authenticate is damage (exit 3);
    /// an event about an erased subject is refused input (exit 1); a missing, foreign or
    /// unreadable key is the machine's (exit 4).
    pub fn from_vault(e: &vault::VaultError) -> CliError {
        use vault::VaultError as V;
        match e {
            V::Tampered { .. } | V::Shape { .. } => CliError::Damaged(e.to_string()),
            V::Erased { .. } | V::NoSubject { .. } => CliError::BadInput(e.to_string()),
            V::File(_) | V::Random(_) | V::Unwrap { .. } | V::NoKey { .. } | V::NoVault { .. } => {
                CliError::Environment(e.to_string())
            }
        }
    }

    /// A store error, worded for the store at `db`. `writes`: whether the command needs to
    /// write the store (it changes what a read-only store's message offers).
    pub fn from_store(e: &StoreError, db: &Path, writes: bool) -> CliError {
        let db = db.display();
        let restore = "restore it from a backup or an export";
        match e {
            StoreError::Missing(p) => CliError::BadInput(format!(
                "there is no store at {}; run `careledger init` to make one there, or give \
                 --db the directory of an existing store",
                p.display()
            )),
            StoreError::Exists(p) => CliError::BadInput(format!(
                "a store already exists at {}; nothing was changed",
                p.display()
            )),
            StoreError::NotAStore { path, why } => CliError::BadInput(format!(
                "{} is not a careledger store: {why}; give --db the directory made by \
                 `careledger init`",
                path.display()
            )),
            StoreError::ReadOnly(p) if writes => CliError::Environment(format!(
                "the store at {} is read-only (a read-only directory or mount), and this \
                 command must write it; run it where the store is writable",
                p.display()
            )),
            StoreError::ReadOnly(p) => CliError::Environment(format!(
                "the store at {} is read-only (a read-only directory or mount), and sled \
                 opens a store only for writing; add --copy to work on a private temporary \
                 copy",
                p.display()
            )),
            StoreError::InUse { path, holder } => CliError::Environment(format!(
                "the store at {} is in use by another careledger process{}; try again when \
                 it finishes",
                path.display(),
                holder
                    .as_ref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            )),
            StoreError::DiskFull {
                path,
                available,
                needed,
            } => CliError::Environment(format!(
                "the disk holding {} is full ({available} bytes free; opening the store safely \
                 needs {needed}); free some space and run the command again — nothing was \
                 changed",
                path.display()
            )),
            StoreError::Io { path, source } => {
                let on = path
                    .as_ref()
                    .map_or_else(|| format!("the store at {db}"), |p| p.display().to_string());
                CliError::Environment(io_sentence(&on, source, writes))
            }
            StoreError::Sled(what) => {
                CliError::Environment(format!("sled could not use the store at {db}: {what}"))
            }
            StoreError::Lost { path, acknowledged } => CliError::Damaged(format!(
                "the store at {} is damaged: its data file `db` is gone{}; {restore}",
                path.display(),
                acknowledged
                    .map(|n| format!(" (its head file says {n} events were acknowledged)"))
                    .unwrap_or_default()
            )),
            StoreError::Corrupt(what) => {
                CliError::Damaged(format!("the store at {db} is damaged: {what}; {restore}"))
            }
            StoreError::Damaged { seq, what } => CliError::Damaged(format!(
                "the store at {db} is damaged at seq {seq}: {what}; {restore}"
            )),
            // Draft errors: the callers that know the file and line word them; this is the
            // fallback.
            StoreError::RecordedAtMissing { .. }
            | StoreError::RecordedAtNotAllowed { .. }
            | StoreError::RecordedAtDecreasing { .. }
            | StoreError::RecordedAtInFuture { .. }
            | StoreError::OccurredAfterRecorded { .. }
            | StoreError::TooLarge { .. } => {
                debug_assert_eq!(e.kind(), ErrorKind::BadInput);
                CliError::BadInput(format!("{e}; nothing was written"))
            }
            // Proofs (docs/proofs.md): a size or seq the log does not have; a signing key
            // that is not the one of the store's checkpoints.
            StoreError::Proof(what) => CliError::BadInput(what.clone()),
            StoreError::Signer(what) => CliError::Environment(format!(
                "{what}; give --keys DIR (or $CARELEDGER_KEYS) where this store's key is kept"
            )),
        }
    }

    /// Places any error that reached `main`: a `CliError`, `BadInput` or `StoreError` in its
    /// chain decides; an I/O error is the environment's; anything else too (it is a failure
    /// to produce output, not a refusal of the input), with its chain said once.
    pub fn classify(err: anyhow::Error, db: &Path) -> CliError {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<CliError>() {
                return e.clone();
            }
            if let Some(BadInput(m)) = cause.downcast_ref::<BadInput>() {
                return CliError::BadInput(m.clone());
            }
            if let Some(e) = cause.downcast_ref::<StoreError>() {
                return CliError::from_store(e, db, false);
            }
            if let Some(e) = cause.downcast_ref::<vault::VaultError>() {
                return CliError::from_vault(e);
            }
        }
        let text = chain_text(&err);
        if let Some(io) = err.chain().find_map(|c| c.downcast_ref::<std::io::Error>()) {
            // The chain's outer text names what was being done ("creating out.csv").
            let on = err.to_string();
            if io_cause(io).is_some() {
                return CliError::Environment(io_sentence(&on, io, false));
            }
        }
        CliError::Environment(text)
    }
}

/// The kinds of I/O failure a person can act on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IoCause {
    Full,
    Permission,
    ReadOnly,
}

/// Which of those an I/O error is, by its OS code or its kind (sled re-wraps some errors,
/// keeping only the kind).
fn io_cause(e: &std::io::Error) -> Option<IoCause> {
    use std::io::ErrorKind as K;
    match (e.raw_os_error(), e.kind()) {
        (Some(28 | 122), _) | (_, K::StorageFull | K::QuotaExceeded) => Some(IoCause::Full),
        (Some(30), _) | (_, K::ReadOnlyFilesystem) => Some(IoCause::ReadOnly),
        (Some(1 | 13), _) | (_, K::PermissionDenied) => Some(IoCause::Permission),
        _ => None,
    }
}

/// An I/O failure on `on`, in one sentence with what to do; the OS text only when it is
/// not one of the known causes.
fn io_sentence(on: &str, e: &std::io::Error, writes: bool) -> String {
    let nothing = if writes {
        "nothing this command was writing was acknowledged"
    } else {
        "nothing was changed"
    };
    match io_cause(e) {
        Some(IoCause::Full) => format!(
            "the disk holding {on} is full; free some space and run the command again \
             ({nothing})"
        ),
        Some(IoCause::Permission) => format!(
            "permission denied on {on}; run the command as a user who may write there \
             ({nothing})"
        ),
        Some(IoCause::ReadOnly) => format!(
            "{on} is on a read-only file system; run the command where it is writable, or add \
             --copy to read a private copy ({nothing})"
        ),
        None => format!("{on}: {e}; check the disk and run the command again ({nothing})"),
    }
}

/// The messages of an error chain, each said once: a cause whose text its parent already
/// contains (thiserror's `#[from]`, sled's doubled text) is left out.
pub fn chain_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
