//! Account administration, the access log and erasure for the operator: `careledger user`,
//! `token`, `access-log` and `erase`. One implementation (`execute`) runs either directly on a
//! store no service holds, or inside the running service, reached through its local admin
//! socket (`<db>.admin.sock`, a Unix socket only the store's owner may open: mode 0600), so
//! that an admin never has to stop the service. An erasure through the socket is the binary's
//! own `careledger erase` (it holds the key directory), run by the service's writer between
//! two batches (`WriterHandle::exclusive`), so that nothing is sealed under the child's key
//! while it is destroyed.
//!
//! The socket speaks one JSON request line and answers one JSON line. Whoever can open it can
//! already open the store itself, so it carries no further authentication. This module owns
//! that protocol and those commands; it must never be reachable over the network and never
//! print a stored hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::accounts::{AccountError, Book, NewAccount};
use crate::policy::{Role, Scope, TokenScope};
use crate::writer::WriterHandle;

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
    /// `erase --child C --basis TEXT --approved-by STAFF` (docs/privacy.md).
    Erase(EraseRequest),
}

/// An erasure asked of the running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseRequest {
    /// The child whose personal data is erased.
    pub child: String,
    /// Why (the legal basis).
    pub basis: String,
    /// The staff member who approved it.
    pub approved_by: String,
}

/// The binary's erasure (it holds the key directory), run on the store by the writer.
pub type EraseFn = Arc<dyn Fn(&Store, &EraseRequest) -> AdminResponse + Send + Sync>;

/// What the admin socket of a running service reaches besides the store: the writer (an
/// erasure runs on it) and the binary's erasure.
#[derive(Clone)]
pub struct ServiceOps {
    /// The service's writer.
    pub writer: WriterHandle,
    /// The binary's `careledger erase`.
    pub erase: EraseFn,
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
    /// A success: `stdout` to print, `message` for stderr.
    pub fn ok(stdout: String, message: String) -> AdminResponse {
        AdminResponse {
            stdout,
            message,
            failed_bad_input: None,
        }
    }

    /// A failure: bad input (exit 1) or a fault.
    pub fn failure(message: String, bad_input: bool) -> AdminResponse {
        AdminResponse {
            stdout: String::new(),
            message,
            failed_bad_input: Some(bad_input),
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
        // Only a running service is asked this (its socket hands it to the writer); with no
        // service, `careledger erase` erases on the store itself.
        AdminRequest::Erase(e) => AdminResponse::failure(
            format!(
                "the erasure of child {} reached no service: run `careledger erase` with the \
                 key directory",
                e.child
            ),
            false,
        ),
    })
}

/// Runs one request inside the running service: an erasure on its writer, the rest directly.
async fn execute_in_service(
    store: Arc<Store>,
    ops: &ServiceOps,
    request: AdminRequest,
) -> AdminResponse {
    let fault = |e: String| AdminResponse::failure(format!("the service failed: {e}"), false);
    match request {
        AdminRequest::Erase(e) => {
            let erase = ops.erase.clone();
            ops.writer
                .exclusive(move |store| erase(store, &e))
                .await
                .unwrap_or_else(|e| fault(e.to_string()))
        }
        request => tokio::task::spawn_blocking(move || execute(&store, request))
            .await
            .unwrap_or_else(|e| fault(e.to_string())),
    }
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
    store: Arc<Store>,
    ops: ServiceOps,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (store, ops) = (store.clone(), ops.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let response = match serde_json::from_str::<AdminRequest>(&line) {
                    Ok(request) => execute_in_service(store, &ops, request).await,
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
