//! `events`: careledger's vocabulary — every event type, the policy shape, the stored envelope
//! and its hash rule, the flat wire form, the +08:00 time conventions, the registry fold used
//! for validation, `Draft` (an event ready to append), and what each field carries for privacy.
//!
//! It is the leaf every other crate stands on. It must never do I/O on a log or depend on
//! sled: where envelopes live is `store`'s business; what they mean beyond validation is
//! `projections`'.

pub mod csv_cell;
pub mod draft;
pub mod envelope;
pub mod event;
pub mod labels;
pub mod personal;
pub mod policy;
pub mod pseudonym;
pub mod registry;
pub mod row;
pub mod seal;
pub mod text;
pub mod time;
pub mod wire;

pub use draft::Draft;
pub use envelope::{Envelope, Hash, LATEST_SCHEMA, SCHEMA, Source};
pub use event::{Event, EventKind};
pub use policy::Policy;
pub use registry::Registry;
