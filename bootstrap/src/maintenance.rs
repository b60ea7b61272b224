//! Periodic clean-up: revocations and refresh tokens that have expired anyway, and rate-limit
//! state of clients that have gone quiet.
use crate::http::RateLimits;
use adapters::{PostgresIdempotencyStore, PostgresSessionStore, SystemClock};
use application::{Clock, SessionStore};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_secs(60);
/// Expired rows are harmless until pruned, so this need not be frequent.
const PRUNE_EVERY_TICKS: u32 = 15;

pub async fn run_maintenance(
    sessions: PostgresSessionStore,
    idempotency: PostgresIdempotencyStore,
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
            prune(&sessions, &idempotency).await;
        }
    }
}

async fn prune(sessions: &PostgresSessionStore, idempotency: &PostgresIdempotencyStore) {
    let now = SystemClock.now();
    match idempotency.prune_expired(now).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned expired idempotency keys"),
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "could not prune idempotency keys"
        ),
    }
    match sessions.prune_expired(now).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned expired revocations and refresh tokens"),
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "could not prune expired session data"
        ),
    }
}
