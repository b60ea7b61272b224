//! Every request gets an id (the client's `X-Request-Id`, or a new one) and a W3C trace
//! context (continuing the client's `traceparent`, or a new trace). Both are echoed, put on
//! every log line of the request, and carried into the event a registration records.
use application::TraceContext;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response, Result};
use rand::RngCore;
use std::fmt::Write;
use std::sync::Arc;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The current request's id, for error bodies to quote.
    static REQUEST_ID: String;
}

/// The current request's id, if a request is being served.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

pub async fn correlate<E: Endpoint>(next: Arc<E>, mut request: Request) -> Result<Response> {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let parent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse);
    let traceparent = parent.unwrap_or_else(TraceParent::new_trace).child();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %traceparent.trace_id,
    );
    request.extensions_mut().insert(TraceContext {
        request_id: request_id.clone(),
        traceparent: traceparent.to_string(),
    });
    let response = REQUEST_ID
        .scope(request_id.clone(), next.call(request).instrument(span))
        .await;
    let mut response = response?.into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// A client's id is kept if it is short and plain: it ends up in logs and headers.
fn is_acceptable_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// A W3C Trace Context `traceparent` (version 00).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    span_id: String,
    flags: String,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else (or all-zero ids) is ignored, as the
    /// specification asks, and a new trace starts.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |text: &str| text.bytes().all(|b| b == b'0');
        let valid = version == "00"
            && parts.next().is_none()
            && hex(trace_id, 32)
            && hex(span_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(span_id);
        valid.then(|| Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags: flags.to_owned(),
        })
    }

    fn new_trace() -> Self {
        Self {
            trace_id: random_hex(16),
            span_id: random_hex(8),
            flags: "01".into(),
        }
    }

    /// This service's span within the trace: same trace, a new span id.
    fn child(self) -> Self {
        Self {
            span_id: random_hex(8),
            ..self
        }
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    raw.iter()
        .fold(String::with_capacity(bytes * 2), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_span_of_our_own() {
        let parent = TraceParent::parse(VALID).unwrap();
        assert_eq!(parent.to_string(), VALID);
        let child = parent.clone().child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, "01");
        assert_ne!(child.span_id, parent.span_id);
        assert!(TraceParent::parse(&child.to_string()).is_some());
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for header in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(header).is_none(), "{header:?}");
        }
        assert!(TraceParent::parse(&TraceParent::new_trace().to_string()).is_some());
    }

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_acceptable_id("3f2a-bc:01.x_y"));
        assert!(!is_acceptable_id(""));
        assert!(!is_acceptable_id("a b"));
        assert!(!is_acceptable_id("line\nbreak"));
        assert!(!is_acceptable_id(&"x".repeat(129)));
    }
}
