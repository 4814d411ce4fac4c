//! `user add|list|disable|passwd`, `token create|revoke` and `access-log`: through the
//! running service's admin socket when a service holds the store, else directly on the store
//! — one implementation either way (`server::admin::execute`).
//!
//! This module owns reading a password (stdin, or a new one printed once) and printing the
//! answer; it must never print a stored hash, and never decide what an account may do (that
//! is the service's policy).

use std::io::BufRead;

use anyhow::Result;
use server::admin::{AdminRequest, AdminResponse};
use server::policy::{Role, Scope, TokenScope};

use super::Stores;
use crate::{BadInput, CliError};

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

/// The password: the first line of stdin, else a new random one (printed once).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((line, false));
    }
    Ok((server::accounts::random_secret()[..16].to_owned(), true))
}

/// Runs an account command: through the service when one holds the store, else directly.
pub fn run(stores: &Stores, request: AccountsRequest) -> Result<()> {
    let mut made = None;
    let request = match request {
        AccountsRequest::UserAdd {
            user,
            role,
            staff,
            scope,
            password_stdin,
        } => {
            let (password, new) = password(password_stdin)?;
            made = new.then(|| password.clone());
            AdminRequest::UserAdd {
                user,
                role,
                staff,
                scope,
                password,
            }
        }
        AccountsRequest::UserList => AdminRequest::UserList,
        AccountsRequest::UserDisable { user } => AdminRequest::UserDisable { user },
        AccountsRequest::UserPasswd {
            user,
            password_stdin,
        } => {
            let (password, new) = password(password_stdin)?;
            made = new.then(|| password.clone());
            AdminRequest::UserPasswd { user, password }
        }
        AccountsRequest::TokenCreate {
            user,
            scope,
            days,
            label,
        } => AdminRequest::TokenCreate {
            user,
            scope,
            days,
            label,
        },
        AccountsRequest::TokenRevoke { id } => AdminRequest::TokenRevoke { id },
        AccountsRequest::AccessLog { child, actor } => AdminRequest::AccessLog { child, actor },
    };
    let response = match server::admin::send(&stores.db, &request) {
        Some(answer) => {
            eprintln!("careledger: through the running service");
            answer.map_err(|e| {
                CliError::Environment(format!("talking to the running service: {e}"))
            })?
        }
        None => {
            let store = stores.write()?;
            server::admin::execute(&store, request)
        }
    };
    finish(response, made)
}

/// Prints a service's (or a direct) answer as the command's own; its failure as the exit code
/// the command would have.
pub(super) fn finish(r: AdminResponse, made: Option<String>) -> Result<()> {
    match r.failed_bad_input {
        Some(true) => Err(BadInput(r.message).into()),
        Some(false) => Err(anyhow::anyhow!(r.message)),
        None => {
            if !r.message.is_empty() {
                eprintln!("{}", r.message);
            }
            print!("{}", r.stdout);
            if let Some(p) = made {
                println!("{p}");
            }
            Ok(())
        }
    }
}
