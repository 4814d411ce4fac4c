//! Undoing what sled's own recovery wrote, when opening then finds the store damaged.
//!
//! On open, sled 0.34 replays the segments of its data file from its last snapshot on and
//! stops at the first message failing its checksum; it then clears the rest of that segment
//! and every later one, writes a new snapshot and removes the old — before it says anything.
//! On a damaged store that destroys what an expert could still have recovered. So before sled
//! opens, the segments it may write (those whose header names a log position at or after the
//! segment of its newest snapshot) and the snapshot files are kept in memory, and if opening
//! ends in damage (sled's checksums, or the head file disagreeing with the log), they are put
//! back byte for byte once sled has let go of the file. Only up to `LIMIT` bytes are kept: a
//! store whose unsnapshotted tail is larger (a crashed bulk import) is not protected.
//!
//! This module owns that copy; it must never change a store that opened cleanly.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs2::FileExt as _;

use super::SLED_SEGMENT_BYTES;

/// The most bytes kept (segments and snapshot files together).
const LIMIT: u64 = 256 * 1024 * 1024;
/// sled's segment header: crc32, lsn ^ i64::MAX, max stable lsn ^ i64::MAX (little-endian).
const SEGMENT_HEADER: usize = 20;

/// The bytes sled may overwrite while opening, as they were before.
pub(super) struct Rollback {
    db_len: u64,
    segments: Vec<(u64, Vec<u8>)>,
    snapshots: Vec<(PathBuf, Vec<u8>)>,
}

/// sled's finished snapshot files and the log position each is taken at.
fn snapshots(dir: &Path) -> Vec<(PathBuf, i64)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let lsn = i64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()?;
                    Some((e.path(), lsn))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Rollback {
    /// Keeps what sled may overwrite when opening the store at `dir`; `None` when that is
    /// more than `LIMIT` or cannot be read (then opening goes on unprotected).
    pub fn take(dir: &Path) -> Option<Rollback> {
        let seg = SLED_SEGMENT_BYTES as u64;
        let snaps = snapshots(dir);
        let stable = snaps.iter().map(|(_, l)| *l).max().unwrap_or(0).max(0);
        let min = stable / seg as i64 * seg as i64;
        let mut kept = 0u64;
        let mut snapshots = Vec::new();
        for (path, _) in snaps {
            let bytes = std::fs::read(&path).ok()?;
            kept += bytes.len() as u64;
            snapshots.push((path, bytes));
        }
        let db = File::open(dir.join("db")).ok()?;
        let db_len = db.metadata().ok()?.len();
        let mut segments = Vec::new();
        let mut at = 0;
        while at < db_len {
            let mut header = [0u8; SEGMENT_HEADER];
            let lsn = match db.read_exact_at(&mut header, at) {
                Ok(()) => i64::from_le_bytes(header[4..12].try_into().expect("8 bytes")) ^ i64::MAX,
                Err(_) => i64::MAX,
            };
            // A header never written decodes to i64::MAX: sled does not use that segment.
            if lsn >= min && lsn != i64::MAX {
                let len = seg.min(db_len - at);
                kept += len;
                if kept > LIMIT {
                    return None;
                }
                let mut bytes = vec![0u8; len as usize];
                db.read_exact_at(&mut bytes, at).ok()?;
                segments.push((at, bytes));
            }
            at += seg;
        }
        Some(Rollback {
            db_len,
            segments,
            snapshots,
        })
    }

    /// Puts everything back as it was, once sled has closed the data file (its lock is free
    /// again: sled closes a dropped database a moment later, on another thread).
    pub fn restore(self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join("db");
        let db = OpenOptions::new().read(true).write(true).open(&path)?;
        for _ in 0..100 {
            if db.try_lock_exclusive().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        db.set_len(self.db_len)?;
        for (at, bytes) in &self.segments {
            db.write_all_at(bytes, *at)?;
        }
        db.sync_all()?;
        let _ = fs2::FileExt::unlock(&db);
        for (path, _) in snapshots(dir) {
            if !self.snapshots.iter().any(|(p, _)| *p == path) {
                std::fs::remove_file(path)?;
            }
        }
        for (path, bytes) in &self.snapshots {
            std::fs::write(path, bytes)?;
            File::open(path)?.sync_all()?;
        }
        File::open(dir)?.sync_all()
    }
}
