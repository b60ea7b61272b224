//! Caps request bodies, whether or not they declare their length.
use super::MAX_BODY_BYTES;
use poem::error::ReadBodyError;
use poem::http::StatusCode;
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Endpoint, Error, IntoResponse, Request, Response, Result};
use std::sync::Arc;

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
