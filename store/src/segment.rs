//! Segments, clusters and directories: how envelopes are packed into sled values (rules §4.2).
//!
//! Three kinds of value, each starting with a format byte and a count:
//! - a **segment** (format 1, in the `log` tree, keyed by the big-endian seq of its first
//!   envelope): a packed run of consecutive envelopes of one batch. A small append (the
//!   service's commits) is written this way.
//! - a **cluster** (format 3, in the `clusters` tree, keyed by the big-endian first seq of its
//!   *window* and a big-endian `u16` ordinal): envelopes of one window of a large append (an
//!   import) that belong together — one school's, a child's next to each other — in seq order
//!   but not consecutive. A school's read then reads its own clusters, not every segment the
//!   county's interleaved log would spread it over (docs/store.md, "Clusters").
//! - a **directory** (format 2, in the `log` tree, keyed by the big-endian seq of its first
//!   entry): for consecutive seqs of one window, the ordinal of the cluster holding each. So
//!   the `log` tree still covers every seq exactly once, in order, and a seq is found by one
//!   backward seek there and, in a window, one get of its cluster.
//!
//! Layouts (all integers little-endian):
//! ```text
//! segment:   u8 1 ‖ u32 count ‖ u32 end offset of entry i (i in 0..count) ‖ data
//! cluster:   u8 3 ‖ u32 count ‖ u64 seq of entry i ‖ u32 end offset of entry i ‖ data
//! directory: u8 2 ‖ u32 count ‖ u64 first seq of the window ‖ u16 cluster of seq first+i
//! data: entry i = hash (32 bytes) ‖ body (rmp-serde named encoding of the envelope)
//! ```
//! An inspector can check entry i with standard tools: `sha256(prev_hash ‖ body) == hash`.
//!
//! This module owns the byte layouts; it must never decode envelopes or talk to sled.

use std::ops::Range;

use events::envelope::Hash;

const SEGMENT: u8 = 1;
const DIRECTORY: u8 = 2;
const CLUSTER: u8 = 3;
const HEADER: usize = 5;

/// The sled key of a segment or directory (or of any seq): big-endian, so keys sort by seq.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq a key names.
pub fn first_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// The sled key of cluster `ordinal` of the window starting at `window`: a window's clusters
/// sort together, in the order they were packed.
pub fn cluster_key(window: u64, ordinal: u16) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..8].copy_from_slice(&window.to_be_bytes());
    k[8..].copy_from_slice(&ordinal.to_be_bytes());
    k
}

/// The window a cluster key names.
pub fn cluster_window(key: &[u8]) -> Option<u64> {
    first_seq(key.get(..8)?)
}

/// Builds one segment.
pub struct SegmentBuilder {
    first: u64,
    ends: Vec<u32>,
    data: Vec<u8>,
}

impl SegmentBuilder {
    /// A segment whose first envelope will be `first`.
    pub fn new(first: u64) -> SegmentBuilder {
        SegmentBuilder {
            first,
            ends: Vec::new(),
            data: Vec::with_capacity(32 * 1024 + 1024),
        }
    }

    /// Bytes of data so far.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds the next envelope of a segment.
    pub fn push(&mut self, hash: &Hash, body: &[u8]) {
        self.data.extend_from_slice(&hash.0);
        self.data.extend_from_slice(body);
        // Invariant: a segment stays far below 4 GiB (values are kept under 64 KiB).
        self.ends.push(self.data.len() as u32);
    }

    /// The key's seq and the encoded value.
    pub fn finish(self) -> (u64, Vec<u8>) {
        let n = self.ends.len();
        let mut out = Vec::with_capacity(HEADER + 4 * n + self.data.len());
        out.push(SEGMENT);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        for e in &self.ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        (self.first, out)
    }
}

/// Encodes a cluster of `entries` (seq, hash, body), ascending by seq, in one allocation.
pub fn cluster(entries: &[(u64, &Hash, &[u8])]) -> Vec<u8> {
    let data: usize = entries.iter().map(|(_, _, b)| 32 + b.len()).sum();
    let mut out = Vec::with_capacity(HEADER + 12 * entries.len() + data);
    out.push(CLUSTER);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (seq, _, _) in entries {
        out.extend_from_slice(&seq.to_le_bytes());
    }
    let mut end = 0usize;
    for (_, _, body) in entries {
        end += 32 + body.len();
        // Invariant: a cluster stays far below 4 GiB (a few KiB, envelopes at most 16 KiB).
        out.extend_from_slice(&(end as u32).to_le_bytes());
    }
    debug_assert!(
        entries.windows(2).all(|w| w[0].0 < w[1].0),
        "ascending seqs"
    );
    for (_, hash, body) in entries {
        out.extend_from_slice(&hash.0);
        out.extend_from_slice(body);
    }
    out
}

