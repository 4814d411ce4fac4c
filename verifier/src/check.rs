//! The checks of one proof file, end to end: checkpoint, envelopes, proofs, and the remembered
//! checkpoint.
//!
//! This module owns the order and the rules of a verification (docs/proofs.md): the checkpoint
//! must be signed by a pinned key of its origin; every leaf is recomputed from the envelope
//! bytes; an envelope's seq is its leaf index + 1, its stored hash is SHA-256(prev_hash ‖
//! envelope), and consecutive envelopes chain; a checkpoint newer than the remembered one must be
//! proven consistent with it. It returns what to remember but never writes the state itself,
//! and it must never accept on a partial check.

use std::path::Path;

use crate::checkpoint::{self, CheckpointError, Verified};
use crate::envelope::{self, EnvelopeError};
use crate::format::{
    Bundle, ConsistencyFile, ConsistencyStep, Entry, FormatError, InclusionFile,
    WITHHELD_CONFIDENTIAL, Withheld, decode_bytes, decode_digest, decode_proof,
};
use crate::keys::VerifierKey;
use crate::merkle::{self, ProofError};
use crate::state::{State, StateError};

/// Why a file is rejected. Each message names the element and the leaf at fault.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The file is not a well-formed proof file.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The checkpoint is not signed by a pinned key of its origin, or its text is malformed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The remembered checkpoint cannot be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// An envelope does not decode.
    #[error("{place}: {source}")]
    Envelope {
        /// Which entry, leaf and seq.
        place: String,
        /// What is wrong with it.
        source: EnvelopeError,
    },
    /// The envelope's seq is not its leaf index + 1.
    #[error("{place}: the envelope has seq {seq}, but leaf {leaf} holds seq {want}", want = leaf + 1)]
    Seq {
        /// Which entry, leaf and seq.
        place: String,
        /// The seq inside the envelope.
        seq: u64,
        /// The leaf index the entry claims.
        leaf: u64,
    },
    /// The stored hash is not SHA-256(prev_hash ‖ envelope).
    #[error("{place}: the stored hash is not sha-256 of prev_hash and the envelope")]
    StoredHash {
        /// Which entry, leaf and seq.
        place: String,
    },
    /// The envelope's prev_hash is not the stored hash of the envelope before it.
    #[error("{place}: prev_hash is not the stored hash of seq {prev_seq}")]
    Chain {
        /// Which entry, leaf and seq.
        place: String,
        /// The seq of the envelope before it.
        prev_seq: u64,
    },
    /// Seq 1 does not start the chain from 32 zero bytes.
    #[error("{place}: seq 1 must have a prev_hash of 32 zero bytes")]
    FirstPrevHash {
        /// Which entry, leaf and seq.
        place: String,
    },
    /// A Merkle proof does not hold.
    #[error("{place}: {source}")]
    Proof {
        /// Which entry or which consistency proof.
        place: String,
        /// How it fails.
        source: ProofError,
    },
    /// A bundle without entries proves nothing.
    #[error("the bundle has no entries")]
    EmptyBundle,
    /// A withheld leaf out of leaf order, or one leaf twice.
    #[error(
        "withheld {withheld}: leaf {leaf} does not come after leaf {prev}; withheld leaves must be in increasing leaf order"
    )]
    WithheldOrder {
        /// The 1-based number in the withheld list.
        withheld: usize,
        /// Its leaf index.
        leaf: u64,
        /// The previous withheld leaf index.
        prev: u64,
    },
    /// A leaf both shown and withheld.
    #[error("withheld {withheld}: leaf {leaf} is also an entry of the bundle")]
    WithheldShown {
        /// The 1-based number in the withheld list.
        withheld: usize,
        /// Its leaf index.
        leaf: u64,
    },
    /// A withheld leaf with a reason this format does not define.
    #[error("withheld {withheld} (leaf {leaf}): the reason {reason:?} is not \"confidential\"")]
    WithheldReason {
        /// The 1-based number in the withheld list.
        withheld: usize,
        /// Its leaf index.
        leaf: u64,
        /// The reason given.
        reason: String,
    },
    /// Entries out of leaf order, or one leaf twice.
    #[error(
        "entry {entry}: leaf {leaf} does not come after leaf {prev}; entries must be in increasing leaf order"
    )]
    Order {
        /// The 1-based entry number.
        entry: usize,
        /// Its leaf index.
        leaf: u64,
        /// The previous entry's leaf index.
        prev: u64,
    },
    /// The checkpoint is older than the remembered one.
    #[error(
        "the checkpoint of {origin} has size {size}, smaller than the remembered size {remembered}"
    )]
    Smaller {
        /// The log's origin.
        origin: String,
        /// The checkpoint's size.
        size: u64,
        /// The remembered size.
        remembered: u64,
    },
    /// Same size as remembered, another root: two histories under one key.
    #[error(
        "the checkpoint of {origin} has the remembered size {size} but a different root: the log was rewritten"
    )]
    Forked {
        /// The log's origin.
        origin: String,
        /// The size both checkpoints have.
        size: u64,
    },
    /// A newer checkpoint without a consistency proof from the remembered size.
    #[error(
        "the checkpoint of {origin} (size {size}) comes with no consistency proof from the remembered size {remembered}"
    )]
    NoConsistency {
        /// The log's origin.
        origin: String,
        /// The checkpoint's size.
        size: u64,
        /// The remembered size.
        remembered: u64,
    },
    /// The consistency proof from the remembered checkpoint fails.
    #[error("the checkpoint of {origin} is not consistent with the remembered one: {source}")]
    Inconsistent {
        /// The log's origin.
        origin: String,
        /// How the proof fails.
        source: ProofError,
    },
    /// A consistency file that starts from another tree than the remembered one.
    #[error(
        "the proof starts at size {from}, but the remembered checkpoint of {origin} is size {remembered} with another root"
    )]
    WrongStart {
        /// The log's origin.
        origin: String,
        /// The old size the file proves from.
        from: u64,
        /// The remembered size.
        remembered: u64,
    },
    /// A consistency file given beside a proof, for another checkpoint.
    #[error("the consistency file is for size {other}, not for this checkpoint (size {size})")]
    OtherCheckpoint {
        /// The size of the proof's checkpoint.
        size: u64,
        /// The size of the consistency file's checkpoint.
        other: u64,
    },
}

