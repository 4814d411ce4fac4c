//! The log: an append-only, hash-chained sequence of envelopes in sled, with its indexes.
//!
//! Layout (one sled database, several trees):
//! - `log`: key = big-endian `seq` of the first envelope of a *segment*; value = a packed run
//!   of consecutive envelopes of one batch (`segment` module). Every envelope is still hashed
//!   and addressable by its own `seq`.
//! - `meta`: `head` = the last committed `seq`, its hash and `recorded_at`. **The head is the
//!   commit point**: segments past it are the remains of a batch that never committed and are
//!   removed on open.
//! - derived trees `by_child`, `by_staff`, `by_id`, `registry`: each holds a `through` marker
//!   (the last seq it reflects) written in the same atomic sled batch as its entries. They are
//!   written after the head and caught up from the log on open, so after any crash they agree
//!   with the log.
//!
//! This module owns durability, atomicity, idempotency and the two times. It must never
//! interpret events beyond ids, children, staff and amendment targets.

use rustc_hash::{FxHashMap, FxHashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::segment::{self, SegmentBuilder};
use events::Draft;
use events::envelope::{Envelope, Hash, SCHEMA, Source};
use events::event::Event;
use events::registry::{Entry, Registry};

/// sled's log segment size. sled writes any log item — a value, or a whole tree node
/// holding several values — larger than a quarter of it to a blob file that its flush does
/// not fsync (docs/stack.md, sled; measured: a 1 M-event import of 16 KiB segments with the default
/// 512 KiB sled segments left 1,894 blob files). 2 MiB segments keep every item of our trees inline.
const SLED_SEGMENT_BYTES: usize = 2 * 1024 * 1024;
/// Largest encoded envelope accepted (a talk is a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Segments are closed before their data would pass this size.
const SEGMENT_TARGET_BYTES: usize = 16 * 1024;
/// `(id hash, seq)` pairs per value of the id index (16 KiB).
const IDS_PER_CHUNK: usize = 1024;
/// More envelopes than any segment holds: a segment's entries are at most
/// `SEGMENT_TARGET_BYTES` and every entry takes more than 128 bytes (a 32-byte hash and a
/// named-field body of at least a hundred).
const MAX_EVENTS_PER_SEGMENT: u64 = 128;
/// Tries, 50 ms apart, to take the lock of a store just dropped in this process.
const LOCK_RETRIES: u32 = 40;
/// Envelopes handed from the decoding thread to a scan's caller at a time.
const SCAN_BATCH: usize = 512;
/// Largest number of seqs in one posting entry (a value stays below `POSTING_VALUE_BYTES`
/// plus one entry).
const MAX_SEQS_PER_KEY: usize = 512;
/// Segments written per sled batch (bounds the memory of one `apply_batch`).
const SEGMENTS_PER_SLED_BATCH: usize = 256;
/// The key of the `through` marker in every derived tree: 0xFF never starts a UTF-8 id.
const THROUGH_KEY: &[u8] = &[0xFF];
/// The key prefix under which a school's registry-kind events are listed in `by_child`,
/// followed by the school id (ids never contain control characters, so no child id starts
/// with 0x01).
const REGISTRY_EVENTS_PREFIX: &str = "\u{1}";

/// The end of the committed log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl Head {
    const EMPTY: Head = Head {
        seq: 0,
        hash: Hash::ZERO,
        recorded_at: None,
    };
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
    pub events: u64,
    pub head: Hash,
}

/// Errors of the store. `index` is the position of a draft in the batch given to `append`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store at {0} (run `careledger init` first)")]
    Missing(PathBuf),
    #[error("a store already exists at {0}")]
    Exists(PathBuf),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seq {seq}: {what}")]
    Damaged { seq: u64, what: String },
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
}

impl StoreError {
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
}

fn damaged(seq: u64, what: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        seq,
        what: what.into(),
    }
}

/// The writer's view of the log: head and registry, kept in memory.
struct WriterState {
    head: Head,
    registry: Registry,
}

/// An open careledger store. One process at a time (sled locks the directory).
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    by_child: sled::Tree,
    by_staff: sled::Tree,
    by_id: sled::Tree,
    registry: sled::Tree,
    snapshots: sled::Tree,
    state: Mutex<WriterState>,
    /// The id index in memory, loaded on first use (`IdMap::load`), then kept in step. Its
    /// own lock, so that indexing can look ids up while it holds the state.
    ids: Mutex<Option<IdMap>>,
}

impl Store {
    /// Creates an empty store at `path` (which must not hold one yet).
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        if path.join("db").exists() {
            return Err(StoreError::Exists(path.to_owned()));
        }
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        let store = Store::open_inner(path)?;
        store.sync()?;
        // The directory entry of the new files must survive a power loss too.
        for dir in [path, path.parent().unwrap_or(path)] {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(store)
    }

