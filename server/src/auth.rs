//! Authentication: who is asking. A request carries a session cookie (browsers) or a bearer
//! token (scripts); `Caller` is the extractor every protected handler takes, and `login` /
//! `logout` manage sessions.
//!
//! Rules: a session cookie is tried first, then `Authorization: Bearer`; an invalid or expired
//! credential is a 401, never "anonymous". A state-changing request authenticated by cookie
//! must come from the same site (`Sec-Fetch-Site: same-origin`/`none`, else an `Origin`
//! matching `Host`), or it is a 403; bearer requests carry no cookie and are exempt. Session
//! cookies are `HttpOnly; SameSite=Strict; Path=/`, and a login always issues a new id (the
//! old one, if sent, is ended). This module owns those rules; it must never decide what a
//! principal may do (that is `policy`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountError, Book, login_delay};
use crate::error::{ApiError, field_error};
use crate::policy::{Principal, Role, Scope};
use crate::{AppState, blocking};

/// The session cookie's name.
pub const COOKIE: &str = "cl_session";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// From where (the peer address, or `local` in tests without one).
    pub from: String,
    /// The session id, when authenticated by cookie.
    pub session: Option<String>,
}

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
    let v = headers.get(header::AUTHORIZATION)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .ok_or(ApiError::Unauthenticated),
    )
}

/// Whether a request comes from this site: `Sec-Fetch-Site` says same-origin (or none: typed
/// by the user), else `Origin`'s host equals `Host`. A request with neither is not trusted.
pub fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => o
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == h),
        _ => false,
    }
}

fn peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".to_owned())
}

fn fault(e: AccountError) -> ApiError {
    ApiError::Fault(e.to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let from = peer(parts);
        if let Some(id) = session_cookie(&parts.headers) {
            let store = state.0.store.clone();
            let sid = id.clone();
            let principal =
                blocking(move || Book::new(&store).principal_of_session(&sid).map_err(fault))
                    .await?
                    .ok_or(ApiError::Unauthenticated)?;
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            if !safe && !same_site(&parts.headers) {
                return Err(ApiError::Forbidden(
                    "a request with a session cookie must come from this site".to_owned(),
                ));
            }
            return Ok(Caller {
                principal,
                from,
                session: Some(id),
            });
        }
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        let token = token?;
        // Looked up on this thread, not handed to the blocking pool as a session is: two reads
        // of the small accounts tree, which sled keeps in its cache, and no write (an expired
        // session is removed; an expired token is only refused). The hand-off cost more than
        // the reads: 6 % of a 64-client benchmark's samples went to spawning blocking tasks
        // (docs/service.md, "A token is looked up where it arrives").
        let principal = Book::new(&state.0.store)
            .principal_of_token(&token)
            .map_err(fault)?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Caller {
            principal,
            from,
            session: None,
        })
    }
}

/// A login: user name and password.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// Who is logged in (the answer of `login` and `me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The user name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The staff member, if one.
    pub staff: Option<String>,
    /// The scope.
    pub scope: Scope,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Me {
        Me {
            user: p.account.clone(),
            role: p.role,
            staff: p.staff.clone(),
            scope: p.scope.clone(),
        }
    }
}

/// The `Set-Cookie` value of a new session.
pub fn session_set_cookie(id: &str, ttl: chrono::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        ttl.num_seconds()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("cl_session=; Max-Age=0"))
}

/// Checks a login (slowed by earlier failures, counted when wrong) and starts a session.
/// Returns the principal and the new session id.
pub async fn check_login(
    state: &AppState,
    headers: &HeaderMap,
    login: Login,
) -> Result<(Principal, String), ApiError> {
    // A login form posted from another site is refused (login CSRF).
    if headers.contains_key("sec-fetch-site") && !same_site(headers) {
        return Err(ApiError::Forbidden(
            "a login must come from this site".to_owned(),
        ));
    }
    if login.user.is_empty() {
        return Err(field_error(
            "user",
            "a user name",
            Some("an empty string".into()),
        ));
    }
    let store = state.0.store.clone();
    let user = login.user.clone();
    let failures = blocking(move || Book::new(&store).failures(&user).map_err(fault)).await?;
    tokio::time::sleep(login_delay(failures.count)).await;
    let store = state.0.store.clone();
    let old = session_cookie(headers);
    let ttl = state.0.limits.session_ttl;
    blocking(move || {
        let book = Book::new(&store);
        let Some(account) = book.login(&login.user, &login.password).map_err(fault)? else {
            return Err(ApiError::BadLogin);
        };
        if let Some(old) = old {
            book.end_session(&old).map_err(fault)?;
        }
        let id = book.start_session(&account.user, ttl).map_err(fault)?;
        let p = book
            .principal_of_session(&id)
            .map_err(fault)?
            .ok_or(ApiError::Unauthenticated)?;
        Ok((p, id))
    })
    .await
}

/// `POST /api/login` (JSON `{"user", "password"}`): sets the session cookie.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let login: Login = crate::api::json_body(&body)?;
    let (p, id) = check_login(&state, &headers, login).await?;
    let mut response = (StatusCode::OK, axum::Json(Me::from(&p))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_set_cookie(&id, state.0.limits.session_ttl),
    );
    Ok(response)
}

/// Ends the caller's session, if it has one; returns the cookie that clears it.
pub async fn end_session(state: &AppState, caller: &Caller) -> Result<HeaderValue, ApiError> {
    if let Some(id) = caller.session.clone() {
        let store = state.0.store.clone();
        blocking(move || Book::new(&store).end_session(&id).map_err(fault)).await?;
    }
    Ok(HeaderValue::from_static(
        "cl_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
    ))
}
