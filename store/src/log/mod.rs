//! The log: an append-only, hash-chained sequence of envelopes in sled, with its indexes.
//!
//! Layout (one sled database, several trees, and one file beside it):
//! - `log`: key = big-endian `seq` of the first envelope a value covers; value = a *segment*
//!   (a packed run of consecutive envelopes of a small batch) or a *directory* naming, for
//!   consecutive seqs of a large batch, the cluster holding each (`segment` module). Every
//!   envelope is still hashed and addressable by its own `seq`.
//! - `clusters`: a large batch's envelopes, grouped by school and child within windows of
//!   65,536 seqs, keyed by window and ordinal (`segment` module, `append::pack`).
//! - `meta`: `head` = the last committed `seq`, its hash and `recorded_at`. **The head is the
//!   commit point**: segments, directories and clusters past it are the remains of a batch that
//!   never committed and are removed on open. `head_file` marks a store that keeps the head file.
//! - derived trees `by_child`, `by_staff`, `by_id`, `registry`: each holds a `through` marker
//!   (the last seq it reflects) written in the same atomic sled batch as its entries. They are
//!   written after the head and caught up from the log on open, so after any crash they agree
//!   with the log.
//! - `scopes` (`scopes`): the read models — each school's envelopes (its registry and every
//!   envelope about a child or staff member who ever belonged to it), derived like the
//!   indexes, with a check on every value (docs/read-models.md).
//! - `tlog` and `checkpoints` (`tree`): the stored hashes of the log's Merkle tree, written
//!   with each batch before the head moves, and the checkpoints signed after each commit.
//! - the file `head` (`head_file`): the acknowledged head, outside sled, so that a shortened
//!   data file is noticed.
//!
//! The submodules, one idea each: `open` (finding, checking and recovering a store),
//! `append` (placing a batch durably), `index` (the derived trees), `read` (getting envelopes
//! back, each checked against its hash), `verify` (the whole chain and every index),
//! `scopes` (the read models), `head_file`, `rollback` (undoing sled's recovery when
//! opening finds damage), `error`, and `tamper` (damage for tests).
//!
//! This module owns the `Store` handle and its in-memory state. The log as a whole owns
//! durability, atomicity, idempotency and the two times; it must never interpret events
//! beyond ids, children, staff and amendment targets.

mod append;
mod error;
pub mod head_file;
mod index;
mod open;
mod read;
mod rollback;
mod scopes;
mod staged;
#[doc(hidden)]
pub mod tamper;
mod tree;
mod verify;
mod world;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use events::envelope::Hash;
use events::registry::Registry;
use serde::{Deserialize, Serialize};

pub use append::SCOPES_BESIDE_AT;
pub use error::{ErrorKind, StoreError};
pub use open::copy_store;
pub use scopes::FactValues;
pub use tree::{StoredCheckpoint, TILE_HASHES};

use head_file::HeadFile;
use index::IdMap;

/// sled's log segment size. sled writes any log item — a value, or a whole tree node
/// holding several values — larger than a quarter of it to a blob file that its flush does
/// not fsync (docs/stack.md, sled; measured: a 1 M-event import of 16 KiB segments with the default
/// 512 KiB sled segments left 1,894 blob files). 2 MiB segments keep every item of our trees inline.
const SLED_SEGMENT_BYTES: usize = 2 * 1024 * 1024;
/// Largest encoded envelope accepted (a talk is a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// An append of more envelopes than `SMALL_APPEND_AT_MOST` (an import's batch) closes its
/// clusters before their data would pass this size (about four envelopes; a larger envelope
/// gets a cluster of its own). Small, because sled keeps up to 16 values in a leaf and reads
/// a whole leaf to answer a get: with 16 KiB segments one child's archive (78 envelopes)
/// pulled 6.3 MB through sled and a school's read 1.2 GB; with 2 KiB segments, 1.4 MB and
/// 0.6 GB; with 2 KiB clusters grouped by school, 0.7 MB and 55 MB (docs/store.md,
/// "Segments, clusters and directories").
const SEGMENT_TARGET_BYTES: usize = 2 * 1024;
/// An append of at most this many envelopes (the service's group commits)…
const SMALL_APPEND_AT_MOST: usize = 256;
/// …packs them into segments of up to this size: the service recorded a fifth to a third
/// fewer talks a second at 64 clients with its commits cut into 2 KiB segments (docs/store.md).
const SMALL_SEGMENT_TARGET_BYTES: usize = 16 * 1024;
/// The key of the `through` marker in every derived tree: 0xFF never starts a UTF-8 id.
const THROUGH_KEY: &[u8] = &[0xFF];