/// How the checkpoint relates to the remembered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// Nothing was remembered under this key: accepted on first use.
    FirstSeen,
    /// The remembered checkpoint itself.
    Same,
    /// Proven consistent with the remembered checkpoint.
    Extends {
        /// The remembered size the proof starts from.
        from: u64,
    },
}

/// A file that passed every check: the checkpoint to remember and what was proven.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The checkpoint, its signer and the signed note.
    pub verified: Verified,
    /// How it relates to the remembered checkpoint.
    pub relation: Relation,
    /// One line per fact proven, for the inspector.
    pub proven: Vec<String>,
}

impl Accepted {
    /// The report printed on success.
    pub fn report(&self) -> String {
        let c = &self.verified.checkpoint;
        let mut out = format!(
            "ok: checkpoint of {} at size {} (root {}) signed by {}\n",
            c.origin,
            c.size,
            merkle::base64_of(&c.root),
            self.verified.key.text
        );
        for line in &self.proven {
            out.push_str("ok: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(match &self.relation {
            Relation::FirstSeen => "ok: first checkpoint seen under this key; remembered (compare it with the one saved on an earlier visit, if any)\n",
            Relation::Same => "ok: same checkpoint as remembered\n",
            Relation::Extends { .. } => "ok: consistent with the remembered checkpoint; remembered the new one\n",
        });
        if let Relation::Extends { from } = self.relation {
            out.push_str(&format!(
                "ok: the log at size {from} is a prefix of the log at size {}\n",
                c.size
            ));
        }
        out
    }
}

fn place(i: usize, leaf: u64) -> String {
    // leaf < size <= 2⁶² once checked, but the text is built before that check: saturate.
    format!("entry {i} (leaf {leaf}, seq {})", leaf.saturating_add(1))
}

/// Checks one entry against the checkpoint; returns its chain fields and stored hash.
fn check_entry(
    i: usize,
    e: &Entry,
    cp: &checkpoint::Checkpoint,
) -> Result<(envelope::ChainFields, merkle::Digest32), Rejection> {
    let at = place(i, e.leaf_index);
    let body = decode_bytes(&e.envelope, || format!("{at}: envelope"))?;
    let hash = decode_digest(&e.hash, || format!("{at}: hash"))?;
    let proof = decode_proof(&e.proof, &at)?;
    let fields = envelope::read_chain_fields(&body).map_err(|source| Rejection::Envelope {
        place: at.clone(),
        source,
    })?;
    if Some(fields.seq) != e.leaf_index.checked_add(1) {
        return Err(Rejection::Seq {
            place: at,
            seq: fields.seq,
            leaf: e.leaf_index,
        });
    }
    if envelope::chain_hash(&fields.prev_hash, &body) != hash {
        return Err(Rejection::StoredHash { place: at });
    }
    if fields.seq == 1 && fields.prev_hash != [0; 32] {
        return Err(Rejection::FirstPrevHash { place: at });
    }
    merkle::verify_inclusion(&cp.root, cp.size, e.leaf_index, &body, &proof)
        .map_err(|source| Rejection::Proof { place: at, source })?;
    Ok((fields, hash))
}

