//! Ports of the transactional outbox: the store of events waiting for the broker, and the
//! bus that carries them there.
use domain::{EventId, Timestamp};
use std::future::Future;

/// An event as it waits in the outbox: already encoded, so that every delivery attempt sends
/// the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: EventId,
    pub event_type: String,
    pub payload: String,
    pub occurred_at: Timestamp,
    /// The request that caused the event, carried to the message so listeners' logs join up.
    pub trace: Option<TraceContext>,
}

/// Where a piece of work comes from: the HTTP request's id and its W3C `traceparent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub request_id: String,
    pub traceparent: String,
}

pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` unpublished events, oldest first, for a while, so that another
    /// relay does not publish them at the same time. A claim that is neither marked nor released
    /// (the process died) expires by itself.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn claim_pending(
        &self,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<OutboxEvent>>> + Send;

    /// Records that the broker confirmed these events.
    ///
    /// # Errors
    /// When the store cannot be reached; the events are then published again later.
    fn mark_published(&self, ids: &[EventId]) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Gives claimed events back for another attempt, noting why this one failed.
    ///
    /// # Errors
    /// When the store cannot be reached; the claim then expires by itself.
    fn release(
        &self,
        ids: &[EventId],
        reason: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What the broker said about one published event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Routed to at least one queue and confirmed.
    Confirmed,
    /// Confirmed, but no queue was bound to take it.
    Returned,
    /// The broker refused responsibility for it.
    Nacked,
}

pub trait EventBus: Send + Sync + 'static {
    /// Publishes the events and waits for the broker's confirms; one outcome per event, in order.
    ///
    /// # Errors
    /// When the broker cannot be reached or the connection fails mid-batch: none of the events
    /// may then be counted as delivered.
    fn publish(
        &self,
        events: &[OutboxEvent],
    ) -> impl Future<Output = anyhow::Result<Vec<PublishOutcome>>> + Send;
}
