//! Accounts, bearer tokens, sessions and failed-login counters: what they hold and how
//! secrets are checked. Used by the service and, directly on a store no service holds, by
//! `careledger user` and `careledger token`.
//!
//! Passwords are argon2id hashes (the `argon2` crate's defaults, PHC strings); tokens and
//! session ids are 32 random bytes, stored only as their SHA-256, so a copy of the store
//! gives no live credential. This module owns those records and checks; it must never store
//! or log a password, a token or a session id in clear, and never decide what a role may do
//! (that is `policy`).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::accounts::AccountTree;
use store::{Store, StoreError};

use crate::policy::{Principal, Role, Scope, TokenScope};

/// A person's account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The login name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The staff member this account is, if one (the actor of what it records).
    pub staff: Option<String>,
    /// Where it may look.
    pub scope: Scope,
    /// The argon2id hash (PHC string).
    pub password_hash: String,
    /// A disabled account cannot log in and its sessions and tokens stop working.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("staff", &self.staff)
            .field("scope", &self.scope)
            .field("password_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// What `user list` shows of an account (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The login name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The staff member, if one.
    pub staff: Option<String>,
    /// Where it may look.
    pub scope: Scope,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Failed logins since the last success.
    pub failed_logins: u32,
}

/// A bearer token as stored (keyed by the token's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A short public id, to revoke it by.
    pub id: String,
    /// The account it acts as.
    pub user: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// A note of what it is for.
    pub label: String,
}

/// A browser session as stored (keyed by the session id's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The account logged in.
    pub user: String,
    /// When the session stops working.
    pub expires_at: DateTime<Utc>,
}

/// Failed logins of an account since its last successful one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// How many.
    pub count: u32,
    /// The last one.
    pub last: Option<DateTime<Utc>>,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode.
    #[error("the stored account record {key} does not decode: {why}")]
    Corrupt {
        /// Its key (a user name or a hash, never a secret).
        key: String,
        /// What was wrong.
        why: String,
    },
    /// The request is wrong (existing user, unknown user, bad name …).
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// 32 random bytes, hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored key of a secret (token or session id): its SHA-256, hex.
pub fn secret_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The argon2id hash of a password.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the stored hash (slow on purpose: call it off the async threads).
pub fn check_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, AccountError> {
    serde_json::from_slice(bytes).map_err(|e| AccountError::Corrupt {
        key: key.to_owned(),
        why: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("account records always encode")
}

/// Checks a user name: 1–64 characters of letters, digits, `-`, `_`, `.`.
fn check_user_name(user: &str) -> Result<(), AccountError> {
    let ok = !user.is_empty()
        && user.chars().count() <= 64
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "user name: expected 1 to 64 letters, digits, '-', '_' or '.', found {user:?}"
        )))
    }
}

/// What a new account needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The login name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The staff member, if one.
    pub staff: Option<String>,
    /// Where it may look.
    pub scope: Scope,
    /// The first password.
    pub password: String,
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

fn check_password_rule(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "password: expected at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The account operations on one store.
pub struct Book<'s> {
    store: &'s Store,
}