    /// Opens an existing store, finishing whatever a crash interrupted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !path.join("db").exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        Store::open_inner(path)
    }

    fn open_inner(path: &Path) -> Result<Store, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .segment_size(SLED_SEGMENT_BYTES)
            // Every append flushes and fsyncs itself; sled's background flusher would only
            // keep the database (and its lock) alive for a moment after the store is dropped.
            .flush_every_ms(None);
        // sled frees a dropped database — and its directory lock — through deferred
        // (epoch-based) reclamation, so a store reopened right after being dropped in the same
        // process can find the lock still held for a moment. Wait for it briefly; another
        // process holding the store still gets the error after that.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if attempts < LOCK_RETRIES && e.to_string().contains("acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let store = Store {
            path: path.to_owned(),
            log: db.open_tree("log")?,
            meta: db.open_tree("meta")?,
            by_child: db.open_tree("by_child")?,
            by_staff: db.open_tree("by_staff")?,
            by_id: db.open_tree("by_id")?,
            registry: db.open_tree("registry")?,
            snapshots: db.open_tree("snapshots")?,
            db,
            state: Mutex::new(WriterState {
                head: Head::EMPTY,
                registry: Registry::default(),
            }),
            ids: Mutex::new(None),
        };
        store.recover()?;
        Ok(store)
    }

    /// The path of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The committed head.
    pub fn head(&self) -> Head {
        self.lock().head
    }

    /// What is registered so far (schools, terms, staff, children, incidents, retractions).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
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

    /// Drops uncommitted segments and catches the derived trees up with the head.
    fn recover(&self) -> Result<(), StoreError> {
        let head = match self.meta.get(b"head")? {
            Some(v) => rmp_serde::from_slice::<Head>(&v)
                .map_err(|e| damaged(0, format!("unreadable head marker: {e}")))?,
            None => Head::EMPTY,
        };
        // Segments past the head belong to a batch that was never acknowledged.
        let stale: Vec<sled::IVec> = self
            .log
            .range(segment::key(head.seq + 1)..)
            .keys()
            .collect::<Result<_, _>>()?;
        let had_stale = !stale.is_empty();
        for k in stale {
            self.log.remove(k)?;
        }
        let mut registry = Registry::default();
        for item in self.registry.iter() {
            let (k, v) = item?;
            if k.as_ref() == THROUGH_KEY {
                continue;
            }
            let (id, entry): (String, Entry) = rmp_serde::from_slice(&v)
                .map_err(|e| damaged(0, format!("unreadable registry entry: {e}")))?;
            registry.insert(id, entry);
        }
        {
            let mut st = self.lock();
            st.head = head;
            st.registry = registry;
        }
        let trees = [&self.by_child, &self.by_staff, &self.by_id, &self.registry];
        let through: Vec<u64> = trees
            .iter()
            .map(|t| through_of(t))
            .collect::<Result<_, _>>()?;
        if through.iter().any(|&t| t > head.seq) {
            // An index ahead of the log cannot happen with the write order we use; if the
            // disk says otherwise, trust the log and rebuild every index from it.
            for t in trees {
                t.clear()?;
            }
            self.lock().registry = Registry::default();
            *self.lock_ids() = None;
            self.catch_up(0, head.seq)?;
        } else {
            let from = through.iter().copied().min().unwrap_or(0);
            if from < head.seq {
                self.catch_up(from, head.seq)?;
            }
        }
        if had_stale || through.iter().any(|&t| t != head.seq) {
            self.sync()?;
        }
        Ok(())
    }

    /// Re-indexes envelopes `(from, to]` into every derived tree that is behind.
    fn catch_up(&self, from: u64, to: u64) -> Result<(), StoreError> {
        let mut envs = Vec::new();
        for env in self.scan_range(from + 1, None) {
            let env = env?;
            if env.seq > to {
                break;
            }
            envs.push(env);
            if envs.len() >= 100_000 {
                self.write_indexes(&envs, true)?;
                envs.clear();
            }
        }
        self.write_indexes(&envs, true)
    }

    /// Flushes sled and fsyncs its data file: sled's own flush does not survive power loss
    /// on Linux (docs/stack.md, durability; spacejam/sled#1452).
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        let file = self.path.join("db");
        File::open(&file)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io { path: file, source })
    }

    /// Appends one batch atomically and durably: when this returns `Ok`, every new envelope
    /// is on disk; when it returns `Err` or the process dies first, none is.
    ///
    /// Drafts whose id is already in the log (or earlier in the batch) are skipped.
    /// `recorded_at` is the store's clock (never below the head's), except for
    /// `Source::Migration`, where each draft must carry its own, non-decreasing, not in the
    /// future and not before the head.
    pub fn append(&self, drafts: Vec<Draft>, source: Source) -> Result<Appended, StoreError> {
        self.append_at(drafts, source, Utc::now())
    }

    /// `append` with the clock given (tests and benchmarks).
    pub fn append_at(
        &self,
        drafts: Vec<Draft>,
        source: Source,
        now: DateTime<Utc>,
    ) -> Result<Appended, StoreError> {
        let head = self.head();
        let migration = source == Source::Migration;
        let batch_time = head.recorded_at.map_or(now, |r| r.max(now));

        // Times first: a batch with any bad time is refused whole.
        let mut last = head.recorded_at;
        for (index, d) in drafts.iter().enumerate() {
            let recorded = match (migration, d.recorded_at) {
                (true, None) => return Err(StoreError::RecordedAtMissing { index }),
                (false, Some(_)) => return Err(StoreError::RecordedAtNotAllowed { index }),
                (false, None) => batch_time,
                (true, Some(r)) => {
                    if let Some(prev) = last
                        && r < prev
                    {
                        return Err(StoreError::RecordedAtDecreasing {
                            index,
                            found: r,
                            previous: prev,
                        });
                    }
                    if r > now {
                        return Err(StoreError::RecordedAtInFuture { index, found: r });
                    }
                    last = Some(r);
                    r
                }
            };
            if d.occurred_at > recorded {
                return Err(StoreError::OccurredAfterRecorded {
                    index,
                    occurred: d.occurred_at,
                    recorded,
                });
            }
        }

        // Idempotency: skip ids already in the log or earlier in this batch.
        let keep = {
            let mut in_batch: FxHashSet<&str> = FxHashSet::default();
            in_batch.reserve(drafts.len());
            let mut keep = Vec::with_capacity(drafts.len());
            for d in &drafts {
                keep.push(in_batch.insert(&d.id) && self.seq_of(&d.id)?.is_none());
            }
            keep
        };
        let skipped = keep.iter().filter(|k| !**k).count() as u64;

        // Place: seqs and times are known up front, only the chain is sequential.
        let mut envs: Vec<Envelope> = Vec::with_capacity(drafts.len());
        let mut indexes: Vec<usize> = Vec::with_capacity(drafts.len());
        for (index, (d, keep)) in drafts.into_iter().zip(keep).enumerate() {
            if !keep {
                continue;
            }
            envs.push(Envelope {
                schema: SCHEMA,
                seq: head.seq + 1 + envs.len() as u64,
                recorded_at: d.recorded_at.unwrap_or(batch_time),
                id: d.id,
                occurred_at: d.occurred_at,
                actor: d.actor,
                source: if migration {
                    Source::Migration
                } else {
                    source.clone()
                },
                event: d.event,
                prev_hash: Hash::ZERO,
                hash: Hash::ZERO,
            });
            indexes.push(index);
        }
        if envs.is_empty() {
            return Ok(Appended {
                appended: 0,
                skipped,
                head,
            });
        }
        // Encode on every core with a zero `prev_hash`, then chain in order, writing each
        // real `prev_hash` into its body: the bytes are those of encoding it directly.
        let mut bodies = encode_parallel(&envs);
        let mut prev = head.hash;
        let mut segments: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut builder = SegmentBuilder::new(head.seq + 1);
        for ((env, body), index) in envs.iter_mut().zip(bodies.iter_mut()).zip(&indexes) {
            if body.len() > MAX_EVENT_BYTES {
                return Err(StoreError::TooLarge {
                    index: *index,
                    bytes: body.len(),
                });
            }
            set_prev_hash(body, &prev);
            env.prev_hash = prev;
            env.hash = Envelope::chain_hash(&prev, body);
            prev = env.hash;
            if builder.data_len() + body.len() > SEGMENT_TARGET_BYTES && !builder.is_empty() {
                let done = std::mem::replace(&mut builder, SegmentBuilder::new(env.seq));
                segments.push(done.finish());
            }
            builder.push(&env.hash, body);
        }
        drop(bodies);
        segments.push(builder.finish());
        let last = envs.last().expect("not empty");
        let (seq, recorded_last) = (last.seq, Some(last.recorded_at));

        // 1. segments (invisible until the head moves), 2. flush, 3. head, 4. indexes,
        // 5. flush + fsync, then acknowledge.
        let nth = APPENDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        for chunk in segments.chunks(SEGMENTS_PER_SLED_BATCH) {
            let mut batch = sled::Batch::default();
            for (first, bytes) in chunk {
                batch.insert(&segment::key(*first), bytes.as_slice());
            }
            self.log.apply_batch(batch)?;
        }
        self.db.flush()?;
        test_pause("before-head", nth, head.seq + 1, seq, None);
        let new_head = Head {
            seq,
            hash: prev,
            recorded_at: recorded_last,
        };
        self.meta.insert(
            b"head",
            rmp_serde::to_vec_named(&new_head).expect("a head always encodes"),
        )?;
        self.lock().head = new_head;
        test_pause("before-indexes", nth, head.seq + 1, seq, Some(&self.db));
        self.write_indexes(&envs, false)?;
        self.sync()?;
        test_pause("before-ack", nth, head.seq + 1, seq, None);
        Ok(Appended {
            appended: envs.len() as u64,
            skipped,
            head: new_head,
        })
    }

    /// Writes the derived trees for `envs` (consecutive, after every tree's `through`, or
    /// — with `only_behind` — possibly already in some trees, which are then left alone).
    fn write_indexes(&self, envs: &[Envelope], only_behind: bool) -> Result<(), StoreError> {
        let Some(last) = envs.last().map(|e| e.seq) else {
            return Ok(());
        };
        // The registry is followed in place: the lookups below take only the id lock.
        let mut state = self.lock();
        let registry = &mut state.registry;
        // Borrowed keys for the common case; owned ones for the rare events whose child comes
        // from the registry or from an amendment's target.
        let mut by_child: FxHashMap<&str, Vec<u64>> = FxHashMap::default();
        let mut by_staff: FxHashMap<&str, Vec<u64>> = FxHashMap::default();
        let mut by_child_owned: FxHashMap<String, Vec<u64>> = FxHashMap::default();
        let mut by_staff_owned: FxHashMap<String, Vec<u64>> = FxHashMap::default();
        let mut entries: Vec<(String, Entry)> = Vec::new();
        // Amendment targets within this run.
        let mut local: FxHashMap<&str, &Envelope> = FxHashMap::default();
        for env in envs {
            let seq = env.seq;
            let children = env.event.children();
            for (i, c) in children.iter().enumerate() {
                // An activity may list a child twice; index it once.
                if !children[..i].contains(c) {
                    by_child.entry(c.as_str()).or_default().push(seq);
                }
            }
            if let Some(s) = env.event.staff() {
                by_staff.entry(s).or_default().push(seq);
            }
            let mut school_listing = registry_school(&env.event, registry);
            if let Event::IncidentNotified { incident, .. } = &env.event
                && let Some(c) = registry.incident_child(incident)
            {
                by_child_owned.entry(c.to_owned()).or_default().push(seq);
            }
            if let Some(target) = env.event.target() {
                let target_env = match local.get(target) {
                    Some(e) => Some((*e).clone()),
                    None => match self.seq_of(target)? {
                        Some(s) => self.get_raw(s)?,
                        None => None,
                    },
                };
                if let Some(t) = target_env {
                    let mut children: Vec<String> = t.event.children().to_vec();
                    if let Event::IncidentNotified { incident, .. } = &t.event
                        && let Some(c) = registry.incident_child(incident)
                    {
                        children.push(c.to_owned());
                    }
                    for c in children {
                        by_child_owned.entry(c).or_default().push(seq);
                    }
                    if let Some(s) = t.event.staff() {
                        by_staff_owned.entry(s.to_owned()).or_default().push(seq);
                    }
                    school_listing = school_listing.or_else(|| registry_school(&t.event, registry));
                }
            }
            if let Some(school) = school_listing {
                by_child_owned
                    .entry(format!("{REGISTRY_EVENTS_PREFIX}{school}"))
                    .or_default()
                    .push(seq);
            }
            for (id, entry) in Registry::entries_of(&env.event) {
                registry.insert(id.clone(), entry.clone());
                entries.push((id, entry));
            }
            local.insert(&env.id, env);
        }
        drop(state);

        let through = segment::key(last);
        let behind = |t: &sled::Tree| -> Result<bool, StoreError> {
            Ok(!only_behind || through_of(t)? < last)
        };
        if behind(&self.by_child)? {
            let lists = merge_lists(by_child, by_child_owned);
            self.by_child.apply_batch(seq_batch(lists, &through))?;
        }
        if behind(&self.by_staff)? {
            self.by_staff
                .apply_batch(seq_batch(merge_lists(by_staff, by_staff_owned), &through))?;
        }
        if behind(&self.by_id)? {
            let mut batch = sled::Batch::default();
            let mut ids = self.lock_ids();
            for chunk in envs.chunks(IDS_PER_CHUNK) {
                let mut v = Vec::with_capacity(chunk.len() * 16);
                for e in chunk {
                    let h = id_hash(&e.id);
                    v.extend_from_slice(&h.to_le_bytes());
                    v.extend_from_slice(&e.seq.to_le_bytes());
                    if let Some(map) = ids.as_mut() {
                        map.insert(h, e.seq);
                    }
                }
                batch.insert(&segment::key(chunk[0].seq), v);
            }
            drop(ids);
            batch.insert(THROUGH_KEY, &through);
            self.by_id.apply_batch(batch)?;
        }
        if behind(&self.registry)? {
            let mut batch = sled::Batch::default();
            for (id, entry) in &entries {
                let mut key = entry.key();
                key.extend_from_slice(id.as_bytes());
                batch.insert(
                    key,
                    rmp_serde::to_vec(&(id, entry)).expect("an entry always encodes"),
                );
            }
            batch.insert(THROUGH_KEY, &through);
            self.registry.apply_batch(batch)?;
        }
        Ok(())
    }

    /// The envelope at `seq`, if the log has it.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        if seq == 0 || seq > self.head().seq {
            return Ok(None);
        }
        self.get_raw(seq)
    }

    /// The envelope at `seq` without checking the head: for callers that know it is
    /// committed (an index entry, an amendment target being indexed).
    fn get_raw(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let Some((first, v)) = self.segment_of(seq)? else {
            return Ok(None);
        };
        let seg = segment::Segment::parse(&v).map_err(|e| damaged(first, e))?;
        let (hash, body) = seg
            .entry((seq - first) as usize)
            .map_err(|e| damaged(seq, e))?;
        Envelope::decode_body(body, hash)
            .map(Some)
            .map_err(|e| damaged(seq, e.to_string()))
    }

    /// The segment holding `seq`, with its first seq. sled's backward range search is slow,
    /// so this walks forward from a key at most `MAX_EVENTS_PER_SEGMENT` seqs before: the
    /// segment holding `seq` starts there or later, usually one or two values ahead.
    fn segment_of(&self, seq: u64) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        let from = seq.saturating_sub(MAX_EVENTS_PER_SEGMENT).max(1);
        for item in self.log.range(segment::key(from)..=segment::key(seq)) {
            let (k, v) = item?;
            let first = segment::first_seq(&k).ok_or_else(|| damaged(seq, "bad segment key"))?;
            let len = segment::Segment::parse(&v)
                .map_err(|e| damaged(first, e))?
                .len() as u64;
            if seq < first + len {
                return Ok(Some((first, v)));
            }
        }
        Ok(None)
    }

    /// The seq of the envelope with this id.
    pub fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let candidates = {
            let mut ids = self.lock_ids();
            if ids.is_none() {
                *ids = Some(IdMap::load(&self.by_id)?);
            }
            ids.as_ref().expect("loaded above").candidates(id_hash(id))
        };
        // A hash names candidates; the envelope itself confirms (64-bit hashes of distinct
        // ids collide with probability ~1e-7 at 5 M events, and then both are kept).
        for seq in candidates {
            if self.get_raw(seq)?.is_some_and(|e| e.id == id) {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// The envelope with this id.
    pub fn get_by_id(&self, id: &str) -> Result<Option<Envelope>, StoreError> {
        match self.seq_of(id)? {
            Some(seq) => self.get(seq),
            None => Ok(None),
        }
    }

    /// The whole log in order, up to `as_of` (recorded time) when given.
    pub fn scan(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Result<Envelope, StoreError>> + '_ {
        self.scan_range(1, as_of)
    }

    /// The log from `from_seq` on, up to `as_of` when given.
    pub fn scan_range(
        &self,
        from_seq: u64,
        as_of: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Result<Envelope, StoreError>> + '_ {
        let head = self.head().seq;
        let start = self
            .log
            .range(..=segment::key(from_seq.max(1)))
            .next_back()
            .and_then(|r| r.ok())
            .map(|(k, _)| k.to_vec())
            .unwrap_or_else(|| segment::key(1).to_vec());
        let scan = Scan {
            segments: self.log.range(start..),
            current: None,
            from_seq,
            head,
            as_of,
            done: false,
        };
        // Decode on a second thread while the caller folds: a replay then costs the slower of
        // the two, not their sum. The channel is bounded, so memory stays a few batches; when
        // the caller stops early, the decoder's next send fails and it ends.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Envelope, StoreError>>>(16);
        std::thread::spawn(move || {
            let mut scan = scan;
            loop {
                let batch: Vec<_> = scan.by_ref().take(SCAN_BATCH).collect();
                if batch.is_empty() || tx.send(batch).is_err() {
                    return;
                }
            }
        });
        rx.into_iter().flatten()
    }

    /// Seqs listed under a key prefix of an index, in order, up to the head.
    fn seqs_under(&self, tree: &sled::Tree, id: &[u8]) -> Result<Vec<u64>, StoreError> {
        let head = self.head().seq;
        let mut out = Vec::new();
        for item in tree.scan_prefix(posting_bucket(id).to_be_bytes()) {
            let (k, v) = item?;
            for entry in postings(&v) {
                let (entry_id, seqs) =
                    entry.map_err(|()| damaged(0, format!("index value {k:?} is malformed")))?;
                if entry_id == id {
                    out.extend(seqs.filter(|&s| s <= head));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The envelopes at `seqs` (ascending), up to `as_of`. Consecutive seqs of one segment
    /// share one read of it: a school's registry events sit together in a few segments.
    fn fetch(
        &self,
        seqs: Vec<u64>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut current: Option<(u64, sled::IVec)> = None;
        for seq in seqs {
            let cached = current.as_ref().is_some_and(|(first, bytes)| {
                seq >= *first
                    && segment::Segment::parse(bytes)
                        .is_ok_and(|s| ((seq - first) as usize) < s.len())
            });
            if !cached {
                current = Some(
                    self.segment_of(seq)?
                        .ok_or_else(|| damaged(seq, "indexed but not in the log"))?,
                );
            }
            let (first, bytes) = current.as_ref().expect("set above");
            let seg = segment::Segment::parse(bytes).map_err(|e| damaged(*first, e))?;
            let i = (seq - first) as usize;
            if i >= seg.len() {
                return Err(damaged(seq, "indexed but not in the log"));
            }
            let (hash, body) = seg.entry(i).map_err(|e| damaged(seq, e))?;
            let env = Envelope::decode_body(body, hash).map_err(|e| damaged(seq, e.to_string()))?;
            if as_of.is_some_and(|t| env.recorded_at > t) {
                break;
            }
            out.push(env);
        }
        Ok(out)
    }

    /// Every envelope about a child (including notifications of its incidents and amendments
    /// of its events), in log order, up to `as_of`. Uses the index: no replay.
    pub fn by_child(
        &self,
        child: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.seqs_under(&self.by_child, child.as_bytes())?;
        self.fetch(seqs, as_of)
    }

    /// Every envelope done by a staff member (and their registry events and amendments), in
    /// log order, up to `as_of`.
    pub fn by_staff(
        &self,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = self.seqs_under(&self.by_staff, staff.as_bytes())?;
        self.fetch(seqs, as_of)
    }

    /// The registry-kind events of a school (its registration, terms, policies, staff joining
    /// and leaving, child registrations) and their amendments, in log order — or of every
    /// school with `None`. With `by_child` this is all a single child's views need.
    pub fn registry_events(
        &self,
        school: Option<&str>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let seqs = match school {
            Some(s) => self.seqs_under(
                &self.by_child,
                format!("{REGISTRY_EVENTS_PREFIX}{s}").as_bytes(),
            )?,
            None => {
                let schools: Vec<String> = self
                    .registry()
                    .schools()
                    .map(|(s, _)| s.to_owned())
                    .collect();
                let mut out = Vec::new();
                for s in schools {
                    out.extend(self.seqs_under(
                        &self.by_child,
                        format!("{REGISTRY_EVENTS_PREFIX}{s}").as_bytes(),
                    )?);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
        };
        self.fetch(seqs, as_of)
    }

    /// Walks the whole chain: seqs gapless from 1, every hash recomputed from its body and
    /// the previous hash, every body decodable and consistent, `recorded_at` never
    /// decreasing, and the head marker matching. Names the first bad seq.
    pub fn verify(&self) -> Result<Verified, StoreError> {
        let head = self.head();
        let mut expected = 1u64;
        let mut prev = Hash::ZERO;
        let mut last_recorded: Option<DateTime<Utc>> = None;
        for item in self.log.iter() {
            let (k, v) = item?;
            let first = segment::first_seq(&k).ok_or_else(|| damaged(expected, "bad key"))?;
            if first != expected {
                return Err(damaged(
                    expected,
                    format!("missing (next segment starts at {first})"),
                ));
            }
            let seg = segment::Segment::parse(&v).map_err(|e| damaged(first, e))?;
            for i in 0..seg.len() {
                let seq = first + i as u64;
                let (hash, body) = seg.entry(i).map_err(|e| damaged(seq, e))?;
                if Envelope::chain_hash(&prev, body) != hash {
                    return Err(damaged(seq, "hash does not match its content"));
                }
                let env =
                    Envelope::decode_body(body, hash).map_err(|e| damaged(seq, e.to_string()))?;
                if env.seq != seq {
                    return Err(damaged(seq, format!("envelope says seq {}", env.seq)));
                }
                if env.prev_hash != prev {
                    return Err(damaged(seq, "prev_hash does not match the previous hash"));
                }
                if last_recorded.is_some_and(|l| env.recorded_at < l) {
                    return Err(damaged(seq, "recorded_at goes back in time"));
                }
                last_recorded = Some(env.recorded_at);
                prev = hash;
                expected = seq + 1;
            }
        }
        let events = expected - 1;
        if events != head.seq {
            return Err(damaged(
                events.min(head.seq) + 1,
                format!("the head says {} events, the log holds {events}", head.seq),
            ));
        }
        if prev != head.hash {
            return Err(damaged(head.seq, "the head hash does not match the chain"));
        }
        Ok(Verified { events, head: prev })
    }

    /// Stores a projection snapshot taken at `seq` under `name` (which should carry the
    /// projection code's fingerprint, so a snapshot of other code is never read back). Split
    /// into chunks below sled's blob threshold and written in one atomic batch. Snapshots are
    /// derived data: losing one only costs a replay.
    pub fn put_snapshot(&self, name: &str, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let chunks: Vec<&[u8]> = bytes.chunks(SEGMENT_TARGET_BYTES).collect();
        let mut manifest = snapshot_key(name, seq);
        manifest.extend_from_slice(&u32::MAX.to_be_bytes());
        batch.insert(manifest, &(chunks.len() as u32).to_le_bytes());
        for (i, c) in chunks.iter().enumerate() {
            let mut k = snapshot_key(name, seq);
            k.extend_from_slice(&(i as u32).to_be_bytes());
            batch.insert(k, *c);
        }
        self.snapshots.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The latest snapshot under `name` taken at or before `seq`, with its seq.
    pub fn snapshot_at_or_before(
        &self,
        name: &str,
        seq: u64,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let lo = snapshot_key(name, 0);
        let mut hi = snapshot_key(name, seq);
        hi.extend_from_slice(&u32::MAX.to_be_bytes());
        // Manifests end in u32::MAX; walk back to the latest complete one.
        for item in self.snapshots.range(lo..=hi).rev() {
            let (k, v) = item?;
            if !k.ends_with(&u32::MAX.to_be_bytes()) {
                continue;
            }
            let at = k.len() - 12;
            let snap_seq = segment::first_seq(&k[at..at + 8]).unwrap_or(0);
            let count = u32::from_le_bytes(v.as_ref().try_into().unwrap_or([0; 4]));
            let mut bytes = Vec::new();
            let mut complete = true;
            for i in 0..count {
                let mut ck = snapshot_key(name, snap_seq);
                ck.extend_from_slice(&i.to_be_bytes());
                match self.snapshots.get(ck)? {
                    Some(c) => bytes.extend_from_slice(&c),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                return Ok(Some((snap_seq, bytes)));
            }
        }
        Ok(None)
    }

    /// Flips one byte of the stored body of `seq` — for tests that check `verify` catches
    /// tampering. Not reachable from the command line.
    #[doc(hidden)]
    pub fn tamper_for_test(&self, seq: u64) -> Result<(), StoreError> {
        let (k, v) = self
            .log
            .range(..=segment::key(seq))
            .next_back()
            .transpose()?
            .ok_or_else(|| damaged(seq, "no such seq"))?;
        let first = segment::first_seq(&k).ok_or_else(|| damaged(seq, "bad key"))?;
        let mut bytes = v.to_vec();
        let seg = segment::Segment::parse(&v).map_err(|e| damaged(first, e))?;
        let at = seg
            .body_offset((seq - first) as usize)
            .map_err(|e| damaged(seq, e))?;
        // Flip a byte in the middle of the body: the hash can no longer match.
        let len = seg
            .entry((seq - first) as usize)
            .map_err(|e| damaged(seq, e))?
            .1
            .len();
        bytes[at + len / 2] ^= 0x01;
        self.log.insert(k, bytes)?;
        self.sync()
    }
}

/// Appends of this process that reached the write (counted for `test_pause`).
static APPENDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A crash point for the SIGKILL test (tests/it/crash.rs), inert unless the environment sets
/// `CARELEDGER_TEST_PAUSE=<stage>:<n>`: then the `n`-th writing append of this process, on
/// reaching `stage` (`before-head`: segments written and flushed, head not moved;
/// `before-indexes`: head moved, indexes not written; `before-ack`: flushed and fsynced, not
/// yet returned), prints `careledger-test-pause <stage> <first seq> <last seq>` on stderr and
/// blocks forever, so the test kills the process exactly there. With `flush`, sled is flushed
/// first: the head on disk without its indexes is a state sled reaches on its own when a
/// buffer fills, made certain here so the test sees the indexes caught up on open.
fn test_pause(stage: &str, nth: u64, first: u64, last: u64, flush: Option<&sled::Db>) {
    if std::env::var("CARELEDGER_TEST_PAUSE").is_ok_and(|v| v == format!("{stage}:{nth}")) {
        if let Some(db) = flush {
            let _ = db.flush();
        }
        eprintln!("careledger-test-pause {stage} {first} {last}");
        loop {
            std::thread::park();
        }
    }
}

fn through_of(tree: &sled::Tree) -> Result<u64, StoreError> {
    Ok(tree
        .get(THROUGH_KEY)?
        .and_then(|v| segment::first_seq(&v))
        .unwrap_or(0))
}

fn snapshot_key(name: &str, seq: u64) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&segment::key(seq));
    k
}

/// The school whose registry events list this event: what a single child's views need
/// besides the child's own events — the school, its terms and policies, its staff joining
/// and leaving, its children's registrations.
fn registry_school(e: &Event, registry: &Registry) -> Option<String> {
    match e {
        Event::StaffLeft { staff, .. } => registry.staff_school(staff).map(str::to_owned),
        _ => e.school().map(str::to_owned),
    }
}

/// Encodes envelope bodies on every core (order kept).
fn encode_parallel(envs: &[Envelope]) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || envs.len() < 4096 {
        return envs.iter().map(Envelope::encode_body).collect();
    }
    let chunk = envs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = envs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(Envelope::encode_body).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("encoding never panics"))
            .collect()
    })
}

/// Writes `prev` into a body encoded with a zero `prev_hash`. Invariant: `prev_hash` is the
/// last field the envelope serializes (`hash` is skipped), as a 32-byte msgpack bin
/// (`0xc4 0x20` then the bytes), so it is the body's last 32 bytes.
fn set_prev_hash(body: &mut [u8], prev: &Hash) {
    let n = body.len();
    debug_assert!(n >= 34 && body[n - 34] == 0xc4 && body[n - 33] == 32);
    body[n - 32..].copy_from_slice(&prev.0);
}

/// Merges borrowed and owned per-id seq lists into sorted, deduplicated lists.
fn merge_lists(
    borrowed: FxHashMap<&str, Vec<u64>>,
    owned: FxHashMap<String, Vec<u64>>,
) -> Vec<SeqList> {
    let mut all: FxHashMap<Vec<u8>, Vec<u64>> = FxHashMap::default();
    for (k, v) in borrowed {
        all.entry(k.as_bytes().to_vec()).or_default().extend(v);
    }
    for (k, v) in owned {
        all.entry(k.into_bytes()).or_default().extend(v);
    }
    all.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            v.dedup();
            (k, v)
        })
        .collect()
}

/// An id and the seqs listed under it.
type SeqList = (Vec<u8>, Vec<u64>);

/// The posting bucket of an id: `by_child` and `by_staff` group ids into this many buckets,
/// so an append writes at most one or a few sled keys per bucket, not one per child — sled's
/// per-key cost would otherwise dominate a bulk import of a county (30,000 children).
const POSTING_BUCKETS: u16 = 1024;
/// A posting value is closed once it passes this size (far below sled's blob threshold).
const POSTING_VALUE_BYTES: usize = 8 * 1024;

fn posting_bucket(id: &[u8]) -> u16 {
    let h = Sha256::digest(id);
    u16::from_be_bytes([h[0], h[1]]) % POSTING_BUCKETS
}

/// The entries of a posting value: repeated `(u16 id length, id, u32 count, count × u64
/// seq)`, little-endian.
fn postings(
    bytes: &[u8],
) -> impl Iterator<Item = Result<(&[u8], impl Iterator<Item = u64> + '_), ()>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
            let id = rest.get(2..2 + len)?;
            let n = u32::from_le_bytes(rest.get(2 + len..6 + len)?.try_into().ok()?) as usize;
            let seqs = rest.get(6 + len..6 + len + 8 * n)?;
            Some((id, seqs, 6 + len + 8 * n))
        })();
        match parsed {
            Some((id, seqs, used)) => {
                rest = &rest[used..];
                let seqs = seqs
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")));
                Some(Ok((id, seqs)))
            }
            None => {
                rest = &[];
                Some(Err(()))
            }
        }
    })
}

