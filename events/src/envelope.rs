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
use crate::seal::Sealed;

/// The envelope schema of an event written in clear (a store without a key directory, a
/// registry event with no personal field). Sealed events are written as
/// [`crate::seal::SEALED_SCHEMA`].
pub const SCHEMA: u16 = 1;

/// The newest envelope schema this code reads: 1 (clear), 2 (personal fields sealed).
pub const LATEST_SCHEMA: u16 = crate::seal::SEALED_SCHEMA;

/// An event with its metadata, as stored. The `hash` is not part of the encoded body: it is
/// stored beside it and covers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The envelope schema version this body was written with.
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
    /// Where the event came from (cli, import, migration).
    pub source: Source,
    /// The event itself; for a sealed envelope its clear part (personal fields replaced by
    /// presence placeholders, `events::seal`) until the vault opens it.
    pub event: Event,
    /// Schema 2: the personal fields, sealed under the subject's key (absent in schema 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealed>,
    /// The hash of the previous envelope (zero for seq 1).
    pub prev_hash: Hash,
    /// `SHA-256(prev_hash ‖ body)`, stored beside the body, not inside it.
    #[serde(skip)]
    pub hash: Hash,
}

/// The buffer an envelope's body is encoded into: most bodies (a care record with its
/// envelope, 250–400 bytes) fit without growing it.
const BODY_CAPACITY: usize = 512;

impl Envelope {
    /// The encoded body (everything but `hash`) with rmp-serde's named encoding.
    pub fn encode_body(&self) -> Vec<u8> {
        // `to_vec_named` starts from an empty buffer and doubles it as it writes: for a body
        // of ~300 bytes an allocation and six reallocations (8 to 512 bytes). An import
        // encodes on both cores at once, and those reallocations then wait on the
        // allocator's lock (a county import's profile: about 30 % of encoding). Growth by
        // doubling would end at this capacity anyway.
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        rmp_serde::encode::write_named(&mut body, self).expect("an envelope always encodes");
        body
    }

    /// `SHA-256(prev_hash ‖ body)`.
    pub fn chain_hash(prev: &Hash, body: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(body);
        Hash(h.finalize().into())
    }

    /// Decodes a stored body of any known schema version, upcasts it to the current shape and
    /// attaches the hash stored beside it. The hash covers the body *as stored*, so upcasting
    /// never changes what the chain verifies.
    pub fn decode_body(body: &[u8], hash: Hash) -> Result<Envelope, DecodeError> {
        match rmp_serde::from_slice::<Envelope>(body) {
            Ok(env) => {
                let mut env = upcast(env)?;
                env.hash = hash;
                Ok(env)
            }
            // A body of a schema this code does not know may not fit today's shape at all: say
            // which version it is rather than which field failed.
            Err(e) => match rmp_serde::from_slice::<SchemaProbe>(body) {
                Ok(SchemaProbe { schema }) if !(1..=LATEST_SCHEMA).contains(&schema) => {
                    Err(DecodeError::UnknownSchema { found: schema })
                }
                _ => Err(DecodeError::Malformed(e)),
            },
        }
    }
}

/// Why a stored body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not an envelope of any schema this code knows how to read.
    #[error("undecodable envelope: {0}")]
    Malformed(rmp_serde::decode::Error),
    /// Written by a newer (or unknown) careledger.
    #[error(
        "envelope schema {found} is not known to this careledger (it reads 1 to {LATEST_SCHEMA}); use a newer careledger"
    )]
    UnknownSchema {
        /// The schema version the body declares.
        found: u16,
    },
    /// A schema-1 body with a sealed part, or a schema-2 body without one.
    #[error("envelope schema {found} does not match its sealed part (2 is sealed, 1 is clear)")]
    SealedMismatch {
        /// The schema version the body declares.
        found: u16,
    },
}

/// Only the `schema` field of a body, to name an unknown version.
#[derive(Deserialize)]
struct SchemaProbe {
    schema: u16,
}

/// Carries an envelope decoded from an older schema into the current shape, one version step
/// at a time. Schema 1 (clear) is schema 2 without a sealed part, so its step is the identity;
/// a schema-2 body must carry its sealed part and a schema-1 body must not.
fn upcast(env: Envelope) -> Result<Envelope, DecodeError> {
    match (env.schema, env.sealed.is_some()) {
        (SCHEMA, false) | (crate::seal::SEALED_SCHEMA, true) => Ok(env),
        (found @ (SCHEMA | crate::seal::SEALED_SCHEMA), _) => {
            Err(DecodeError::SealedMismatch { found })
        }
        (found, _) => Err(DecodeError::UnknownSchema { found }),
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
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cli => f.write_str("cli"),
            Source::Import(file) => write!(f, "import:{file}"),
            Source::Migration => f.write_str("migration"),
        }
    }
}

impl Source {
    /// Parses the stored form (`cli`, `import:<file>`, `migration`).
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "cli" => Some(Source::Cli),
            "migration" => Some(Source::Migration),
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
