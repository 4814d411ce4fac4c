//! `Draft`: an event ready to append, as `ingest` hands it to `store`.
//!
//! It owns only the shape of a not-yet-placed event; it must never assign a seq, a
//! `recorded_at` from a clock or a hash (that is the store's append).

use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::seal::Sealed;

/// An event ready to append: validated by `ingest`, not yet placed in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The event's unique id (from the input, or derived from its content).
    pub id: String,
    /// When it happened (valid time).
    pub occurred_at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
    /// The event itself.
    pub event: Event,
    /// Only for migrations (`Source::Migration`): the time the paper record was made.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The personal fields, sealed by the vault before the append (then `event` is the clear
    /// part); the store writes it as a schema-2 envelope.
    pub sealed: Option<Sealed>,
}
