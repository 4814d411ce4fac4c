//! Signed checkpoints (C2SP tlog-checkpoint) as the checker reads them.
//!
//! This module owns the strict reading of the checkpoint text (origin, canonical decimal size,
//! canonical base64 of a 32-byte root, no extension lines) and the rule that the checkpoint is
//! signed by a pinned key *named as its origin*. It must never hand out a checkpoint whose
//! signature it did not verify.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keys::{VerifierKey, is_valid_name};
use crate::merkle::{Digest32, MAX_TREE_SIZE};
use crate::note::{self, NoteError};

/// Why a checkpoint is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note is refused.
    #[error("checkpoint: {0}")]
    Note(#[from] NoteError),
    /// Not exactly three text lines (extension lines are refused).
    #[error("checkpoint has {0} text lines, not 3 (origin, size, root)")]
    LineCount(usize),
    /// The origin is not a valid key name.
    #[error("checkpoint origin {0:?} is not a key name")]
    Origin(String),
    /// The size line is not canonical decimal.
    #[error("checkpoint size {0:?} is not canonical decimal")]
    Size(String),
    /// The size is above the checker's limit.
    #[error("checkpoint size {0} is above the limit of {max}", max = MAX_TREE_SIZE)]
    SizeTooLarge(u64),
    /// The root line is not canonical base64 of 32 bytes.
    #[error("checkpoint root {0:?} is not canonical base64 of 32 bytes")]
    Root(String),
    /// Pinned keys signed, but none named as the origin.
    #[error("no pinned key named {0:?} signed the checkpoint")]
    NotSignedByOrigin(String),
}

/// A verified tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root at that size.
    pub root: Digest32,
}

/// A checkpoint and the pinned key of its origin that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The parsed checkpoint text.
    pub checkpoint: Checkpoint,
    /// The pinned key, named as the origin, whose signature verified.
    pub key: VerifierKey,
    /// The signed note as given, kept in the state file.
    pub note: String,
}

/// Opens a signed checkpoint with the pinned keys and parses its text.
pub fn open(signed: &str, keys: &[VerifierKey]) -> Result<Verified, CheckpointError> {
    let opened = note::open(signed.as_bytes(), keys)?;
    let checkpoint = parse_text(&opened.text)?;
    let key = opened
        .signers
        .into_iter()
        .find(|k| k.name == checkpoint.origin)
        .ok_or_else(|| CheckpointError::NotSignedByOrigin(checkpoint.origin.clone()))?;
    Ok(Verified {
        checkpoint,
        key,
        note: signed.to_owned(),
    })
}

/// Parses the note text `origin\nsize\nroot\n`.
pub fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
    // The note layer guarantees the final newline; an empty text has none to strip.
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = body.split('\n').collect();
    let [origin, size, root] = lines[..] else {
        return Err(CheckpointError::LineCount(lines.len()));
    };
    if !is_valid_name(origin) {
        return Err(CheckpointError::Origin(origin.to_owned()));
    }
    let canonical = !size.is_empty()
        && size.bytes().all(|b| b.is_ascii_digit())
        && (size == "0" || !size.starts_with('0'));
    if !canonical {
        return Err(CheckpointError::Size(size.to_owned()));
    }
    let n: u64 = size
        .parse()
        .map_err(|_| CheckpointError::Size(size.to_owned()))?;
    if n > MAX_TREE_SIZE {
        return Err(CheckpointError::SizeTooLarge(n));
    }
    let bad_root = || CheckpointError::Root(root.to_owned());
    let raw = STANDARD.decode(root).map_err(|_| bad_root())?;
    let hash: Digest32 = raw.as_slice().try_into().map_err(|_| bad_root())?;
    if STANDARD.encode(hash) != root {
        return Err(bad_root());
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size: n,
        root: hash,
    })
}