impl<'s> Book<'s> {
    /// The accounts of `store`.
    pub fn new(store: &'s Store) -> Book<'s> {
        Book { store }
    }

    /// An account by user name.
    pub fn account(&self, user: &str) -> Result<Option<Account>, AccountError> {
        match self.store.accounts().get(AccountTree::Users, user)? {
            None => Ok(None),
            Some(b) => decode(user, &b).map(Some),
        }
    }

    /// Adds an account. The scope must fit the role (a county for inspector and bureau, a
    /// school otherwise); a school-scoped account's staff member, when given, must be
    /// registered at that school (checked against the store's registry).
    pub fn add(&self, new: NewAccount) -> Result<AccountInfo, AccountError> {
        check_user_name(&new.user)?;
        check_password_rule(&new.password)?;
        if self.account(&new.user)?.is_some() {
            return Err(AccountError::Invalid(format!(
                "user {}: already exists",
                new.user
            )));
        }
        let registry = self.store.registry()?;
        match (&new.scope, new.role.county_scoped()) {
            (Scope::County(_), false) => {
                return Err(AccountError::Invalid(format!(
                    "scope: a {} account is scoped to a school, found a county",
                    new.role.as_str()
                )));
            }
            (Scope::School(_), true) => {
                return Err(AccountError::Invalid(format!(
                    "scope: a {} account is scoped to a county, found a school",
                    new.role.as_str()
                )));
            }
            (Scope::School(s), false) => {
                if registry.school_county(s).is_none() {
                    return Err(AccountError::Invalid(format!(
                        "school: expected a registered school, found {s:?}"
                    )));
                }
            }
            (Scope::County(c), true) => {
                if !registry.schools().any(|(_, county)| county == c) {
                    return Err(AccountError::Invalid(format!(
                        "county: expected the county of a registered school, found {c:?}"
                    )));
                }
            }
        }
        if let Some(staff) = &new.staff {
            let school = registry.staff_school(staff);
            let fits = match &new.scope {
                Scope::School(s) => school == Some(s.as_str()),
                Scope::County(c) => school.and_then(|s| registry.school_county(s)) == Some(c),
            };
            if !fits {
                return Err(AccountError::Invalid(format!(
                    "staff: expected a staff member registered in the account's scope, found {staff:?}"
                )));
            }
        } else if matches!(new.role, Role::Teacher | Role::Counselor) {
            return Err(AccountError::Invalid(format!(
                "staff: a {} account must be a staff member (--staff)",
                new.role.as_str()
            )));
        }
        let account = Account {
            user: new.user,
            role: new.role,
            staff: new.staff,
            scope: new.scope,
            password_hash: hash_password(&new.password)?,
            disabled: false,
            created_at: Utc::now(),
        };
        self.store
            .accounts()
            .put(AccountTree::Users, &account.user, &encode(&account))?;
        self.info(&account)
    }

    fn info(&self, a: &Account) -> Result<AccountInfo, AccountError> {
        Ok(AccountInfo {
            user: a.user.clone(),
            role: a.role,
            staff: a.staff.clone(),
            scope: a.scope.clone(),
            disabled: a.disabled,
            failed_logins: self.failures(&a.user)?.count,
        })
    }

    /// Every account, by user name.
    pub fn list(&self) -> Result<Vec<AccountInfo>, AccountError> {
        let mut out = Vec::new();
        for (k, v) in self.store.accounts().list(AccountTree::Users)? {
            let a: Account = decode(&k, &v)?;
            out.push(self.info(&a)?);
        }
        Ok(out)
    }

    fn existing(&self, user: &str) -> Result<Account, AccountError> {
        self.account(user)?
            .ok_or_else(|| AccountError::Invalid(format!("user {user}: no such account")))
    }

    /// Disables an account and ends its sessions and tokens.
    pub fn disable(&self, user: &str) -> Result<(), AccountError> {
        let mut a = self.existing(user)?;
        a.disabled = true;
        self.store
            .accounts()
            .put(AccountTree::Users, user, &encode(&a))?;
        self.end_sessions_of(user)?;
        for t in self.tokens()? {
            if t.1.user == user {
                self.store.accounts().remove(AccountTree::Tokens, &t.0)?;
            }
        }
        Ok(())
    }

    /// Sets a new password and ends the account's sessions.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), AccountError> {
        check_password_rule(password)?;
        let mut a = self.existing(user)?;
        a.password_hash = hash_password(password)?;
        self.store
            .accounts()
            .put(AccountTree::Users, user, &encode(&a))?;
        self.end_sessions_of(user)
    }

    fn end_sessions_of(&self, user: &str) -> Result<(), AccountError> {
        let accounts = self.store.accounts();
        for (k, v) in accounts.list(AccountTree::Sessions)? {
            let s: SessionRecord = decode(&k, &v)?;
            if s.user == user {
                accounts.remove(AccountTree::Sessions, &k)?;
            }
        }
        Ok(())
    }