/// Relates a verified checkpoint to the remembered one under its key.
fn against_state(
    v: &Verified,
    state: &State,
    state_path: &Path,
    steps: &[ConsistencyStep],
) -> Result<Relation, Rejection> {
    let Some(r) = state.get(&v.key.text) else {
        return Ok(Relation::FirstSeen);
    };
    let c = &v.checkpoint;
    let old_root = r.root(state_path)?;
    if c.size < r.size {
        return Err(Rejection::Smaller {
            origin: c.origin.clone(),
            size: c.size,
            remembered: r.size,
        });
    }
    if c.size == r.size {
        if c.root == old_root {
            return Ok(Relation::Same);
        }
        return Err(Rejection::Forked {
            origin: c.origin.clone(),
            size: c.size,
        });
    }
    let step =
        steps
            .iter()
            .find(|s| s.old_size == r.size)
            .ok_or_else(|| Rejection::NoConsistency {
                origin: c.origin.clone(),
                size: c.size,
                remembered: r.size,
            })?;
    let proof = decode_proof(
        &step.proof,
        &format!("consistency proof from size {}", r.size),
    )?;
    merkle::verify_consistency(r.size, &old_root, c.size, &c.root, &proof).map_err(|source| {
        Rejection::Inconsistent {
            origin: c.origin.clone(),
            source,
        }
    })?;
    Ok(Relation::Extends { from: r.size })
}

/// Turns a consistency file given beside an inclusion proof or a bundle into a step, after
/// checking it speaks of the same checkpoint.
pub fn step_from(
    file: &ConsistencyFile,
    keys: &[VerifierKey],
    cp: &Verified,
) -> Result<ConsistencyStep, Rejection> {
    let other = checkpoint::open(&file.checkpoint, keys)?;
    if other.checkpoint != cp.checkpoint {
        return Err(Rejection::OtherCheckpoint {
            size: cp.checkpoint.size,
            other: other.checkpoint.size,
        });
    }
    Ok(ConsistencyStep {
        old_size: file.old_size,
        proof: file.proof.clone(),
    })
}

/// Checks an inclusion-proof file.
pub fn inclusion(
    file: &InclusionFile,
    keys: &[VerifierKey],
    state: &State,
    state_path: &Path,
    extra: &[ConsistencyFile],
) -> Result<Accepted, Rejection> {
    let verified = checkpoint::open(&file.checkpoint, keys)?;
    let (fields, _) = check_entry(1, &file.entry, &verified.checkpoint)?;
    let seq = fields.seq;
    let steps = steps(&file.consistency, extra, keys, &verified)?;
    let relation = against_state(&verified, state, state_path, &steps)?;
    Ok(Accepted {
        proven: vec![format!(
            "the envelope of seq {seq} is leaf {} of that tree",
            seq - 1
        )],
        verified,
        relation,
    })
}

