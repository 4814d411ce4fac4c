//! Appending a batch: times checked, ids deduplicated, envelopes chained and packed into
//! segments, then made durable in a fixed order and only then acknowledged.
//!
//! Order of an append: segments and the tree's new stored hashes (`apply_batch`es, invisible
//! until the head moves), flush, `meta/head` — for a small append, segments, hashes and
//! `meta/head` in one sled transaction, without that flush — then derived trees, flush + fsync
//! of `db`, the head file (fsynced), the signed checkpoint when the store has a signer, and
//! only then `Ok` (an append of at least `SCOPES_BESIDE_AT` envelopes derives its read models
//! on a second thread and writes them there during the flush + fsync: derived, they need not
//! be durable). A batch is visible whole or not at all. An `Err` (a full disk, say) is never an
//! acknowledgement; when it comes from the last flushes or the signing, after the head was
//! written, the next open may find the batch committed, whole (and signs its checkpoint).
//!
//! This module owns that order, idempotency and `recorded_at`; it must never write anything
//! but new segments, the tree's new hashes, the head, indexes and the checkpoint.

use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHashSet};

use events::Draft;
use events::envelope::{Envelope, Hash, SCHEMA, Source};
use events::registry::Registry;
use events::seal::SEALED_SCHEMA;

use super::error::StoreError;
use super::{
    Appended, Head, MAX_EVENT_BYTES, SEGMENT_TARGET_BYTES, SMALL_APPEND_AT_MOST,
    SMALL_SEGMENT_TARGET_BYTES, Store,
};
use crate::segment::{self, SegmentBuilder};

/// Envelopes of a large append clustered together: a window's clusters are what a walk of
/// the log holds in memory at once (about 20 MB), and its ordinals fit in a `u16`.
const CLUSTER_WINDOW: usize = 65_536;
/// Seqs per directory (1 KiB: sled reads a leaf of up to 16 values for each get).
const DIRECTORY_SEQS: usize = 512;
/// A value of the `log` tree to write (a segment or a directory), by its key's seq.
type LogEntry = (u64, Vec<u8>);
/// A cluster to write, by its key.
type ClusterEntry = ([u8; 10], Vec<u8>);

/// Segments written per sled batch (bounds the memory of one `apply_batch`).
const SEGMENTS_PER_SLED_BATCH: usize = 256;

/// Envelopes from which an append derives its read models on a second thread (below, the
/// thread costs more than it saves; the service's commits are far smaller). Public for the
/// tests that must exercise both paths.
pub const SCOPES_BESIDE_AT: usize = 4096;

impl Store {
    /// Appends one batch atomically and durably: when this returns `Ok`, every new envelope
    /// is on disk; when it returns `Err` or the process dies first, none is acknowledged.
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
            // The store does not look inside: a draft the vault sealed is written as schema 2,
            // its clear part and ciphertext stored and hashed as they are.
            envs.push(Envelope {
                schema: if d.sealed.is_some() {
                    SEALED_SCHEMA
                } else {
                    SCHEMA
                },
                sealed: d.sealed,
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
        // A small append (the service's commits) is packed into segments as it is chained;
        // a larger one (an import's batch) into clusters by school once chained (`pack`).
        let clustered = envs.len() > SMALL_APPEND_AT_MOST;
        let mut segments: Vec<LogEntry> = Vec::new();
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
            if clustered {
                continue;
            }
            if builder.data_len() + body.len() > SMALL_SEGMENT_TARGET_BYTES && !builder.is_empty() {
                let done = std::mem::replace(&mut builder, SegmentBuilder::new(env.seq));
                segments.push(done.finish());
            }
            builder.push(&env.hash, body);
        }
        let clusters = if clustered {
            let mut state = self.lock();
            let registry = self.registry_loaded(&mut state)?;
            let (directories, clusters) = pack(&envs, &bodies, registry);
            segments = directories;
            clusters
        } else {
            segments.push(builder.finish());
            Vec::new()
        };
        // From here `envs` is final. A large append derives its read models on a second
        // thread while this one writes the log and the other indexes, and writes them there
        // while this one flushes and fsyncs: they are derived, and written after the head as
        // a small append's are (a crash before they are leaves them behind the head, caught
        // up on open).
        let envs = &envs;
        let through = segment::key(envs.last().expect("not empty").seq);
        let beside = envs.len() >= SCOPES_BESIDE_AT
            && !self.read_models_off()
            && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
        if beside {
            // Loaded now, not by the other thread while this one indexes the run's ids.
            drop(self.ids_loaded()?);
        }
        std::thread::scope(|threads| {
            // `true`: the head moved and the other indexes are written, write the read
            // models; a sender dropped without it (the append failed): write nothing.
            let (go, wait) = std::sync::mpsc::sync_channel::<bool>(1);
            let scopes = beside.then(|| {
                threads.spawn(move || -> Result<(), StoreError> {
                    let derived = self.derive_scopes_beside(envs, &through)?;
                    match wait.recv() {
                        Ok(true) => self.store_scopes(derived, &through, false),
                        _ => Ok(()),
                    }
                })
            });
            let beside = scopes.map(|handle| Beside { go, handle });
            self.append_rest(
                head, envs, skipped, bodies, segments, clusters, prev, beside,
            )
        })
    }

