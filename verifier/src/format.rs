//! The proof files an inspector is handed (docs/proofs.md, "File formats"): inclusion and
//! consistency proofs of version 1, bundles of version 1 and 2 (2 adds the `withheld` list).
//!
//! This module owns the three JSON shapes — an inclusion proof, a consistency proof, a bundle —
//! and their versioning: every file names its `format` and `version`, and unknown fields are
//! refused rather than skipped, so a file cannot carry something this checker silently ignores
//! (a version 1 bundle with a `withheld` list is refused: that field is version 2's).
//! Hashes and envelopes are standard base64 strings here; decoding them, with the place of a bad
//! one, is done by [`decode_digest`] and [`decode_bytes`]. The producer side writes the same
//! shapes; the structs are public so it (and tests) can build them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::merkle::Digest32;

/// The version of inclusion and consistency proof files this checker reads and writes, and the
/// first version of bundles.
pub const VERSION: u32 = 1;
/// The bundle version this checker writes; it reads [`VERSION`] and this one.
pub const BUNDLE_VERSION: u32 = 2;
/// The one reason a bundle may give for withholding an envelope.
pub const WITHHELD_CONFIDENTIAL: &str = "confidential";
/// The `format` of an inclusion-proof file.
pub const INCLUSION_FORMAT: &str = "careledger-inclusion-proof";
/// The `format` of a consistency-proof file.
pub const CONSISTENCY_FORMAT: &str = "careledger-consistency-proof";
/// The `format` of a bundle.
pub const BUNDLE_FORMAT: &str = "careledger-bundle";

/// Why a file is refused before any proof is checked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not JSON at all.
    #[error("the file is not json: {0}")]
    NotJson(String),
    /// Another kind of proof file.
    #[error("the file is a {found:?}, not a {want:?}")]
    WrongFormat {
        /// The `format` the file has.
        found: String,
        /// The `format` expected.
        want: &'static str,
    },
    /// Another version.
    #[error("the file is version {found}; this checker reads version {reads}")]
    Version {
        /// The version the file has.
        found: u32,
        /// The versions this checker reads, in words.
        reads: &'static str,
    },
    /// Fields missing, of the wrong type, or unknown.
    #[error("the file does not have the shape of a {format:?}: {detail}")]
    Shape {
        /// The `format` expected.
        format: &'static str,
        /// What the JSON parser said.
        detail: String,
    },
    /// A hash or proof element that is not 32 bytes of base64.
    #[error("{place} is not base64 of 32 bytes")]
    Digest {
        /// Which field or proof element.
        place: String,
    },
    /// An envelope that is not base64.
    #[error("{place} is not base64")]
    Bytes {
        /// Which field.
        place: String,
    },
}

/// One envelope of the log with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The leaf index: the envelope's seq − 1.
    pub leaf_index: u64,
    /// The encoded envelope as stored (everything but its hash), base64.
    pub envelope: String,
    /// The envelope's stored chain hash, base64.
    pub hash: String,
    /// Sibling hashes from the leaf up to the root, base64.
    pub proof: Vec<String>,
}

/// A consistency proof from an earlier tree size to the file's checkpoint; the earlier root is
/// the one the checker remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyStep {
    /// The remembered size the proof starts from.
    pub old_size: u64,
    /// The consistency proof, base64 hashes.
    pub proof: Vec<String>,
}

/// `careledger-inclusion-proof`: one envelope is in the log at the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionFile {
    /// [`INCLUSION_FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The signed checkpoint note, as the log signed it.
    pub checkpoint: String,
    /// The envelope and its inclusion proof.
    pub entry: Entry,
    /// Consistency proofs from earlier sizes, for a checker that remembers one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<ConsistencyStep>,
}

/// `careledger-consistency-proof`: the tree at `old_size` with `old_root` is a prefix of the
/// tree at the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyFile {
    /// [`CONSISTENCY_FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The newer signed checkpoint note.
    pub checkpoint: String,
    /// The older tree size.
    pub old_size: u64,
    /// The older root, base64.
    pub old_root: String,
    /// The consistency proof, base64 hashes.
    pub proof: Vec<String>,
}

/// A leaf of the log whose envelope a bundle does not carry (a counseling session's, whose
/// notes an inspector must never read): its leaf hash and inclusion proof only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withheld {
    /// The leaf index: the envelope's seq − 1.
    pub leaf_index: u64,
    /// SHA-256(0x00 ‖ the envelope as stored), base64.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up to the root, base64.
    pub proof: Vec<String>,
    /// Why it is withheld: [`WITHHELD_CONFIDENTIAL`].
    pub reason: String,
}

