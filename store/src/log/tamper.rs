//! Deliberate damage, for tests that check the store notices it: each function breaks one
//! thing the way an editor of the files could (through sled, so sled's own checksums stay
//! valid), and — where it says so — repairs everything else an editor could repair, so that
//! only the check under test can catch it. Not reachable from the command line.
//!
//! This module owns nothing the store relies on; it must never be called on real data.

use events::envelope::{Envelope, Hash};

use super::error::{StoreError, damaged};
use super::head_file::HeadFile;
use super::index::{SeqList, posting_bucket};
use super::read::Entries;
use super::{Head, Store};
use crate::segment::{self, LogValue, Segment, SegmentBuilder};

impl Store {
    /// Flips one byte in the middle of the stored body of `seq`: its hash can no longer match.
    pub fn tamper_for_test(&self, seq: u64) -> Result<(), StoreError> {
        self.edit_body(seq, |body| {
            let mid = body.len() / 2;
            body[mid] ^= 0x01;
        })
    }

    /// Replaces the first occurrence of `from` by `to` (of the same length) in the stored body
    /// of `seq`, nothing else: the body still decodes, its hash no longer matches.
    pub fn tamper_replace_in_body(
        &self,
        seq: u64,
        from: &[u8],
        to: &[u8],
    ) -> Result<(), StoreError> {
        assert_eq!(from.len(), to.len(), "a same-length edit");
        self.edit_body(seq, |body| {
            let at = body
                .windows(from.len())
                .position(|w| w == from)
                .expect("the text to replace is in the body");
            body[at..at + to.len()].copy_from_slice(to);
        })
    }

    fn edit_body(&self, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), StoreError> {
        self.replace_entry(seq, |hash, body| {
            let mut body = body.to_vec();
            edit(&mut body);
            (hash, body)
        })?;
        self.sync()
    }

