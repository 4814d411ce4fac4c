//! `store`: careledger's append-only, hash-chained log on sled.
//!
//! It owns where envelopes live (and, beside the log, the service's accounts and access
//! log, which are not care events: `accounts`, `access_log`): the segment byte layout (`segment`), the log with its commit
//! point and secondary indexes (`log`), and the raw-sled floor of the benchmarks (`floor`). It
//! is the only crate that touches sled. The vocabulary it stores comes from `events`; it must
//! never interpret events beyond what the log itself needs (ids, children, staff, amendment
//! targets): meaning lives in `projections`.

pub mod access_log;
pub mod accounts;
pub mod floor;
pub mod log;
pub mod segment;

pub use log::{
    Appended, ErrorKind, FactValues, Head, SCOPES_BESIDE_AT, Store, StoreError, Verified,
    copy_store,
};
