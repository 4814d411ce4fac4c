//! Recording reads in the access log: every read of a child's file (archive, contact card,
//! history, progress, timeline) and every export through the service is written — who, role,
//! what, which child, from where, when — durably, before the answer is sent.
//!
//! This module owns when an entry is written and which entries an inspector sees (those of
//! children in their county, and exports); it must never record a payload or a note.

use chrono::Utc;
use store::access_log::{Access, AccessEntry};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::policy::Scope;
use crate::{AppState, blocking};

/// Writes one access entry for `caller` reading `what` (of `child`, if one).
pub async fn record(
    state: &AppState,
    caller: &Caller,
    what: &str,
    child: Option<&str>,
) -> Result<(), ApiError> {
    let access = Access {
        actor: caller.principal.account.clone(),
        role: caller.principal.role.as_str().to_owned(),
        what: what.to_owned(),
        child: child.map(str::to_owned),
        from: caller.from.clone(),
    };
    let state = state.clone();
    blocking(move || {
        state
            .0
            .access
            .append(access, Utc::now())
            .map(|_| ())
            .map_err(|e| ApiError::Fault(format!("writing the access log: {e}")))
    })
    .await
}

/// The entries `scope` may see, filtered by child and actor.
pub fn visible(
    state: &AppState,
    scope: &Scope,
    entries: Vec<AccessEntry>,
    child: Option<&str>,
    actor: Option<&str>,
) -> Vec<AccessEntry> {
    let facts = state.facts();
    let registry = &facts.registry;
    entries
        .into_iter()
        .filter(|e| match (&e.access.child, scope) {
            (None, _) => true,
            (Some(c), Scope::County(county)) => {
                registry
                    .child_school(c)
                    .and_then(|s| registry.school_county(s))
                    == Some(county.as_str())
            }
            (Some(c), Scope::School(school)) => registry.child_school(c) == Some(school.as_str()),
        })
        .filter(|e| child.is_none_or(|c| e.access.child.as_deref() == Some(c)))
        .filter(|e| actor.is_none_or(|a| e.access.actor == a))
        .collect()
}
