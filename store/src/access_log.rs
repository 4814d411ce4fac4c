//! The access log: who read which child's file, and every export, through the service —
//! append-only and hash-chained, in a sled tree of its own (`access_log`), apart from the care
//! log (an access is not a care event).
//!
//! Each entry carries its `seq` (gapless from 1), the hash of the entry before it and its own
//! hash, SHA-256(prev_hash ‖ the entry's canonical JSON without `hash`), so that removing or
//! altering an entry is found by `verify`. This module owns that chain and its durability
//! (an entry is fsynced before `append` returns); it must never update or remove an entry,
//! and never hold anything but metadata (no payload, no note).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log::{Store, StoreError};

const TREE: &str = "access_log";

/// What an access is: the caller fills it in; the log adds seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The account that read.
    pub actor: String,
    /// Its role (`teacher`, `inspector`, …).
    pub role: String,
    /// What was read or exported (`archive`, `history`, `report_term`, …).
    pub what: String,
    /// The child whose file was read, if one.
    pub child: Option<String>,
    /// Where the request came from (the peer address).
    pub from: String,
}

/// One entry of the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Position in the access log, from 1, gapless.
    pub seq: u64,
    /// When the access was made.
    pub at: DateTime<Utc>,
    /// What was accessed, by whom, from where.
    #[serde(flatten)]
    pub access: Access,
    /// The previous entry's hash (hex; 64 zeros for the first).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// Why the access log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The store failed underneath.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An entry does not decode, is out of place, or its hash or chain does not match.
    #[error("the access log is damaged at entry {seq}: {why}")]
    Damaged {
        /// The first entry found wrong.
        seq: u64,
        /// What was wrong with it.
        why: String,
    },
}

impl From<sled::Error> for AccessLogError {
    fn from(e: sled::Error) -> AccessLogError {
        AccessLogError::Store(e.into())
    }
}

/// The access log of one open store. Keep one per process (it may outlive borrows of the
/// store: it holds sled's own handles): appends are serialised by its own lock.
pub struct AccessLog {
    db: sled::Db,
    /// sled's data file, fsynced after each entry.
    data_file: std::path::PathBuf,
    tree: sled::Tree,
    /// The last entry's seq and hash.
    tail: Mutex<(u64, String)>,
}

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Store {
    /// The store's access log, its tail read once (`AccessLog::append` keeps it).
    pub fn access_log(&self) -> Result<AccessLog, AccessLogError> {
        let tree = self.sled_db().open_tree(TREE)?;
        let tail = match tree.last()? {
            None => (0, ZERO.to_owned()),
            Some((k, v)) => {
                let e = decode(&k, &v)?;
                (e.seq, e.hash)
            }
        };
        Ok(AccessLog {
            db: self.sled_db().clone(),
            data_file: self.path().join("db"),
            tree,
            tail: Mutex::new(tail),
        })
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<AccessEntry, AccessLogError> {
    let seq = <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    serde_json::from_slice(value).map_err(|e| AccessLogError::Damaged {
        seq,
        why: format!("the entry does not decode ({e})"),
    })
}

/// The hash of an entry: SHA-256(prev_hash ‖ JSON of seq, at, access).
fn entry_hash(seq: u64, at: DateTime<Utc>, access: &Access, prev_hash: &str) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        seq: u64,
        at: DateTime<Utc>,
        #[serde(flatten)]
        access: &'a Access,
    }
    let body = serde_json::to_vec(&Hashed { seq, at, access }).expect("an entry always encodes");
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(&body);
    hex_of(&h.finalize())
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl AccessLog {
    /// Appends an entry made at `at`, durably (fsynced before returning).
    pub fn append(&self, access: Access, at: DateTime<Utc>) -> Result<AccessEntry, AccessLogError> {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let seq = tail.0 + 1;
        let hash = entry_hash(seq, at, &access, &tail.1);
        let entry = AccessEntry {
            seq,
            at,
            access,
            prev_hash: tail.1.clone(),
            hash,
        };
        let value = serde_json::to_vec(&entry).expect("an entry always encodes");
        self.tree.insert(seq.to_be_bytes(), value)?;
        self.db.flush()?;
        std::fs::File::open(&self.data_file)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(&self.data_file, e))?;
        *tail = (seq, entry.hash.clone());
        Ok(entry)
    }

    /// Every entry, in order, each checked against its hash and the chain.
    pub fn entries(&self) -> Result<Vec<AccessEntry>, AccessLogError> {
        let mut out = Vec::new();
        let mut prev = ZERO.to_owned();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let e = decode(&k, &v)?;
            let expected_seq = out.len() as u64 + 1;
            let damaged = |why: &str| AccessLogError::Damaged {
                seq: e.seq,
                why: why.to_owned(),
            };
            if e.seq != expected_seq || k.as_ref() != e.seq.to_be_bytes() {
                return Err(AccessLogError::Damaged {
                    seq: expected_seq,
                    why: format!("expected entry {expected_seq}, found entry {}", e.seq),
                });
            }
            if e.prev_hash != prev {
                return Err(damaged("it does not chain to the entry before it"));
            }
            if entry_hash(e.seq, e.at, &e.access, &e.prev_hash) != e.hash {
                return Err(damaged("its hash does not match its content"));
            }
            prev = e.hash.clone();
            out.push(e);
        }
        Ok(out)
    }

    /// Replaces an entry's value with `value` (tests of the chain check only).
    #[doc(hidden)]
    pub fn tamper_for_test(&self, seq: u64, value: &[u8]) -> Result<(), AccessLogError> {
        self.tree.insert(seq.to_be_bytes(), value)?;
        Ok(())
    }
}
