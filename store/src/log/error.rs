//! What can go wrong in the store, in four kinds a caller can act on: the store is not where
//! or what it should be, the environment refused (disk full, permission, read-only, another
//! process), the data is damaged, or a draft breaks a rule of the log.
//!
//! This module owns the variants and their one-sentence messages; it must never print, and
//! a message never repeats its cause (sled's own text is never shown).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::MAX_EVENT_BYTES;

/// The kind of a `StoreError`, for a caller that maps errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller asked for something wrong: no store there, not a store, a draft refused.
    BadInput,
    /// Data on disk is damaged or was altered.
    Damaged,
    /// The machine refused: disk full, permission, read-only, in use, an I/O failure.
    Environment,
}

/// Errors of the store. `index` is the position of a draft in the batch given to `append`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("there is no store at {0}")]
    Missing(PathBuf),
    #[error("a store already exists at {0}")]
    Exists(PathBuf),
    #[error("{path} is not a careledger store: {why}")]
    NotAStore { path: PathBuf, why: String },
    #[error("the store at {path} lost its data file `db`{}", acknowledged.map(|n| format!(" (its head file says {n} events were acknowledged)")).unwrap_or_default())]
    Lost {
        path: PathBuf,
        acknowledged: Option<u64>,
    },
    #[error("the store at {path} is in use by another careledger process{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    InUse {
        path: PathBuf,
        holder: Option<String>,
    },
    #[error("the store at {0} is read-only (a read-only directory, file or mount)")]
    ReadOnly(PathBuf),
    #[error(
        "the disk holding {path} is full ({available} bytes free, opening the store needs {needed})"
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        needed: u64,
    },
    /// An I/O failure; `path` when it is known which file.
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Io {
        path: Option<PathBuf>,
        source: std::io::Error,
    },
    /// sled refused for a reason that is neither damage nor I/O (a setting or version it
    /// does not support, or a bug it reports).
    #[error("sled refused: {0}")]
    Sled(String),
    /// Damage at a seq of the log: the first bad one.
    #[error("seq {seq}: {what}")]
    Damaged { seq: u64, what: String },
    /// Damage that belongs to no seq: sled's own checksums, the head file, an index value.
    #[error("{0}")]
    Corrupt(String),
    #[error("draft {index}: recorded_at is required in a migration")]
    RecordedAtMissing { index: usize },
    #[error("draft {index}: recorded_at is only accepted in a migration (--preserve-recorded-at)")]
    RecordedAtNotAllowed { index: usize },
    #[error("draft {index}: recorded_at {found} is before {previous}, the latest already recorded")]
    RecordedAtDecreasing {
        index: usize,
        found: DateTime<Utc>,
        previous: DateTime<Utc>,
    },
    #[error("draft {index}: recorded_at {found} is in the future")]
    RecordedAtInFuture { index: usize, found: DateTime<Utc> },
    #[error("draft {index}: occurred_at {occurred} is later than recorded_at {recorded}")]
    OccurredAfterRecorded {
        index: usize,
        occurred: DateTime<Utc>,
        recorded: DateTime<Utc>,
    },
    #[error("draft {index}: the encoded event is {bytes} bytes, more than {MAX_EVENT_BYTES}")]
    TooLarge { index: usize, bytes: usize },
    /// A proof or root asked for a size or seq the log does not have.
    #[error("{0}")]
    Proof(String),
    /// The checkpoint signer was refused (not the key of the store's checkpoints).
    #[error("{0}")]
    Signer(String),
}

impl StoreError {
    /// What kind of failure this is. Every variant is placed deliberately.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Missing(_)
            | StoreError::Exists(_)
            | StoreError::NotAStore { .. }
            | StoreError::RecordedAtMissing { .. }
            | StoreError::RecordedAtNotAllowed { .. }
            | StoreError::RecordedAtDecreasing { .. }
            | StoreError::RecordedAtInFuture { .. }
            | StoreError::OccurredAfterRecorded { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Proof(_) => ErrorKind::BadInput,
            StoreError::Lost { .. } | StoreError::Damaged { .. } | StoreError::Corrupt(_) => {
                ErrorKind::Damaged
            }
            StoreError::InUse { .. }
            | StoreError::ReadOnly(_)
            | StoreError::DiskFull { .. }
            | StoreError::Io { .. }
            | StoreError::Sled(_)
            | StoreError::Signer(_) => ErrorKind::Environment,
        }
    }

    /// The position in the batch of the draft this error is about.
    pub fn draft_index(&self) -> Option<usize> {
        match self {
            StoreError::RecordedAtMissing { index }
            | StoreError::RecordedAtNotAllowed { index }
            | StoreError::RecordedAtDecreasing { index, .. }
            | StoreError::RecordedAtInFuture { index, .. }
            | StoreError::OccurredAfterRecorded { index, .. }
            | StoreError::TooLarge { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The seq of the first damaged envelope, for `verify`.
    pub fn damaged_seq(&self) -> Option<u64> {
        match self {
            StoreError::Damaged { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The I/O error underneath, if any (for a caller that words disk full or permission).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: Some(path.into()),
            source,
        }
    }
}

/// sled's errors, each placed: its checksums failing is damage, its I/O is the
/// environment's. Its own text ("Read corrupted data at file offset None") is not passed on.
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            sled::Error::Corruption { .. } => StoreError::Corrupt(
                "the data file `db` fails sled's own checksums (bytes were changed or lost)".into(),
            ),
            sled::Error::Io(source) => StoreError::Io { path: None, source },
            sled::Error::Unsupported(what) => StoreError::Sled(what),
            sled::Error::ReportableBug(what) => StoreError::Sled(format!("a sled bug: {what}")),
            sled::Error::CollectionNotFound(name) => {
                StoreError::Sled(format!("no tree named {}", String::from_utf8_lossy(&name)))
            }
        }
    }
}

pub(crate) fn damaged(seq: u64, what: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        seq,
        what: what.into(),
    }
}
