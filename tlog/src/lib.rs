//! The log's Merkle tree and signed checkpoints, producer side (docs/rules.md §12).
//!
//! This crate owns the RFC 6962 hashing of the log (leaf `i` = the envelope of seq `i + 1`), the
//! layout of the stored hashes (hashes of complete subtrees only, written once when the leaf
//! that completes them is appended, never rewritten), the tree hash at any size, inclusion and
//! consistency proof generation, and the checkpoint text with its Ed25519 signed note.
//!
//! It must never do I/O: hashes are read through [`HashReader`], which the store backs with its
//! own storage. It must never verify on an inspector's behalf either: the offline checker
//! (`careledger-verify`) is a separate implementation so that the two can be compared.

pub mod checkpoint;
pub mod hash;
pub mod note;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash};
pub use note::{NoteError, NoteSigner};
pub use tree::{
    FnReader, HashReader, MAX_TREE_SIZE, MissingHash, TreeError, consistency_proof,
    inclusion_proof, split_stored_hash_index, stored_hash_count, stored_hash_index,
    stored_hashes_for_leaf, tree_hash,
};