/// `careledger-bundle`: a child's envelopes as stored, each with its inclusion proof, the
/// leaves withheld from it (version 2), and the checkpoint they are proven against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// [`VERSION`] or [`BUNDLE_VERSION`].
    pub version: u32,
    /// The signed checkpoint note the entries are proven against.
    pub checkpoint: String,
    /// The child the bundle was made for; shown, not proven (see docs/proofs.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    /// In increasing leaf order.
    pub entries: Vec<Entry>,
    /// Leaves withheld, in increasing leaf order, none of them an entry's (version 2 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<Withheld>,
    /// Consistency proofs from earlier sizes, for a checker that remembers one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<ConsistencyStep>,
}

/// A version 1 bundle: the fields of [`Bundle`] without `withheld`, so that a version 1 file
/// carrying one is refused as having an unknown field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleV1 {
    format: String,
    version: u32,
    checkpoint: String,
    #[serde(default)]
    child: Option<String>,
    entries: Vec<Entry>,
    #[serde(default)]
    consistency: Vec<ConsistencyStep>,
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// Reads `format` and `version` first, so that a file of another kind is named as such.
fn header(text: &str, want: &'static str) -> Result<u32, FormatError> {
    let header: Header =
        serde_json::from_str(text).map_err(|e| FormatError::NotJson(e.to_string()))?;
    if header.format != want {
        return Err(FormatError::WrongFormat {
            found: header.format,
            want,
        });
    }
    Ok(header.version)
}

fn shape<T: for<'de> Deserialize<'de>>(text: &str, want: &'static str) -> Result<T, FormatError> {
    serde_json::from_str(text).map_err(|e| FormatError::Shape {
        format: want,
        detail: e.to_string(),
    })
}

/// Parses a file of the given format and version [`VERSION`].
fn parse<T: for<'de> Deserialize<'de>>(text: &str, want: &'static str) -> Result<T, FormatError> {
    let version = header(text, want)?;
    if version != VERSION {
        return Err(FormatError::Version {
            found: version,
            reads: "1",
        });
    }
    shape(text, want)
}

impl InclusionFile {
    /// Parses an inclusion-proof file strictly.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        parse(text, INCLUSION_FORMAT)
    }
}

impl ConsistencyFile {
    /// Parses a consistency-proof file strictly.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        parse(text, CONSISTENCY_FORMAT)
    }
}

impl Bundle {
    /// Parses a bundle strictly: version 1 (no `withheld`) or version 2.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        match header(text, BUNDLE_FORMAT)? {
            VERSION => {
                let v1: BundleV1 = shape(text, BUNDLE_FORMAT)?;
                Ok(Bundle {
                    format: v1.format,
                    version: v1.version,
                    checkpoint: v1.checkpoint,
                    child: v1.child,
                    entries: v1.entries,
                    withheld: Vec::new(),
                    consistency: v1.consistency,
                })
            }
            BUNDLE_VERSION => shape(text, BUNDLE_FORMAT),
            found => Err(FormatError::Version {
                found,
                reads: "1 or 2",
            }),
        }
    }
}

/// Decodes a 32-byte hash; `place` names it in the error ("entry 2 (leaf 7): proof element 3").
pub fn decode_digest(s: &str, place: impl FnOnce() -> String) -> Result<Digest32, FormatError> {
    STANDARD
        .decode(s)
        .ok()
        .and_then(|b| Digest32::try_from(b.as_slice()).ok())
        .ok_or_else(|| FormatError::Digest { place: place() })
}

/// Decodes a list of hashes, naming the element that fails.
pub fn decode_proof(proof: &[String], place: &str) -> Result<Vec<Digest32>, FormatError> {
    proof
        .iter()
        .enumerate()
        .map(|(i, s)| decode_digest(s, || format!("{place}: proof element {}", i + 1)))
        .collect()
}

/// Decodes base64 bytes.
pub fn decode_bytes(s: &str, place: impl FnOnce() -> String) -> Result<Vec<u8>, FormatError> {
    STANDARD
        .decode(s)
        .map_err(|_| FormatError::Bytes { place: place() })
}

/// Standard base64, as every field of these files uses.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
