//! What every request goes through: a body cap, a deadline, and one access-log line.
use super::MAX_BODY_BYTES;
use crate::metrics::{HttpLabels, Metrics};
use poem::error::ReadBodyError;
use poem::http::header::CACHE_CONTROL;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Endpoint, Error, IntoResponse, Request, Response, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longer than any healthy request takes (a hash, two transactions); a request still running
/// then waits on something that is stuck, and the client is better told so.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Refuses a declared length over the cap at once, and otherwise reads at most the cap, so
/// that a chunked body cannot grow without bound either.
pub async fn limit_body<E: Endpoint>(next: Arc<E>, mut request: Request) -> Result<Response> {
    let too_large = || {
        Error::from_string(
            "request body is larger than 64 KiB",
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    let declared = request.headers().typed_get::<ContentLength>();
    if declared.is_some_and(|ContentLength(length)| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = request
        .take_body()
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|error| match error {
            ReadBodyError::PayloadTooLarge => too_large(),
            other => Error::from_string(
                format!("cannot read request body: {other}"),
                StatusCode::BAD_REQUEST,
            ),
        })?;
    request.set_body(body);
    Ok(next.call(request).await?.into_response())
}

/// Gives up on a request after [`REQUEST_DEADLINE`] with 503. Dropping it rolls back any
/// transaction it holds.
pub async fn deadline<E: Endpoint>(next: Arc<E>, request: Request) -> Result<Response> {
    match tokio::time::timeout(REQUEST_DEADLINE, next.call(request)).await {
        Ok(response) => Ok(response?.into_response()),
        Err(_) => Err(Error::from_string(
            "the request took too long; try again",
            StatusCode::SERVICE_UNAVAILABLE,
        )),
    }
}

/// Answers carrying tokens or account data must not be kept by caches (RFC 6749, 5.1).
pub async fn no_store<E: Endpoint>(next: Arc<E>, request: Request) -> Result<Response> {
    let private = request.uri().path().starts_with("/auth/");
    let mut response = next.call(request).await?.into_response();
    if private {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// Method, path, status and duration. Not the query string: clients put secrets there too.
pub async fn access_log<E: Endpoint>(next: Arc<E>, request: Request) -> Result<Response> {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.call(request).await?.into_response();
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}

/// The routes metrics are labelled with; anything else is `other`, so that scanners probing
/// random paths cannot blow up the number of series.
const ROUTES: [&str; 10] = [
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/auth/me",
    "/auth/logout",
    "/.well-known/jwks.json",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
];

fn route_label(path: &str) -> &'static str {
    match ROUTES.iter().find(|route| **route == path) {
        Some(route) => route,
        None if path == "/docs" || path.starts_with("/docs/") => "/docs",
        None => "other",
    }
}

/// The method as a metrics label: one of HTTP's own, else `other`. A client can send any
/// token as a method, and each new label value would be a new series kept for ever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every answer by route, method and status, and counts new accounts.
pub async fn measure<E: Endpoint>(
    metrics: Arc<Metrics>,
    next: Arc<E>,
    request: Request,
) -> Result<Response> {
    let route = route_label(request.uri().path());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.call(request).await?.into_response();
    let status = response.status();
    let new_account = route == "/auth/register"
        && status == StatusCode::CREATED
        && !response.headers().contains_key("idempotent-replayed");
    metrics.observe_request(
        HttpLabels {
            route,
            method,
            status: status.as_u16(),
        },
        started.elapsed(),
        new_account,
    );
    Ok(response)
}
