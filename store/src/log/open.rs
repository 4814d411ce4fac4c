//! Opening a store: finding it, checking that it can be opened without harm, taking it, and
//! finishing whatever a crash interrupted.
//!
//! The rule: opening never damages a store, and never writes before it has checked that it
//! can. Before sled sees the directory: it must be a store (a directory with sled's `db` and
//! `conf`, or the remains of one, which is damage, not "run init"), writable (else
//! `ReadOnly`: a read-only copy is worked on through `copy_store`), with room for what
//! opening writes (else `DiskFull`), and without the leftovers of a snapshot sled failed to
//! write (sled 0.34 reads `snap.*.generating` as its newest snapshot and then refuses the
//! store forever as corrupted; such a file is never complete, so it is removed). Then sled
//! is opened (waiting briefly for another process: `InUse`, naming the holder from the
//! `owner` file it wrote), the head file is compared with the log *before* anything is
//! written, and only then are uncommitted segments dropped and indexes caught up. What sled's
//! own recovery writes while opening is undone if opening finds damage (`rollback`).
//!
//! This module owns those checks and recovery; it must never decide what a command does
//! with a store it could not open.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use events::envelope::Hash;
use events::registry::{Entry, Registry};

use super::error::{ErrorKind, StoreError, damaged};
use super::head_file::{self, HeadFile};
use super::index::through_of;
use super::rollback::Rollback;
use super::{Head, SLED_SEGMENT_BYTES, Store, THROUGH_KEY, WriterState};
use crate::segment;

/// Tries, 50 ms apart, to take the lock of a store held by someone else: sled frees a
/// dropped database through deferred reclamation, so this process's own previous handle may
/// hold it for a moment; another process holding it gets `InUse` after two seconds.
const LOCK_RETRIES: u32 = 40;
/// The file naming the process that holds the store (a hint for `InUse`; not data).
const OWNER_FILE: &str = "owner";
/// The `meta` key saying this store keeps a head file (written at creation or adoption), so
/// that a missing head file is damage rather than an older store.
pub(super) const HEAD_FILE_MARKER: &[u8] = b"head_file";
/// Fewer bytes than any stored event takes in sled's data file (an envelope body is over a
/// hundred bytes, and its hash 32): a shorter `db` cannot hold what was acknowledged.
const MIN_BYTES_PER_EVENT: u64 = 64;
/// Room opening may need: a sled segment for recovery and our catch-up, another for what
/// sled zeroes at a torn tail, and twice its snapshot file.
const ROOM_BASE: u64 = 2 * SLED_SEGMENT_BYTES as u64 + 64 * 1024;