    /// The append from the chained bodies on: tree hashes, segments, flush, head (the three
    /// in one transaction for a small append), indexes
    /// (the read models by `beside` when they are derived there), fsync, acknowledgement,
    /// signature.
    #[allow(clippy::too_many_arguments)]
    fn append_rest(
        &self,
        head: Head,
        envs: &[Envelope],
        skipped: u64,
        bodies: Vec<Vec<u8>>,
        segments: Vec<LogEntry>,
        clusters: Vec<ClusterEntry>,
        prev: Hash,
        beside: Option<Beside<'_>>,
    ) -> Result<Appended, StoreError> {
        // The tree's new hashes are planned from the bodies as stored (rules §12).
        let tree = self.plan_tree(head.seq, &bodies)?;
        drop(bodies);
        let last = envs.last().expect("not empty");
        let new_head = Head {
            seq: last.seq,
            hash: prev,
            recorded_at: Some(last.recorded_at),
        };

        let nth = APPENDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let first = head.seq + 1;
        if clusters.is_empty() {
            // A small append (a service commit): segments, the tree's new hashes and the head
            // in one sled transaction, which sled's recovery restores whole or not at all. So
            // no flush is needed before the head to keep a head on disk from naming segments
            // that are not: one flush and fsync per commit, after the indexes
            // (docs/store.md, "A small append commits in one transaction").
            self.commit_small(&segments, &tree, &new_head, (nth, first))?;
        } else {
            for chunk in segments.chunks(SEGMENTS_PER_SLED_BATCH) {
                let mut batch = sled::Batch::default();
                for (first, bytes) in chunk {
                    batch.insert(&segment::key(*first), bytes.as_slice());
                }
                self.log.apply_batch(batch)?;
            }
            for chunk in clusters.chunks(SEGMENTS_PER_SLED_BATCH) {
                let mut batch = sled::Batch::default();
                for (key, bytes) in chunk {
                    batch.insert(key, bytes.as_slice());
                }
                self.clusters.apply_batch(batch)?;
            }
            self.write_tree(tree)?;
            // A large append's values go in several sled batches, each atomic on its own:
            // they are on disk before the head that names them.
            self.db.flush()?;
            test_pause("before-head", nth, first, new_head.seq, None);
            self.put_meta_head(&new_head)?;
        }
        self.lock().head = new_head;
        test_pause("before-indexes", nth, first, new_head.seq, Some(&self.db));
        self.write_indexes_then(
            envs,
            false,
            || {
                test_pause(
                    "before-read-models",
                    nth,
                    first,
                    new_head.seq,
                    Some(&self.db),
                )
            },
            beside.is_some(),
        )?;
        let sync = match beside {
            // The read models are written while sled flushes and fsyncs what came before.
            Some(Beside { go, handle }) => {
                let _ = go.send(true);
                let sync = self.sync();
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                sync
            }
            None => self.sync(),
        };
        sync?;
        self.acknowledge(&new_head)?;
        test_pause("before-sign", nth, first, new_head.seq, None);
        // Signed only once committed: a key never signs a tree that might not be the log's.
        self.sign_after_commit(&new_head)?;
        test_pause("before-ack", nth, first, new_head.seq, None);
        Ok(Appended {
            appended: envs.len() as u64,
            skipped,
            head: new_head,
        })
    }