/// Checks a bundle: every entry, the chain between consecutive ones, the checkpoint.
pub fn bundle(
    file: &Bundle,
    keys: &[VerifierKey],
    state: &State,
    state_path: &Path,
    extra: &[ConsistencyFile],
) -> Result<Accepted, Rejection> {
    let verified = checkpoint::open(&file.checkpoint, keys)?;
    if file.entries.is_empty() && file.withheld.is_empty() {
        return Err(Rejection::EmptyBundle);
    }
    let mut prev: Option<(u64, merkle::Digest32)> = None;
    let mut chained = 0usize;
    for (i, e) in file.entries.iter().enumerate() {
        let n = i + 1;
        if let Some((prev_seq, _)) = prev {
            // prev_seq = previous leaf + 1; the leaf must be strictly greater than the previous.
            if e.leaf_index < prev_seq {
                return Err(Rejection::Order {
                    entry: n,
                    leaf: e.leaf_index,
                    prev: prev_seq - 1,
                });
            }
        }
        let (fields, hash) = check_entry(n, e, &verified.checkpoint)?;
        let seq = fields.seq;
        if let Some((prev_seq, prev_hash)) = prev
            && prev_seq + 1 == seq
        {
            if fields.prev_hash != prev_hash {
                return Err(Rejection::Chain {
                    place: place(n, e.leaf_index),
                    prev_seq,
                });
            }
            chained += 1;
        }
        prev = Some((seq, hash));
    }
    check_withheld(&file.withheld, &file.entries, &verified.checkpoint)?;
    let steps = steps(&file.consistency, extra, keys, &verified)?;
    let relation = against_state(&verified, state, state_path, &steps)?;
    let mut proven = vec![format!(
        "{} envelopes are in that tree at their seq; {chained} consecutive pairs chain by prev_hash",
        file.entries.len()
    )];
    if !file.withheld.is_empty() {
        proven.push(format!(
            "{} more leaves are in that tree, withheld as confidential: their envelopes are not \
             in the bundle, only their leaf hashes are proven (leaves {})",
            file.withheld.len(),
            file.withheld
                .iter()
                .map(|w| w.leaf_index.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(child) = &file.child {
        proven.push(format!(
            "the bundle says it is for child {child} (not proven: see docs/proofs.md)"
        ));
    }
    Ok(Accepted {
        verified,
        relation,
        proven,
    })
}

/// Checks the withheld leaves of a bundle: increasing leaf order, none of them an entry, the one
/// reason this format defines, and each leaf hash's inclusion proof to the checkpoint root.
fn check_withheld(
    withheld: &[Withheld],
    entries: &[Entry],
    cp: &checkpoint::Checkpoint,
) -> Result<(), Rejection> {
    let mut prev: Option<u64> = None;
    for (i, w) in withheld.iter().enumerate() {
        let n = i + 1;
        if let Some(p) = prev
            && w.leaf_index <= p
        {
            return Err(Rejection::WithheldOrder {
                withheld: n,
                leaf: w.leaf_index,
                prev: p,
            });
        }
        prev = Some(w.leaf_index);
        // Entries were checked to be in increasing leaf order.
        if entries
            .binary_search_by_key(&w.leaf_index, |e| e.leaf_index)
            .is_ok()
        {
            return Err(Rejection::WithheldShown {
                withheld: n,
                leaf: w.leaf_index,
            });
        }
        if w.reason != WITHHELD_CONFIDENTIAL {
            return Err(Rejection::WithheldReason {
                withheld: n,
                leaf: w.leaf_index,
                reason: w.reason.clone(),
            });
        }
        let at = format!(
            "withheld {n} (leaf {}, seq {})",
            w.leaf_index,
            w.leaf_index.saturating_add(1)
        );
        let leaf = decode_digest(&w.leaf_hash, || format!("{at}: leaf_hash"))?;
        let proof = decode_proof(&w.proof, &at)?;
        merkle::verify_inclusion_of_leaf_hash(&cp.root, cp.size, w.leaf_index, &leaf, &proof)
            .map_err(|source| Rejection::Proof { place: at, source })?;
    }
    Ok(())
}

/// Checks a consistency-proof file: the old tree it names is a prefix of its checkpoint's tree,
/// and the checkpoint may replace the remembered one.
pub fn consistency(
    file: &ConsistencyFile,
    keys: &[VerifierKey],
    state: &State,
    state_path: &Path,
) -> Result<Accepted, Rejection> {
    let verified = checkpoint::open(&file.checkpoint, keys)?;
    let c = &verified.checkpoint;
    let old_root = decode_digest(&file.old_root, || "old_root".to_owned())?;
    let proof = decode_proof(&file.proof, "consistency proof")?;
    merkle::verify_consistency(file.old_size, &old_root, c.size, &c.root, &proof).map_err(
        |source| Rejection::Proof {
            place: format!("consistency proof from size {}", file.old_size),
            source,
        },
    )?;
    let relation = match state.get(&verified.key.text) {
        None => Relation::FirstSeen,
        Some(r) if r.size == file.old_size && r.root(state_path)? == old_root => {
            Relation::Extends { from: r.size }
        }
        Some(r) if r.size == c.size && r.root(state_path)? == c.root => Relation::Same,
        Some(r) if c.size < r.size => {
            return Err(Rejection::Smaller {
                origin: c.origin.clone(),
                size: c.size,
                remembered: r.size,
            });
        }
        Some(r) => {
            return Err(Rejection::WrongStart {
                origin: c.origin.clone(),
                from: file.old_size,
                remembered: r.size,
            });
        }
    };
    let old = merkle::base64_of(&old_root);
    Ok(Accepted {
        proven: vec![format!(
            "the log at size {} (root {old}) is a prefix of the log at size {}",
            file.old_size, c.size
        )],
        verified,
        relation,
    })
}

fn steps(
    inline: &[ConsistencyStep],
    extra: &[ConsistencyFile],
    keys: &[VerifierKey],
    verified: &Verified,
) -> Result<Vec<ConsistencyStep>, Rejection> {
    let mut all = inline.to_vec();
    for f in extra {
        all.push(step_from(f, keys, verified)?);
    }
    Ok(all)
}