impl Store {
    /// Creates an empty store at `path` (which must not hold one yet).
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_dir() => {
                return Err(StoreError::NotAStore {
                    path: path.to_owned(),
                    why: "it is a file, not a directory".into(),
                });
            }
            Ok(_) => {
                if path.join("db").exists() {
                    return Err(StoreError::Exists(path.to_owned()));
                }
                if head_file::path(path).exists() {
                    // A store that lost its data file: never made anew over its remains.
                    return Err(StoreError::Lost {
                        path: path.to_owned(),
                        acknowledged: head_file::read(path).ok().flatten().map(|h| h.seq),
                    });
                }
            }
            Err(_) => {}
        }
        std::fs::create_dir_all(path).map_err(|e| StoreError::io(path, e))?;
        check_room(path)?;
        let db = open_sled(path)?;
        let mut store = Store::assemble(path, db)?;
        store.meta.insert(HEAD_FILE_MARKER, &[1])?;
        store.sync()?;
        *store.head_file.get_mut().unwrap_or_else(|e| e.into_inner()) =
            Some(HeadFile::create(path, &Head::EMPTY)?);
        // The directory entry of the new store must survive a power loss too.
        if let Some(parent) = path.parent()
            && let Ok(d) = File::open(parent)
        {
            let _ = d.sync_all();
        }
        write_owner(path, "init");
        Ok(store)
    }

    /// Opens an existing store, finishing whatever a crash interrupted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_as(path, "careledger")
    }

    /// `open`, naming the holder (e.g. the command) in the `owner` file, so that a second
    /// process finding the store in use can say who holds it.
    pub fn open_as(path: &Path, holder: &str) -> Result<Store, StoreError> {
        inspect(path)?;
        check_writable(path)?;
        check_room(path)?;
        remove_unfinished_snapshots(path)?;
        // What sled's recovery may overwrite, put back if opening finds damage.
        let mut rollback = Rollback::take(path);
        let mut undo = |e: StoreError| {
            if e.kind() == ErrorKind::Damaged
                && let Some(r) = rollback.take()
            {
                // The damage is the error to report; a failed undo leaves sled's state.
                let _ = r.restore(path);
            }
            e
        };
        let db = open_sled(path).map_err(&mut undo)?;
        write_owner(path, holder);
        let mut store = Store::assemble(path, db)?;
        let acknowledged = match store.check_head_file() {
            Ok(a) => a,
            Err(e) => {
                drop(store);
                return Err(undo(e));
            }
        };
        store.recover()?;
        if let Some(notice) = store.recover_tree()? {
            store.notices.push(notice);
        }
        store.settle_head_file(acknowledged)?;
        Ok(store)
    }

    fn assemble(path: &Path, db: sled::Db) -> Result<Store, StoreError> {
        Ok(Store {
            path: path.to_owned(),
            log: db.open_tree("log")?,
            clusters: db.open_tree("clusters")?,
            meta: db.open_tree("meta")?,
            by_child: super::staged::StagedTree::new(
                db.open_tree("by_child")?,
                "by_child",
                super::staged::Values::Plain,
            ),
            by_staff: super::staged::StagedTree::new(
                db.open_tree("by_staff")?,
                "by_staff",
                super::staged::Values::Plain,
            ),
            by_id: db.open_tree("by_id")?,
            registry: db.open_tree("registry")?,
            scopes: super::staged::StagedTree::new(
                db.open_tree("scopes")?,
                "scopes",
                super::staged::Values::Checked,
            ),
            tlog: db.open_tree("tlog")?,
            checkpoints: db.open_tree("checkpoints")?,
            signer: Mutex::new(None),
            tree_off_for_bench: std::sync::atomic::AtomicBool::new(false),
            read_models_off_for_bench: std::sync::atomic::AtomicBool::new(false),
            read_model_lists: Mutex::new(Default::default()),
            deferred: Mutex::new(Default::default()),
            db,
            state: Mutex::new(WriterState {
                head: Head::EMPTY,
                registry: None,
            }),
            head_file: Mutex::new(None),
            ids: Mutex::new(None),
            notices: Vec::new(),
            synced_blobs: Mutex::new(Default::default()),
        })
    }

    /// The head as sled's `meta` tree records it.
    pub(super) fn meta_head(&self) -> Result<Head, StoreError> {
        match self.meta.get(b"head")? {
            Some(v) => rmp_serde::from_slice::<Head>(&v)
                .map_err(|e| StoreError::Corrupt(format!("the head marker is unreadable: {e}"))),
            None => Ok(Head::EMPTY),
        }
    }

    /// Compares the head file with the log, writing nothing: the acknowledged head must be in
    /// the log with its hash. Returns it (`None`: no head file).
    fn check_head_file(&self) -> Result<Option<Head>, StoreError> {
        let log_head = self.meta_head()?;
        // sled's head marker must itself name an envelope of the chain, with its hash,
        // before anything is adopted from it.
        if log_head.seq > 0 {
            match self.stored_hash(log_head.seq)? {
                Some(h) if h == log_head.hash => {}
                Some(_) => {
                    return Err(damaged(
                        log_head.seq,
                        "the head marker's hash is not the hash of the envelope at its seq",
                    ));
                }
                None => {
                    let end = self.log_end()?.min(log_head.seq - 1);
                    return Err(damaged(
                        end + 1,
                        format!("the head says {} events, the log holds {end}", log_head.seq),
                    ));
                }
            }
        }
        let Some(ack) = head_file::read(&self.path)? else {
            if log_head.seq > 0 && self.meta.get(HEAD_FILE_MARKER)?.is_some() {
                return Err(StoreError::Corrupt(format!(
                    "its head file is missing (it is rewritten with every commit; the log holds \
                     {} events but nothing says how many were acknowledged)",
                    log_head.seq
                )));
            }
            return Ok(None);
        };
        check_acknowledged(self, &ack, log_head.seq)?;
        Ok(Some(ack))
    }

    /// Opens the head file, creating it for a new store or adopting the log's head for a store
    /// made before head files (said in a notice), and brings it up to the log's head when a
    /// commit ended before its acknowledgement.
    fn settle_head_file(&mut self, acknowledged: Option<Head>) -> Result<(), StoreError> {
        let head = self.head();
        let file = match acknowledged {
            Some(ack) => {
                let mut f = HeadFile::open(&self.path)?;
                if ack != head {
                    f.write(&head)?;
                }
                f
            }
            None => {
                if head.seq > 0 {
                    self.notices.push(format!(
                        "{} was made before careledger kept a head file; its current head (seq \
                         {}, hash {}) is adopted as acknowledged, and a shortening of the log \
                         before today cannot be detected",
                        self.path.display(),
                        head.seq,
                        head.hash.to_hex()
                    ));
                }
                HeadFile::create(&self.path, &head)?
            }
        };
        if self.meta.get(HEAD_FILE_MARKER)?.is_none() {
            self.meta.insert(HEAD_FILE_MARKER, &[1])?;
            self.sync()?;
        }
        *self.head_file.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }

    /// Drops uncommitted segments and catches the derived trees up with the head.
    fn recover(&mut self) -> Result<(), StoreError> {
        let head = self.meta_head()?;
        // Segments past the head belong to a batch that was never acknowledged.
        let stale: Vec<sled::IVec> = self
            .log
            .range(segment::key(head.seq + 1)..)
            .keys()
            .collect::<Result<_, _>>()?;
        // Clusters past the head too: their window starts after it.
        let stale_clusters: Vec<sled::IVec> = self
            .clusters
            .range(segment::key(head.seq + 1)..)
            .keys()
            .collect::<Result<_, _>>()?;
        let had_stale = !stale.is_empty() || !stale_clusters.is_empty();
        for k in stale {
            self.log.remove(k)?;
        }
        for k in stale_clusters {
            self.clusters.remove(k)?;
        }
        {
            let mut st = self.lock();
            st.head = head;
            st.registry = None;
        }
        // A read-model tree of another layout (written by an earlier careledger) is derived
        // data: dropped here and rebuilt from the log below, like any tree behind the head.
        if super::index::through_of(self.scopes.raw())? > 0
            && self.scopes.raw().get(super::scopes::FORMAT_KEY)?.as_deref()
                != Some(super::scopes::FORMAT)
        {
            self.scopes.clear()?;
            self.lock_read_model_lists().clear();
            self.notices
                .push("the read models were of an earlier layout: rebuilt from the log".to_owned());
        }
        let trees = [
            self.by_child.raw(),
            self.by_staff.raw(),
            &self.by_id,
            &self.registry,
            self.scopes.raw(),
        ];
        let through: Vec<u64> = trees
            .iter()
            .map(|t| through_of(t))
            .collect::<Result<_, _>>()?;
        if through.iter().any(|&t| t > head.seq) {
            // An index ahead of the log cannot happen with the write order we use; if the
            // disk says otherwise, trust the log and rebuild every index from it.
            for t in [&self.by_id, &self.registry] {
                t.clear()?;
            }
            for t in [&self.by_child, &self.by_staff, &self.scopes] {
                t.clear()?;
            }
            self.lock_read_model_lists().clear();
            self.lock().registry = Some(Registry::default());
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
}

/// The registry as its tree holds it.
pub(super) fn load_registry(tree: &sled::Tree) -> Result<Registry, StoreError> {
    let mut registry = Registry::default();
    for item in tree.iter() {
        let (k, v) = item?;
        if k.as_ref() == THROUGH_KEY {
            continue;
        }
        let (id, entry): (String, Entry) = rmp_serde::from_slice(&v).map_err(|e| {
            StoreError::Corrupt(format!("a registry index entry is unreadable: {e}"))
        })?;
        registry.insert(id, entry);
    }
    Ok(registry)
}

impl Store {
    /// Closes the store after a command that wrote, having sled lay its snapshot over all
    /// that was written. sled replays what follows its last snapshot on the next open and
    /// clears from the first message failing its checksum; with the snapshot at the tip, a
    /// byte changed later is found when it is read (damage, exit 3) and nothing is cleared.
    /// Best effort: the writes are already acknowledged, and a snapshot that cannot be laid
    /// now (another process took the store, the disk is full) is laid by the next open.
    pub fn close(self) {
        let path = self.path.clone();
        drop(self);
        if check_room(&path).is_ok() {
            let _ = open_sled(&path);
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // What small appends deferred; if this fails, the next open derives it from the log.
        let _ = self.write_deferred();
        // Still holding sled's lock here (the database closes after this), so the file
        // removed is ours.
        let _ = std::fs::remove_file(self.path.join(OWNER_FILE));
    }
}

/// The acknowledged head must be within the log (`log_seq`) and carry the same hash there.
pub(super) fn check_acknowledged(
    store: &Store,
    ack: &Head,
    log_seq: u64,
) -> Result<(), StoreError> {
    if ack.seq > log_seq {
        return Err(damaged(
            log_seq + 1,
            format!(
                "the log ends at seq {log_seq} but seq {} was acknowledged",
                ack.seq
            ),
        ));
    }
    let stored = if ack.seq == 0 {
        Some(Hash::ZERO)
    } else {
        store.stored_hash(ack.seq)?
    };
    match stored {
        Some(h) if h == ack.hash => Ok(()),
        Some(_) => Err(damaged(
            ack.seq,
            "its hash is not the one acknowledged (the log was rewritten)",
        )),
        None => {
            let end = store.log_end()?;
            if end < ack.seq {
                Err(damaged(
                    end + 1,
                    format!(
                        "the log ends at seq {end} but seq {} was acknowledged",
                        ack.seq
                    ),
                ))
            } else {
                Err(damaged(
                    ack.seq,
                    "missing from the log, but it was acknowledged",
                ))
            }
        }
    }
}

/// What is at `path`: a store, the remains of one (damage), something else, or nothing.
fn inspect(path: &Path) -> Result<(), StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing(path.to_owned()));
        }
        Err(e) => return Err(StoreError::io(path, e)),
    };
    if !meta.is_dir() {
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            why: "it is a file, and a store is a directory".into(),
        });
    }
    let has = |name: &str| path.join(name).exists();
    let acknowledged = || head_file::read(path).ok().flatten().map(|h| h.seq);
    let db = match std::fs::metadata(path.join("db")) {
        Ok(m) => m,
        Err(_) if has(head_file::NAME) || has("conf") => {
            return Err(StoreError::Lost {
                path: path.to_owned(),
                acknowledged: acknowledged(),
            });
        }
        Err(_) => return Err(StoreError::Missing(path.to_owned())),
    };
    if !db.is_file() {
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            why: "its `db` is not a file".into(),
        });
    }
    if let Some(ack) = acknowledged()
        && db.len() < MIN_BYTES_PER_EVENT * ack
    {
        return Err(damaged(
            1,
            format!(
                "the data file `db` is {} bytes, too short to hold the {ack} events acknowledged",
                db.len()
            ),
        ));
    }
    if !has("conf") {
        if has(head_file::NAME) {
            return Err(StoreError::Corrupt(
                "sled's settings file `conf` is missing beside `db`".into(),
            ));
        }
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            why: format!("its `db` ({} bytes) has no sled `conf` beside it", db.len()),
        });
    }
    Ok(())
}

