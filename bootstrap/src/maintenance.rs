//! Periodic clean-up: revocations and refresh tokens that have expired anyway, and rate-limit
//! state of clients that have gone quiet.
use crate::http::RateLimits;
use adapters::{PostgresIdempotencyStore, PostgresOutbox, PostgresSessionStore, SystemClock};
use application::{Clock, SessionStore};
use domain::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_secs(60);
/// Expired rows are harmless until pruned, so this need not be frequent.
const PRUNE_EVERY_TICKS: u32 = 15;

/// The stores that hold data which expires.
pub struct Expiring {
    pub sessions: PostgresSessionStore,
    pub idempotency: PostgresIdempotencyStore,
    pub outbox: PostgresOutbox,
    pub outbox_retention: Duration,
}

pub async fn run_maintenance(
    expiring: Expiring,
    limits: Arc<RateLimits>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(TICK);
    for tick in 0u32.. {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        limits.forget_idle();
        if tick % PRUNE_EVERY_TICKS == 0 {
            prune(&expiring).await;
        }
    }
}

async fn prune(expiring: &Expiring) {
    let now = SystemClock.now();
    let retention =
        chrono::TimeDelta::from_std(expiring.outbox_retention).unwrap_or(chrono::TimeDelta::MAX);
    let published_before = Timestamp::from_datetime(now.as_datetime() - retention);
    match expiring.outbox.prune_published(published_before).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            "pruned published outbox events past their retention"
        ),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "could not prune the outbox"),
    }
    match expiring.idempotency.prune_expired(now).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned expired idempotency keys"),
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "could not prune idempotency keys"
        ),
    }
    match expiring.sessions.prune_expired(now).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned expired revocations and refresh tokens"),
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "could not prune expired session data"
        ),
    }
}
