//! Inbound AMQP adapter: reads the event queue, checks each message against the contract,
//! hands valid events to an application listener and acknowledges them.
use crate::backoff::{next_pause, reconnect_backoff};
use adapters::{
    ListenerQueue, REQUEST_ID_HEADER, TRACEPARENT_HEADER, connect_broker, dead_letter_queue,
    declare_exchange, declare_listener_queue, retry_queue,
};
use application::{AfterFailure, EventListener, IncomingEvent, RetryPolicy, decode_event, wants};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Counts of what the consumer did, for tests and metrics (the counters are the exported ones).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub(crate) handled: Counter,
    pub(crate) retried: Counter,
    pub(crate) dead_lettered: Counter,
    pub(crate) skipped: Counter,
    pub(crate) in_flight: Gauge,
}

impl ConsumerStats {
    /// Events the listener processed and that were acked.
    pub fn handled(&self) -> u64 {
        self.handled.get()
    }

    /// Failed events sent to wait in the retry queue.
    pub fn retried(&self) -> u64 {
        self.retried.get()
    }

    /// Messages moved to the dead-letter queue: undecodable ones at once, failing events
    /// after their last attempt.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.get()
    }

    /// Valid events of a type the listener did not ask for, acked without handling.
    pub fn skipped(&self) -> u64 {
        self.skipped.get()
    }
}

pub struct ConsumerConfig {
    pub amqp_url: String,
    pub exchange: String,
    pub queue: ListenerQueue,
    /// The listener's patterns: an event that reaches its queue otherwise (a replay, a binding
    /// someone added by hand) is acked without being handled.
    pub event_types: &'static [&'static str],
    pub prefetch: u16,
    pub retry: RetryPolicy,
    pub stats: Arc<ConsumerStats>,
}

/// How often a consumer checks that its connection and channel are still up.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// Opening the channel, declaring the queues and starting to consume: a broker that accepts
/// the connection but then stalls must not stall the consumer for ever.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Consumes until `shutdown` is cancelled, reconnecting with backoff whenever the broker is
/// unreachable or the connection breaks.
pub async fn run_consumer<L: EventListener>(
    config: ConsumerConfig,
    listener: Arc<L>,
    shutdown: CancellationToken,
) {
    let mut backoff = reconnect_backoff();
    loop {
        match consume(&config, &*listener, &shutdown, &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), queue = %config.queue.name, "consumer lost the broker; reconnecting")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(next_pause(&mut backoff)) => {}
        }
    }
}

/// Completes once the connection or the channel is no longer connected.
async fn lost(connection: &lapin::Connection, channel: &Channel) {
    let mut watchdog = tokio::time::interval(WATCHDOG_PERIOD);
    while connection.status().connected() && channel.status().connected() {
        watchdog.tick().await;
    }
}

/// One connection's life. Returns `Ok` only on shutdown.
async fn consume<L: EventListener>(
    config: &ConsumerConfig,
    listener: &L,
    shutdown: &CancellationToken,
    backoff: &mut backon::ExponentialBackoff,
) -> anyhow::Result<()> {
    let connection =
        connect_broker(&config.amqp_url, &format!("registrar {}", listener.name())).await?;
    let (channel, mut deliveries) = tokio::time::timeout(SETUP_TIMEOUT, async {
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &config.exchange).await?;
        declare_listener_queue(&channel, &config.exchange, &config.queue).await?;
        // Retries and dead letters are published on this channel; a message is acked only
        // once its copy is confirmed, so nothing is lost in between.
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        // Bounded prefetch: a backlog stays in the broker, not in this process's memory.
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;
        let deliveries = channel
            .basic_consume(
                config.queue.name.as_str().into(),
                listener.name().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        anyhow::Ok((channel, deliveries))
    })
    .await
    .map_err(|_| anyhow::anyhow!("setting up the consumer took over {SETUP_TIMEOUT:?}"))??;
    tracing::info!(listener = listener.name(), queue = %config.queue.name, "consumer connected to RabbitMQ");
    // The pace of reconnecting is reset only once a message went through: a connection that
    // the broker (or a message lapin cannot parse) breaks at once must not be retried in a
    // tight loop.
    let mut settled = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                // A silent peer would hold a polite close forever: a moment, no more.
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(200, "shutting down".into()),
                )
                .await;
                return Ok(());
            }
            // lapin does not always end the delivery stream when the connection dies under
            // it: look.
            () = lost(&connection, &channel) => anyhow::bail!("the connection to the broker was lost"),
            delivery = deliveries.next() => match delivery {
                Some(delivery) => {
                    let delivery = delivery?;
                    let span = delivery_span(listener.name(), &delivery);
                    config.stats.in_flight.inc();
                    // An ack or a confirm on a connection that died under it may never
                    // complete: watch the connection while the message is in hand too. A
                    // message given up here is redelivered (the listeners deduplicate).
                    let processed = tokio::select! {
                        processed = process(delivery, &channel, config, listener).instrument(span) => processed,
                        () = lost(&connection, &channel) => Err(anyhow::anyhow!("the connection to the broker was lost while a message was in hand")),
                    };
                    config.stats.in_flight.dec();
                    processed?;
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

/// Runs the handler, turning a panic into a failure like any other (retried, then
/// dead-lettered): a handler that panics on one event must not end the consumer, which would
/// stop the service, only for the event to be redelivered to the next instance and stop that.
async fn handle_caught<L: EventListener>(
    listener: &L,
    event: &IncomingEvent,
) -> anyhow::Result<()> {
    AssertUnwindSafe(listener.handle(event))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(anyhow::anyhow!("the listener panicked: {message}"))
        })
}