/// Whether the error is the file system refusing a write (read-only mount, permission).
fn refused(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.raw_os_error(), Some(13 | 1 | 30)) // EACCES, EPERM, EROFS
        || matches!(e.kind(), K::PermissionDenied | K::ReadOnlyFilesystem)
}

/// Whether the error is the disk being full (ENOSPC, EDQUOT).
fn no_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.raw_os_error(), Some(28 | 122))
        || matches!(e.kind(), K::StorageFull | K::QuotaExceeded)
}

/// The data file and the directory must be writable: sled opens read-write and locks.
fn check_writable(path: &Path) -> Result<(), StoreError> {
    let db = path.join("db");
    if let Err(e) = OpenOptions::new().read(true).write(true).open(&db) {
        return Err(if refused(&e) {
            StoreError::ReadOnly(path.to_owned())
        } else {
            StoreError::io(db, e)
        });
    }
    let probe = path.join(format!(".probe-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if refused(&e) => Err(StoreError::ReadOnly(path.to_owned())),
        Err(e) if no_space(&e) => Err(StoreError::DiskFull {
            path: path.to_owned(),
            available: fs2::available_space(path).unwrap_or(0),
            needed: ROOM_BASE,
        }),
        Err(e) => Err(StoreError::io(probe, e)),
    }
}

/// There must be room for what opening may write (sled's snapshot and recovery, our
/// catch-up): checked with statvfs, writing nothing.
fn check_room(path: &Path) -> Result<(), StoreError> {
    let snapshots: u64 = snapshot_files(path)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    let needed = ROOM_BASE + 2 * snapshots;
    let available = fs2::available_space(path).map_err(|e| StoreError::io(path, e))?;
    if available < needed {
        return Err(StoreError::DiskFull {
            path: path.to_owned(),
            available,
            needed,
        });
    }
    Ok(())
}

/// sled's snapshot files (`snap.*`), finished or not.
fn snapshot_files(path: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("snap."))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Removes `snap.*.generating`: sled writes a snapshot under that name, fsyncs it and only
/// then renames it, so such a file is always unfinished — yet sled 0.34 would read it as
/// its newest snapshot and refuse the store as corrupted.
fn remove_unfinished_snapshots(path: &Path) -> Result<(), StoreError> {
    let mut removed = false;
    for p in snapshot_files(path) {
        if p.extension().is_some_and(|e| e == "generating") {
            std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
            removed = true;
        }
    }
    if removed {
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(path, e))?;
    }
    Ok(())
}

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(256 * 1024 * 1024)
        .segment_size(SLED_SEGMENT_BYTES)
        // Every append flushes and fsyncs itself; sled's background flusher would only
        // keep the database (and its lock) alive for a moment after the store is dropped.
        .flush_every_ms(None);
    let mut attempts = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("acquire lock") => {
                if attempts >= LOCK_RETRIES {
                    let holder = std::fs::read_to_string(path.join(OWNER_FILE))
                        .ok()
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty());
                    return Err(StoreError::InUse {
                        path: path.to_owned(),
                        holder,
                    });
                }
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(sled::Error::Io(e)) if refused(&e) => {
                return Err(StoreError::ReadOnly(path.to_owned()));
            }
            other => return Ok(other?),
        }
    }
}