/// The index batch for per-id seq lists: the lists are grouped by posting bucket; each bucket
/// gets values keyed `BE bucket ‖ BE last seq of the run ‖ BE value number` (unique per run),
/// each holding whole `(id, seqs)` entries.
fn seq_batch(lists: Vec<SeqList>, through: &[u8]) -> sled::Batch {
    let mut by_bucket: FxHashMap<u16, Vec<SeqList>> = FxHashMap::default();
    for (id, seqs) in lists {
        by_bucket
            .entry(posting_bucket(&id))
            .or_default()
            .push((id, seqs));
    }
    let mut batch = sled::Batch::default();
    for (bucket, entries) in by_bucket {
        let mut value: Vec<u8> = Vec::new();
        let mut n = 0u32;
        let mut emit = |value: &mut Vec<u8>, n: &mut u32| {
            let mut key = bucket.to_be_bytes().to_vec();
            key.extend_from_slice(through);
            key.extend_from_slice(&n.to_be_bytes());
            batch.insert(key, std::mem::take(value));
            *n += 1;
        };
        for (id, seqs) in entries {
            for chunk in seqs.chunks(MAX_SEQS_PER_KEY) {
                if !value.is_empty()
                    && value.len() + 6 + id.len() + 8 * chunk.len() > POSTING_VALUE_BYTES
                {
                    emit(&mut value, &mut n);
                }
                // Ids are at most a few hundred bytes (ingest limits them), so u16 suffices.
                value.extend_from_slice(&(id.len() as u16).to_le_bytes());
                value.extend_from_slice(&id);
                value.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                for s in chunk {
                    value.extend_from_slice(&s.to_le_bytes());
                }
            }
        }
        if !value.is_empty() {
            emit(&mut value, &mut n);
        }
    }
    batch.insert(THROUGH_KEY, through);
    batch
}