/// The end of the committed log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The last committed seq (0 for an empty log).
    pub seq: u64,
    /// That envelope's chain hash (`Hash::ZERO` for an empty log): what the next one chains to.
    pub hash: Hash,
    /// Its `recorded_at`: the clock of the next append never goes below it.
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl Head {
    const EMPTY: Head = Head {
        seq: 0,
        hash: Hash::ZERO,
        recorded_at: None,
    };

    /// The `meta/head` value.
    fn encoded(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a head always encodes")
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Envelopes written.
    pub appended: u64,
    /// Drafts skipped because their id was already in the log (or earlier in the batch).
    pub skipped: u64,
    /// The head after the append.
    pub head: Head,
}

/// What `verify` found on an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Envelopes checked: the whole log.
    pub events: u64,
    /// The chain hash of the last one, to compare with a saved head or checkpoint.
    pub head: Hash,
}

/// The writer's view of the log: head and registry, kept in memory. The registry is loaded
/// from its tree on first use (an append, `Store::registry`), never by opening: a read of one
/// school must not load the county's.
struct WriterState {
    head: Head,
    registry: Option<Registry>,
}

/// An open careledger store. One process at a time (sled locks the data file).
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    /// An import's envelopes, grouped by school within each window (`segment`, clusters).
    clusters: sled::Tree,
    meta: sled::Tree,
    /// Postings trees: small appends staged (`staged`).
    by_child: staged::StagedTree,
    by_staff: staged::StagedTree,
    by_id: sled::Tree,
    registry: sled::Tree,
    /// The read models (`scopes`): each school's envelopes, kept with the log.
    scopes: staged::StagedTree,
    /// The stored hashes of the log's Merkle tree, in tiles (`tree`).
    tlog: sled::Tree,
    /// Signed checkpoints by tree size (`tree`).
    checkpoints: sled::Tree,
    /// The key that signs a checkpoint after each commit, when the caller handed one over.
    signer: Mutex<Option<tlog::NoteSigner>>,
    /// Set only by the benchmark that measures what the tree costs (`tree`).
    tree_off_for_bench: std::sync::atomic::AtomicBool,
    /// Set only by the benchmark that measures what the read models cost (`scopes`).
    read_models_off_for_bench: std::sync::atomic::AtomicBool,
    state: Mutex<WriterState>,
    /// The head file, updated after each commit (`None` only while opening).
    head_file: Mutex<Option<HeadFile>>,
    /// The id index in memory, loaded on first use (`IdMap::load`), then kept in step. Its
    /// own lock, so that indexing can look ids up while it holds the state.
    ids: Mutex<Option<IdMap>>,
    /// The read models' lists (`M`, `R`, `L` keys: who belongs to or reads what) as the
    /// `scopes` tree holds them after the last append, for the keys appends have read (an
    /// empty list: no value). Kept so that an append reads each list from the tree once per
    /// process, not once per batch; emptied whenever writing the tree fails or the tree is
    /// rebuilt.
    read_model_lists: Mutex<scopes::Lists>,
    /// What small appends deferred of `by_id` and `registry` (the posting trees keep theirs).
    deferred: Mutex<index::Deferred>,
    /// What opening did that a person should hear about (e.g. a head file adopted).
    notices: Vec<String>,
    /// The blob files `sync` has fsynced, by name (`sync_blobs`).
    synced_blobs: Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl Store {
    /// The path of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The committed head.
    pub fn head(&self) -> Head {
        self.lock().head
    }

    /// What is registered so far (schools, terms, staff, children, incidents, retractions).
    pub fn registry(&self) -> Result<Registry, StoreError> {
        let mut st = self.lock();
        Ok(self.registry_loaded(&mut st)?.clone())
    }

    /// The registry of the writer state, loaded from its tree if this process has not yet.
    fn registry_loaded<'a>(&self, st: &'a mut WriterState) -> Result<&'a mut Registry, StoreError> {
        if st.registry.is_none() {
            st.registry = Some(open::load_registry(&self.registry)?);
        }
        Ok(st.registry.as_mut().expect("loaded above"))
    }

    /// What opening the store did that its user should be told (one sentence each).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        // A panic while holding the lock leaves the in-memory state possibly behind the disk;
        // the disk is the truth and is re-read on the next open, so continuing is safe.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, Option<IdMap>> {
        // As for the state: the disk is the truth, and the map is rebuilt from it on open.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Flushes sled and fsyncs its data file: sled's own flush does not survive power loss
    /// on Linux (docs/stack.md, durability; spacejam/sled#1452).
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.sync_blobs()?;
        let file = self.path.join("db");
        File::open(&file)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(file, e))
    }

    /// Fsyncs every blob file not fsynced yet, then the `blobs` directory when it has new
    /// ones. sled writes a log item too large for a quarter of its segment (a tree node) to
    /// `blobs/<lsn>` at the moment it logs it, and never fsyncs that file (sled 0.34.7,
    /// `write_blob`); a county's import leaves a few (docs/store.md, "Few blob files, each
    /// fsynced"). Run after sled's flush, before the fsync of `db` that makes the items
    /// pointing at them durable, so an acknowledged commit never points at a blob a power
    /// loss could take. (An item another thread logs after this listing and before that fsync
    /// is not acknowledged yet: its own sync lists its blob.)
    fn sync_blobs(&self) -> Result<(), StoreError> {
        let dir = self.path.join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = std::collections::HashSet::new();
        let mut new = false;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                let path = entry.path();
                match File::open(&path) {
                    Ok(f) => f.sync_all().map_err(|e| StoreError::io(&path, e))?,
                    // sled removes the blobs of items it no longer needs.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StoreError::io(&path, e)),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::io(&dir, e))?;
        }
        // Forget the names sled removed, so the set stays as small as the directory.
        *synced = present;
        Ok(())
    }

    /// The sled database, for the store's own non-log trees (`accounts`, `access_log`).
    pub(crate) fn sled_db(&self) -> &sled::Db {
        &self.db
    }

    /// `sync` for the store's non-log trees: flush and fsync, as an append does.
    pub(crate) fn sync_db(&self) -> Result<(), StoreError> {
        self.sync()
    }

    /// Records `head` in sled's `meta` tree (not yet durable).
    fn put_meta_head(&self, head: &Head) -> Result<(), StoreError> {
        self.meta.insert(b"head", head.encoded())?;
        Ok(())
    }
}

