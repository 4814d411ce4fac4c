//! The SQLite baseline of the import benchmark: the same events, encoded the same way (the
//! rmp-serde named body careledger stores, chained with the same SHA-256 rule), one row per
//! event, one transaction per batch, WAL with `synchronous=FULL` so each commit is fsynced
//! like a careledger batch.
//!
//! It owns the SQLite schema of the comparison; it must never be read by anything but the
//! benchmark (careledger's store is sled, rules §3).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use events::{Envelope, Hash, SCHEMA, Source};
use rusqlite::{Connection, params};

use crate::StageOut;
use crate::data::DataArgs;
use crate::machine::dir_size;

/// The schema: every envelope field careledger indexes gets a column; `id` is unique (the
/// idempotency check, `INSERT OR IGNORE`), `child` and `staff` are indexed like careledger's
/// by-child and by-staff trees. An activity's further children go to `event_children`.
const SCHEMA_SQL: &str = "
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        occurred_at INTEGER NOT NULL,
        child TEXT,
        staff TEXT,
        body BLOB NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE UNIQUE INDEX events_id ON events (id);
    CREATE INDEX events_child ON events (child);
    CREATE INDEX events_staff ON events (staff);
    CREATE TABLE event_children (
        child TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (child, seq)
    ) WITHOUT ROWID;
";

/// The page cache given to SQLite, in KiB: the same 256 MiB careledger gives sled.
const CACHE_KIB: i64 = 256 * 1024;

/// Where the SQLite database of a run lives inside the work directory.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("sqlite").join("events.db")
}

/// Opens a fresh database with the comparison's settings.
fn open(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    ensure!(!path.exists(), "{} exists already", path.display());
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "sqlite refused WAL mode: {mode}"
    );
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA cache_size = -{CACHE_KIB}; {SCHEMA_SQL}"
    ))?;
    Ok(conn)
}

/// Stage `sqlite`: the generated year into a fresh SQLite database. Timed per batch: building
/// each envelope, encoding it, chaining its hash and inserting its rows, then the commit
/// (fsync of the WAL). The generation of the events is not timed.
pub fn import(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let path = db_path(dir);
    let mut conn = open(&path)?;
    let mut batches = data.batches()?;
    let mut generate = Duration::ZERO;
    let mut insert = Duration::ZERO;
    let (mut seq, mut prev) = (0u64, Hash::ZERO);
    let mut count = 0usize;
    loop {
        let t = Instant::now();
        let Some(batch) = batches.next() else { break };
        generate += t.elapsed();
        let n = batch.len();
        let t = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut row = tx.prepare(
                "INSERT OR IGNORE INTO events
                 (seq, id, recorded_at, occurred_at, child, staff, body, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut extra =
                tx.prepare("INSERT OR IGNORE INTO event_children (child, seq) VALUES (?1, ?2)")?;
            for g in batch {
                let env = Envelope {
                    sealed: None,
                    schema: SCHEMA,
                    seq: seq + 1,
                    id: g.id,
                    recorded_at: g.recorded_at,
                    occurred_at: g.occurred_at,
                    actor: g.actor,
                    source: Source::Migration,
                    event: g.event,
                    prev_hash: prev,
                    hash: Hash::ZERO,
                };
                let body = env.encode_body();
                let hash = Envelope::chain_hash(&prev, &body);
                let children = env.event.children();
                let added = row.execute(params![
                    env.seq as i64,
                    env.id,
                    env.recorded_at.timestamp_micros(),
                    env.occurred_at.timestamp_micros(),
                    children.first(),
                    env.event.staff(),
                    body,
                    &hash.0[..],
                ])?;
                // An id already present is skipped and takes no seq, as in careledger.
                if added == 1 {
                    seq += 1;
                    prev = hash;
                    for c in children.iter().skip(1) {
                        extra.execute(params![c, env.seq as i64])?;
                    }
                }
            }
        }
        tx.commit()?;
        insert += t.elapsed();
        count += n;
    }
    ensure!(
        seq as usize == count,
        "sqlite skipped {} repeated ids",
        count - seq as usize
    );
    drop(conn);
    let mut out = StageOut::default();
    out.set("events", count as f64);
    out.set("insert_s", insert.as_secs_f64());
    out.set("generate_s", generate.as_secs_f64());
    out.set("disk_bytes", dir_size(&dir.join("sqlite")) as f64);
    out.note("head_hash", prev.to_hex());
    Ok(out)
}
