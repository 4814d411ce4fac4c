//! `migrate --from OLD --to NEW` (docs/privacy.md, "Migration"): a store — in clear, or partly
//! sealed — copied into a new store whose personal fields are all sealed.
//!
//! Every envelope of the old log, in order, becomes a draft with the same id, actor, event and
//! both times (`Source::Migration`), opened with the old key directory when it has one and
//! sealed under the new one's keys (a correction under its target's key, as an append seals
//! it). The new log is a new chain: its hashes and checkpoints are its own. Erased keys are
//! carried over as tombstones, and an erased child's events are written in their erased form,
//! never sealed anew. This module owns that copy; it must never write into an existing store
//! or key, nor leave a half-made store behind: on any failure the new store (and a key
//! directory it made) is removed.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use events::seal::{self, KeySubject};
use events::{Draft, EventKind, Source};
use vault::{Reader, Vault};

use super::{Stores, keys, sealing};
use crate::{BadInput, CliError};
use careledger::plan::Opener;

/// Drafts appended per batch.
const BATCH: usize = 5_000;

/// What sealing needs of an earlier event: its kind and the subject it was sealed under.
type Target = (EventKind, Option<KeySubject>);

/// `migrate`: `old` is read (with its key directory), `new` is made.
pub fn migrate(old: &Stores, new: &Stores) -> Result<()> {
    let to = new.db.as_path();
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(BadInput(format!(
            "--to {}: something already exists there; migrate makes a new store and never \
             writes into an existing one; nothing was written",
            to.display()
        ))
        .into());
    }
    let new_keys = keys::key_dir(to, new.keys.as_deref());
    let keys_existed = std::fs::symlink_metadata(&new_keys).is_ok();
    let source = old.read()?;
    let old_vault = sealing::load(&old.db, old.keys.as_deref())?;
    keys::init(to, new.keys.as_deref(), None)?;
    let copied = copy(&source, old_vault.as_ref(), new);
    if copied.is_err() {
        // Nothing half-made stays: the target did not exist, nor (then) its key directory.
        let _ = std::fs::remove_dir_all(to);
        if !keys_existed {
            let _ = std::fs::remove_dir_all(&new_keys);
        }
    }
    let (events, tombstones) = copied?;
    eprintln!(
        "migrated {events} events of {} into the new sealed store {} (a new chain; {tombstones} \
         erased keys carried over); verify it, then keep the old store until the new one is \
         backed up",
        old.db.display(),
        to.display()
    );
    Ok(())
}

/// Copies every envelope of `source` into the new store; returns (events, tombstones).
fn copy(source: &store::Store, old_vault: Option<&Vault>, new: &Stores) -> Result<(u64, usize)> {
    let store = new.write()?;
    keys::for_append(&store, &new.db, new.keys.as_deref())?;
    let vault = sealing::load(&new.db, new.keys.as_deref())?
        .context("the new store's key directory has no master key")?;
    let tombstones = match old_vault {
        Some(v) => vault
            .copy_tombstones(v)
            .map_err(|e| CliError::from_vault(&e))?,
        None => 0,
    };
    let open = Opener::new(old_vault, Reader::Counselor);
    let mut targets: HashMap<String, Target> = HashMap::new();
    let mut erased: HashMap<String, bool> = HashMap::new();
    let mut batch: Vec<Draft> = Vec::with_capacity(BATCH);
    let mut n = 0u64;
    for env in source.scan(None) {
        let env = env?;
        let stored = env.sealed.as_ref().and_then(|s| KeySubject::parse(&s.key));
        let target = env.event.target().and_then(|t| targets.get(t)).cloned();
        let env = open.open(env).map_err(|e| CliError::from_vault(&e))?;
        let kind = env.event.kind();
        let mut d = Draft {
            id: env.id,
            occurred_at: env.occurred_at,
            actor: env.actor,
            event: env.event,
            recorded_at: Some(env.recorded_at),
            sealed: None,
        };
        let subject = stored
            .or_else(|| seal::subject_of(&d.event, target.as_ref().and_then(|t| t.1.as_ref())));
        let gone = match &subject {
            Some(s @ KeySubject::Child(_)) => match erased.get(&s.label()) {
                Some(g) => *g,
                None => {
                    let g = vault
                        .erased_commitment(s)
                        .map_err(|e| CliError::from_vault(&e))?
                        .is_some();
                    erased.insert(s.label(), g);
                    g
                }
            },
            _ => false,
        };
        if gone {
            // Its key was erased: nothing of it is sealed again, and whatever the old store
            // still held in clear (events written before it had keys) is left out too.
            let (clear, _) = seal::split(&d.event, target.as_ref().map(|t| t.0))
                .and_then(|(c, p)| seal::erased(&c).map(|c| (c, p)))
                .map_err(|e| CliError::Damaged(format!("event {}: {e}", d.id)))?;
            d.event = clear;
        } else {
            vault
                .seal_deferred(&mut d, target.map(|t| (t.0, t.1)))
                .map_err(|e| CliError::from_vault(&e))?;
        }
        let sealed_under = d.sealed.as_ref().and_then(|s| KeySubject::parse(&s.key));
        targets.insert(d.id.clone(), (kind, sealed_under.or(subject)));
        batch.push(d);
        if batch.len() == BATCH {
            n += append(&store, &vault, &mut batch)?;
        }
    }
    n += append(&store, &vault, &mut batch)?;
    Ok((n, tombstones))
}

/// Appends a batch, the keys made for it written first (`Vault::write_new_keys`).
fn append(store: &store::Store, vault: &Vault, batch: &mut Vec<Draft>) -> Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    vault
        .write_new_keys()
        .map_err(|e| CliError::from_vault(&e))?;
    let out = store
        .append(std::mem::take(batch), Source::Migration)
        .map_err(|e| CliError::from_store(&e, store.path(), true))?;
    Ok(out.appended)
}
