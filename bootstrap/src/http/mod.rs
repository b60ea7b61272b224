//! Inbound HTTP adapter: the poem-openapi API, Swagger UI, and the rules every request meets
//! (body size cap, JSON errors for everything).
mod api;
mod bodies;
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

use poem::endpoint::BoxEndpoint;
use poem::middleware::CatchPanic;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

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

/// The whole HTTP surface: the API, `/docs` (Swagger UI) and `/openapi.json`.
pub fn routes<S: AccountService>(
    api: AuthApi<S>,
    keys: WellKnownApi,
    health: HealthApi,
) -> BoxEndpoint<'static> {
    let service = service(api, keys, health);
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .around(middleware::limit_body)
        .around(middleware::deadline)
        .catch_all_error(problem::from_error)
        .with(CatchPanic::new().with_handler(problem::from_panic))
        .around(middleware::no_store)
        .around(middleware::access_log)
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
