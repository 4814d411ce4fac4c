//! The read plan as the service takes it: `server::ReadPlan` answered by `plan`, so that
//! `careledger serve` reads exactly what the commands read, with the key directory's vault
//! (when the store has encryption on) shared by the writer, which seals what it appends
//! (`careledger::sealing`, as `record` does), and the readers, which open what a view shows
//! for the caller's role (docs/privacy.md).
//!
//! This module owns only that adapter (how a plan or sealing failure is classed for the
//! service, and which `vault::Reader` each `server::Reading` is); it must never fetch
//! envelopes itself, nor open counseling notes for anything but `Reading::Counselor`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use events::{Draft, Envelope};
use projections::Timeline;
use server::{ReadFailure, ReadPlan, Reading, Seal, SealFailure};
use store::Store;
use vault::{Reader, Vault, VaultError};

use crate::plan::{self, Opener, PlanError, Scope};
use crate::report_read::{self, ReportReadError};
use crate::sealing::{self, SealError};
use crate::staff_cache::StaffCache;

/// The commands' read plan, for the service, with the store's vault (none: a store in
/// clear, where a sealed envelope is an error naming the missing key directory).
pub struct ServicePlan {
    vault: Option<Arc<Vault>>,
    /// The versions the worklists read, kept between requests.
    staff: StaffCache,
}

impl ServicePlan {
    /// The plan over a store whose key directory's vault is `vault` (`None`: no master key,
    /// a store in clear). The vault is shared with whoever else acts on the store for the
    /// service (its erasure), so that a destroyed key is gone for the views at once.
    pub fn new(vault: Option<Arc<Vault>>) -> ServicePlan {
        ServicePlan {
            vault,
            staff: StaffCache::default(),
        }
    }

    /// The vault, when the store has encryption on.
    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_deref()
    }

    /// The kept worklist versions: each set of schools, with how many envelopes it has
    /// folded (`StaffCache::kept`).
    pub fn kept(&self) -> Vec<(Vec<String>, usize)> {
        self.staff.kept()
    }

    fn opener(&self, reading: Reading) -> Opener<'_> {
        let reader = match reading {
            Reading::Staff => Reader::Staff,
            Reading::Counselor => Reader::Counselor,
        };
        Opener::new(self.vault(), reader)
    }
}

fn failure(e: PlanError) -> ReadFailure {
    match e {
        PlanError::Projection(e) => ReadFailure::BadInput(e.to_string()),
        e => ReadFailure::Fault(e.to_string()),
    }
}

/// Whether a vault's refusal is the event's fault (an event about an erased child, one with
/// personal fields and no subject) rather than the key directory's.
fn vault_bad_input(e: &VaultError) -> bool {
    matches!(e, VaultError::Erased { .. } | VaultError::NoSubject { .. })
}

impl ReadPlan for ServicePlan {
    fn child_envelopes(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
        reading: Reading,
    ) -> Result<Vec<Envelope>, ReadFailure> {
        plan::child_envelopes(store, child, as_of, &self.opener(reading)).map_err(failure)
    }

    fn child_timeline(
        &self,
        store: &Store,
        child: &str,
        as_of: Option<DateTime<Utc>>,
        reading: Reading,
    ) -> Result<Timeline, ReadFailure> {
        plan::child_timeline(store, child, as_of, &self.opener(reading)).map_err(failure)
    }

    fn school_timeline(
        &self,
        store: &Store,
        school: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        let open = self.opener(Reading::Staff);
        plan::scope_timeline(store, &Scope::School(school.to_owned()), as_of, &open)
            .map_err(failure)
    }

    fn staff_timeline(
        &self,
        store: &Store,
        staff: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Timeline, ReadFailure> {
        self.staff
            .worklist_timeline(
                store,
                self.vault(),
                staff,
                as_of,
                &self.opener(Reading::Staff),
            )
            .map_err(failure)
    }

    fn term_report(
        &self,
        store: &Store,
        scope: &reports::Scope,
        term: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<reports::TermReport, ReadFailure> {
        report_read::term_report(store, scope, term, as_of).map_err(|e| match e {
            ReportReadError::Plan(e) => failure(e),
            ReportReadError::Report(e) => ReadFailure::BadInput(e.to_string()),
        })
    }

    fn all_schools_timeline(&self, store: &Store) -> Result<Timeline, ReadFailure> {
        let schools = store
            .registry()
            .map_err(|e| ReadFailure::Fault(e.to_string()))?
            .schools()
            .map(|(s, _)| s.to_owned())
            .collect();
        // Registry and pairings: no personal field is needed.
        plan::scope_timeline(store, &Scope::Schools(schools), None, &Opener::sealed())
            .map_err(failure)
    }

    fn open_to_validate(
        &self,
        env: Envelope,
    ) -> Result<Envelope, Box<dyn std::error::Error + Send + Sync>> {
        // As `careledger record`: the whole event in clear, compared and then dropped.
        Ok(Opener::new(self.vault(), Reader::Counselor).open(env)?)
    }

    fn committed(&self, store: &Store) {
        self.staff
            .catch_up(store, self.vault(), &self.opener(Reading::Staff));
    }

    fn unkept(&self) -> bool {
        self.staff.unfolded()
    }

    fn sealer<'s>(&'s self, store: &'s Store) -> Option<Box<dyn Seal + 's>> {
        let vault = self.vault()?;
        Some(Box::new(BatchSealer {
            store,
            vault,
            sealer: sealing::Sealer::new(),
        }))
    }
}

/// One writer batch's sealing: the shared sealer of `record` and `import`.
struct BatchSealer<'s> {
    store: &'s Store,
    vault: &'s Vault,
    sealer: sealing::Sealer,
}

impl Seal for BatchSealer<'_> {
    fn seal(&mut self, drafts: &mut [Draft]) -> Result<(), SealFailure> {
        self.sealer
            .seal(self.store, self.vault, drafts)
            .map_err(|r| SealFailure {
                index: r.index,
                bad_input: matches!(&r.error, SealError::Vault(e) if vault_bad_input(e)),
                message: r.error.to_string(),
            })
    }
}