/// Names the holder in the `owner` file. A hint only: failing to write it changes nothing.
fn write_owner(path: &Path, holder: &str) {
    let text = format!(
        "`careledger {holder}`, pid {}, since {}\n",
        std::process::id(),
        events::time::format_local(Utc::now())
    );
    let _ = std::fs::write(path.join(OWNER_FILE), text);
}

/// Copies the store at `from` into the new directory `to` (sled's files, its finished
/// snapshots and the head file; not the owner hint nor unfinished snapshots), so that a
/// read-only store can be read from a private copy. Returns the bytes copied.
pub fn copy_store(from: &Path, to: &Path) -> Result<u64, StoreError> {
    inspect(from)?;
    std::fs::create_dir_all(to.join("blobs")).map_err(|e| StoreError::io(to, e))?;
    let mut bytes = 0;
    let mut copy = |name: &std::ffi::OsStr, sub: &str| -> Result<(), StoreError> {
        let (src, dst) = (from.join(sub).join(name), to.join(sub).join(name));
        bytes += std::fs::copy(&src, &dst).map_err(|e| {
            if no_space(&e) {
                StoreError::DiskFull {
                    path: to.to_owned(),
                    available: fs2::available_space(to).unwrap_or(0),
                    needed: std::fs::metadata(&src).map_or(0, |m| m.len()),
                }
            } else {
                StoreError::io(&src, e)
            }
        })?;
        Ok(())
    };
    for entry in std::fs::read_dir(from).map_err(|e| StoreError::io(from, e))? {
        let entry = entry.map_err(|e| StoreError::io(from, e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let wanted = matches!(text.as_ref(), "db" | "conf" | head_file::NAME)
            || (text.starts_with("snap.") && !text.ends_with(".generating"));
        if wanted && entry.path().is_file() {
            copy(&name, "")?;
        }
    }
    if let Ok(blobs) = std::fs::read_dir(from.join("blobs")) {
        for entry in blobs.flatten() {
            copy(&entry.file_name(), "blobs")?;
        }
    }
    Ok(bytes)
}