    fn tokens(&self) -> Result<Vec<(String, TokenRecord)>, AccountError> {
        let mut out = Vec::new();
        for (k, v) in self.store.accounts().list(AccountTree::Tokens)? {
            out.push((k.clone(), decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Creates a token for `user`; returns the token (shown once) and its record.
    pub fn create_token(
        &self,
        user: &str,
        scope: TokenScope,
        expires_at: DateTime<Utc>,
        label: &str,
    ) -> Result<(String, TokenRecord), AccountError> {
        let a = self.existing(user)?;
        if a.disabled {
            return Err(AccountError::Invalid(format!("user {user}: disabled")));
        }
        if expires_at <= Utc::now() {
            return Err(AccountError::Invalid(
                "expires: expected a time in the future".to_owned(),
            ));
        }
        let secret = format!("clt_{}", random_secret());
        let key = secret_key(&secret);
        let record = TokenRecord {
            id: key[..12].to_owned(),
            user: user.to_owned(),
            scope,
            expires_at,
            label: label.to_owned(),
        };
        self.store
            .accounts()
            .put(AccountTree::Tokens, &key, &encode(&record))?;
        Ok((secret, record))
    }

    /// The account a token (by public id) acts as, if there is such a token.
    pub fn token_owner(&self, id: &str) -> Result<Option<String>, AccountError> {
        Ok(self
            .tokens()?
            .into_iter()
            .find(|(_, t)| t.id == id)
            .map(|(_, t)| t.user))
    }

    /// Revokes the token with this public id; whether there was one.
    pub fn revoke_token(&self, id: &str) -> Result<bool, AccountError> {
        for (k, t) in self.tokens()? {
            if t.id == id {
                return Ok(self.store.accounts().remove(AccountTree::Tokens, &k)?);
            }
        }
        Ok(false)
    }

    /// The principal a bearer token stands for, if it is valid, unexpired and its account
    /// enabled.
    pub fn principal_of_token(&self, token: &str) -> Result<Option<Principal>, AccountError> {
        let key = secret_key(token);
        let Some(bytes) = self.store.accounts().get(AccountTree::Tokens, &key)? else {
            return Ok(None);
        };
        let t: TokenRecord = decode(&key, &bytes)?;
        if t.expires_at <= Utc::now() {
            return Ok(None);
        }
        Ok(self.enabled(&t.user)?.map(|a| principal(&a, Some(t.scope))))
    }

    fn enabled(&self, user: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.account(user)?.filter(|a| !a.disabled))
    }

    /// Starts a session for `user`; returns the session id (the cookie's value).
    pub fn start_session(&self, user: &str, ttl: chrono::Duration) -> Result<String, AccountError> {
        let id = random_secret();
        let record = SessionRecord {
            user: user.to_owned(),
            expires_at: Utc::now() + ttl,
        };
        self.store
            .accounts()
            .put(AccountTree::Sessions, &secret_key(&id), &encode(&record))?;
        Ok(id)
    }

    /// Ends a session (logout, or the old id at a new login).
    pub fn end_session(&self, id: &str) -> Result<(), AccountError> {
        self.store
            .accounts()
            .remove(AccountTree::Sessions, &secret_key(id))?;
        Ok(())
    }

    /// The principal of a session id, if the session is live and its account enabled.
    pub fn principal_of_session(&self, id: &str) -> Result<Option<Principal>, AccountError> {
        let key = secret_key(id);
        let Some(bytes) = self.store.accounts().get(AccountTree::Sessions, &key)? else {
            return Ok(None);
        };
        let s: SessionRecord = decode(&key, &bytes)?;
        if s.expires_at <= Utc::now() {
            self.store.accounts().remove(AccountTree::Sessions, &key)?;
            return Ok(None);
        }
        Ok(self.enabled(&s.user)?.map(|a| principal(&a, None)))
    }

    /// Failed logins of `user` since the last success.
    pub fn failures(&self, user: &str) -> Result<Failures, AccountError> {
        match self.store.accounts().get(AccountTree::Logins, user)? {
            None => Ok(Failures::default()),
            Some(b) => decode(user, &b),
        }
    }

    /// Checks a login. Counts a failure (for existing and unknown names alike) and clears
    /// the count on success. Returns the account on success.
    pub fn login(&self, user: &str, password: &str) -> Result<Option<Account>, AccountError> {
        let account = self.enabled(user)?;
        let ok = match &account {
            Some(a) => check_password(password, &a.password_hash),
            None => {
                // Same work for an unknown name, so timing does not tell names apart.
                let _ = check_password(password, dummy_hash());
                false
            }
        };
        let accounts = self.store.accounts();
        if ok {
            if self.failures(user)?.count > 0 {
                accounts.remove(AccountTree::Logins, user)?;
            }
            Ok(account)
        } else {
            if check_user_name(user).is_ok() {
                let mut f = self.failures(user)?;
                f.count = f.count.saturating_add(1);
                f.last = Some(Utc::now());
                accounts.put(AccountTree::Logins, user, &encode(&f))?;
            }
            Ok(None)
        }
    }
}

/// An argon2id hash of a random string, checked against for unknown user names.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

/// The delay before answering a login attempt for an account with `failures` failed
/// attempts: 0 at first, then 250 ms doubling per failure, at most 8 s.
pub fn login_delay(failures: u32) -> std::time::Duration {
    if failures == 0 {
        return std::time::Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1u64 << failures.saturating_sub(1).min(5));
    std::time::Duration::from_millis(ms.min(8_000))
}

fn principal(a: &Account, token: Option<TokenScope>) -> Principal {
    Principal {
        account: a.user.clone(),
        role: a.role,
        staff: a.staff.clone(),
        scope: a.scope.clone(),
        token,
    }
}
