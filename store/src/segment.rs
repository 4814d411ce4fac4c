//! Segments: a packed run of consecutive envelopes of one batch, stored as one sled value
//! keyed by the big-endian seq of its first envelope (rules §4.2). Packing moves a bulk
//! import from sled's per-key rate toward the disk's bandwidth (docs/stack.md, sled).
//!
//! Layout (all integers little-endian):
//! ```text
//! u8  format (1)
//! u32 count
//! u32 end offset of entry i, for i in 0..count   (relative to the start of the data)
//! data: entry i = hash (32 bytes) ‖ body (rmp-serde named encoding of the envelope)
//! ```
//! An inspector can check entry i with standard tools: `sha256(prev_hash ‖ body) == hash`.
//!
//! This module owns the byte layout; it must never decode envelopes or talk to sled.

use events::envelope::Hash;

const FORMAT: u8 = 1;
const HEADER: usize = 5;

/// The sled key of a segment (or of any seq): big-endian, so keys sort by seq.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq a key names.
pub fn first_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
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

    /// Adds the next envelope.
    pub fn push(&mut self, hash: &Hash, body: &[u8]) {
        self.data.extend_from_slice(&hash.0);
        self.data.extend_from_slice(body);
        // Invariant: a segment stays far below 4 GiB (values are kept under 64 KiB).
        self.ends.push(self.data.len() as u32);
    }

    /// The key's seq and the encoded value.
    pub fn finish(self) -> (u64, Vec<u8>) {
        let mut out = Vec::with_capacity(HEADER + 4 * self.ends.len() + self.data.len());
        out.push(FORMAT);
        out.extend_from_slice(&(self.ends.len() as u32).to_le_bytes());
        for e in &self.ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        (self.first, out)
    }
}

/// A parsed view of a stored segment.
pub struct Segment<'a> {
    ends: &'a [u8],
    data: &'a [u8],
}

impl<'a> Segment<'a> {
    /// Checks the header; entries are checked as they are read.
    pub fn parse(bytes: &'a [u8]) -> Result<Segment<'a>, String> {
        if bytes.len() < HEADER || bytes[0] != FORMAT {
            return Err("segment header is damaged".into());
        }
        let count = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let table_end = HEADER + 4 * count;
        if bytes.len() < table_end {
            return Err("segment offset table is damaged".into());
        }
        Ok(Segment {
            ends: &bytes[HEADER..table_end],
            data: &bytes[table_end..],
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

    fn end(&self, i: usize) -> usize {
        u32::from_le_bytes(self.ends[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize
    }

    fn bounds(&self, i: usize) -> Result<(usize, usize), String> {
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

    /// Offset of entry `i`'s body within the whole stored value.
    pub fn body_offset(&self, i: usize) -> Result<usize, String> {
        let (start, _) = self.bounds(i)?;
        Ok(HEADER + self.ends.len() + start + 32)
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
        assert_eq!(seg.entry(0).unwrap(), (Hash([1; 32]), &b"first"[..]));
        assert_eq!(seg.entry(1).unwrap(), (Hash([2; 32]), &b"second body"[..]));
        let at = seg.body_offset(1).unwrap();
        assert_eq!(&bytes[at..at + 6], b"second");
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
    }
}
