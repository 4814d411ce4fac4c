//! Sealing a batch before the append (docs/privacy.md): each draft's personal fields sealed
//! under its subject's key by the key directory's vault, an amendment under its target's.
//!
//! This module owns the lookup of amendment targets for sealing (a correction is sealed under
//! the key its target was sealed under, even one that moves the event to another child); it
//! must never write the store
//! (the caller appends) nor print a personal field.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use events::seal::{self, KeySubject};
use events::{Draft, Envelope, EventKind};
use store::Store;
use vault::Vault;

use super::keys;
use crate::CliError;

/// The key directory's vault, when it holds a master key (a store in clear has none).
pub fn load(db: &Path, keys_dir: Option<&Path>) -> Result<Option<Vault>> {
    let dir = keys::key_dir(db, keys_dir);
    Vault::open_dir(&dir).map_err(|e| CliError::from_vault(&e).into())
}

/// Why a draft of a batch could not be sealed: its index in the batch and the sentence.
#[derive(Debug)]
pub struct Refused {
    /// The draft's index in the batch.
    pub index: usize,
    /// What was wrong, or which key failed.
    pub error: anyhow::Error,
}

/// What sealing needs of an amendment's target: its kind and the subject it was sealed under
/// (or would be).
#[derive(Clone)]
struct Target {
    kind: EventKind,
    subject: Option<KeySubject>,
}

fn target_of_envelope(env: &Envelope) -> Target {
    Target {
        kind: env.event.kind(),
        subject: match &env.sealed {
            Some(s) => KeySubject::parse(&s.key),
            None => seal::subject_of(&env.event, None),
        },
    }
}

/// Seals every draft of a batch in place. Targets are looked up earlier in the batch, then in
/// the store.
pub fn seal_batch(store: &Store, vault: &Vault, drafts: &mut [Draft]) -> Result<(), Refused> {
    let mut batch: HashMap<String, Target> = HashMap::new();
    for (index, d) in drafts.iter_mut().enumerate() {
        let refused = |error: anyhow::Error| Refused { index, error };
        let target = match d.event.target() {
            None => None,
            Some(t) => match batch.get(t) {
                Some(found) => Some(found.clone()),
                None => store
                    .get_by_id(t)
                    .map_err(|e| refused(e.into()))?
                    .map(|env| target_of_envelope(&env)),
            },
        };
        let subject_before =
            seal::subject_of(&d.event, target.as_ref().and_then(|t| t.subject.as_ref()));
        vault
            .seal(d, target.as_ref().map(|t| (t.kind, t.subject.clone())))
            .map_err(|e| refused(CliError::from_vault(&e).into()))?;
        batch.insert(
            d.id.clone(),
            Target {
                kind: d.event.kind(),
                subject: d
                    .sealed
                    .as_ref()
                    .and_then(|s| KeySubject::parse(&s.key))
                    .or(subject_before),
            },
        );
    }
    Ok(())
}