    /// Rewrites the stored entry at `seq` (in its segment or its cluster) with what `edit`
    /// makes of its hash and body; everything else in that value stays as it was.
    fn replace_entry(
        &self,
        seq: u64,
        edit: impl FnOnce(Hash, &[u8]) -> (Hash, Vec<u8>),
    ) -> Result<(), StoreError> {
        let (first, v) = Entries::new(self)
            .covering(seq)?
            .ok_or_else(|| damaged(seq, "no such seq"))?;
        // The entries as they are, the one at `at` edited; then the value rebuilt.
        let mut edit = Some(edit);
        let mut entries = |seg: &Segment<'_>, at: usize| {
            (0..seg.len())
                .map(|i| {
                    let (hash, body) = seg.entry(i).map_err(|e| damaged(seq, e))?;
                    Ok(match (i == at).then(|| edit.take()).flatten() {
                        Some(edit) => edit(hash, body),
                        None => (hash, body.to_vec()),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        match LogValue::parse(&v).map_err(|e| damaged(first, e))? {
            LogValue::Segment(seg) => {
                let mut builder = SegmentBuilder::new(first);
                for (hash, body) in entries(&seg, (seq - first) as usize)? {
                    builder.push(&hash, &body);
                }
                self.log.insert(segment::key(first), builder.finish().1)?;
            }
            LogValue::Directory(_) => {
                let key = self.cluster_key_of(seq)?;
                let c = self
                    .clusters
                    .get(key)?
                    .ok_or_else(|| damaged(seq, "no such cluster"))?;
                let seg = Segment::parse(&c).map_err(|e| damaged(seq, e))?;
                let at = seg
                    .position(seq)
                    .ok_or_else(|| damaged(seq, "not in its cluster"))?;
                let edited = entries(&seg, at)?;
                let value: Vec<(u64, &Hash, &[u8])> = edited
                    .iter()
                    .enumerate()
                    .map(|(i, (hash, body))| (seg.seq(i), hash, body.as_slice()))
                    .collect();
                self.clusters.insert(key, segment::cluster(&value))?;
            }
        }
        Ok(())
    }

    /// Rewrites the envelope at `seq` with `edit` and stores it with a hash of its own new
    /// content; then re-chains every later envelope and moves sled's head marker and the head
    /// file to the new chain, as an editor who knows the hash rule would. What remains wrong
    /// is only what `edit` broke.
    pub fn tamper_rewrite(
        &self,
        seq: u64,
        edit: impl FnOnce(&mut Envelope),
    ) -> Result<(), StoreError> {
        let mut edit = Some(edit);
        let mut prev: Option<Hash> = None;
        for at in seq..=self.log_end()? {
            self.replace_entry(at, |hash, body| {
                let mut env = Envelope::decode_body(body, hash).expect("an intact envelope");
                if let Some(edit) = edit.take() {
                    edit(&mut env);
                } else if let Some(p) = prev {
                    env.prev_hash = p;
                }
                let body = env.encode_body();
                let hash = Envelope::chain_hash(&env.prev_hash, &body);
                prev = Some(hash);
                (hash, body)
            })?;
        }
        let mut head = self.meta_head()?;
        head.hash = prev.expect("seq is in the log");
        self.put_meta_head(&head)?;
        self.sync()?;
        HeadFile::open(&self.path)?.write(&head)?;
        HeadFile::open(&self.path)?.write(&head)
    }

    /// Makes the store look made before head files: no head file, no marker in sled.
    pub fn tamper_forget_head_file(&self) -> Result<(), StoreError> {
        self.meta.remove(super::open::HEAD_FILE_MARKER)?;
        self.sync()?;
        let path = super::head_file::path(&self.path);
        std::fs::remove_file(&path).map_err(|e| StoreError::io(path, e))
    }

    /// Removes the `log` value (segment or directory) covering `seq`, and nothing else.
    pub fn tamper_remove_segment(&self, seq: u64) -> Result<u64, StoreError> {
        let (first, _) = Entries::new(self)
            .covering(seq)?
            .ok_or_else(|| damaged(seq, "no such seq"))?;
        self.log.remove(segment::key(first))?;
        self.sync()?;
        Ok(first)
    }

    /// The key of the cluster holding `seq` (of an import's batch), as its directory names it.
    fn cluster_key_of(&self, seq: u64) -> Result<[u8; 10], StoreError> {
        let (first, v) = Entries::new(self)
            .covering(seq)?
            .ok_or_else(|| damaged(seq, "no such seq"))?;
        let LogValue::Directory(d) = LogValue::parse(&v).map_err(|e| damaged(first, e))? else {
            return Err(damaged(seq, "not in a cluster"));
        };
        Ok(segment::cluster_key(
            d.window(),
            d.cluster((seq - first) as usize),
        ))
    }

    /// Removes the cluster holding `seq` (of an import's batch), and nothing else; returns
    /// the lowest seq it held.
    pub fn tamper_remove_cluster(&self, seq: u64) -> Result<u64, StoreError> {
        let key = self.cluster_key_of(seq)?;
        let c = self
            .clusters
            .remove(key)?
            .ok_or_else(|| damaged(seq, "no such cluster"))?;
        let lowest = Segment::parse(&c).map_err(|e| damaged(seq, e))?.seq(0);
        self.sync()?;
        Ok(lowest)
    }

    /// Copies the cluster holding `seq` to a window past the log's end, as a batch that never
    /// committed would leave it if opening had not removed it; nothing else.
    pub fn tamper_stray_cluster(&self, seq: u64) -> Result<(), StoreError> {
        let key = self.cluster_key_of(seq)?;
        let c = self
            .clusters
            .get(key)?
            .ok_or_else(|| damaged(seq, "no such cluster"))?;
        let past = self.log_end()? + 1;
        self.clusters.insert(segment::cluster_key(past, 0), c)?;
        self.sync()
    }

    /// Sets sled's head marker, and nothing else.
    pub fn tamper_set_meta_head(&self, head: Head) -> Result<(), StoreError> {
        self.put_meta_head(&head)?;
        self.sync()
    }

    /// Removes `seq` from the postings of `id` in `by_child` (or `by_staff` with `staff`).
    pub fn tamper_unpost(&self, staff: bool, id: &str, seq: u64) -> Result<(), StoreError> {
        self.edit_postings(
            staff,
            id,
            |seqs| seqs.contains(&seq),
            |seqs| seqs.retain(|&s| s != seq),
        )
    }

    /// Adds `seq` to the postings of `id` in `by_child` (or `by_staff` with `staff`).
    pub fn tamper_post(&self, staff: bool, id: &str, seq: u64) -> Result<(), StoreError> {
        self.edit_postings(
            staff,
            id,
            |_| true,
            |seqs| {
                seqs.push(seq);
                seqs.sort_unstable();
            },
        )
    }

    fn edit_postings(
        &self,
        staff: bool,
        id: &str,
        choose: impl Fn(&[u64]) -> bool,
        edit: impl FnOnce(&mut Vec<u64>),
    ) -> Result<(), StoreError> {
        let tree = if staff {
            &self.by_staff
        } else {
            &self.by_child
        };
        tree.compact()?;
        let prefix = posting_bucket(id.as_bytes()).to_be_bytes();
        // The last value of the bucket whose list for the id is chosen, rewritten edited.
        let mut target: Option<(sled::IVec, Vec<SeqList>)> = None;
        for item in tree.scan_prefix(prefix)? {
            let (k, v) = item?;
            let entries: Vec<SeqList> = super::index::postings(&v)
                .map(|e| e.map(|(i, s)| (i.to_vec(), s.collect())))
                .collect::<Result<_, _>>()
                .map_err(|()| StoreError::Corrupt("malformed".into()))?;
            if entries.iter().any(|(i, s)| i == id.as_bytes() && choose(s)) {
                target = Some((k, entries));
            }
        }
        let (key, mut entries) = match target {
            Some(t) => t,
            None => {
                let mut key = prefix.to_vec();
                key.extend_from_slice(&segment::key(u64::MAX - 1));
                key.extend_from_slice(&0u32.to_be_bytes());
                (key.into(), vec![(id.as_bytes().to_vec(), Vec::new())])
            }
        };
        let mut edit = Some(edit);
        let mut value = Vec::new();
        for (i, seqs) in entries.iter_mut() {
            if i == id.as_bytes()
                && choose(seqs)
                && let Some(edit) = edit.take()
            {
                edit(seqs);
            }
            value.extend_from_slice(&(i.len() as u16).to_le_bytes());
            value.extend_from_slice(i);
            value.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
            for s in seqs.iter() {
                value.extend_from_slice(&s.to_le_bytes());
            }
        }
        tree.insert(&key, value)?;
        self.sync()
    }
}
