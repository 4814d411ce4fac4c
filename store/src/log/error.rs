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
    /// No store at the path (`careledger init` makes one).
    #[error("there is no store at {0}")]
    Missing(PathBuf),
    /// `init` on a path that already holds a store.
    #[error("a store already exists at {0}")]
    Exists(PathBuf),
    /// The path holds something else (a file, a foreign directory).
    #[error("{path} is not a careledger store: {why}")]
    NotAStore {
        /// The `--db` path.
        path: PathBuf,
        /// What was found there instead.
        why: String,
    },
    /// The data file is gone although the store's head file remembers acknowledged events.
    #[error("the store at {path} lost its data file `db`{}", acknowledged.map(|n| format!(" (its head file says {n} events were acknowledged)")).unwrap_or_default())]
    Lost {
        /// The store directory.
        path: PathBuf,
        /// How many events the head file says were acknowledged.
        acknowledged: Option<u64>,
    },
    /// Another process holds the store's lock (after a short wait).
    #[error("the store at {path} is in use by another careledger process{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    InUse {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, from the owner file (command, pid, since when), if readable.
        holder: Option<String>,
    },
    /// The store cannot be opened for writing, which sled always needs (`--copy` helps).
    #[error("the store at {0} is read-only (a read-only directory, file or mount)")]
    ReadOnly(PathBuf),
    /// Too little room to open the store safely; checked before anything is written.
    #[error(
        "the disk holding {path} is full ({available} bytes free, opening the store needs {needed})"
    )]
    DiskFull {
        /// The store directory.
        path: PathBuf,
        /// Bytes free on its file system.
        available: u64,
        /// Bytes opening may need.
        needed: u64,
    },
    /// An I/O failure; `path` when it is known which file.
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// sled refused for a reason that is neither damage nor I/O (a setting or version it
    /// does not support, or a bug it reports).
    #[error("sled refused: {0}")]
    Sled(String),
    /// Damage at a seq of the log: the first bad one.
    #[error("seq {seq}: {what}")]
    Damaged {
        /// The first bad seq.
        seq: u64,
        /// What is wrong with it.
        what: String,
    },
    /// Damage that belongs to no seq: sled's own checksums, the head file, an index value.
    #[error("{0}")]
    Corrupt(String),
    /// A migration draft without its `recorded_at`.
    #[error("draft {index}: recorded_at is required in a migration")]
    RecordedAtMissing {
        /// The draft's position in the batch.
        index: usize,
    },
    /// A `recorded_at` in a draft that is not a migration: the store's clock decides.
    #[error("draft {index}: recorded_at is only accepted in a migration (--preserve-recorded-at)")]
    RecordedAtNotAllowed {
        /// The draft's position in the batch.
        index: usize,
    },
    /// A migration `recorded_at` earlier than the log's latest: it would break the as-of prefix.
    #[error("draft {index}: recorded_at {found} is before {previous}, the latest already recorded")]
    RecordedAtDecreasing {
        /// The draft's position in the batch.
        index: usize,
        /// The draft's `recorded_at`.
        found: DateTime<Utc>,
        /// The latest already recorded.
        previous: DateTime<Utc>,
    },
    /// A migration `recorded_at` after the store's clock.
    #[error("draft {index}: recorded_at {found} is in the future")]
    RecordedAtInFuture {
        /// The draft's position in the batch.
        index: usize,
        /// The draft's `recorded_at`.
        found: DateTime<Utc>,
    },
    /// An event recorded before it happened.
    #[error("draft {index}: occurred_at {occurred} is later than recorded_at {recorded}")]
    OccurredAfterRecorded {
        /// The draft's position in the batch.
        index: usize,
        /// Its `occurred_at`.
        occurred: DateTime<Utc>,
        /// Its `recorded_at`.
        recorded: DateTime<Utc>,
    },
    /// An event whose encoding exceeds `MAX_EVENT_BYTES` (it would not fit a segment).
    #[error("draft {index}: the encoded event is {bytes} bytes, more than {MAX_EVENT_BYTES}")]
    TooLarge {
        /// The draft's position in the batch.
        index: usize,
        /// Its encoded size.
        bytes: usize,
    },
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
