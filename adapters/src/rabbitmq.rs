//! RabbitMQ: the topology events travel through, and the publisher that puts them there.
use anyhow::Context;
use application::{EventBus, OutboxEvent, PublishOutcome};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::time::Duration;
use tokio::sync::Mutex;

/// How long connecting, or waiting for a batch's confirms, may take before the broker is
/// treated as unreachable. A half-open connection must not stall the relay forever.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where events go: a durable topic exchange, the routing key they carry, and the durable
/// queue bound to it with that key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub exchange: String,
    pub routing_key: String,
    pub queue: String,
}

/// Opens a connection, naming this process to the broker.
///
/// # Errors
/// When the broker does not accept a connection within the timeout.
pub async fn connect_broker(url: &str, connection_name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    tokio::time::timeout(BROKER_TIMEOUT, Connection::connect(url, properties))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {BROKER_TIMEOUT:?}"))
        .and_then(|connected| connected.map_err(anyhow::Error::from))
        .context("cannot connect to RabbitMQ")
}

/// Declares the durable topic exchange events are published to; safe to repeat.
///
/// # Errors
/// When the broker refuses it, e.g. an existing exchange of another kind.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> anyhow::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declare exchange {exchange:?}"))
}

/// Declares the exchange and queue (both durable) and binds them; safe to repeat.
///
/// # Errors
/// When the broker refuses a declaration, e.g. an existing exchange of another kind.
pub async fn declare_topology(channel: &Channel, topology: &Topology) -> anyhow::Result<()> {
    declare_exchange(channel, &topology.exchange).await?;
    channel
        .queue_declare(
            topology.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declare queue {:?}", topology.queue))?;
    channel
        .queue_bind(
            topology.queue.as_str().into(),
            topology.exchange.as_str().into(),
            topology.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("bind queue {:?}", topology.queue))?;
    Ok(())
}

/// The queue a listener's failed events wait in before they return to `queue`.
#[must_use]
pub fn retry_queue(queue: &str) -> String {
    format!("{queue}.retry")
}

/// The queue of events `queue`'s listener gave up on, kept for people to look at.
#[must_use]
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Declares `queue`'s retry queue (messages wait there for their own expiration, then the
/// broker dead-letters them back to `queue` through the default exchange) and its dead-letter
/// queue. New queues of their own, so the main queue keeps its arguments.
///
/// # Errors
/// When the broker refuses a declaration.
pub async fn declare_retry_topology(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    let mut back_to_queue = FieldTable::default();
    back_to_queue.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    back_to_queue.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(retry_queue(queue).as_str().into(), durable, back_to_queue)
        .await
        .with_context(|| format!("declare retry queue of {queue:?}"))?;
    channel
        .queue_declare(
            dead_letter_queue(queue).as_str().into(),
            durable,
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declare dead-letter queue of {queue:?}"))?;
    Ok(())
}

struct Publisher {
    connection: Connection,
    channel: Channel,
}

/// Publishes events as persistent JSON messages with publisher confirms and `mandatory`.
///
/// Connects lazily and again after any failure: lapin does not recover connections itself.
pub struct RabbitMqEventBus {
    url: String,
    topology: Topology,
    publisher: Mutex<Option<Publisher>>,
}

impl RabbitMqEventBus {
    #[must_use]
    pub fn new(url: String, topology: Topology) -> Self {
        Self {
            url,
            topology,
            publisher: Mutex::new(None),
        }
    }

    async fn open(&self) -> anyhow::Result<Publisher> {
        let connection = connect_broker(&self.url, "registrar relay").await?;
        let channel = connection.create_channel().await.context("open channel")?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enable publisher confirms")?;
        declare_topology(&channel, &self.topology).await?;
        tracing::info!(exchange = %self.topology.exchange, "relay connected to RabbitMQ");
        Ok(Publisher {
            connection,
            channel,
        })
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        events: &[OutboxEvent],
    ) -> anyhow::Result<Vec<PublishOutcome>> {
        // Send the whole batch first, then collect the confirms: awaiting each confirm before
        // the next publish caps throughput at one round trip per event.
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let confirm = channel
                .basic_publish(
                    self.topology.exchange.as_str().into(),
                    self.topology.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    event.payload.as_bytes(),
                    properties(event),
                )
                .await
                .context("publish event")?;
            confirms.push(confirm);
        }
        let mut outcomes = Vec::with_capacity(confirms.len());
        for confirm in confirms {
            outcomes.push(match confirm.await.context("await publisher confirm")? {
                // Unroutable messages are returned *and* acked: the return is what counts.
                Confirmation::Ack(Some(_)) => PublishOutcome::Returned,
                Confirmation::Ack(None) => PublishOutcome::Confirmed,
                Confirmation::Nack(_) | Confirmation::NotRequested => PublishOutcome::Nacked,
            });
        }
        Ok(outcomes)
    }
}

fn properties(event: &OutboxEvent) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2) // persistent
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_timestamp(u64::try_from(event.occurred_at.unix_millis() / 1000).unwrap_or_default())
        .with_app_id("registrar".into())
}

impl EventBus for RabbitMqEventBus {
    async fn publish(&self, events: &[OutboxEvent]) -> anyhow::Result<Vec<PublishOutcome>> {
        let mut publisher = self.publisher.lock().await;
        if publisher
            .as_ref()
            .is_none_or(|p| !p.channel.status().connected())
        {
            let opened = tokio::time::timeout(BROKER_TIMEOUT, self.open()).await;
            *publisher = Some(opened.map_err(|_| {
                anyhow::anyhow!("opening a channel took over {BROKER_TIMEOUT:?}")
            })??);
        }
        let channel = &publisher
            .as_ref()
            .expect("a publisher was just opened")
            .channel;
        let result = tokio::time::timeout(BROKER_TIMEOUT, self.publish_on(channel, events))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no confirms within {BROKER_TIMEOUT:?}")));
        if result.is_err() {
            // Start afresh next time; the old connection may be half dead.
            if let Some(old) = publisher.take() {
                // A silent peer would hold a polite close forever: give it a moment, no more.
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    old.connection.close(0, "reconnecting".into()),
                )
                .await;
            }
        }
        result
    }
}
