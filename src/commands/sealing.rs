//! Sealing a batch before the append (docs/privacy.md), as the commands do it: the key
//! directory's vault loaded, and the shared sealing (`careledger::sealing`, which the
//! service's writer uses too) with its failures worded as the CLI words them.
//!
//! This module owns loading the vault and that wording; it must never write the store (the
//! caller appends) nor print a personal field.

use std::path::Path;

use anyhow::Result;
use events::Draft;
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

/// Seals every draft of a batch in place (`careledger::sealing`, shared with the service's
/// writer), each failure worded as the CLI words it.
pub fn seal_batch(store: &Store, vault: &Vault, drafts: &mut [Draft]) -> Result<(), Refused> {
    careledger::sealing::seal_batch(store, vault, drafts).map_err(|r| Refused {
        index: r.index,
        error: match r.error {
            careledger::sealing::SealError::Vault(e) => CliError::from_vault(&e).into(),
            careledger::sealing::SealError::Store(e) => e.into(),
        },
    })
}
