//! Inbound HTTP adapter: the poem-openapi API, Swagger UI, and the rules every request meets
//! (body size cap, JSON errors for everything).
mod api;
mod bodies;
mod correlation;
mod health;
mod middleware;
mod problem;
mod rate_limit;
mod strict_string;
mod well_known;

pub use api::{AccountService, AuthApi};
pub use health::{HealthApi, Probes};
pub use rate_limit::{RateLimitSettings, RateLimits};
pub use well_known::WellKnownApi;

use crate::metrics::Metrics;
use adapters::{AuthCache, BrokerState, PostgresOutbox};
use poem::endpoint::BoxEndpoint;
use poem::middleware::CatchPanic;
use poem::web::Data;
use poem::{EndpointExt, Route, get, handler};
use poem_openapi::OpenApiService;
use std::sync::Arc;

/// Bodies larger than this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn service<S: AccountService>(
    api: AuthApi<S>,
    keys: WellKnownApi,
    health: HealthApi,
) -> OpenApiService<(AuthApi<S>, WellKnownApi, HealthApi), ()> {
    OpenApiService::new((api, keys, health), "registrar", env!("CARGO_PKG_VERSION")).description(
        "Registers users and announces every registration as a `user.registered` event on \
         RabbitMQ (exchange `topic_validateJSON`).",
    )
}

/// What `/metrics` reads.
pub struct MetricsSource {
    pub metrics: Arc<Metrics>,
    pub outbox: PostgresOutbox,
    pub broker: BrokerState,
    pub auth_cache: Arc<AuthCache>,
}

/// The whole HTTP surface: the API, `/docs` (Swagger UI), `/openapi.json` and `/metrics`.
pub fn routes<S: AccountService>(
    api: AuthApi<S>,
    keys: WellKnownApi,
    health: HealthApi,
    source: MetricsSource,
) -> BoxEndpoint<'static> {
    let service = service(api, keys, health);
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    let metrics = source.metrics.clone();
    Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/metrics", get(metrics_endpoint).data(Arc::new(source)))
        .around(middleware::limit_body)
        .around(middleware::deadline)
        .catch_all_error(problem::from_error)
        .with(CatchPanic::new().with_handler(problem::from_panic))
        .around(middleware::no_store)
        .around(middleware::access_log)
        .around(move |next, request| middleware::measure(metrics.clone(), next, request))
        .around(correlation::correlate)
        .boxed()
}

/// The OpenAPI document, as committed in `openapi.json` at the repository root.
#[must_use]
pub fn openapi_spec() -> String {
    let limits = std::sync::Arc::new(RateLimits::new(RateLimitSettings::off()));
    service(
        AuthApi::new(api::SpecOnly, limits),
        WellKnownApi::new(&[]),
        HealthApi::spec_only(),
    )
    .spec()
}

/// Prometheus scrapes this (OpenMetrics text format).
#[handler]
async fn metrics_endpoint(source: Data<&Arc<MetricsSource>>) -> poem::Response {
    let text = source
        .metrics
        .render(&source.outbox, &source.broker, &source.auth_cache)
        .await;
    poem::Response::builder()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text)
}
