//! `reports`: careledger's polars reports — term statistics (rules §8), the evaluation runs
//! of teacher scores (rules §7, `scorer`), the bureau's
//! Parquet feed (rules §9.3) and the child-term feed of a province's warehouse
//! (docs/province.md).
//!
//! It owns who a term report counts (`roster`), the polars term reporter (`columnar`, the
//! default) and its reference fold (`fold`), the polars scorer (`scorer`, whose reference is
//! `projections::scores`), the aggregation to class / school / county rows and
//! every output writer. It must never touch sled or the store (it takes projections and
//! envelopes), never re-implement a projection rule (activity, files, pairings, amendments
//! come from `projections`), and never let a name, phone, address or counseling note reach
//! an output.

pub mod bureau;
pub mod child_terms;
pub mod columnar;
pub mod error;
pub mod facts;
pub mod fold;
pub mod output;
pub mod report;
pub mod roster;
pub mod scorer;
pub mod table;
pub mod year_end;

pub use bureau::{BureauExport, ExportSummary, export_events_parquet};
pub use child_terms::{ChildTermsSummary, export_child_terms};
pub use columnar::{FactFrame, term_days, term_report, term_report_of, term_statistics};
pub use error::ReportError;
pub use facts::{ChildColumns, ChildFacts};
pub use fold::{TermFold, term_statistics_folded};
pub use output::{Format, render, render_table, write};
pub use report::{ReportRow, Scope, TermReport};
pub use scorer::{EventShare, ScoreRuns, score_run, score_runs};
pub use year_end::{YearEnd, YearEndRow, year_end_table};