/// Encodes a directory of consecutive seqs of the window starting at `window`: `clusters[i]`
/// is the ordinal of the cluster holding the directory's i-th seq.
pub fn directory(window: u64, clusters: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 8 + 2 * clusters.len());
    out.push(DIRECTORY);
    out.extend_from_slice(&(clusters.len() as u32).to_le_bytes());
    out.extend_from_slice(&window.to_le_bytes());
    for c in clusters {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

/// A value of the `log` tree: it covers `len()` consecutive seqs from its key's.
pub enum LogValue<'a> {
    /// The envelopes themselves.
    Segment(Segment<'a>),
    /// Where each of them is.
    Directory(Directory<'a>),
}

impl<'a> LogValue<'a> {
    /// Checks the header of a `log` value.
    pub fn parse(bytes: &'a [u8]) -> Result<LogValue<'a>, String> {
        match bytes.first() {
            Some(&SEGMENT) => Segment::parse(bytes).map(LogValue::Segment),
            Some(&DIRECTORY) => Directory::parse(bytes).map(LogValue::Directory),
            _ => Err("segment header is damaged".into()),
        }
    }

    /// How many consecutive seqs it covers.
    pub fn len(&self) -> usize {
        match self {
            LogValue::Segment(s) => s.len(),
            LogValue::Directory(d) => d.len(),
        }
    }

    /// Whether it covers no seq.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed view of a stored directory.
pub struct Directory<'a> {
    window: u64,
    clusters: &'a [u8],
}

impl<'a> Directory<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Directory<'a>, String> {
        if bytes.len() < HEADER + 8 || bytes[0] != DIRECTORY {
            return Err("directory header is damaged".into());
        }
        let count = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let window = u64::from_le_bytes(bytes[5..13].try_into().expect("8 bytes"));
        if bytes.len() != HEADER + 8 + 2 * count {
            return Err("directory is damaged".into());
        }
        Ok(Directory {
            window,
            clusters: &bytes[HEADER + 8..],
        })
    }

    /// Number of seqs it covers.
    pub fn len(&self) -> usize {
        self.clusters.len() / 2
    }

    /// Whether it covers no seq.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// The first seq of its window (the clusters' keys start with it).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The ordinal of the cluster holding its `i`-th seq (`i < len()`).
    pub fn cluster(&self, i: usize) -> u16 {
        u16::from_le_bytes(self.clusters[2 * i..2 * i + 2].try_into().expect("2 bytes"))
    }
}

/// A parsed view of a stored segment or cluster.
pub struct Segment<'a> {
    cluster: bool,
    /// A cluster's seqs (8 bytes each); empty for a segment.
    seqs: &'a [u8],
    ends: &'a [u8],
    data: &'a [u8],
    /// Where `data` starts in the stored value.
    data_at: usize,
}

impl<'a> Segment<'a> {
    /// Checks the header of a segment or a cluster; entries are checked as they are read.
    pub fn parse(bytes: &'a [u8]) -> Result<Segment<'a>, String> {
        if bytes.len() < HEADER || !matches!(bytes[0], SEGMENT | CLUSTER) {
            return Err("segment header is damaged".into());
        }
        let count = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let seqs_len = if bytes[0] == CLUSTER { 8 * count } else { 0 };
        let table_end = count
            .checked_mul(4)
            .and_then(|t| t.checked_add(HEADER + seqs_len))
            .filter(|&t| t <= bytes.len())
            .ok_or("segment offset table is damaged")?;
        Ok(Segment {
            cluster: bytes[0] == CLUSTER,
            seqs: &bytes[HEADER..HEADER + seqs_len],
            ends: &bytes[HEADER + seqs_len..table_end],
            data: &bytes[table_end..],
            data_at: table_end,
        })
    }

    /// Number of envelopes.
    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    /// Whether the segment holds no envelope.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether it is a cluster (its entries carry their seqs).
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The seq of entry `i` of a cluster.
    pub fn seq(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.seqs[8 * i..8 * i + 8].try_into().expect("8 bytes"))
    }

    /// The entry of a cluster at `seq`, if it holds it.
    pub fn position(&self, seq: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.seqs.len() / 8);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.seq(mid).cmp(&seq) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn end(&self, i: usize) -> usize {
        u32::from_le_bytes(self.ends[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize
    }

    fn bounds(&self, i: usize) -> Result<(usize, usize), String> {
        if i >= self.len() {
            return Err("segment offset table is damaged".into());
        }
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let end = self.end(i);
        if start + 32 > end || end > self.data.len() {
            return Err("segment offset table is damaged".into());
        }
        Ok((start, end))
    }

    /// The hash and body of entry `i`.
    pub fn entry(&self, i: usize) -> Result<(Hash, &'a [u8]), String> {
        let (start, end) = self.bounds(i)?;
        let hash: [u8; 32] = self.data[start..start + 32].try_into().expect("32 bytes");
        Ok((Hash(hash), &self.data[start + 32..end]))
    }

    /// The hash of entry `i` and where its body lies within the whole stored value.
    pub fn entry_at(&self, i: usize) -> Result<(Hash, Range<usize>), String> {
        let (start, end) = self.bounds(i)?;
        let hash: [u8; 32] = self.data[start..start + 32].try_into().expect("32 bytes");
        Ok((Hash(hash), self.data_at + start + 32..self.data_at + end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut b = SegmentBuilder::new(7);
        b.push(&Hash([1; 32]), b"first");
        b.push(&Hash([2; 32]), b"second body");
        let (first, bytes) = b.finish();
        assert_eq!(first, 7);
        let seg = Segment::parse(&bytes).unwrap();
        assert_eq!(seg.len(), 2);
        assert!(!seg.is_cluster());
        assert_eq!(seg.entry(0).unwrap(), (Hash([1; 32]), &b"first"[..]));
        assert_eq!(seg.entry(1).unwrap(), (Hash([2; 32]), &b"second body"[..]));
        let (_, body) = seg.entry_at(1).unwrap();
        assert_eq!(&bytes[body], b"second body");
        assert!(matches!(LogValue::parse(&bytes), Ok(LogValue::Segment(s)) if s.len() == 2));
    }

    #[test]
    fn a_cluster_finds_its_entries_by_seq() {
        let bytes = cluster(&[
            (10, &Hash([1; 32]), b"ten"),
            (13, &Hash([2; 32]), b"thirteen"),
            (40, &Hash([3; 32]), b"forty"),
        ]);
        let seg = Segment::parse(&bytes).unwrap();
        assert!(seg.is_cluster());
        assert_eq!(seg.len(), 3);
        assert_eq!(seg.position(13), Some(1));
        assert_eq!(seg.position(40), Some(2));
        assert_eq!(seg.position(11), None);
        assert_eq!(seg.position(41), None);
        assert_eq!(seg.entry(1).unwrap(), (Hash([2; 32]), &b"thirteen"[..]));
        let (hash, range) = seg.entry_at(2).unwrap();
        assert_eq!((hash, &bytes[range]), (Hash([3; 32]), &b"forty"[..]));
        // A cluster is never a value of the `log` tree.
        assert!(LogValue::parse(&bytes).is_err());
    }

    #[test]
    fn a_directory_names_a_cluster_per_seq() {
        let bytes = directory(1001, &[0, 2, 1, 65535]);
        let LogValue::Directory(d) = LogValue::parse(&bytes).unwrap() else {
            panic!("a directory");
        };
        assert_eq!((d.len(), d.window()), (4, 1001));
        assert_eq!(
            (0..4).map(|i| d.cluster(i)).collect::<Vec<_>>(),
            [0, 2, 1, 65535]
        );
        assert!(LogValue::parse(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(cluster_window(&cluster_key(1001, 7)), Some(1001));
        assert!(cluster_key(1001, 7) < cluster_key(1001, 8));
        assert!(cluster_key(1001, 65535) < cluster_key(1002, 0));
    }

    #[test]
    fn a_truncated_table_is_an_error_not_a_panic() {
        let mut b = SegmentBuilder::new(1);
        b.push(&Hash([1; 32]), b"x");
        let (_, bytes) = b.finish();
        assert!(Segment::parse(&bytes[..6]).is_err());
        let mut lying = bytes.clone();
        lying[5] = 200; // end offset beyond the data
        let seg = Segment::parse(&lying).unwrap();
        assert!(seg.entry(0).is_err());
        assert!(seg.entry(1).is_err());
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Segment::parse(&huge).is_err());
    }
}
