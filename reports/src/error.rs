//! The errors of the reports crate. It owns their wording; it must never carry personal data
//! (names, phones, addresses, notes) in a message: only ids, paths and column names.

use std::path::PathBuf;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The term id is not of the form `2025-2026-1`.
    #[error("term {term:?} is not a term id like 2025-2026-1")]
    BadTerm {
        /// The term id as given.
        term: String,
    },
    /// The school is not registered (as of the report's time).
    #[error("unknown school {school}")]
    UnknownSchool {
        /// The school id as given.
        school: String,
    },
    /// No registered school lies in the county.
    #[error("no school is registered in county {county}")]
    UnknownCounty {
        /// The county as given.
        county: String,
    },
    /// The school never defined the term.
    #[error("school {school} defined no term {term}")]
    UnknownTerm {
        /// The school id.
        school: String,
        /// The term id it never defined.
        term: String,
    },
    /// No school of the county defined the term.
    #[error("no school of county {county} defined term {term}")]
    NoSchoolWithTerm {
        /// The county as given.
        county: String,
        /// The term id none of its schools defined.
        term: String,
    },
    /// A bureau feed was asked for outside the county whose secret keys its pseudonyms.
    #[error(
        "{asked} is not in county {secret_county}, whose secret is installed: a feed carries \
         the pseudonyms of its own county only"
    )]
    OtherCounty {
        /// What was asked for: `county 黔东县`, or `school s001 (county 黔东县)`.
        asked: String,
        /// The county of the installed secret.
        secret_county: String,
    },
    /// A projection could not be computed (a correction that does not apply).
    #[error("{source}")]
    Projection {
        /// The projection's error.
        #[source]
        source: projections::ProjectionError,
    },
    /// An output format name we do not write.
    #[error("unknown format {name:?} (expected csv, json, parquet, xlsx or table)")]
    UnknownFormat {
        /// The format name as given.
        name: String,
    },
    /// polars failed while building or writing a frame.
    #[error("polars failed while {context}: {source}")]
    Polars {
        /// What was being done, as a phrase after "while" (`writing the csv`).
        context: &'static str,
        /// polars' error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// The feed's folder already holds files.
    #[error("output folder {path} is not empty")]
    OutputNotEmpty {
        /// The folder given for the feed.
        path: PathBuf,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The XLSX writer failed.
    #[error("cannot build the workbook: {source}")]
    Xlsx {
        /// rust_xlsxwriter's error.
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// JSON could not be encoded.
    #[error("cannot encode the rows as json: {source}")]
    Json {
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// An instant the polars reporter cannot hold as nanoseconds since the epoch (it compares
    /// escalation delays exactly): outside the years 1677 to 2262.
    #[error("event {id}: {field} lies outside the years 1677 to 2262")]
    InstantOutOfRange {
        /// The event id.
        id: String,
        /// The field (`happened_at`, `notified_at`).
        field: &'static str,
    },
    /// A score run's exact figures could exceed the 128-bit integers the polars scorer
    /// computes in (absurdly long decimal weights, thresholds or shares, or a great many
    /// quotas): refused rather than computed wrongly.
    #[error(
        "the exact score arithmetic of this run could exceed 128-bit integers ({quotas} quota names, up to {max_due} due windows per quota): shorten the decimals of the policy's weights, thresholds and share"
    )]
    ScoreRange {
        /// How many quota names the run's policies hold.
        quotas: usize,
        /// The most (pairing, window) pairs of one staff member.
        max_due: u128,
    },
    /// A score run holds more of something than the plan's packed keys have bits for.
    #[error("the score run holds more {what} than its packed keys can number")]
    KeyRange {
        /// What overflowed: `schools`, `pairings` or `windows of one kind`.
        what: &'static str,
    },
    /// A report frame lacks a column or holds an unexpected type (a bug in this crate).
    #[error("report column {column} is missing or mistyped")]
    Column {
        /// The column's machine name.
        column: &'static str,
    },
}

impl ReportError {
    /// Wraps a polars error with what we were doing.
    pub(crate) fn polars(
        context: &'static str,
    ) -> impl FnOnce(polars::prelude::PolarsError) -> ReportError {
        move |source| ReportError::Polars { context, source }
    }

    /// Wraps an io error with the path it concerns.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
        move |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
