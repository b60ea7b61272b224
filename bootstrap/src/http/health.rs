//! `/health/live` and `/health/ready`, for load balancers and orchestrators.
use adapters::{BrokerState, PostgresOutbox, database_ready};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sqlx::PgPool;
use std::time::Duration;

/// A readiness check that takes longer than this counts as failed: a load balancer must not
/// wait on a stuck database.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the database may take to count the outbox backlog for readiness, which only reports
/// it.
const BACKLOG_TIME_LIMIT: Duration = Duration::from_millis(500);

#[derive(Tags)]
enum HealthTags {
    /// For load balancers and orchestrators
    Health,
}

/// What readiness depends on.
pub struct Probes {
    pub pool: PgPool,
    pub outbox: PostgresOutbox,
    pub broker: BrokerState,
}

pub struct HealthApi {
    /// `None` only for printing the OpenAPI document.
    probes: Option<Probes>,
}

impl HealthApi {
    pub fn new(probes: Probes) -> Self {
        Self {
            probes: Some(probes),
        }
    }

    pub(crate) fn spec_only() -> Self {
        Self { probes: None }
    }
}

#[derive(Object)]
struct Live {
    /// Always `ok`.
    status: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Ready {
    /// `ready`, or `unavailable` when PostgreSQL is unreachable or not migrated.
    status: String,
    /// `ok`, or why not.
    database: String,
    /// `connected` or `disconnected`: the outbox relay's connection, checked at least every
    /// poll interval. A broker outage does not make the service unready: registration goes
    /// on, events wait.
    broker: String,
    /// Events not yet confirmed by the broker; absent when they could not be counted in time.
    outbox_pending: Option<i64>,
    /// Age in seconds of the oldest of them.
    outbox_oldest_pending_seconds: Option<f64>,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// The service can take requests.
    #[oai(status = 200)]
    Ready(Json<Ready>),
    /// PostgreSQL is unreachable or its schema is behind this build: keep traffic away.
    #[oai(status = 503)]
    Unavailable(Json<Ready>),
}

#[OpenApi(tag = "HealthTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// The process is up and serving HTTP. Restart it only if this fails.
    #[oai(path = "/health/live", method = "get", operation_id = "live")]
    async fn live(&self) -> Json<Live> {
        Json(Live {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// PostgreSQL answers and has every migration applied. Also reports the broker and the
    /// outbox backlog, which do not decide readiness.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse {
        let Some(probes) = &self.probes else {
            return ReadyResponse::Unavailable(Json(unavailable("not wired".into(), "")));
        };
        let broker = if probes.broker.is_connected() {
            "connected"
        } else {
            "disconnected"
        };
        let checked = tokio::time::timeout(CHECK_TIMEOUT, database_ready(&probes.pool))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CHECK_TIMEOUT:?}")));
        match checked {
            Ok(()) => {
                // Reported, never decisive: a backlog that cannot be counted in time is left
                // out, and the service stays ready.
                let backlog = probes.outbox.backlog(BACKLOG_TIME_LIMIT).await.ok();
                ReadyResponse::Ready(Json(Ready {
                    status: "ready".into(),
                    database: "ok".into(),
                    broker: broker.into(),
                    outbox_pending: backlog.map(|backlog| backlog.pending),
                    outbox_oldest_pending_seconds: backlog
                        .and_then(|backlog| backlog.oldest_pending_age)
                        .map(|age| age.as_secs_f64()),
                }))
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "not ready");
                ReadyResponse::Unavailable(Json(unavailable(format!("{error:#}"), broker)))
            }
        }
    }
}

fn unavailable(database: String, broker: &str) -> Ready {
    Ready {
        status: "unavailable".into(),
        database,
        broker: broker.into(),
        outbox_pending: None,
        outbox_oldest_pending_seconds: None,
    }
}
