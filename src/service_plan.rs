//! The read plan as the service takes it: `server::ReadPlan` answered by `plan`, so that
//! `careledger serve` reads exactly what the commands read.
//!
//! This module owns only that adapter (and how a plan failure is classed for the service);
//! it must never fetch envelopes itself.

use chrono::{DateTime, Utc};
use events::Envelope;
use projections::Timeline;
use server::{ReadFailure, ReadPlan};
use store::Store;

use crate::plan::{self, Opener, PlanError, Scope};

/// The service serves stores in clear only (`careledger serve` refuses a store whose key
/// directory holds a master key, docs/service.md): an envelope that is sealed anyway is an
/// error naming the missing key, never served as stored.
fn opener() -> Opener<'static> {
    Opener::new(None, vault::Reader::Staff)
}

/// The commands' read plan, for the service.
pub struct ServicePlan;

fn failure(e: PlanError) -> ReadFailure {
    match e {
        PlanError::Projection(e) => ReadFailure::BadInput(e.to_string()),
        e => ReadFailure::Fault(e.to_string()),
    }
}

impl ReadPlan for ServicePlan {
    fn child_envelopes(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, ReadFailure> {
        plan::child_envelopes(store, child, as_of, &opener()).map_err(failure)
    }

    fn child_timeline(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        plan::child_timeline(store, child, as_of, &opener()).map_err(failure)
    }

    fn school_timeline(
        &self,
        store: &Store,
        school: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        plan::scope_timeline(store, &Scope::School(school.to_owned()), as_of, &opener())
            .map_err(failure)
    }

    fn staff_timeline(
        &self,
        store: &Store,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        plan::staff_timeline(store, staff, as_of, &opener()).map_err(failure)
    }

    fn report_timeline(
        &self,
        store: &Store,
        scope: &reports::Scope,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        plan::scope_timeline(store, &Scope::of_report(scope), as_of, &opener()).map_err(failure)
    }

    fn all_schools_timeline(&self, store: &Store) -> Result<Timeline, ReadFailure> {
        let schools = store
            .registry()
            .map_err(|e| ReadFailure::Fault(e.to_string()))?
            .schools()
            .map(|(s, _)| s.to_owned())
            .collect();
        plan::scope_timeline(store, &Scope::Schools(schools), None, &opener()).map_err(failure)
    }
}
