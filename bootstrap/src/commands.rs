//! The command line's jobs besides `serve`: listeners only, migrations, the outbox.
use crate::app::{database, event_bus, relay_outbox};
use crate::listeners::Listeners;
use crate::settings::Settings;
use adapters::{BrokerState, OutboxStatus, Setup};
use application::{PublishOutcome, wants};
use domain::Timestamp;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the listeners named in `only` (all of them when empty), and nothing else, until
/// `shutdown` completes: to scale listeners apart from the API.
///
/// # Errors
/// When PostgreSQL is unreachable or a name is not a listener's.
pub async fn consume(
    settings: Settings,
    only: &[String],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut listeners = built_in_listeners(&settings).await?;
    if !only.is_empty() {
        listeners.retain(only)?;
    }
    tracing::info!(listeners = %listeners.names().join(", "), "consuming");
    let (stop, failed) = (CancellationToken::new(), CancellationToken::new());
    let consumers = listeners.start(&stop, &failed);
    tokio::select! {
        () = shutdown => {}
        () = failed.cancelled() => {}
    }
    // As `serve`: each listener finishes the message in hand, within the shutdown deadline.
    stop.cancel();
    let finished = async {
        for consumer in consumers {
            let _ = consumer.await;
        }
    };
    if tokio::time::timeout(settings.shutdown_timeout, finished)
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?settings.shutdown_timeout, "listeners did not stop in time; exiting anyway (unacked messages are redelivered)");
    }
    tracing::info!("stopped");
    anyhow::ensure!(
        !failed.is_cancelled(),
        "a listener's consumer failed (see the log above); stopped so that a supervisor restarts it"
    );
    Ok(())
}

/// Creates the database if needed and applies the migrations.
///
/// # Errors
/// When PostgreSQL is unreachable or a migration fails.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    database(settings, 2, Setup::Prepare).await?;
    Ok(())
}

/// Pending events, the age of the oldest, and how many went out in the last hour.
///
/// # Errors
/// When PostgreSQL is unreachable.
pub async fn outbox_status(settings: &Settings) -> anyhow::Result<OutboxStatus> {
    let pool = database(settings, 2, Setup::Existing).await?;
    relay_outbox(&pool).status().await
}

/// Page size of a replay: one publish batch, confirmed before the next is read.
const REPLAY_BATCH: usize = 500;

/// Re-delivers the retained events (published or not) that occurred at or after `since` and
/// that `listener` wants, to that listener's queue only: a new listener is backfilled, and
/// no other listener sees anything. Listeners deduplicate on the event id, so a replay over
/// events a listener has seen has no second effect.
///
/// # Errors
/// When a service is unreachable, `listener` is unknown, or the broker refuses an event
/// (nothing is skipped silently: rerun the replay).
pub async fn replay(
    settings: &Settings,
    listener: &str,
    since: Option<Timestamp>,
) -> anyhow::Result<u64> {
    let pool = database(settings, 2, Setup::Existing).await?;
    let listeners = Listeners::of(settings, &pool, Arc::default())?;
    let Some((queue, event_types)) = listeners.subscription(listener) else {
        anyhow::bail!(
            "there is no listener {listener:?}; the listeners are: {}",
            listeners.names().join(", ")
        );
    };
    let outbox = relay_outbox(&pool);
    let bus = event_bus(settings, listeners.queues(), BrokerState::default());
    let since = since.unwrap_or_else(|| Timestamp::from_datetime(chrono::DateTime::UNIX_EPOCH));
    let mut after = 0;
    let mut replayed = 0;
    loop {
        let page = outbox.retained_since(since, after, REPLAY_BATCH).await?;
        let Some((last, _)) = page.last() else {
            return Ok(replayed);
        };
        after = *last;
        let events: Vec<_> = page
            .into_iter()
            .map(|(_, event)| event)
            .filter(|event| wants(event_types, &event.event_type))
            .collect();
        if events.is_empty() {
            continue;
        }
        let outcomes = bus.publish_to_queue(&queue.name, &events).await?;
        let refused = outcomes
            .iter()
            .filter(|outcome| **outcome != PublishOutcome::Confirmed)
            .count();
        anyhow::ensure!(
            refused == 0,
            "the broker refused {refused} of {} events for queue {:?}; {replayed} were replayed before them",
            events.len(),
            queue.name
        );
        replayed += events.len() as u64;
    }
}

async fn built_in_listeners(settings: &Settings) -> anyhow::Result<Listeners> {
    let pool = database(settings, settings.database_max_connections, Setup::Prepare).await?;
    Listeners::of(settings, &pool, Arc::default())
}
