//! RabbitMQ: the topology events travel through, and the publisher that puts them there.
use anyhow::Context;
use application::{EventBus, OutboxEvent, PublishOutcome};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// How long connecting, or waiting for a batch's confirms, may take before the broker is
/// treated as unreachable. A half-open connection must not stall the relay forever.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where events go: a durable topic exchange, the routing key they are published with, and
/// the listeners' queues bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub exchange: String,
    pub routing_key: String,
    pub queues: Vec<ListenerQueue>,
}

/// How RabbitMQ keeps a queue: `classic`, or `quorum` (replicated, RabbitMQ's recommendation
/// for durable queues in a cluster).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

impl QueueType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
        }
    }
}

/// One listener's durable queue and the event-type patterns it is bound with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerQueue {
    pub name: String,
    pub bindings: Vec<String>,
    pub queue_type: QueueType,
    /// Quorum queues only: after this many deliveries without an ack the broker moves a
    /// message to the dead-letter queue itself. It catches what the consumer never settles,
    /// such as a message whose properties break the consumer's connection.
    pub delivery_limit: u32,
}

/// The message header carrying the W3C `traceparent` of the request an event came from.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The message header carrying the id of the request an event came from.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Opens a connection, naming this process to the broker.
///
/// # Errors
/// When the broker does not accept a connection within the timeout.
pub async fn connect_broker(url: &str, connection_name: &str) -> anyhow::Result<Connection> {
    let uri = broker_uri(url)?;
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    tokio::time::timeout(BROKER_TIMEOUT, Connection::connect_uri(uri, properties))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {BROKER_TIMEOUT:?}"))
        .and_then(|connected| connected.map_err(anyhow::Error::from))
        .context("cannot connect to RabbitMQ")
}

/// Seconds between heartbeats when the URL does not say (`?heartbeat=N`). RabbitMQ would
/// propose 60, and a broker gone silent without closing the connection (a dropped route, a hung
/// host) would go unnoticed for two minutes, reported connected all the while; at 10 it is
/// noticed within about 20 s, for one small frame every few seconds.
pub const DEFAULT_HEARTBEAT_SECONDS: u16 = 10;

/// The broker URL with our default heartbeat unless it sets its own.
///
/// # Errors
/// When `url` is not an AMQP URL. The parser's own message is left out: for some malformed
/// URLs it quotes the URL, password and all.
pub fn broker_uri(url: &str) -> anyhow::Result<AMQPUri> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|_: String| anyhow::anyhow!("not a valid AMQP URL"))?;
    uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECONDS);
    Ok(uri)
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

/// Declares the exchange and every listener's queues, and binds them; safe to repeat.
///
/// # Errors
/// When the broker refuses a declaration, e.g. an existing exchange of another kind.
pub async fn declare_topology(channel: &Channel, topology: &Topology) -> anyhow::Result<()> {
    declare_exchange(channel, &topology.exchange).await?;
    for queue in &topology.queues {
        declare_listener_queue(channel, &topology.exchange, queue).await?;
    }
    Ok(())
}

/// Declares a listener's queue, its retry and dead-letter queues, and binds the queue to
/// `exchange` with each of its patterns; safe to repeat.
///
/// # Errors
/// When the broker refuses a declaration, e.g. a queue that exists with another type.
pub async fn declare_listener_queue(
    channel: &Channel,
    exchange: &str,
    queue: &ListenerQueue,
) -> anyhow::Result<()> {
    let name = queue.name.as_str();
    let mut arguments = queue_type_arguments(queue.queue_type);
    if queue.queue_type == QueueType::Quorum {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(queue.delivery_limit)),
        );
        dead_letter_to(&mut arguments, &dead_letter_queue(name));
    }
    declare_queue(channel, name, arguments).await?;
    for pattern in &queue.bindings {
        channel
            .queue_bind(
                name.into(),
                exchange.into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("bind queue {name:?} with {pattern:?}"))?;
    }
    // Messages wait in the retry queue for their own expiration, then the broker
    // dead-letters them back to the listener's queue through the default exchange.
    let mut back_to_queue = queue_type_arguments(queue.queue_type);
    dead_letter_to(&mut back_to_queue, name);
    declare_queue(channel, &retry_queue(name), back_to_queue).await?;
    declare_queue(
        channel,
        &dead_letter_queue(name),
        queue_type_arguments(queue.queue_type),
    )
    .await
}

