//! The little of an envelope the checker reads: its `seq` and `prev_hash`.
//!
//! Envelopes are stored as MessagePack maps with named fields (rmp-serde's named encoding), so
//! the checker reads those two fields by name and skips the rest; it never interprets the event.
//! It owns the chain rule `hash = SHA-256(prev_hash ‖ encoded envelope)` (docs/rules.md §4) and
//! must never take a supplied hash on trust.

use std::io::Cursor;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::merkle::Digest32;

/// Why envelope bytes are refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not a MessagePack map with `seq` and `prev_hash`.
    #[error("the envelope does not decode: {0}")]
    Decode(String),
    /// Bytes follow the encoded envelope.
    #[error("the envelope has {0} bytes after its end")]
    Trailing(u64),
    /// `prev_hash` is not 32 bytes.
    #[error("the envelope's prev_hash has {0} bytes, not 32")]
    PrevHashLength(usize),
}

#[derive(Deserialize)]
struct Head {
    seq: u64,
    prev_hash: serde_bytes::ByteBuf,
}

/// The fields of an envelope the chain and the tree depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainFields {
    /// The envelope's position in the log, from 1.
    pub seq: u64,
    /// The stored hash of the envelope before it (32 zero bytes for seq 1).
    pub prev_hash: Digest32,
}

/// Reads `seq` and `prev_hash` from the encoded envelope; the whole input must be one envelope.
pub fn read_chain_fields(body: &[u8]) -> Result<ChainFields, EnvelopeError> {
    let mut cur = Cursor::new(body);
    let head = {
        let mut de = rmp_serde::Deserializer::new(&mut cur);
        Head::deserialize(&mut de).map_err(|e| EnvelopeError::Decode(e.to_string()))?
    };
    let used = cur.position();
    let total = body.len() as u64;
    if used != total {
        return Err(EnvelopeError::Trailing(total.saturating_sub(used)));
    }
    let prev_hash: Digest32 = head
        .prev_hash
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::PrevHashLength(head.prev_hash.len()))?;
    Ok(ChainFields {
        seq: head.seq,
        prev_hash,
    })
}

/// `SHA-256(prev_hash ‖ body)`: the stored hash of an envelope.
pub fn chain_hash(prev_hash: &Digest32, body: &[u8]) -> Digest32 {
    Sha256::new()
        .chain_update(prev_hash)
        .chain_update(body)
        .finalize()
        .into()
}
