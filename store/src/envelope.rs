//! The envelope: an event as the log holds it, with its place in the chain (rules §4).
//!
//! This module owns the stored encoding (rmp-serde *named*, so fields can be added) and the
//! hash rule `hash = SHA-256(prev_hash ‖ encoded envelope without hash)`; it must never decide
//! where envelopes live (that is `log`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::event::Event;

/// The envelope schema this code writes. Older versions are upcast on read.
pub const SCHEMA: u16 = 1;

/// An event with its metadata, as stored. The `hash` is not part of the encoded body: it is
/// stored beside it and covers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema: u16,
    /// Position in the log, gapless from 1.
    pub seq: u64,
    /// Unique id; re-appending an id already in the log is a no-op.
    pub id: String,
    /// When the store recorded it (transaction time); never decreases along the log.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub recorded_at: DateTime<Utc>,
    /// When it happened, from the input (valid time).
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub occurred_at: DateTime<Utc>,
    /// Who recorded it: a staff id or an account name.
    pub actor: String,
    pub source: Source,
    pub event: Event,
    pub prev_hash: Hash,
    #[serde(skip)]
    pub hash: Hash,
}

impl Envelope {
    /// The encoded body (everything but `hash`) with rmp-serde's named encoding.
    pub fn encode_body(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("an envelope always encodes")
    }

    /// `SHA-256(prev_hash ‖ body)`.
    pub fn chain_hash(prev: &Hash, body: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(body);
        Hash(h.finalize().into())
    }

    /// Decodes a body and attaches the hash stored beside it.
    pub fn decode_body(body: &[u8], hash: Hash) -> Result<Envelope, rmp_serde::decode::Error> {
        let mut env: Envelope = rmp_serde::from_slice(body)?;
        env.hash = hash;
        Ok(env)
    }
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `careledger record`.
    Cli,
    /// `careledger import`, with the file name.
    Import(String),
    /// An import of paper records that kept their `recorded_at`.
    Migration,
    /// The HTTP interface.
    Http,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cli => f.write_str("cli"),
            Source::Import(file) => write!(f, "import:{file}"),
            Source::Migration => f.write_str("migration"),
            Source::Http => f.write_str("http"),
        }
    }
}

impl Source {
    /// Parses the stored form (`cli`, `import:<file>`, `migration`, `http`).
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "cli" => Some(Source::Cli),
            "migration" => Some(Source::Migration),
            "http" => Some(Source::Http),
            _ => s
                .strip_prefix("import:")
                .map(|f| Source::Import(f.to_owned())),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Source::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown source {s:?}")))
    }
}

/// A SHA-256 digest, stored as 32 raw bytes, printed as hex.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The chain's start: 32 zero bytes.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        let arr: [u8; 32] = b
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))?;
        Ok(Hash(arr))
    }
}