fn queue_type_arguments(queue_type: QueueType) -> FieldTable {
    let mut arguments = FieldTable::default();
    // Classic is the broker's default: saying nothing keeps queues declared by earlier
    // versions (and by the seed) equivalent.
    if queue_type != QueueType::Classic {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(queue_type.as_str().into()),
        );
    }
    arguments
}

/// Dead-letters through the default exchange, straight to `queue`.
fn dead_letter_to(arguments: &mut FieldTable, queue: &str) {
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
}

async fn declare_queue(channel: &Channel, name: &str, arguments: FieldTable) -> anyhow::Result<()> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .with_context(|| {
            format!(
                "declare queue {name:?} (if it exists with other arguments, such as another \
                 AMQP_QUEUE_TYPE, delete it or keep its type)"
            )
        })?;
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

/// Whether the last attempt to reach the broker (by the relay or a consumer) succeeded;
/// shared with health checks and metrics.
#[derive(Clone, Debug, Default)]
pub struct BrokerState(Arc<AtomicBool>);

impl BrokerState {
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }
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
    /// The CloudEvents `source` of every event.
    source: String,
    publisher: Mutex<Option<Publisher>>,
    state: BrokerState,
}

/// Where one publish goes.
enum Destination<'a> {
    /// The topic exchange, with the routing key and the event type as a second one.
    Exchange(&'a Topology),
    /// One queue only, through the default exchange.
    Queue(&'a str),
}

impl RabbitMqEventBus {
    #[must_use]
    pub fn new(url: String, topology: Topology, source: String, state: BrokerState) -> Self {
        Self {
            url,
            topology,
            source,
            publisher: Mutex::new(None),
            state,
        }
    }

    /// Whether the relay reaches the broker, as of its last attempt.
    #[must_use]
    pub fn state(&self) -> BrokerState {
        self.state.clone()
    }

    /// Connects, unless the held channel is still up, and records whether the broker could
    /// be reached. Called while the relay has nothing to publish too, so that readiness and
    /// the metrics tell the truth about the broker when no event has gone out for a while.
    ///
    /// # Errors
    /// When the broker cannot be reached or refuses the topology.
    pub async fn connect(&self) -> anyhow::Result<()> {
        self.ensure_open(&mut *self.publisher.lock().await).await
    }

    async fn ensure_open(&self, publisher: &mut Option<Publisher>) -> anyhow::Result<()> {
        if publisher
            .as_ref()
            .is_some_and(|p| p.connection.status().connected() && p.channel.status().connected())
        {
            self.state.set(true);
            return Ok(());
        }
        let opened = tokio::time::timeout(BROKER_TIMEOUT, self.open())
            .await
            .map_err(|_| anyhow::anyhow!("opening a channel took over {BROKER_TIMEOUT:?}"))
            .and_then(|opened| opened);
        self.state.set(opened.is_ok());
        *publisher = Some(opened?);
        Ok(())
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
        destination: &Destination<'_>,
        events: &[OutboxEvent],
    ) -> anyhow::Result<Vec<PublishOutcome>> {
        let (exchange, routing_key) = match destination {
            Destination::Exchange(topology) => (&*topology.exchange, &*topology.routing_key),
            Destination::Queue(queue) => ("", *queue),
        };
        // Send the whole batch first, then collect the confirms: awaiting each confirm before
        // the next publish caps throughput at one round trip per event.
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let mut properties = properties(event, &self.source);
            if matches!(destination, Destination::Exchange(_)) {
                properties = also_routed_by_type(properties, event);
            }
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    event.payload.as_bytes(),
                    properties,
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

    /// Publishes on the held channel, opening one first if needed; a failure drops it.
    async fn publish_to(
        &self,
        destination: Destination<'_>,
        events: &[OutboxEvent],
    ) -> anyhow::Result<Vec<PublishOutcome>> {
        let mut publisher = self.publisher.lock().await;
        self.ensure_open(&mut publisher).await?;
        let channel = &publisher
            .as_ref()
            .expect("a publisher was just opened")
            .channel;
        let result = tokio::time::timeout(
            BROKER_TIMEOUT,
            self.publish_on(channel, &destination, events),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no confirms within {BROKER_TIMEOUT:?}")));
        self.state.set(result.is_ok());
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

    /// Closes the connection politely (shutdown): the broker sees a clean close, not a
    /// dropped socket.
    pub async fn close(&self) {
        if let Some(publisher) = self.publisher.lock().await.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                publisher.connection.close(200, "shutting down".into()),
            )
            .await;
        }
    }

    /// Publishes `events` to one queue only (a listener's, for a replay), leaving every other
    /// queue bound to the exchange untouched.
    ///
    /// # Errors
    /// When the broker cannot be reached or does not confirm in time.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        events: &[OutboxEvent],
    ) -> anyhow::Result<Vec<PublishOutcome>> {
        self.publish_to(Destination::Queue(queue), events).await
    }
}

/// The AMQP properties of an event: the classic ones, and the CloudEvents AMQP binding's
/// headers, so that CloudEvents tooling understands the message without reading its body.
fn properties(event: &OutboxEvent, source: &str) -> BasicProperties {
    let text = |value: &str| AMQPValue::LongString(value.into());
    let mut headers = FieldTable::default();
    headers.insert("cloudEvents:specversion".into(), text("1.0"));
    headers.insert("cloudEvents:id".into(), text(&event.id.to_string()));
    headers.insert("cloudEvents:source".into(), text(source));
    headers.insert("cloudEvents:type".into(), text(&event.event_type));
    headers.insert(
        "cloudEvents:time".into(),
        text(&event.occurred_at.to_string()),
    );
    if let Some(trace) = &event.trace {
        // W3C Trace Context over AMQP, and the id the HTTP request was answered with.
        headers.insert(TRACEPARENT_HEADER.into(), text(&trace.traceparent));
        headers.insert(REQUEST_ID_HEADER.into(), text(&trace.request_id));
    }
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2) // persistent
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_timestamp(u64::try_from(event.occurred_at.unix_millis() / 1000).unwrap_or_default())
        .with_app_id("registrar".into())
        .with_headers(headers)
}

