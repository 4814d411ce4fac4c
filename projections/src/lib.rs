//! `projections`: pure, deterministic folds over a prefix of the careledger log — the
//! effective facts (`timeline`), the registry of schools, staff, children and pairings
//! (`world`), date windows (`calendar`) and teacher assessment scores (`scores`), plus the
//! views built on them.
//!
//! Everything here takes envelopes the caller already read; it must never touch sled, the
//! `Store`, the clock or the file system, and the same log prefix must always give
//! byte-identical output.

pub mod archive;
pub mod backfill;
pub mod calendar;
pub mod contact_card;
pub mod history;
pub(crate) mod labels;
pub mod pairings;
pub mod progress;
pub mod retention;
pub mod score_exact;
pub mod scores;
pub mod timeline;
pub mod versions;
pub mod worklist;
pub mod world;

pub use calendar::{DaySet, Period, Term, Window};
pub use scores::{ScoreRun, scores};
pub use timeline::{Amendment, Fact, Timeline};
pub use world::World;

/// Why a projection could not be computed. Every variant names what it is about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    /// A correction turns its target into something that is not a valid event.
    #[error("correction at seq {seq} cannot be applied to event {target}: {message}")]
    Correction {
        /// The correction's log sequence number.
        seq: u64,
        /// The id of the event it corrects.
        target: String,
        /// Why the changed fields do not make a valid event.
        message: String,
    },
    /// The school is not registered in the log prefix.
    #[error("unknown school {school}")]
    UnknownSchool {
        /// The school id as given.
        school: String,
    },
    /// The school did not define this term.
    #[error("school {school} has no term {term}")]
    UnknownTerm {
        /// The school id.
        school: String,
        /// The term id it never defined.
        term: String,
    },
    /// The school defined no term of this school year.
    #[error("school {school} has no term in school year {year}")]
    NoTermsInYear {
        /// The school id.
        school: String,
        /// The school year (`2025-2026`) none of whose terms it defined.
        year: String,
    },
    /// A period is neither a term (`2025-2026-1`) nor a school year (`2025-2026`).
    #[error(
        "period {period:?} is neither a term like 2025-2026-1 nor a school year like 2025-2026"
    )]
    BadPeriod {
        /// The period as given.
        period: String,
    },
    /// Another appraisal score is not a number from 0 to 100.
    #[error("other score of staff {staff} must be a number from 0 to 100, got {value}")]
    OtherScore {
        /// The staff id of the row.
        staff: String,
        /// The score given (outside 0–100, or not finite).
        value: f64,
    },
    /// Other appraisal scores make a year-end total, so they need a school-year period.
    #[error("other appraisal scores need a school-year period, not {period}")]
    OtherScoresNeedYear {
        /// The term asked for.
        period: String,
    },
    /// The child is not registered in the log prefix.
    #[error("unknown child {child}")]
    UnknownChild {
        /// The child id as given.
        child: String,
    },
    /// The staff member is not registered in the log prefix.
    #[error("unknown staff member {staff}")]
    UnknownStaff {
        /// The staff id as given.
        staff: String,
    },
}
