//! What the checker remembers between visits: the last checkpoint it accepted, per pinned key.
//!
//! This module owns the state file (JSON, version 1) and writing it safely (a temporary file in
//! the same directory, synced, then renamed over the old one). It never decides whether a
//! checkpoint may replace the remembered one — that is `check` — and it must never lose the
//! remembered checkpoint on a failed write.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Verified;
use crate::format;
use crate::merkle::Digest32;

/// The version of the state file this checker reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but cannot be read.
    #[error("cannot read the state file {path}")]
    Read {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a state file of this version.
    #[error("the state file {path} is not a version {STATE_VERSION} state file: {detail}")]
    Malformed {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The new state could not be written (the old one is intact).
    #[error("cannot write the state file {path}")]
    Write {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No `--state` and no config directory.
    #[error("no state file given and no config directory to put one in")]
    NoConfigDir,
}

/// The last checkpoint accepted under one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remembered {
    /// The log's origin.
    pub origin: String,
    /// The remembered tree size.
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The signed checkpoint note, so the inspector can show it.
    pub checkpoint: String,
}

impl Remembered {
    /// The remembered root; `path` names the state file in the error.
    pub fn root(&self, path: &Path) -> Result<Digest32, StateError> {
        format::decode_digest(&self.root, String::new).map_err(|_| StateError::Malformed {
            path: path.to_owned(),
            detail: format!("the root of {} is not base64 of 32 bytes", self.origin),
        })
    }
}

/// The whole state file: remembered checkpoints keyed by verifier-key string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Verifier-key string → the last checkpoint accepted under it.
    pub logs: BTreeMap<String, Remembered>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            logs: BTreeMap::new(),
        }
    }
}

/// `<config dir>/careledger/verify-state.json`.
pub fn default_path() -> Result<PathBuf, StateError> {
    let dir = dirs::config_dir().ok_or(StateError::NoConfigDir)?;
    Ok(dir.join("careledger").join("verify-state.json"))
}

impl State {
    /// Loads the state file; a missing file is an empty state (the first visit).
    pub fn load(path: &Path) -> Result<State, StateError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| StateError::Malformed {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Malformed {
                path: path.to_owned(),
                detail: format!("version {}", state.version),
            });
        }
        Ok(state)
    }

    /// The checkpoint remembered under a verifier-key string.
    pub fn get(&self, key: &str) -> Option<&Remembered> {
        self.logs.get(key)
    }

    /// Remembers `v` as the last checkpoint accepted under its key.
    pub fn remember(&mut self, v: &Verified) {
        self.logs.insert(
            v.key.text.clone(),
            Remembered {
                origin: v.checkpoint.origin.clone(),
                size: v.checkpoint.size,
                root: format::encode(&v.checkpoint.root),
                checkpoint: v.note.clone(),
            },
        );
    }

    /// Writes the state atomically: the old file stays whole until the rename.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(write_err)?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| write_err(e.into()))?;
        text.push('\n');
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("verify-state.json")
        ));
        let mut f = fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(text.as_bytes()).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        fs::rename(&tmp, path).map_err(write_err)?;
        Ok(())
    }
}
