//! The `audit` listener: one row per event in an audit log, written once however often the
//! event is delivered.
use crate::{Clock, EventListener, IncomingEvent};
use domain::{EventId, Timestamp, UserId};
use std::future::Future;

/// One audited event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub event_id: EventId,
    pub event_type: String,
    pub user_id: Option<UserId>,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
}

pub trait AuditLog: Send + Sync + 'static {
    /// Records the entry and, in the same transaction, that `listener` has seen the event;
    /// returns `false` (and writes nothing) when it had seen it already.
    ///
    /// # Errors
    /// When the store cannot be reached; the event is then delivered again.
    fn record(
        &self,
        listener: &str,
        entry: &AuditEntry,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

pub struct AuditEvents<A, C> {
    log: A,
    clock: C,
}

impl<A: AuditLog, C: Clock> AuditEvents<A, C> {
    /// The name the inbox knows this listener by.
    pub const NAME: &'static str = "audit";

    pub fn new(log: A, clock: C) -> Self {
        Self { log, clock }
    }
}

impl<A: AuditLog, C: Clock> EventListener for AuditEvents<A, C> {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        // Everything: an audit trail that skipped unknown types would not be one.
        &["#"]
    }

    async fn handle(&self, event: &IncomingEvent) -> anyhow::Result<()> {
        let entry = AuditEntry {
            event_id: event.event_id(),
            event_type: event.event_type().to_owned(),
            user_id: match event {
                IncomingEvent::UserRegistered(registered) => Some(registered.user_id),
                IncomingEvent::Other { .. } => None,
            },
            occurred_at: event.occurred_at(),
            received_at: self.clock.now(),
        };
        if !self.log.record(Self::NAME, &entry).await? {
            tracing::debug!(event_id = %entry.event_id, "audit: duplicate delivery, already recorded");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeClock;
    use crate::{decode_event, encode_user_registered};
    use domain::{Email, UserRegistered, Username};
    use std::sync::{Arc, Mutex};
    use uuid::Uuid;

    #[derive(Clone, Default)]
    struct InMemoryAudit(Arc<Mutex<Vec<(String, AuditEntry)>>>);

    impl AuditLog for InMemoryAudit {
        async fn record(&self, listener: &str, entry: &AuditEntry) -> anyhow::Result<bool> {
            let mut rows = self.0.lock().unwrap();
            if rows
                .iter()
                .any(|(l, e)| l == listener && e.event_id == entry.event_id)
            {
                return Ok(false);
            }
            rows.push((listener.to_owned(), entry.clone()));
            Ok(true)
        }
    }

    #[tokio::test]
    async fn each_event_is_audited_once_however_often_it_arrives() {
        let clock = FakeClock::default();
        let registered = UserRegistered {
            event_id: EventId::from_uuid(Uuid::now_v7()),
            user_id: UserId::from_uuid(Uuid::now_v7()),
            email: Email::parse("alice@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            created_at: clock.now(),
            occurred_at: clock.now(),
        };
        let body = encode_user_registered(&registered);
        let event = decode_event(Some(&registered.event_id.to_string()), body.as_bytes()).unwrap();
        let log = InMemoryAudit::default();
        let audit = AuditEvents::new(log.clone(), clock);

        audit.handle(&event).await.unwrap();
        audit.handle(&event).await.unwrap();

        let rows = log.0.lock().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.user_id, Some(registered.user_id));
        assert_eq!(rows[0].1.event_type, "user.registered");
    }
}
