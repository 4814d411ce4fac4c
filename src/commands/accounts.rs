//! `user add|list|disable|passwd`, `token create|revoke` and `access-log`, on a store no
//! service holds (`server::accounts::Book` and the store's access log, directly).
//!
//! This module owns what these commands print (a new token or generated password once, on
//! stdout; listings as JSON); it must never print a stored hash, and never decide what an
//! account may do (that is the service's policy).

use std::io::BufRead;

use anyhow::Result;
use server::accounts::{AccountError, Book, NewAccount};
use server::policy::{Role, Scope, TokenScope};
use store::Store;

use crate::BadInput;

/// What an account command asks for, resolved.
#[derive(Debug)]
pub enum AccountsRequest {
    /// `user add`.
    UserAdd {
        user: String,
        role: Role,
        staff: Option<String>,
        scope: Scope,
        password_stdin: bool,
    },
    /// `user list`.
    UserList,
    /// `user disable`.
    UserDisable { user: String },
    /// `user passwd`.
    UserPasswd { user: String, password_stdin: bool },
    /// `token create`.
    TokenCreate {
        user: String,
        scope: TokenScope,
        days: u32,
        label: String,
    },
    /// `token revoke`.
    TokenRevoke { id: String },
    /// `access-log`.
    AccessLog {
        child: Option<String>,
        actor: Option<String>,
    },
}

fn bad(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Invalid(m) => BadInput(m).into(),
        e => e.into(),
    }
}

/// The password: the first line of stdin, else a new random one (printed by the caller).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((line, false));
    }
    Ok((server::accounts::random_secret()[..16].to_owned(), true))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs an account command on an open store.
pub fn run(store: &Store, request: AccountsRequest) -> Result<()> {
    let book = Book::new(store);
    match request {
        AccountsRequest::UserAdd {
            user,
            role,
            staff,
            scope,
            password_stdin,
        } => {
            let (password, made) = password(password_stdin)?;
            let info = book
                .add(NewAccount {
                    user,
                    role,
                    staff,
                    scope,
                    password: password.clone(),
                })
                .map_err(bad)?;
            eprintln!("added {} ({})", info.user, info.role.as_str());
            if made {
                println!("{password}");
            }
            Ok(())
        }
        AccountsRequest::UserList => print_json(&book.list().map_err(bad)?),
        AccountsRequest::UserDisable { user } => {
            book.disable(&user).map_err(bad)?;
            eprintln!("disabled {user}; its sessions and tokens ended");
            Ok(())
        }
        AccountsRequest::UserPasswd {
            user,
            password_stdin,
        } => {
            let (password, made) = password(password_stdin)?;
            book.set_password(&user, &password).map_err(bad)?;
            eprintln!("new password for {user}; its sessions ended");
            if made {
                println!("{password}");
            }
            Ok(())
        }
        AccountsRequest::TokenCreate {
            user,
            scope,
            days,
            label,
        } => {
            let expires = chrono::Utc::now() + chrono::Duration::days(i64::from(days));
            let (token, record) = book
                .create_token(&user, scope, expires, &label)
                .map_err(bad)?;
            eprintln!(
                "token {} for {user}, expires {}; it is shown once:",
                record.id,
                events::time::format_local(record.expires_at)
            );
            println!("{token}");
            Ok(())
        }
        AccountsRequest::TokenRevoke { id } => {
            if !book.revoke_token(&id).map_err(bad)? {
                return Err(BadInput(format!("token {id}: no such token")).into());
            }
            eprintln!("revoked token {id}");
            Ok(())
        }
        AccountsRequest::AccessLog { child, actor } => {
            let entries = store.access_log()?.entries()?;
            let shown: Vec<_> = entries
                .into_iter()
                .filter(|e| child.is_none() || e.access.child == child)
                .filter(|e| actor.as_ref().is_none_or(|a| &e.access.actor == a))
                .collect();
            print_json(&shown)
        }
    }
}