async fn process<L: EventListener>(
    delivery: Delivery,
    channel: &Channel,
    config: &ConsumerConfig,
    listener: &L,
) -> anyhow::Result<()> {
    let stats = &config.stats;
    let queue = &config.queue.name;
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let attempts = previous_attempts(&delivery).saturating_add(1);
    let event = match decode_event(message_id.as_deref(), &delivery.data) {
        Ok(event) => event,
        Err(reason) => {
            // It can never succeed: straight to the dead-letter queue, with the reason.
            tracing::warn!(%reason, message_id = message_id.as_deref().unwrap_or("-"), %queue, "dead-lettering a message that is not a valid event");
            let reason = format!("undecodable: {reason}");
            move_to(
                channel,
                &delivery,
                &dead_letter_queue(queue),
                &reason,
                attempts,
                None,
            )
            .await?;
            stats.dead_lettered.inc();
            return Ok(());
        }
    };
    if !wants(config.event_types, event.event_type()) {
        tracing::debug!(event_id = %event.event_id(), event_type = event.event_type(), %queue, "not an event type this listener wants; acked");
        delivery.ack(BasicAckOptions::default()).await?;
        stats.skipped.inc();
        return Ok(());
    }
    match handle_caught(listener, &event).await {
        Ok(()) => {
            delivery.ack(BasicAckOptions::default()).await?;
            stats.handled.inc();
        }
        Err(error) => {
            let reason = format!("{error:#}");
            match config.retry.after_failure(attempts) {
                AfterFailure::RetryIn(delay) => {
                    tracing::warn!(%reason, event_id = %event.event_id(), attempts, ?delay, %queue, "listener failed; retrying later");
                    move_to(
                        channel,
                        &delivery,
                        &retry_queue(queue),
                        &reason,
                        attempts,
                        Some(delay),
                    )
                    .await?;
                    stats.retried.inc();
                }
                AfterFailure::DeadLetter => {
                    tracing::error!(%reason, event_id = %event.event_id(), attempts, %queue, "listener failed for the last time; dead-lettered");
                    move_to(
                        channel,
                        &delivery,
                        &dead_letter_queue(queue),
                        &reason,
                        attempts,
                        None,
                    )
                    .await?;
                    stats.dead_lettered.inc();
                }
            }
        }
    }
    Ok(())
}

/// A span naming the message and the request it came from, so that the listener's log lines
/// join up with the HTTP request's. Header values are someone else's input: only short plain
/// ones are logged.
fn delivery_span(listener: &str, delivery: &Delivery) -> tracing::Span {
    let header = |name: &str| -> Option<String> {
        let headers = delivery.properties.headers().as_ref()?;
        let AMQPValue::LongString(value) = headers.inner().get(name)? else {
            return None;
        };
        let value = value.to_string();
        let plain = (1..=128).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        plain.then_some(value)
    };
    let trace_id = header(TRACEPARENT_HEADER)
        .and_then(|traceparent| traceparent.split('-').nth(1).map(str::to_owned));
    tracing::info_span!(
        "event",
        listener,
        message_id = plain_message_id(
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str())
        ),
        request_id = header(REQUEST_ID_HEADER).as_deref().unwrap_or("-"),
        trace_id = trace_id.as_deref().unwrap_or("-"),
    )
}

/// The message id if it is a plain one (it is checked as a UUID later, but logged first).
fn plain_message_id(message_id: Option<&str>) -> &str {
    message_id
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("-")
}

const ATTEMPTS_HEADER: &str = "x-registrar-attempts";
const REASON_HEADER: &str = "x-registrar-reason";

