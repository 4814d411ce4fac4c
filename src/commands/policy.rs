//! `policy adopt` and `policy show`: a school's care policy (制度, rules §6).
//!
//! This module owns turning an adopted policy file into a `policy_adopted` record and printing
//! the policy in force; it must never check a policy itself (the file's checks are
//! `ingest::policy_toml`'s, the event's are the validator's) nor decide which policy is in
//! force (that is `projections::world`).

use std::path::Path;

use anyhow::Result;
use careledger::plan;
use chrono::{DateTime, NaiveDate, Utc};
use projections::World;
use store::Store;

use super::views::day_of;
use super::{bad, plan_error};
use crate::BadInput;

/// `policy adopt --school S --from D FILE.toml`: validated like any event, then appended.
pub fn adopt(
    store: &Store,
    school: &str,
    from: &str,
    file: &Path,
    actor: &str,
    vault: Option<&vault::Vault>,
) -> Result<()> {
    let policy = ingest::policy_toml::read(file).map_err(|e| BadInput(e.to_string()))?;
    let json = serde_json::json!({
        "occurred_at": events::time::format_local(Utc::now()),
        "actor": actor,
        "school": school,
        "effective_from": from,
        "policy": policy,
    });
    super::log::record(store, "policy_adopted", &json.to_string(), vault)
}

/// `policy show --school S [--on D]`: the policy in force, as TOML.
pub fn show(
    store: &Store,
    school: &str,
    on: Option<NaiveDate>,
    as_of: Option<DateTime<Utc>>,
) -> Result<()> {
    let on = day_of(on, as_of);
    let tl = plan::school_registry(store, school, as_of).map_err(plan_error)?;
    let world = World::build(&tl);
    world.require_school(school).map_err(bad)?;
    let policy = world.policy_on(school, on);
    println!("# policy of {school} in force on {on}");
    print!("{}", toml::to_string(policy)?);
    Ok(())
}
