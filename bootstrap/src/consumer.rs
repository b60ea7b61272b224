//! Inbound AMQP adapter: reads the event queue, checks each message against the contract,
//! hands valid events to an application listener and acknowledges them.
use crate::backoff::{next_pause, reconnect_backoff};
use adapters::{Topology, connect_broker, declare_topology};
use application::{EventListener, decode_event};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// Counts of what the consumer did, for tests and, later, metrics.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    handled: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

impl ConsumerStats {
    /// Events the listener processed and that were acked.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Messages that broke the contract and were rejected without requeue.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Events the listener failed on; they were requeued.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

pub struct ConsumerConfig {
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
}

/// Consumes until `shutdown` is cancelled, reconnecting with backoff whenever the broker is
/// unreachable or the connection breaks.
pub async fn run_consumer<L: EventListener>(
    config: ConsumerConfig,
    listener: Arc<L>,
    stats: Arc<ConsumerStats>,
    shutdown: CancellationToken,
) {
    let mut backoff = reconnect_backoff();
    loop {
        match consume(&config, &*listener, &stats, &shutdown, &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), queue = %config.topology.queue, "consumer lost the broker; reconnecting")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(next_pause(&mut backoff)) => {}
        }
    }
}

/// One connection's life. Returns `Ok` only on shutdown.
async fn consume<L: EventListener>(
    config: &ConsumerConfig,
    listener: &L,
    stats: &ConsumerStats,
    shutdown: &CancellationToken,
    backoff: &mut backon::ExponentialBackoff,
) -> anyhow::Result<()> {
    let connection = connect_broker(&config.amqp_url, "registrar consumer").await?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel, &config.topology).await?;
    // Bounded prefetch: a backlog stays in the broker, not in this process's memory.
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            config.topology.queue.as_str().into(),
            "registrar".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %config.topology.queue, "consumer connected to RabbitMQ");
    // The pace of reconnecting is reset only once a message went through: a connection that
    // the broker (or a message lapin cannot parse) breaks at once must not be retried in a
    // tight loop.
    let mut settled = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = connection.close(200, "shutting down".into()).await;
                return Ok(());
            }
            delivery = deliveries.next() => match delivery {
                Some(delivery) => {
                    process(delivery?, listener, stats).await?;
                    if !settled {
                        *backoff = reconnect_backoff();
                        settled = true;
                    }
                }
                None => anyhow::bail!("the broker ended the consumer"),
            },
        }
    }
}

async fn process<L: EventListener>(
    delivery: Delivery,
    listener: &L,
    stats: &ConsumerStats,
) -> anyhow::Result<()> {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let event = match decode_event(message_id.as_deref(), &delivery.data) {
        Ok(event) => event,
        Err(reason) => {
            // It can never succeed, so requeueing would only make it loop.
            tracing::warn!(%reason, message_id = message_id.as_deref().unwrap_or("-"), "rejecting a message that is not a valid event");
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    };
    match listener.handle(&event).await {
        Ok(()) => {
            delivery.ack(BasicAckOptions::default()).await?;
            stats.handled.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), event_id = %event.event_id(), "listener failed; the event is requeued");
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await?;
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