    /// Writes a small append's segments, the tree's new hashes and the new head in one sled
    /// transaction (`nth` and `first`: the crash point's).
    fn commit_small(
        &self,
        segments: &[LogEntry],
        tree: &super::tree::TreeAppend,
        new_head: &Head,
        (nth, first): (u64, u64),
    ) -> Result<(), StoreError> {
        use sled::Transactional;
        let head = new_head.encoded();
        (&self.log, &self.tlog, &self.meta)
            .transaction(|(log, tlog, meta)| {
                for (first, bytes) in segments {
                    log.insert(&segment::key(*first), bytes.as_slice())?;
                }
                Store::write_tree_in(tree, tlog)?;
                // Inside the transaction, nothing of it durable yet: a crash here must leave
                // the batch absent.
                test_pause("in-commit", nth, first, new_head.seq, None);
                meta.insert(b"head", head.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
                // The closure above never aborts; said rather than assumed.
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Sled("the commit's transaction aborted".into())
                }
            })
    }

    /// Writes the committed head to the head file (fsynced): from now on it is acknowledged.
    pub(super) fn acknowledge(&self, head: &Head) -> Result<(), StoreError> {
        let mut file = self.head_file.lock().unwrap_or_else(|e| e.into_inner());
        match file.as_mut() {
            Some(f) => f.write(head),
            None => Ok(()),
        }
    }
}

