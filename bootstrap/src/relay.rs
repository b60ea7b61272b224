//! The outbox relay task: publishes committed events as soon as they are committed, and keeps
//! retrying through broker outages until every one is confirmed.
use crate::backoff::{next_pause, reconnect_backoff};
use crate::metrics::Metrics;
use adapters::{OutboxWakeups, PostgresOutbox, RabbitMqEventBus};
use application::RelayOutbox;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub type Relay = RelayOutbox<PostgresOutbox, RabbitMqEventBus>;

/// Runs until `shutdown` is cancelled. Woken by each committed registration; polls every
/// `poll_interval` as well, in case a notification was missed.
pub async fn run_relay(
    relay: Relay,
    mut wakeups: OutboxWakeups,
    poll_interval: Duration,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut backoff = reconnect_backoff();
    let mut failing = false;
    loop {
        let pause = match relay.publish_batch().await {
            Ok(report) => {
                metrics.observe_relay(&report);
                if failing {
                    tracing::info!("outbox relay recovered");
                    failing = false;
                }
                backoff = reconnect_backoff();
                // A full batch that made progress means more may be waiting: go again at once,
                // unless we are stopping (a backlog must not hold up the shutdown).
                let more_waiting = report.claimed == relay.batch_size() && report.published > 0;
                if more_waiting && !shutdown.is_cancelled() {
                    continue;
                }
                if report.claimed == 0 {
                    // Nothing to publish: look at the broker anyway, so that a lost connection
                    // shows in readiness and the metrics, and is mended before the next event.
                    tokio::select! {
                        _ = relay.bus().connect() => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                None
            }
            Err(error) => {
                let error = format!("{:#}", anyhow::Error::new(error));
                if failing {
                    tracing::debug!(%error, "outbox relay still cannot publish");
                } else {
                    tracing::warn!(%error, "outbox relay cannot publish; events stay in the outbox and will be retried");
                }
                failing = true;
                Some(next_pause(&mut backoff))
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {
                // The batch in hand was finished above: nothing claimed is left unmarked.
                relay.bus().close().await;
                return;
            }
            () = async {
                match pause {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => wakeups.wait(poll_interval).await,
                }
            } => {}
        }
    }
}
