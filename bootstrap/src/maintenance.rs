//! Periodic clean-up: revocations and refresh tokens that have expired anyway.
use adapters::PostgresSessionStore;
use adapters::SystemClock;
use application::{Clock, SessionStore};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PRUNE_EVERY: Duration = Duration::from_secs(15 * 60);

pub async fn run_maintenance(sessions: PostgresSessionStore, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        match sessions.prune_expired(SystemClock.now()).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned expired revocations and refresh tokens"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "could not prune expired sessions data"
            ),
        }
    }
}
