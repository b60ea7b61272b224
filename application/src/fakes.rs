//! Small in-memory fakes of the ports, each with a switch to make it fail.
use crate::{
    AccessToken, Clock, CreateUserError, EventBus, IdGenerator, Outbox, OutboxEvent,
    PasswordHasher, PublishOutcome, TokenIssuer, UserRepository,
};
use chrono::{TimeZone, Utc};
use domain::{EventId, Password, PasswordHash, Timestamp, User};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

type StoredUser = (User, PasswordHash, OutboxEvent);

#[derive(Clone, Default)]
pub struct InMemoryUsers {
    stored: Arc<Mutex<Vec<StoredUser>>>,
    fail_next: Arc<AtomicBool>,
}

impl InMemoryUsers {
    pub fn stored(&self) -> Vec<StoredUser> {
        self.stored.lock().unwrap().clone()
    }

    pub fn fail_next(&self) {
        self.fail_next.store(true, Ordering::SeqCst);
    }
}

impl UserRepository for InMemoryUsers {
    async fn create(
        &self,
        user: &User,
        hash: &PasswordHash,
        event: &OutboxEvent,
    ) -> Result<(), CreateUserError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(anyhow::anyhow!("database is down").into());
        }
        let mut stored = self.stored.lock().unwrap();
        if stored
            .iter()
            .any(|(u, ..)| u.email.normalized() == user.email.normalized())
        {
            return Err(CreateUserError::EmailTaken);
        }
        if stored
            .iter()
            .any(|(u, ..)| u.username.normalized() == user.username.normalized())
        {
            return Err(CreateUserError::UsernameTaken);
        }
        stored.push((user.clone(), hash.clone(), event.clone()));
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct FakeHasher {
    calls: Arc<AtomicUsize>,
}

impl FakeHasher {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: Password) -> anyhow::Result<PasswordHash> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(PasswordHash::from_phc(format!(
            "hashed:{}",
            password.expose_secret()
        )))
    }
}

pub struct FakeTokens;

impl TokenIssuer for FakeTokens {
    fn issue_access_token(&self, user: &User) -> anyhow::Result<AccessToken> {
        Ok(AccessToken::new(format!("token-for-{}", user.id)))
    }
}

#[derive(Default)]
pub struct FakeClock;

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc.with_ymd_and_hms(2025, 10, 19, 16, 37, 15).unwrap())
    }
}

#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst)) + 1)
    }
}

pub fn pending_event(n: u128) -> OutboxEvent {
    OutboxEvent {
        id: EventId::from_uuid(Uuid::from_u128(n)),
        event_type: "user.registered".into(),
        payload: format!("{{\"n\":{n}}}"),
        occurred_at: FakeClock.now(),
    }
}

#[derive(Clone, Default)]
pub struct InMemoryOutbox {
    pending: Arc<Mutex<Vec<OutboxEvent>>>,
    released: Arc<AtomicUsize>,
}

impl InMemoryOutbox {
    pub fn with(events: Vec<OutboxEvent>) -> Self {
        Self {
            pending: Arc::new(Mutex::new(events)),
            ..Self::default()
        }
    }

    pub fn pending_count(&self) -> usize {
        self.pending.lock().unwrap().len()
    }

    pub fn released(&self) -> usize {
        self.released.load(Ordering::SeqCst)
    }
}

impl Outbox for InMemoryOutbox {
    async fn claim_pending(&self, limit: usize) -> anyhow::Result<Vec<OutboxEvent>> {
        Ok(self
            .pending
            .lock()
            .unwrap()
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_published(&self, ids: &[EventId]) -> anyhow::Result<()> {
        self.pending
            .lock()
            .unwrap()
            .retain(|event| !ids.contains(&event.id));
        Ok(())
    }

    async fn release(&self, ids: &[EventId], _reason: &str) -> anyhow::Result<()> {
        self.released.fetch_add(ids.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct FakeBus {
    down: Arc<AtomicBool>,
    answers: Arc<Mutex<Option<Vec<PublishOutcome>>>>,
    published: Arc<Mutex<Vec<OutboxEvent>>>,
}

impl FakeBus {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn answer_with(&self, outcomes: Vec<PublishOutcome>) {
        *self.answers.lock().unwrap() = Some(outcomes);
    }

    pub fn published(&self) -> Vec<OutboxEvent> {
        self.published.lock().unwrap().clone()
    }
}

impl EventBus for FakeBus {
    async fn publish(&self, events: &[OutboxEvent]) -> anyhow::Result<Vec<PublishOutcome>> {
        if self.down.load(Ordering::SeqCst) {
            anyhow::bail!("connection refused");
        }
        self.published.lock().unwrap().extend_from_slice(events);
        let answers = self.answers.lock().unwrap().take();
        Ok(answers.unwrap_or_else(|| vec![PublishOutcome::Confirmed; events.len()]))
    }
}
