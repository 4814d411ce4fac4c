//! Sealing a batch before the append (docs/privacy.md): each draft's personal fields sealed
//! under its subject's key by the key directory's vault, an amendment under its target's.
//! Shared by the commands (`record`, `import`) and the service's writer
//! (`careledger::service_plan`), so that both seal alike.
//!
//! This module owns the lookup of amendment targets for sealing (a correction is sealed under
//! the key its target was sealed under, even one that moves the event to another child); it
//! must never write the store (the caller appends) nor print a personal field.

use std::collections::HashMap;

use events::seal::{self, KeySubject};
use events::{Draft, Envelope, EventKind};
use store::{Store, StoreError};
use vault::{Vault, VaultError};

/// Why a draft could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Its amendment target could not be read from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault refused it (an erased child, no subject, a key file that does not open).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Why a draft of a batch could not be sealed: its index in the batch and the error.
#[derive(Debug, thiserror::Error)]
#[error("draft {index} of the batch: {error}")]
pub struct Refused {
    /// The draft's index in the batch.
    pub index: usize,
    /// What was wrong, or which key failed.
    #[source]
    pub error: SealError,
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

/// Seals the drafts of one batch, given in parts (the service's writer seals each request's
/// drafts as it accepts them): an amendment's target is looked up among the drafts sealed
/// before it, then in the store.
#[derive(Default)]
pub struct Sealer {
    batch: HashMap<String, Target>,
}

impl Sealer {
    /// A sealer for a new batch.
    pub fn new() -> Sealer {
        Sealer::default()
    }

    /// Seals `drafts` in place, after those this sealer sealed before, and writes the keys made
    /// for them (all at once, `Vault::write_new_keys`) before it returns: what it sealed may be
    /// appended. A refused draft's index is its index in `drafts`; a key that could not be
    /// written is refused at the first draft that needed a new key.
    pub fn seal(
        &mut self,
        store: &Store,
        vault: &Vault,
        drafts: &mut [Draft],
    ) -> Result<(), Refused> {
        let mut first_new_key = None;
        for (index, d) in drafts.iter_mut().enumerate() {
            let refused = |error: SealError| Refused { index, error };
            let target = match d.event.target() {
                None => None,
                Some(t) => match self.batch.get(t) {
                    Some(found) => Some(found.clone()),
                    None => store
                        .get_by_id(t)
                        .map_err(|e| refused(e.into()))?
                        .map(|env| target_of_envelope(&env)),
                },
            };
            let subject_before =
                seal::subject_of(&d.event, target.as_ref().and_then(|t| t.subject.as_ref()));
            let unwritten = vault.unwritten_keys();
            vault
                .seal_deferred(d, target.as_ref().map(|t| (t.kind, t.subject.clone())))
                .map_err(|e| refused(e.into()))?;
            if first_new_key.is_none() && vault.unwritten_keys() > unwritten {
                first_new_key = Some(index);
            }
            self.batch.insert(
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
        vault.write_new_keys().map_err(|e| Refused {
            index: first_new_key.unwrap_or(0),
            error: e.into(),
        })?;
        Ok(())
    }
}

/// Seals every draft of a batch in place. Targets are looked up earlier in the batch, then in
/// the store.
pub fn seal_batch(store: &Store, vault: &Vault, drafts: &mut [Draft]) -> Result<(), Refused> {
    Sealer::new().seal(store, vault, drafts)
}
