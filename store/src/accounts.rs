//! The service's accounts, sessions, bearer tokens and failed-login counters: records kept in
//! sled trees of their own beside the log (`acct_users`, `acct_sessions`, `acct_tokens`,
//! `acct_logins`). They are not events of the care log — they are not about children — so
//! they are plain keyed records that may be overwritten and removed.
//!
//! This module owns only where those records live and that a write is durable before it
//! returns; the values are opaque bytes the service encodes. It must never touch the log's
//! trees, nor hash, check or interpret a password or a token (that is the service's).

use crate::log::{Store, StoreError};

/// Which of the account trees a record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTree {
    /// People's accounts, keyed by user name.
    Users,
    /// Browser sessions, keyed by the hash of the session id.
    Sessions,
    /// Bearer tokens, keyed by the hash of the token.
    Tokens,
    /// Failed-login counters, keyed by user name.
    Logins,
}

impl AccountTree {
    fn name(self) -> &'static str {
        match self {
            AccountTree::Users => "acct_users",
            AccountTree::Sessions => "acct_sessions",
            AccountTree::Tokens => "acct_tokens",
            AccountTree::Logins => "acct_logins",
        }
    }
}

/// A handle on the account trees of one open store.
pub struct Accounts<'s> {
    store: &'s Store,
}

impl Store {
    /// The account trees of this store (created empty on first use).
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }
}

impl Accounts<'_> {
    fn tree(&self, tree: AccountTree) -> Result<sled::Tree, StoreError> {
        Ok(self.store.sled_db().open_tree(tree.name())?)
    }

    /// The record under `key`, if any.
    pub fn get(&self, tree: AccountTree, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree(tree)?.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Writes a record, durably: it is on disk when this returns `Ok`.
    pub fn put(&self, tree: AccountTree, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree(tree)?.insert(key.as_bytes(), value)?;
        self.store.sync_db()
    }

    /// Removes a record, durably; whether there was one.
    pub fn remove(&self, tree: AccountTree, key: &str) -> Result<bool, StoreError> {
        let had = self.tree(tree)?.remove(key.as_bytes())?.is_some();
        if had {
            self.store.sync_db()?;
        }
        Ok(had)
    }

    /// Every record of a tree, in key order.
    pub fn list(&self, tree: AccountTree) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(tree)?.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }
}
