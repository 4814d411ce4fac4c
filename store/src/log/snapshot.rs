//! Projection snapshots: bytes a caller stores under a name and a seq, to resume a fold
//! instead of replaying the log. Derived data: losing one only costs a replay, and a
//! snapshot that fails to be written leaves the log untouched (it is a separate tree,
//! written outside any commit).
//!
//! This module owns the chunked layout; it must never interpret the bytes.

use super::error::StoreError;
use super::{SEGMENT_TARGET_BYTES, Store};
use crate::segment;

impl Store {
    /// Stores a projection snapshot taken at `seq` under `name` (which should carry the
    /// projection code's fingerprint, so a snapshot of other code is never read back). Split
    /// into chunks below sled's blob threshold and written in one atomic batch.
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
}

fn snapshot_key(name: &str, seq: u64) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&segment::key(seq));
    k
}
