//! The physical floor for benchmarks: what raw sled does with the same bytes the log stores,
//! one key per value, made durable the way `Store::append` makes a batch durable.
//!
//! It exists so that `careledger bench` can say how close the log comes to sled itself
//! without any crate but `store` touching sled. It must never be used for real data.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::log::StoreError;

/// What raw sled did with the same bytes, one key per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledFloor {
    /// Values inserted (one per envelope body).
    pub values: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Sum over batches of `apply_batch` + flush + fsync.
    pub insert: Duration,
    /// One full iteration, summing value lengths.
    pub scan: Duration,
    /// Size of `dir` after the inserts.
    pub disk_bytes: u64,
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Creates a fresh sled database at `dir` (which must not exist), inserts every value of
/// every batch under a big-endian u64 key counting from 1 — one `apply_batch` per batch,
/// each made durable (flush, then fsync of the data file) — and scans the tree once. Only
/// the sled calls are timed.
pub fn sled_floor(
    dir: &Path,
    batches: impl Iterator<Item = Vec<Vec<u8>>>,
) -> Result<SledFloor, StoreError> {
    if dir.exists() {
        return Err(StoreError::Exists(dir.to_owned()));
    }
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(256 * 1024 * 1024)
        .open()?;
    let tree = db.open_tree("floor")?;
    let data = dir.join("db");
    let (mut key, mut values, mut bytes) = (0u64, 0u64, 0u64);
    let mut insert = Duration::ZERO;
    for batch in batches {
        let mut b = sled::Batch::default();
        for v in batch {
            key += 1;
            values += 1;
            bytes += v.len() as u64;
            b.insert(&key.to_be_bytes(), v);
        }
        let t = Instant::now();
        tree.apply_batch(b)?;
        db.flush()?;
        File::open(&data)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io {
                path: Some(data.clone()),
                source,
            })?;
        insert += t.elapsed();
    }
    let t = Instant::now();
    let mut seen = 0u64;
    for item in tree.iter() {
        let (_, v) = item?;
        seen += v.len() as u64;
    }
    let scan = t.elapsed();
    debug_assert_eq!(seen, bytes);
    drop(tree);
    drop(db);
    Ok(SledFloor {
        values,
        bytes,
        insert,
        scan,
        disk_bytes: dir_size(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_written_and_scanned() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("floor");
        let batches = (0..3).map(|b| (0..100).map(|i| vec![b as u8; 50 + i]).collect());
        let f = sled_floor(&dir, batches).unwrap();
        assert_eq!(f.values, 300);
        assert_eq!(f.bytes, 3 * (100 * 50 + 99 * 100 / 2));
        assert!(f.disk_bytes > 0);
        assert!(matches!(
            sled_floor(&dir, std::iter::empty()),
            Err(StoreError::Exists(_))
        ));
    }
}
