//! Use case: move events from the outbox to the broker, counting an event as published only
//! once the broker confirmed it.
use crate::{EventBus, Outbox, PublishOutcome};
use domain::EventId;

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    pub claimed: usize,
    pub published: usize,
    pub returned: usize,
    pub nacked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox unavailable")]
    Outbox(#[source] anyhow::Error),
    #[error("broker unavailable")]
    Broker(#[source] anyhow::Error),
}

pub struct RelayOutbox<O, B> {
    outbox: O,
    bus: B,
    batch_size: usize,
}

impl<O: Outbox, B: EventBus> RelayOutbox<O, B> {
    pub fn new(outbox: O, bus: B, batch_size: usize) -> Self {
        Self {
            outbox,
            bus,
            batch_size: batch_size.max(1),
        }
    }

    /// The bus, e.g. to close its connection on shutdown.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Publishes one batch of pending events. A report with `claimed < batch_size` means the
    /// outbox was drained.
    ///
    /// # Errors
    /// When the outbox or the broker is unavailable; nothing is then marked published, and the
    /// claimed events are given back for the next attempt.
    pub async fn publish_batch(&self) -> Result<RelayReport, RelayError> {
        let events = self
            .outbox
            .claim_pending(self.batch_size)
            .await
            .map_err(RelayError::Outbox)?;
        if events.is_empty() {
            return Ok(RelayReport::default());
        }
        let ids: Vec<EventId> = events.iter().map(|event| event.id).collect();
        let outcomes = match self.bus.publish(&events).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                self.give_back(&ids, &format!("{error:#}")).await;
                return Err(RelayError::Broker(error));
            }
        };
        let mut report = RelayReport {
            claimed: events.len(),
            ..RelayReport::default()
        };
        let mut confirmed = Vec::with_capacity(ids.len());
        let mut refused = Vec::new();
        for (id, outcome) in ids.iter().zip(outcomes) {
            match outcome {
                PublishOutcome::Confirmed => confirmed.push(*id),
                PublishOutcome::Returned => {
                    report.returned += 1;
                    refused.push(*id);
                }
                PublishOutcome::Nacked => {
                    report.nacked += 1;
                    refused.push(*id);
                }
            }
        }
        if !refused.is_empty() {
            tracing::warn!(
                returned = report.returned,
                nacked = report.nacked,
                "broker refused events; they stay pending"
            );
            self.give_back(&refused, "returned as unroutable or nacked by the broker")
                .await;
        }
        // If this fails the events are published again later: at least once, never lost.
        self.outbox
            .mark_published(&confirmed)
            .await
            .map_err(RelayError::Outbox)?;
        report.published = confirmed.len();
        Ok(report)
    }

    async fn give_back(&self, ids: &[EventId], reason: &str) {
        if let Err(error) = self.outbox.release(ids, reason).await {
            // The claim expires by itself; this only delays the next attempt.
            tracing::warn!(
                error = format!("{error:#}"),
                "could not release claimed outbox events"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeBus, InMemoryOutbox, pending_event};

    #[tokio::test]
    async fn confirmed_events_are_marked_published() {
        let outbox = InMemoryOutbox::with(vec![pending_event(1), pending_event(2)]);
        let bus = FakeBus::default();
        let relay = RelayOutbox::new(outbox.clone(), bus.clone(), 10);

        let report = relay.publish_batch().await.unwrap();

        assert_eq!(
            report,
            RelayReport {
                claimed: 2,
                published: 2,
                ..RelayReport::default()
            }
        );
        assert_eq!(outbox.pending_count(), 0);
        assert_eq!(bus.published().len(), 2);
    }

    #[tokio::test]
    async fn a_broker_outage_keeps_every_event_pending() {
        let outbox = InMemoryOutbox::with(vec![pending_event(1), pending_event(2)]);
        let bus = FakeBus::default();
        bus.set_down(true);
        let relay = RelayOutbox::new(outbox.clone(), bus.clone(), 10);

        assert!(matches!(
            relay.publish_batch().await,
            Err(RelayError::Broker(_))
        ));
        assert_eq!(outbox.pending_count(), 2);
        assert_eq!(
            outbox.released(),
            2,
            "claims are given back at once, not left to expire"
        );

        bus.set_down(false);
        assert_eq!(relay.publish_batch().await.unwrap().published, 2);
        assert_eq!(outbox.pending_count(), 0);
    }

    #[tokio::test]
    async fn returned_and_nacked_events_stay_pending() {
        let outbox =
            InMemoryOutbox::with(vec![pending_event(1), pending_event(2), pending_event(3)]);
        let bus = FakeBus::default();
        bus.answer_with(vec![
            PublishOutcome::Confirmed,
            PublishOutcome::Returned,
            PublishOutcome::Nacked,
        ]);
        let relay = RelayOutbox::new(outbox.clone(), bus, 10);

        let report = relay.publish_batch().await.unwrap();

        assert_eq!(
            report,
            RelayReport {
                claimed: 3,
                published: 1,
                returned: 1,
                nacked: 1
            }
        );
        assert_eq!(outbox.pending_count(), 2);
    }

    #[tokio::test]
    async fn batches_are_bounded() {
        let outbox = InMemoryOutbox::with((1..=5).map(pending_event).collect());
        let relay = RelayOutbox::new(outbox.clone(), FakeBus::default(), 2);
        assert_eq!(relay.publish_batch().await.unwrap().claimed, 2);
        assert_eq!(outbox.pending_count(), 3);
    }
}
