//! Account administration and the access log for the operator: `careledger user`, `token`
//! and `access-log`. One implementation (`execute`) runs either directly on a store no
//! service holds, or inside the running service, reached through its local admin socket
//! (`<db>.admin.sock`, a Unix socket only the store's owner may open: mode 0600), so that an
//! admin never has to stop the service.
//!
//! The socket speaks one JSON request line and answers one JSON line. Whoever can open it can
//! already open the store itself, so it carries no further authentication. This module owns
//! that protocol and those commands; it must never be reachable over the network and never
//! print a stored hash.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::accounts::{AccountError, Book, NewAccount};
use crate::policy::{Role, Scope, TokenScope};

/// An operator's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// `user add` (the password already read or made by the CLI).
    UserAdd {
        /// The login name.
        user: String,
        /// The role.
        role: Role,
        /// The staff member.
        staff: Option<String>,
        /// The scope.
        scope: Scope,
        /// The password.
        password: String,
    },
    /// `user list`.
    UserList,
    /// `user disable`.
    UserDisable {
        /// The login name.
        user: String,
    },
    /// `user passwd`.
    UserPasswd {
        /// The login name.
        user: String,
        /// The new password.
        password: String,
    },
    /// `token create`.
    TokenCreate {
        /// The account it acts as.
        user: String,
        /// What it may do.
        scope: TokenScope,
        /// Days until it expires.
        days: u32,
        /// What it is for.
        label: String,
    },
    /// `token revoke`.
    TokenRevoke {
        /// The token's public id.
        id: String,
    },
    /// `access-log`.
    AccessLog {
        /// Only this child's reads.
        child: Option<String>,
        /// Only this account's reads.
        actor: Option<String>,
    },
}

/// The answer: what to print on stdout and stderr, and whether it failed (and how).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    /// For stdout (a listing, a new token): the output to keep.
    pub stdout: String,
    /// For stderr: what was done, or what was wrong.
    pub message: String,
    /// `None` on success; `Some(true)` for bad input (exit 1), `Some(false)` for a fault.
    pub failed_bad_input: Option<bool>,
}

impl AdminResponse {
    fn ok(stdout: String, message: String) -> AdminResponse {
        AdminResponse {
            stdout,
            message,
            failed_bad_input: None,
        }
    }

    fn failed(e: AccountError) -> AdminResponse {
        let bad = matches!(e, AccountError::Invalid(_));
        AdminResponse {
            stdout: String::new(),
            message: e.to_string(),
            failed_bad_input: Some(bad),
        }
    }
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).map_or_else(|e| e.to_string(), |s| s + "\n")
}

/// Runs one request on an open store.
pub fn execute(store: &Store, request: AdminRequest) -> AdminResponse {
    match run(store, request) {
        Ok(r) => r,
        Err(e) => AdminResponse::failed(e),
    }
}

fn run(store: &Store, request: AdminRequest) -> Result<AdminResponse, AccountError> {
    let book = Book::new(store);
    Ok(match request {
        AdminRequest::UserAdd {
            user,
            role,
            staff,
            scope,
            password,
        } => {
            let info = book.add(NewAccount {
                user,
                role,
                staff,
                scope,
                password,
            })?;
            AdminResponse::ok(
                String::new(),
                format!("added {} ({})", info.user, info.role.as_str()),
            )
        }
        AdminRequest::UserList => AdminResponse::ok(pretty(&book.list()?), String::new()),
        AdminRequest::UserDisable { user } => {
            book.disable(&user)?;
            AdminResponse::ok(
                String::new(),
                format!("disabled {user}; its sessions and tokens ended"),
            )
        }
        AdminRequest::UserPasswd { user, password } => {
            book.set_password(&user, &password)?;
            AdminResponse::ok(
                String::new(),
                format!("new password for {user}; its sessions ended"),
            )
        }
        AdminRequest::TokenCreate {
            user,
            scope,
            days,
            label,
        } => {
            if days == 0 || days > 366 {
                return Err(AccountError::Invalid(format!(
                    "days: expected 1 to 366, found {days}"
                )));
            }
            let expires = Utc::now() + chrono::Duration::days(i64::from(days));
            let (token, record) = book.create_token(&user, scope, expires, &label)?;
            AdminResponse::ok(
                format!("{token}\n"),
                format!(
                    "token {} for {user}, expires {}; it is shown once",
                    record.id,
                    events::time::format_local(record.expires_at)
                ),
            )
        }
        AdminRequest::TokenRevoke { id } => {
            if !book.revoke_token(&id)? {
                return Err(AccountError::Invalid(format!("token {id}: no such token")));
            }
            AdminResponse::ok(String::new(), format!("revoked token {id}"))
        }
        AdminRequest::AccessLog { child, actor } => {
            let log = store.access_log().map_err(|e| AccountError::Corrupt {
                key: "access_log".into(),
                why: e.to_string(),
            })?;
            let entries = log.entries().map_err(|e| AccountError::Corrupt {
                key: "access_log".into(),
                why: e.to_string(),
            })?;
            let shown: Vec<_> = entries
                .into_iter()
                .filter(|e| child.is_none() || e.access.child == child)
                .filter(|e| actor.as_ref().is_none_or(|a| &e.access.actor == a))
                .collect();
            AdminResponse::ok(pretty(&shown), String::new())
        }
    })
}

/// The admin socket of the store at `db`: `<db>.admin.sock`, beside it.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".admin.sock");
    db.with_file_name(name)
}

/// Serves the admin socket until the returned task is aborted; the socket file is made
/// owner-only. A stale socket left by a killed service is replaced.
#[cfg(unix)]
pub fn listen(
    path: &Path,
    store: std::sync::Arc<Store>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let response = match serde_json::from_str::<AdminRequest>(&line) {
                    Ok(request) => tokio::task::spawn_blocking(move || execute(&store, request))
                        .await
                        .unwrap_or_else(|e| AdminResponse {
                            stdout: String::new(),
                            message: format!("the service failed: {e}"),
                            failed_bad_input: Some(false),
                        }),
                    Err(e) => AdminResponse {
                        stdout: String::new(),
                        message: format!("the admin request does not decode: {e}"),
                        failed_bad_input: Some(true),
                    },
                };
                let mut out = serde_json::to_vec(&response).unwrap_or_default();
                out.push(b'\n');
                let _ = write.write_all(&out).await;
            });
        }
    }))
}

/// Sends a request to the service holding the store at `db`, if one answers on its admin
/// socket; `None` when no service listens there.
#[cfg(unix)]
pub fn send(db: &Path, request: &AdminRequest) -> Option<std::io::Result<AdminResponse>> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket_path(db)).ok()?;
    let mut exchange = || -> std::io::Result<AdminResponse> {
        let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut answer = String::new();
        std::io::BufReader::new(&stream).read_line(&mut answer)?;
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    };
    Some(exchange())
}
