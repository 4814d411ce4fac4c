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

use crate::plan::{self, PlanError};

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
        plan::child_envelopes(store, child, as_of).map_err(failure)
    }

    fn whole_timeline(
        &self,
        store: &Store,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        plan::whole_timeline(store, as_of).map_err(failure)
    }
}
