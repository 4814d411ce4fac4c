//! `erase`: crypto-shredding of one child's personal data (rules §5.14, docs/privacy.md).
//!
//! The order is the rule: check, record the `child_erased` event (durable, signed like any
//! batch), then destroy the child's data key in the key directory. A crash between the two
//! leaves the event and a live key; running the same command again finishes the erasure.
//!
//! This module owns that order and its refusals; it must never remove anything from the log
//! (the log is append-only: the envelopes stay, their sealed fields become unreadable) nor
//! print a personal field.

use anyhow::Result;
use events::seal::KeySubject;
use events::{Draft, Event, Source};
use store::Store;
use vault::Vault;

use crate::{BadInput, CliError};

/// The erasure event already in the log for `child`, by id.
pub(super) fn recorded_erasure(store: &Store, child: &str) -> Result<Option<(u64, String)>> {
    Ok(store
        .by_child(child, None)?
        .into_iter()
        .find_map(|e| match &e.event {
            Event::ChildErased { key_commitment, .. } => Some((e.seq, key_commitment.clone())),
            _ => None,
        }))
}

/// `erase --child C --basis TEXT --approved-by STAFF`.
pub fn erase(
    store: &Store,
    vault: Option<&Vault>,
    child: &str,
    basis: &str,
    approved_by: &str,
) -> Result<()> {
    let Some(vault) = vault else {
        return Err(BadInput(
            "this store has no master key in its key directory, so nothing of it is sealed and \
             destroying a key would erase nothing; give --keys DIR where its keys are kept, or \
             migrate a store in clear first (docs/privacy.md)"
                .into(),
        )
        .into());
    };
    let registry = store.registry()?;
    if registry.child_school(child).is_none() {
        return Err(BadInput(format!("--child {child}: no such child in this store")).into());
    }
    if registry.staff_school(approved_by).is_none() {
        return Err(BadInput(format!(
            "--approved-by {approved_by}: no such staff member in this store"
        ))
        .into());
    }
    if basis.trim().is_empty() {
        return Err(BadInput(
            "--basis: say why the child's data is erased (the legal basis, e.g. PIPL Art. 47)"
                .into(),
        )
        .into());
    }
    let subject = KeySubject::Child(child.to_owned());
    let recorded = recorded_erasure(store, child)?;
    if let Some(c) = vault
        .erased_commitment(&subject)
        .map_err(|e| CliError::from_vault(&e))?
    {
        return Err(BadInput(format!(
            "child {child} was already erased (key commitment {c}); nothing to do"
        ))
        .into());
    }
    if let Some((seq, _)) = recorded {
        // The event is durable but the key outlived it (a crash in between): finish.
        let c = vault
            .erase(&subject)
            .map_err(|e| CliError::from_vault(&e))?;
        eprintln!(
            "finished the erasure of child {child} recorded at seq {seq}: destroyed its data key \
             (commitment {c})"
        );
        return Ok(());
    }
    let Some(commitment) = vault
        .commitment_of(&subject)
        .map_err(|e| CliError::from_vault(&e))?
    else {
        return Err(BadInput(format!(
            "child {child} has no data key in {}: its events were written in clear (before the \
             store had a master key), so destroying a key would erase nothing; migrate the \
             store first (docs/privacy.md)",
            vault.dir().display()
        ))
        .into());
    };
    let now = chrono::Utc::now();
    let draft = Draft {
        id: format!("erasure-{child}-{}", &commitment[..16]),
        occurred_at: now,
        actor: approved_by.to_owned(),
        event: Event::ChildErased {
            child: child.to_owned(),
            basis: basis.to_owned(),
            approved_by: approved_by.to_owned(),
            key_commitment: commitment.clone(),
        },
        recorded_at: None,
        sealed: None,
    };
    let out = store
        .append(vec![draft], Source::Cli)
        .map_err(|e| CliError::from_store(&e, store.path(), true))?;
    vault
        .erase(&subject)
        .map_err(|e| CliError::from_vault(&e))?;
    eprintln!(
        "recorded the erasure of child {child} as seq {} and destroyed its data key (commitment \
         {commitment}); its personal fields read as erased from now on, in every view and export",
        out.head.seq
    );
    Ok(())
}