/// Packs a large append's chained envelopes, window by window, into clusters and the
/// directories naming them (`segment`): within a window, envelopes are grouped by school (the
/// school an event names, else its child's or staff member's, by `registry` and the window's
/// own registrations) and within a school by child, and each cluster keeps its entries in seq
/// order. Where an envelope lands only decides what a read pulls in with it: every one is
/// still found by its seq, and a wrong guess (a child moved in this very window) costs
/// locality, never correctness.
fn pack<'a>(
    envs: &'a [Envelope],
    bodies: &[Vec<u8>],
    registry: &'a Registry,
) -> (Vec<LogEntry>, Vec<ClusterEntry>) {
    let mut directories = Vec::new();
    let mut clusters = Vec::new();
    for (envs, bodies) in envs
        .chunks(CLUSTER_WINDOW)
        .zip(bodies.chunks(CLUSTER_WINDOW))
    {
        let window = envs[0].seq;
        let mut child_school: FxHashMap<&str, &str> = FxHashMap::default();
        let mut staff_school: FxHashMap<&str, &str> = FxHashMap::default();
        for e in envs {
            if let Some(s) = e.event.school() {
                for c in e.event.children() {
                    child_school.insert(c, s);
                }
                if let Some(t) = e.event.staff() {
                    staff_school.insert(t, s);
                }
            }
        }
        // Schools and children by number, each looked up once a window: the sort then
        // compares numbers, not names, and the registry's ordered maps are not searched for
        // every envelope.
        let mut schools: FxHashMap<&str, u32> = FxHashMap::default();
        let mut number = |school: &'a str| {
            let next = schools.len() as u32;
            *schools.entry(school).or_insert(next)
        };
        let mut children: FxHashMap<&str, (u32, u32)> = FxHashMap::default();
        let mut staff: FxHashMap<&str, u32> = FxHashMap::default();
        let mut order: Vec<(u32, u32, u32)> = Vec::with_capacity(envs.len());
        for (i, e) in envs.iter().enumerate() {
            let child = e.event.children().first().map(|c| {
                let next = children.len() as u32;
                *children.entry(c.as_str()).or_insert_with(|| {
                    let school = child_school
                        .get(c.as_str())
                        .copied()
                        .or_else(|| registry.child_school(c));
                    (school.map_or(u32::MAX, &mut number), next)
                })
            });
            let school = match (e.event.school(), child, e.event.staff()) {
                (Some(s), _, _) => number(s),
                (None, Some((s, _)), _) if s != u32::MAX => s,
                (None, _, Some(t)) => *staff.entry(t).or_insert_with(|| {
                    staff_school
                        .get(t)
                        .copied()
                        .or_else(|| registry.staff_school(t))
                        .map_or(u32::MAX, &mut number)
                }),
                _ => u32::MAX,
            };
            // Invariant: a window holds at most 65,536 envelopes, so `i` fits.
            order.push((school, child.map_or(0, |(_, c)| c + 1), i as u32));
        }
        order.sort_unstable();
        let mut directory = vec![0u16; envs.len()];
        let mut members: Vec<usize> = Vec::new();
        let (mut bytes, mut ordinal) = (0usize, 0u16);
        let mut close = |members: &mut Vec<usize>, ordinal: u16| {
            members.sort_unstable();
            // Seqs of an append are consecutive: the i-th of the window is `window + i`.
            let entries: Vec<(u64, &Hash, &[u8])> = members
                .iter()
                .map(|&i| {
                    directory[i] = ordinal;
                    (window + i as u64, &envs[i].hash, bodies[i].as_slice())
                })
                .collect();
            members.clear();
            let key = segment::cluster_key(window, ordinal);
            clusters.push((key, segment::cluster(&entries)));
        };
        for (at, &(s, _, i)) in order.iter().enumerate() {
            let i = i as usize;
            let new_school = at > 0 && order[at - 1].0 != s;
            if !members.is_empty() && (new_school || bytes + bodies[i].len() > SEGMENT_TARGET_BYTES)
            {
                close(&mut members, ordinal);
                // Invariant: at most one cluster per envelope of a window of 65,536.
                ordinal += 1;
                bytes = 0;
            }
            members.push(i);
            bytes += 32 + bodies[i].len();
        }
        close(&mut members, ordinal);
        for (k, part) in directory.chunks(DIRECTORY_SEQS).enumerate() {
            directories.push((
                window + (k * DIRECTORY_SEQS) as u64,
                segment::directory(window, part),
            ));
        }
    }
    (directories, clusters)
}

/// The read models of an append being derived on another thread: `go` tells it to write
/// them (once the head moved and the other indexes are written), `handle` is its outcome.
struct Beside<'scope> {
    go: std::sync::mpsc::SyncSender<bool>,
    handle: std::thread::ScopedJoinHandle<'scope, Result<(), StoreError>>,
}

/// Encodes envelope bodies on every core (order kept).
fn encode_parallel(envs: &[Envelope]) -> Vec<Vec<u8>> {
    let threads = super::threads_for(envs.len());
    if threads < 2 {
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

/// Appends of this process that reached the write (counted for `test_pause`).
static APPENDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A crash point for the SIGKILL tests (tests/it/crash.rs, tests/it/proofs_crash.rs), inert
/// unless the environment sets `CARELEDGER_TEST_PAUSE=<stage>:<n>`: then the `n`-th writing
/// append of this process, on reaching `stage` (`before-head`: a large append's segments and
/// tree hashes written and flushed, head not moved; `in-commit`: a small append's segments and
/// tree hashes inserted in its transaction, the head not; `before-indexes`: head moved,
/// indexes not written; `before-read-models`: every other index written, the read models not;
/// `before-sign`: flushed, fsynced and acknowledged in the head file, its checkpoint not yet
/// signed; `before-ack`: signed, not yet returned), prints
/// `careledger-test-pause <stage> <first seq> <last seq>` on stderr and blocks forever, so the
/// test kills the process exactly there. With `flush`, sled is flushed first: the head on disk
/// without its indexes is a state sled reaches on its own when a buffer fills, made certain
/// here so the test sees the indexes caught up on open.
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
