//! `reports`: careledger's polars reports — term statistics (rules §8), the bureau's
//! Parquet feed (rules §9.3) and the child-term feed of a province's warehouse
//! (docs/province.md).
//!
//! It owns the per-child fold of a term, the aggregation to class / school / county rows and
//! every output writer. It must never touch sled or the store (it takes projections and
//! envelopes), never re-implement a projection rule (activity, files, pairings, amendments
//! come from `projections`), and never let a name, phone, address or counseling note reach
//! an output.

pub mod bureau;
pub mod child_terms;
pub mod error;
pub mod facts;
pub mod fold;
pub mod output;
pub mod report;
pub mod stream;
pub mod table;
pub mod year_end;

pub use bureau::{BureauExport, ExportSummary, export_events_parquet};
pub use child_terms::{ChildTermsSummary, export_child_terms_streamed};
pub use error::ReportError;
pub use facts::{ChildColumns, ChildFacts};
pub use fold::{TermFold, term_statistics};
pub use output::{Format, render, render_table, write};
pub use report::{ReportRow, Scope, TermReport};
pub use stream::{export_events_parquet_streamed, term_statistics_streamed};
pub use year_end::{YearEnd, YearEndRow, year_end_table};
