//! Sealing a batch before the append (docs/privacy.md): each draft's personal fields sealed
//! under its subject's key by the key directory's vault, an amendment under its target's.
//!
//! This module owns the lookup of amendment targets for sealing and the rule that a
//! correction may not move a sealed event to another child; it must never write the store
//! (the caller appends) nor print a personal field.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use events::seal::{self, KeySubject};
use events::{Draft, Envelope, Event, EventKind};
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

/// What sealing needs of an amendment's target: its kind, the subject it was sealed under
/// (or would be), and whether it carries sealed fields.
#[derive(Clone)]
struct Target {
    kind: EventKind,
    subject: Option<KeySubject>,
    sealed: bool,
}

fn target_of_envelope(env: &Envelope) -> Target {
    Target {
        kind: env.event.kind(),
        subject: match &env.sealed {
            Some(s) => KeySubject::parse(&s.key),
            None => seal::subject_of(&env.event, None),
        },
        sealed: env.sealed.is_some(),
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
        if let (Event::Corrected { changes, .. }, Some(t)) = (&d.event, &target)
            && t.sealed
            && let Some(new_child) = changes.get("child").and_then(|v| v.as_str())
            && t.subject != Some(KeySubject::Child(new_child.to_owned()))
        {
            return Err(refused(
                crate::BadInput(format!(
                    "a correction may not move event {} to another child ({new_child}) in an \
                     encrypted store: its personal fields are sealed under the first child's \
                     key (docs/privacy.md); retract it and record it again for {new_child}",
                    d.event.target().unwrap_or_default()
                ))
                .into(),
            ));
        }
        let subject_before =
            seal::subject_of(&d.event, target.as_ref().and_then(|t| t.subject.as_ref()));
        vault
            .seal(d, target.as_ref().map(|t| (t.kind, t.subject.clone())))
            .map_err(|e| refused(CliError::from_vault(&e).into()))?;
        batch.insert(
            d.id.clone(),
            Target {
                kind: d.event.kind(),
                subject: subject_before,
                sealed: d.sealed.is_some(),
            },
        );
    }
    Ok(())
}