/// The first 8 bytes of SHA-256 of an id, little-endian: stable across versions and
/// platforms, so the stored index never needs rebuilding for a hasher change.
fn id_hash(id: &str) -> u64 {
    let h = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The id index in memory: id hash → seqs. On disk (`by_id`) it is a run of values keyed by
/// the big-endian seq of their first entry, each up to `IDS_PER_CHUNK` `(hash, seq)` pairs
/// (u64 LE each) — written once per batch, never rewritten, so a bulk import costs one sled
/// key per thousand events and checking an id costs one hash probe. Loading it reads 16
/// bytes per event once per process.
#[derive(Debug, Default)]
struct IdMap {
    first: FxHashMap<u64, u64>,
    /// Further seqs of a hash held by more than one id (rare).
    more: FxHashMap<u64, Vec<u64>>,
}

impl IdMap {
    fn load(tree: &sled::Tree) -> Result<IdMap, StoreError> {
        let mut map = IdMap::default();
        for item in tree.iter() {
            let (k, v) = item?;
            if k.as_ref() == THROUGH_KEY {
                continue;
            }
            if v.len() % 16 != 0 {
                return Err(damaged(
                    segment::first_seq(&k).unwrap_or(0),
                    "id index value is malformed",
                ));
            }
            for pair in v.chunks_exact(16) {
                let h = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
                let seq = u64::from_le_bytes(pair[8..].try_into().expect("8 bytes"));
                map.insert(h, seq);
            }
        }
        Ok(map)
    }

    fn insert(&mut self, h: u64, seq: u64) {
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(e) if *e.get() != seq => {
                let more = self.more.entry(h).or_default();
                if !more.contains(&seq) {
                    more.push(seq);
                }
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }

    fn candidates(&self, h: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self.first.get(&h).copied().into_iter().collect();
        if let Some(more) = self.more.get(&h) {
            out.extend(more);
        }
        out
    }
}

/// Iterator over envelopes, decoding one segment at a time.
struct Scan {
    segments: sled::Iter,
    current: Option<(u64, sled::IVec, usize)>,
    from_seq: u64,
    head: u64,
    as_of: Option<DateTime<Utc>>,
    done: bool,
}

impl Iterator for Scan {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some((first, bytes, i)) = &mut self.current {
                let seg = match segment::Segment::parse(bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(damaged(*first, e)));
                    }
                };
                if *i < seg.len() {
                    let seq = *first + *i as u64;
                    *i += 1;
                    if seq < self.from_seq {
                        continue;
                    }
                    if seq > self.head {
                        self.done = true;
                        return None;
                    }
                    let env =
                        seg.entry(*i - 1)
                            .map_err(|e| damaged(seq, e))
                            .and_then(|(h, body)| {
                                Envelope::decode_body(body, h)
                                    .map_err(|e| damaged(seq, e.to_string()))
                            });
                    match env {
                        Ok(env) if self.as_of.is_some_and(|t| env.recorded_at > t) => {
                            self.done = true;
                            return None;
                        }
                        other => return Some(other),
                    }
                }
                self.current = None;
            }
            match self.segments.next()? {
                Ok((k, v)) => match segment::first_seq(&k) {
                    Some(first) => self.current = Some((first, v, 0)),
                    None => {
                        self.done = true;
                        return Some(Err(damaged(0, "bad segment key")));
                    }
                },
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
