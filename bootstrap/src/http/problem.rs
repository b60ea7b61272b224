//! One error format for every response: RFC 9457 problem details, as JSON.
use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use poem_openapi::payload::Json as OpenApiJson;
use std::any::Any;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer (RFC 9457). `code` is stable and meant for programs; `detail` for people.
#[derive(Object, Debug, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: `code` carries the machine-readable kind.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable error code, e.g. `VALIDATION_FAILED`, `USER_ALREADY_EXISTS`.
    pub code: String,
    /// For `VALIDATION_FAILED`: every invalid field and what is wrong with it.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
    /// For `INTERNAL_ERROR`: quote it when reporting the problem; the log has the details.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Object, Debug, serde::Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.into(),
            errors: None,
            request_id: None,
        }
    }

    /// A 500 that tells the client nothing but an id to quote; the cause goes to the log.
    pub fn internal(error: &anyhow::Error) -> Self {
        let request_id = super::correlation::current_request_id()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        tracing::error!(%request_id, error = format!("{error:#}"), "request failed unexpectedly");
        Self {
            request_id: Some(request_id),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "an unexpected error occurred",
            )
        }
    }

    /// A 503: a bounded resource (password hashing, database connections) is full, or no
    /// database connection could be had (the pool cannot tell "all busy" from "unreachable").
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "the service cannot take this request now (at capacity, or its database is unreachable); retry after Retry-After seconds",
        )
    }

    /// The code for an error poem or poem-openapi raised before our handler ran.
    pub fn from_framework(status: StatusCode, message: String) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::UNAUTHORIZED => "INVALID_TOKEN",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            s if s.is_server_error() => return Self::internal(&anyhow::anyhow!(message)),
            _ => "MALFORMED_REQUEST",
        };
        Self::new(status, code, without_echo(&message))
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Json(self)
            .with_status(status)
            .with_content_type(PROBLEM_JSON)
            .into_response()
    }
}

/// Seconds a client is asked to wait when the service is at capacity: a hash takes tens of
/// milliseconds, so the line moves quickly.
pub const RETRY_AFTER_AT_CAPACITY: u64 = 1;

/// Whether an unexpected error means "at capacity" (503) rather than "broken" (500).
pub fn at_capacity(error: &anyhow::Error) -> bool {
    application::is_overloaded(error)
        || error
            .chain()
            .any(|cause| matches!(cause.downcast_ref(), Some(sqlx::Error::PoolTimedOut)))
}

/// Whether the database went out of reach under the request (PostgreSQL restarting, a
/// connection killed by an operator or a proxy, a statement cut off by its timeout) or gave up
/// on a transaction that may succeed when tried again: worth a retry, so 503 rather than 500.
pub fn database_interrupted(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| match cause.downcast_ref() {
        Some(sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
        Some(sqlx::Error::Database(error)) => error.code().is_some_and(|code| transient(&code)),
        _ => false,
    })
}

/// SQLSTATEs of a connection lost or a transaction given up for reasons of the moment. Not
/// `08P01` (protocol violation): that one is a bug, and a retry would only repeat it.
fn transient(code: &str) -> bool {
    matches!(
        code,
        // connection exception: lost, never made, refused by the server
        "08000" | "08003" | "08006" | "08001" | "08004" | "08007"
        // query cancelled (statement timeout); too many connections
        | "57014" | "53300"
        // the server ended an idle transaction; serialization failure; deadlock
        | "25P03" | "40001" | "40P01"
    ) || code.starts_with("57P") // operator intervention: shutdown, terminated, starting up
}

/// The answers an operation gives when something fails on our side: 503 when the service is
/// at capacity or lost its database for the moment, 500 otherwise.
pub trait ServerFailure: Sized {
    fn unavailable(problem: OpenApiJson<Problem>, retry_after: u64) -> Self;
    fn internal(problem: OpenApiJson<Problem>) -> Self;

    fn from_unexpected(error: &anyhow::Error) -> Self {
        if at_capacity(error) {
            tracing::debug!(error = format!("{error:#}"), "at capacity; answered 503");
            Self::unavailable(OpenApiJson(Problem::unavailable()), RETRY_AFTER_AT_CAPACITY)
        } else if database_interrupted(error) {
            tracing::warn!(
                error = format!("{error:#}"),
                "the database went out of reach; answered 503"
            );
            Self::unavailable(OpenApiJson(Problem::unavailable()), RETRY_AFTER_AT_CAPACITY)
        } else {
            Self::internal(OpenApiJson(Problem::internal(error)))
        }
    }
}

/// poem-openapi quotes the offending input in some messages ("..., found [\"a\", ...]"); the
/// input may be a password, so the quote is cut off.
fn without_echo(message: &str) -> String {
    match message.find(", found ") {
        Some(cut) => format!("{}.", &message[..cut]),
        None => message.to_owned(),
    }
}

/// Turns any error that escaped the API (unknown route, wrong method, too large, ...) into a
/// problem, so that no client ever sees `text/plain`.
pub async fn from_error(error: poem::Error) -> Response {
    let mut response = Problem::from_framework(error.status(), error.to_string()).into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

pub fn from_panic(_panic: Box<dyn Any + Send + 'static>) -> Response {
    Problem::internal(&anyhow::anyhow!("a request handler panicked")).into_response()
}

#[cfg(test)]
mod tests {
    use super::transient;

    #[test]
    fn a_lost_connection_or_a_transaction_worth_retrying_is_transient() {
        for code in [
            "08006", "08003", "57P01", "57P03", "57014", "25P03", "40001", "40P01",
        ] {
            assert!(transient(code), "{code}");
        }
    }

    #[test]
    fn a_bug_is_not_transient() {
        // protocol violation, division by zero, undefined column, unique violation
        for code in ["08P01", "22012", "42703", "23505"] {
            assert!(!transient(code), "{code}");
        }
    }
}
