//! `retention [--dry-run] [--on DATE] [--approved-by STAFF]` (rules §13.3, docs/privacy.md):
//! the children kept past their school's retention period after leaving the programme, and
//! their erasure.
//!
//! Who is due is `projections::retention`'s rule, read from the clear parts of every school's
//! scope (no key is needed to decide); each erasure is `erase`'s, in its order (the event,
//! then the key). This module owns the listing and the checks made before the first erasure
//! (a key directory, an approver, a key for every child listed); it must never print a
//! personal field nor erase a child the rule did not list.

use anyhow::Result;
use chrono::NaiveDate;
use events::seal::KeySubject;
use projections::retention::{Due, past_retention};
use store::Store;
use vault::Vault;

use super::{ListOptions, erase, plan_error};
use crate::BadInput;
use crate::output::{self, Listing};
use careledger::plan::{self, Opener, Scope};

/// The erasure event's basis for a child erased by retention.
fn basis(d: &Due) -> String {
    format!(
        "retention: {} years after {} on {} (school {}'s policy, rules §13.3); due on {}",
        d.years, d.status, d.left_on, d.school, d.due_on
    )
}

/// The children past retention on `on`, from the clear parts of every school's scope.
fn due(
    store: &Store,
    on: NaiveDate,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<Due>> {
    let schools: Vec<String> = store
        .registry()?
        .schools()
        .map(|(s, _)| s.to_owned())
        .collect();
    let tl = plan::scope_timeline(store, &Scope::Schools(schools), as_of, &Opener::sealed())
        .map_err(plan_error)?;
    let world = projections::World::build(&tl);
    Ok(past_retention(&tl, &world, on))
}

/// Prints the listing of `due` (`erased`: whether they were erased by this run).
fn print(due: &[Due], erased: bool, list: &ListOptions) -> Result<()> {
    let headers = [
        "child", "school", "status", "left_on", "years", "due_on", "erased",
    ]
    .map(String::from)
    .to_vec();
    let rows = due
        .iter()
        .map(|d| {
            vec![
                d.child.clone(),
                d.school.clone(),
                d.status.to_string(),
                d.left_on.to_string(),
                d.years.to_string(),
                d.due_on.to_string(),
                if erased { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    #[derive(serde::Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        due: &'a Due,
        erased: bool,
    }
    let json: Vec<Row<'_>> = due.iter().map(|d| Row { due: d, erased }).collect();
    let text = output::render(
        &Listing {
            headers,
            rows,
            json: &json,
        },
        list.format,
    )?;
    output::emit(&text, list.out.as_deref())
}

/// `retention --dry-run`: lists the children past retention on `on`.
pub fn list(store: &Store, on: NaiveDate, list: &ListOptions) -> Result<Vec<Due>> {
    let due = due(store, on, list.as_of)?;
    eprintln!(
        "{} children past their school's retention period on {on}; --dry-run: nothing was erased",
        due.len()
    );
    print(&due, false, list)?;
    Ok(due)
}

/// `retention`: erases every child past retention on `on`, one erasure event each, approved
/// by `approved_by`. Everything is checked before the first erasure.
pub fn erase_due(
    store: &Store,
    vault: Option<&Vault>,
    on: NaiveDate,
    approved_by: Option<&str>,
    list: &ListOptions,
) -> Result<()> {
    if list.as_of.is_some() {
        return Err(BadInput(
            "--as-of lists what was known at a past time; an erasure needs the log as it is \
             now: give --as-of with --dry-run only"
                .into(),
        )
        .into());
    }
    let Some(approved_by) = approved_by else {
        return Err(BadInput(
            "--approved-by: name the staff member (staff id) who approves these erasures, or \
             give --dry-run to list them only"
                .into(),
        )
        .into());
    };
    let Some(vault) = vault else {
        return Err(BadInput(
            "this store has no master key in its key directory, so nothing of it is sealed and \
             destroying a key would erase nothing; give --keys DIR where its keys are kept, or \
             migrate a store in clear first (docs/privacy.md)"
                .into(),
        )
        .into());
    };
    if store.registry()?.staff_school(approved_by).is_none() {
        return Err(BadInput(format!(
            "--approved-by {approved_by}: no such staff member in this store"
        ))
        .into());
    }
    let due = due(store, on, None)?;
    let keyless: Vec<&str> = due
        .iter()
        .filter_map(
            |d| match vault.commitment_of(&KeySubject::Child(d.child.clone())) {
                Ok(Some(_)) => None,
                _ => Some(d.child.as_str()),
            },
        )
        .collect();
    if !keyless.is_empty() {
        return Err(BadInput(format!(
            "{} of the children past retention have no data key in {} (their events were \
             written in clear, or a key is unreadable): {}; nothing was erased — migrate the \
             store first (docs/privacy.md)",
            keyless.len(),
            vault.dir().display(),
            keyless.join(", ")
        ))
        .into());
    }
    for d in &due {
        erase::erase(store, Some(vault), &d.child, &basis(d), approved_by)
            .map_err(|e| e.context(format!("erasing child {} (retention)", d.child)))?;
    }
    eprintln!(
        "erased {} children past their school's retention period on {on}, approved by {approved_by}",
        due.len()
    );
    print(&due, true, list)
}
