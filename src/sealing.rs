//! Sealing a batch before the append (docs/privacy.md), shared by the `careledger` binary
//! (`import`, `record`, `policy adopt`) and the benchmarks, which must measure the very sealing
//! the commands do: each draft's personal fields sealed under its subject's key by the key
//! directory's vault, an amendment under the key its target was sealed under (even one that
//! moves the event to another child).
//!
//! It owns the lookup of amendment targets for sealing, earlier in the batch, then in the
//! store; it must never write the store (the caller appends) nor word an error for a person
//! (the binary does).

use std::collections::HashMap;

use events::seal::{self, KeySubject};
use events::{Draft, Envelope, EventKind};
use store::{Store, StoreError};
use vault::{Vault, VaultError};

/// Why a draft of a batch could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealFailure {
    /// The store could not be read for an amendment's target.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault refused (an erased key, no subject, a key file).
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A draft that could not be sealed: its index in the batch and why.
#[derive(Debug)]
pub struct Refused {
    /// The draft's index in the batch.
    pub index: usize,
    /// What failed.
    pub error: SealFailure,
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
        let refused = |error: SealFailure| Refused { index, error };
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
            .map_err(|e| refused(e.into()))?;
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
