//! Inbound port: something that reacts to events read from the broker.
use crate::IncomingEvent;
use std::future::Future;

pub trait EventListener: Send + Sync + 'static {
    /// Reacts to one event. It may see the same event more than once (delivery is at least
    /// once), so it must be idempotent on [`IncomingEvent::event_id`].
    ///
    /// # Errors
    /// When the reaction failed and the event should be tried again.
    fn handle(&self, event: &IncomingEvent) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The built-in listener: records each event in the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogEvents;

impl EventListener for LogEvents {
    async fn handle(&self, event: &IncomingEvent) -> anyhow::Result<()> {
        match event {
            IncomingEvent::UserRegistered(registered) => tracing::info!(
                event_id = %registered.event_id,
                user_id = %registered.user_id,
                username = %registered.username,
                "consumed a user.registered event"
            ),
            IncomingEvent::Other {
                event_id,
                event_type,
                ..
            } => {
                tracing::info!(%event_id, %event_type, "ignored an event of a type this service does not handle");
            }
        }
        Ok(())
    }
}