/// The threads to split a batch's encoding or hashing of `n` items over: one below 4,096 items
/// (too little work to split), else every core. The size is checked first: asking for the
/// cores reads cgroup files (four `openat`s), too dear for every small commit of the service.
fn threads_for(n: usize) -> usize {
    if n < 4096 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use events::envelope::Source;
    use events::event::Mood;
    use events::{Draft, Event};

    use super::*;
    use crate::segment;

    /// A talk with id `e{id}` (the log's tests share it).
    pub(super) fn talk(id: usize) -> Draft {
        Draft {
            sealed: None,
            id: format!("e{id}"),
            occurred_at: Utc.with_ymd_and_hms(2025, 9, 1, 4, 0, 0).unwrap(),
            actor: "t1".to_owned(),
            event: Event::TalkHeld {
                staff: "t1".to_owned(),
                child: format!("c{}", id % 3),
                topic: "学习".to_owned(),
                summary: "谈了期中考试".to_owned(),
                mood: Mood::Ok,
                follow_up: None,
            },
            recorded_at: None,
        }
    }

    /// A registry draft from its wire form.
    fn registered(id: &str, kind: &str, fields: serde_json::Value) -> Draft {
        Draft {
            sealed: None,
            id: id.to_owned(),
            occurred_at: Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap(),
            actor: "admin".to_owned(),
            event: events::wire::event_from_wire(kind, fields.as_object().unwrap().clone())
                .unwrap(),
            recorded_at: None,
        }
    }

    /// Two schools, `k0` with children `a0`–`a9`, `k1` with `b0`–`b9`.
    fn two_schools() -> Vec<Draft> {
        let mut out = Vec::new();
        for k in ["k0", "k1"] {
            out.push(registered(
                k,
                "school_registered",
                serde_json::json!({"school": k, "name": "学校", "county": "沿河县", "township": "思渠镇"}),
            ));
        }
        for (prefix, school) in [("a", "k0"), ("b", "k1")] {
            for c in 0..10 {
                out.push(registered(&format!("reg-{prefix}{c}"), "child_registered", serde_json::json!({"child": format!("{prefix}{c}"), "school": school, "grade": 4, "class": 1, "name": "学生", "gender": "female", "birth_date": "2016-01-01", "boarding": false, "address": "村", "left_behind_type": "both_parents_away", "parents": [{"name": "父", "relation": "father", "work_place": "东莞", "phone": "13900000000", "away": true}], "guardian": {"name": "祖母", "relation": "grandparent_paternal", "phone": "13700000000", "capability": "fair"}})));
            }
        }
        out
    }

    /// A talk `e{id}` about child `child`.
    fn talk_about(id: usize, child: String) -> Draft {
        let mut d = talk(id);
        if let Event::TalkHeld { child: c, .. } = &mut d.event {
            *c = child;
        }
        d
    }

    #[test]
    fn a_commit_is_packed_in_segments_and_an_import_in_clusters_by_school() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = Store::create(&path).unwrap();
        // A commit of the service (at most `SMALL_APPEND_AT_MOST`): segments up to 16 KiB,
        // no cluster.
        store.append(two_schools(), Source::Cli).unwrap();
        let registry_values = store.log.len();
        assert!(
            registry_values < 4,
            "22 drafts in {registry_values} segments"
        );
        assert!(store.clusters.is_empty());
        // An import's batch, the two schools' children interleaved: clusters of about 2 KiB,
        // each of one school, named by directories of up to 512 seqs.
        let n = SMALL_APPEND_AT_MOST * 3;
        let import: Vec<Draft> = (0..n)
            .map(|i| talk_about(i, format!("{}{}", ["a", "b"][i % 2], i % 10)))
            .collect();
        store.append(import, Source::Cli).unwrap();
        assert_eq!(
            store.log.len(),
            registry_values + 2,
            "768 seqs, two directories"
        );
        let clusters: Vec<_> = store.clusters.iter().map(|kv| kv.unwrap().1).collect();
        assert!(clusters.len() >= n * 200 / SEGMENT_TARGET_BYTES / 2);
        for c in &clusters {
            assert!(c.len() <= SEGMENT_TARGET_BYTES + 1024);
            let seg = segment::Segment::parse(c).unwrap();
            let schools: std::collections::BTreeSet<char> = (0..seg.len())
                .map(|i| {
                    let (hash, body) = seg.entry(i).unwrap();
                    let env = read::decode(seg.seq(i), hash, body).unwrap();
                    env.event.children()[0].chars().next().unwrap()
                })
                .collect();
            assert_eq!(schools.len(), 1, "a cluster of one school: {schools:?}");
        }
        let total = 22 + n as u64;
        for seq in 1..=total {
            assert_eq!(store.get(seq).unwrap().unwrap().seq, seq);
        }
        let scanned: Vec<u64> = store.scan(None).map(|e| e.unwrap().seq).collect();
        assert_eq!(scanned, (1..=total).collect::<Vec<_>>());
        store.verify().unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.verify().unwrap().events, total);
    }

    #[test]
    fn every_blob_file_sled_writes_is_fsynced_by_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("s")).unwrap();
        // A value over a quarter of sled's segment is logged as a blob file (what a
        // county's import does with a few tree nodes, docs/store.md).
        store
            .meta
            .insert(b"big", vec![7u8; SLED_SEGMENT_BYTES / 2])
            .unwrap();
        store.sync().unwrap();
        let on_disk: std::collections::HashSet<_> = std::fs::read_dir(store.path.join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !on_disk.is_empty(),
            "sled wrote no blob: the test proves nothing"
        );
        assert_eq!(*store.synced_blobs.lock().unwrap(), on_disk);
    }
}