/// How many attempts the message has had, as counted in its own header.
fn previous_attempts(delivery: &Delivery) -> u32 {
    let headers = delivery.properties.headers().as_ref();
    match headers.and_then(|headers| headers.inner().get(ATTEMPTS_HEADER)) {
        Some(AMQPValue::LongUInt(attempts)) => *attempts,
        _ => 0,
    }
}

/// The properties of a retry or dead-letter copy: what identifies and describes the message,
/// its headers less the broker's routing ones, the attempt count and the reason; persistent.
///
/// Copied whole, another publisher's properties would make the copy misbehave: a `CC` header
/// routes it to the queues it names again (a poison message multiplied itself thousands of
/// times a second), a `user_id` that is not ours makes the broker close the channel (the
/// message never leaves the queue), and an `expiration` drops it from the dead-letter queue.
fn copy_properties(original: &BasicProperties, reason: &str, attempts: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(original) = original.headers() {
        for (name, value) in original.inner() {
            if !matches!(name.as_str(), "CC" | "BCC") {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongUInt(attempts));
    // Bounded: the reason of a hostile message must not make the copy unbounded.
    let reason: String = reason.chars().take(1000).collect();
    headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    let mut copy = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    if let Some(value) = original.message_id() {
        copy = copy.with_message_id(value.clone());
    }
    if let Some(value) = original.kind() {
        copy = copy.with_type(value.clone());
    }
    if let Some(value) = original.content_type() {
        copy = copy.with_content_type(value.clone());
    }
    if let Some(value) = original.content_encoding() {
        copy = copy.with_content_encoding(value.clone());
    }
    if let Some(value) = original.correlation_id() {
        copy = copy.with_correlation_id(value.clone());
    }
    if let Some(value) = original.app_id() {
        copy = copy.with_app_id(value.clone());
    }
    if let Some(value) = original.timestamp() {
        copy = copy.with_timestamp(*value);
    }
    copy
}

/// Publishes a copy of the message to `queue` (through the default exchange) with the attempt
/// count and the reason, waits for the broker's confirm, then acks the original.
async fn move_to(
    channel: &Channel,
    delivery: &Delivery,
    queue: &str,
    reason: &str,
    attempts: u32,
    delay: Option<Duration>,
) -> anyhow::Result<()> {
    let mut properties = copy_properties(&delivery.properties, reason, attempts);
    if let Some(delay) = delay {
        // Per-message expiration: when it runs out, the retry queue hands the message back.
        properties = properties.with_expiration(delay.as_millis().to_string().into());
    }
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            // Mandatory: if the queue is gone (deleted by hand), the broker returns the copy
            // instead of confirming it into nowhere; the original then stays unacked.
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &delivery.data,
            properties,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) => {}
        // Reconnecting declares the queues again; the original is then delivered again.
        Confirmation::Ack(Some(_)) => anyhow::bail!("queue {queue} is missing: the copy came back"),
        Confirmation::Nack(_) | Confirmation::NotRequested => {
            anyhow::bail!("the broker refused the copy for {queue}")
        }
    }
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_what_describes_the_message_and_drops_what_would_misroute_it() {
        let mut headers = FieldTable::default();
        headers.insert("CC".into(), AMQPValue::LongString("elsewhere".into()));
        headers.insert("BCC".into(), AMQPValue::LongString("elsewhere".into()));
        headers.insert("traceparent".into(), AMQPValue::LongString("00-ab".into()));
        let original = BasicProperties::default()
            .with_message_id("id-1".into())
            .with_type("user.registered".into())
            .with_content_type("application/json".into())
            .with_timestamp(1_700_000_000)
            .with_user_id("someone-else".into())
            .with_expiration("100".into())
            .with_reply_to("a-queue".into())
            .with_headers(headers);

        let copy = copy_properties(&original, "why", 3);

        assert_eq!(
            copy.message_id().as_ref().map(|id| id.as_str()),
            Some("id-1")
        );
        assert_eq!(
            copy.kind().as_ref().map(|kind| kind.as_str()),
            Some("user.registered")
        );
        assert_eq!(copy.timestamp(), &Some(1_700_000_000));
        assert_eq!(copy.delivery_mode(), &Some(2), "persistent");
        assert_eq!(
            copy.user_id(),
            &None,
            "the broker refuses another user's id on our channel"
        );
        assert_eq!(copy.expiration(), &None, "a dead letter must not expire");
        assert_eq!(copy.reply_to(), &None);
        let headers = copy.headers().clone().unwrap_or_default();
        let headers = headers.inner();
        assert!(!headers.contains_key("CC") && !headers.contains_key("BCC"));
        assert!(headers.contains_key("traceparent"));
        assert_eq!(headers.get(ATTEMPTS_HEADER), Some(&AMQPValue::LongUInt(3)));
    }
}
