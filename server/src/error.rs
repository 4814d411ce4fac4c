//! The service's one error type and how each becomes an HTTP answer.
//!
//! This module owns status codes and error bodies (JSON: `{"error": …, "errors": […]}`, each
//! of `errors` a field error with file, line, field, expected, found and the CLI's message).
//! It must never put a fault's detail, a note, a password or a token into a body: faults are
//! logged to stderr and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingest::{IngestErrors, LineError};
use serde::Serialize;

/// One field error, as JSON (the CLI's `file:line: field f: expected …, found …` in parts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input's name (`<cli>` for a recorded event, as `careledger record` says).
    pub file: String,
    /// The line, from 1, if one.
    pub line: Option<usize>,
    /// The field path, if one.
    pub field: Option<String>,
    /// What was expected.
    pub expected: String,
    /// What was found, if anything.
    pub found: Option<String>,
    /// The CLI's whole message.
    pub message: String,
}

impl From<&LineError> for FieldError {
    fn from(e: &LineError) -> FieldError {
        FieldError {
            file: e.file.clone(),
            line: e.line,
            field: e.field.clone(),
            expected: e.expected.clone(),
            found: e.found.clone(),
            message: e.to_string(),
        }
    }
}

/// Every way a request fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no session or token, or an invalid one.
    #[error("log in or send a bearer token")]
    Unauthenticated,
    /// 403: the role or token may never do this, or a cross-site request.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (or not in the caller's scope).
    #[error("not found")]
    NotFound,
    /// 400: the input is wrong, field by field.
    #[error("the request is not valid")]
    Invalid(Vec<FieldError>),
    /// 400: a query or path parameter is wrong.
    #[error("{0}")]
    BadParam(String),
    /// 401 after a wrong password (slowed and counted).
    #[error("wrong user name or password")]
    BadLogin,
    /// 503 + Retry-After: the writer's queue is full.
    #[error("the service is busy; try again in a second")]
    Busy,
    /// 503: the service is shutting down.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// 500: logged, not shown.
    #[error("internal error")]
    Fault(String),
}

impl From<IngestErrors> for ApiError {
    fn from(e: IngestErrors) -> ApiError {
        ApiError::Invalid(e.errors.iter().map(FieldError::from).collect())
    }
}

/// A field error of the request itself (not of an input line).
pub fn field_error(field: &str, expected: &str, found: Option<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError::from(&request_line_error(
        field, expected, found,
    ))])
}

/// The problem of a field of the request itself, as `ingest` words a problem (file
/// `<request>`, no line): what `field_error` answers, and what the writer refuses a record with.
pub fn request_line_error(field: &str, expected: &str, found: Option<String>) -> LineError {
    LineError {
        file: "<request>".to_owned(),
        sheet: None,
        line: None,
        column: None,
        field: Some(field.to_owned()),
        expected: expected.to_owned(),
        found,
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthenticated | ApiError::BadLogin => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) | ApiError::BadParam(_) => StatusCode::BAD_REQUEST,
            ApiError::Busy | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Fault(detail) => {
                eprintln!("careledger serve: internal error: {detail}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let errors: &[FieldError] = match &self {
            ApiError::Invalid(e) => e,
            _ => &[],
        };
        let mut response = (
            status,
            Json(Body {
                error: self.to_string(),
                errors,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthenticated | ApiError::BadLogin => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
