//! `store`: careledger's event vocabulary and its append-only, hash-chained log on sled.
//!
//! It owns the schema of every event (`event`, `policy`), the stored envelope and its hash
//! chain (`envelope`), the log with its secondary indexes (`log`) and time conventions
//! (`time`). It is the only crate that touches sled. It must never interpret events beyond
//! what the log itself needs (ids, children, staff, amendment targets): meaning lives in
//! `projections`.

pub mod envelope;
pub mod event;
pub mod floor;
pub mod labels;
pub mod log;
pub mod policy;
pub mod registry;
pub mod segment;
pub mod time;
pub mod wire;

pub use envelope::{Envelope, Hash, SCHEMA, Source};
pub use event::{Event, EventKind};
pub use log::{Appended, Draft, Head, Store, StoreError, Verified};
pub use policy::Policy;
pub use registry::Registry;
