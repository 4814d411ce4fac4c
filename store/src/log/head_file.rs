//! The head file: how long the log is, kept outside sled so that shortening sled's data file
//! (truncating it, zeroing it, replacing it) cannot also shorten what was acknowledged.
//!
//! `<store>/head` is 128 bytes: two slots of 64, written alternately in place, each
//! `magic "CLHEAD01" ‖ seq u64 LE ‖ hash (32 B) ‖ recorded_at µs i64 LE (i64::MIN = none) ‖
//! first 8 bytes of SHA-256 of the 56 before`. The valid slot with the higher seq is the
//! acknowledged head; a write torn by a crash spoils only the slot being written, whose
//! predecessor stays readable. It is created whole (temporary file, fsync, rename, fsync of
//! the directory) and then updated after each commit, once sled's flush and the fsync of
//! `db` have returned and before the acknowledgement, with an fsync of its own.
//!
//! This module owns the byte layout and its durability; deciding what a disagreement with
//! the log means is `open`'s and `verify`'s.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use events::envelope::Hash;
use sha2::{Digest, Sha256};

use super::Head;
use super::error::StoreError;

const MAGIC: &[u8; 8] = b"CLHEAD01";
const SLOT: usize = 64;
const FILE_BYTES: usize = 2 * SLOT;
/// The file name inside the store directory.
pub const NAME: &str = "head";

/// The open head file, with the slot holding the latest head.
pub(crate) struct HeadFile {
    file: File,
    path: PathBuf,
    latest_slot: usize,
}

fn encode(head: &Head) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..8].copy_from_slice(MAGIC);
    b[8..16].copy_from_slice(&head.seq.to_le_bytes());
    b[16..48].copy_from_slice(&head.hash.0);
    let micros = head.recorded_at.map_or(i64::MIN, |t| t.timestamp_micros());
    b[48..56].copy_from_slice(&micros.to_le_bytes());
    let check = Sha256::digest(&b[..56]);
    b[56..].copy_from_slice(&check[..8]);
    b
}

fn decode(b: &[u8]) -> Option<Head> {
    if b.len() != SLOT || &b[..8] != MAGIC || Sha256::digest(&b[..56])[..8] != b[56..] {
        return None;
    }
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let hash = Hash(b[16..48].try_into().ok()?);
    let micros = i64::from_le_bytes(b[48..56].try_into().ok()?);
    let recorded_at = if micros == i64::MIN {
        None
    } else {
        Some(DateTime::<Utc>::from_timestamp_micros(micros)?)
    };
    Some(Head {
        seq,
        hash,
        recorded_at,
    })
}

/// The path of the head file of the store at `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(NAME)
}

/// Reads the acknowledged head without opening the file for writing: `None` if there is no
/// head file, an error if it is there but unreadable or damaged in both slots.
pub fn read(dir: &Path) -> Result<Option<Head>, StoreError> {
    let path = path(dir);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(&path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    Ok(Some(best(&bytes)?.1))
}

/// The valid slot with the higher seq, and its index.
fn best(bytes: &[u8]) -> Result<(usize, Head), StoreError> {
    if bytes.len() != FILE_BYTES {
        return Err(StoreError::Corrupt(format!(
            "the head file is {} bytes, not {FILE_BYTES}",
            bytes.len()
        )));
    }
    (0..2)
        .filter_map(|i| decode(&bytes[i * SLOT..(i + 1) * SLOT]).map(|h| (i, h)))
        .max_by_key(|(_, h)| h.seq)
        .ok_or_else(|| StoreError::Corrupt("the head file is damaged in both its slots".into()))
}

impl HeadFile {
    /// Creates the head file whole, holding `head` in both slots: a temporary file written
    /// and fsynced, renamed into place, and the directory fsynced.
    pub fn create(dir: &Path, head: &Head) -> Result<HeadFile, StoreError> {
        let path = path(dir);
        let tmp = dir.join(format!("{NAME}.tmp"));
        let slot = encode(head);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&slot)?;
            f.write_all(&slot)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| StoreError::io(&path, e))?;
        HeadFile::open(dir)
    }

    /// Opens the existing head file for updates.
    pub fn open(dir: &Path) -> Result<HeadFile, StoreError> {
        let path = path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(&path, e))?;
        let (latest_slot, _) = best(&bytes)?;
        Ok(HeadFile {
            file,
            path,
            latest_slot,
        })
    }

    /// Records `head` as acknowledged: written over the older slot, then fsynced.
    pub fn write(&mut self, head: &Head) -> Result<(), StoreError> {
        let slot = 1 - self.latest_slot;
        self.file
            .write_all_at(&encode(head), (slot * SLOT) as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.latest_slot = slot;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> Head {
        Head {
            seq,
            hash: Hash([seq as u8; 32]),
            recorded_at: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_000),
        }
    }

    #[test]
    fn the_latest_slot_wins_and_a_torn_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = HeadFile::create(dir.path(), &head(0)).unwrap();
        f.write(&head(5)).unwrap();
        f.write(&head(9)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(head(9)));
        // Tear the slot just written: the previous head is still there.
        let mut bytes = std::fs::read(path(dir.path())).unwrap();
        let latest = f.latest_slot;
        bytes[latest * SLOT + 20] ^= 0xFF;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(head(5)));
        bytes[(1 - latest) * SLOT + 20] ^= 0xFF;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        assert!(matches!(read(dir.path()), Err(StoreError::Corrupt(_))));
        assert_eq!(read(&dir.path().join("none")).unwrap(), None);
    }
}
