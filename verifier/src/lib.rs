//! `careledger-verify`: the offline checker an inspector runs on the proofs a school or county
//! hands over (docs/proofs.md).
//!
//! This crate owns the checks — signed checkpoints against pinned keys, inclusion and
//! consistency proofs, the hash chain of the envelopes in a bundle, and the memory of the last
//! checkpoint accepted per key. It is deliberately a second implementation: it must never depend
//! on `tlog` (the producer side), nor on sled, polars or tokio, and it must never trust a hash it
//! can recompute (every leaf is hashed here from the envelope bytes).

pub mod check;
pub mod checkpoint;
pub mod envelope;
pub mod format;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod state;

pub use check::{Accepted, Rejection};