/// Adds the event type as a second routing key (RabbitMQ's sender-selected distribution), so
/// that a queue can bind to `user.*` while the seed's routing key stays the message's own.
/// The broker removes `BCC` before delivery.
fn also_routed_by_type(properties: BasicProperties, event: &OutboxEvent) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(
        "BCC".into(),
        AMQPValue::FieldArray(vec![AMQPValue::LongString(event.event_type.as_str().into())].into()),
    );
    properties.with_headers(headers)
}

impl EventBus for RabbitMqEventBus {
    async fn publish(&self, events: &[OutboxEvent]) -> anyhow::Result<Vec<PublishOutcome>> {
        self.publish_to(Destination::Exchange(&self.topology), events)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_heartbeat_gets_ours_so_a_silent_broker_is_noticed_soon() {
        let uri = broker_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECONDS));
    }

    #[test]
    fn a_url_with_a_heartbeat_keeps_it() {
        let uri = broker_uri("amqp://127.0.0.1:5672/%2f?heartbeat=30").unwrap();
        assert_eq!(uri.query.heartbeat, Some(30));
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let error = broker_uri("amqp://guest:s3cret@127.0.0.1:notaport/").unwrap_err();
        assert!(!format!("{error:#}").contains("s3cret"), "{error:#}");
    }
}
