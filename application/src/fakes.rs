//! Small in-memory fakes of the ports, each with a switch to make it fail.
use crate::{
    AccessGrant, AccessToken, Accounts, Clock, CreateUserError, EventBus, IdGenerator,
    IdempotencyClaim, IdempotencyStore, IdempotentCompletion, InvalidToken, IssuedAccessToken,
    NewSession, Outbox, OutboxEvent, PasswordHasher, PortSet, Ports, PublishOutcome, RefreshToken,
    RefreshTokens, RegisterUserCommand, Rotation, SessionPolicy, SessionStore, SignedIn,
    TokenFingerprint, TokenIssuer, UserRepository,
};
use chrono::{TimeZone, Utc};
use domain::{
    EventId, IdempotencyKey, LoginIdentifier, Password, PasswordHash, RefreshDecision,
    RefreshTokenState, SessionId, Timestamp, User, UserId,
};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

type StoredUser = (User, PasswordHash, OutboxEvent);

/// Every fake, sharing state with the [`Accounts`] built from it.
#[derive(Clone, Default)]
pub struct Fakes {
    pub users: InMemoryUsers,
    pub hasher: FakeHasher,
    pub sessions: InMemorySessions,
    pub idempotency: InMemoryIdempotency,
    pub clock: FakeClock,
}

pub struct FakePorts;

impl Ports for FakePorts {
    type Users = InMemoryUsers;
    type Hasher = FakeHasher;
    type Tokens = FakeTokens;
    type Sessions = InMemorySessions;
    type RefreshTokens = FakeRefreshTokens;
    type Idempotency = InMemoryIdempotency;
    type Clock = FakeClock;
    type Ids = SequentialIds;
}

/// Registers alice@example.com / `alice` / "correct horse" and returns her session.
pub async fn register_alice(accounts: &Accounts<FakePorts>) -> SignedIn {
    let command = RegisterUserCommand {
        email: "alice@example.com".into(),
        username: "alice".into(),
        password: "correct horse".into(),
        idempotency_key: None,
        trace: None,
    };
    accounts
        .register(command)
        .await
        .expect("alice registers")
        .signed_in
}

pub fn accounts(fakes: &Fakes) -> Accounts<FakePorts> {
    Accounts::new(
        PortSet {
            users: fakes.users.clone(),
            hasher: fakes.hasher.clone(),
            tokens: FakeTokens,
            sessions: fakes.sessions.clone(),
            refresh_tokens: FakeRefreshTokens,
            idempotency: fakes.idempotency.clone(),
            clock: fakes.clock.clone(),
            ids: SequentialIds::default(),
        },
        SessionPolicy::default(),
    )
}

#[derive(Clone, Default)]
pub struct InMemoryUsers {
    stored: Arc<Mutex<Vec<StoredUser>>>,
    fail_next: Arc<AtomicBool>,
    /// Idempotency keys completed with a user: shared with [`InMemoryIdempotency`].
    completed: Completions,
}

type Completions = Arc<Mutex<Vec<(IdempotencyKey, UserId, SessionId)>>>;

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
        completes: Option<&IdempotentCompletion>,
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
        if let Some(completion) = completes {
            self.completed.lock().unwrap().push((
                completion.key.clone(),
                user.id,
                completion.session_id,
            ));
        }
        Ok(())
    }

    async fn find_by_login(
        &self,
        identifier: &LoginIdentifier,
    ) -> anyhow::Result<Option<(User, PasswordHash)>> {
        let stored = self.stored.lock().unwrap();
        Ok(stored
            .iter()
            .find(|(user, ..)| match identifier {
                LoginIdentifier::Email(email) => user.email.normalized() == *email,
                LoginIdentifier::Username(name) => user.username.normalized() == *name,
                LoginIdentifier::Unmatchable => false,
            })
            .map(|(user, hash, _)| (user.clone(), hash.clone())))
    }

    async fn find_by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        Ok(self
            .stored
            .lock()
            .unwrap()
            .iter()
            .find(|(user, ..)| user.id == id)
            .map(|(user, ..)| user.clone()))
    }
}

#[derive(Clone, Default)]
pub struct FakeHasher {
    calls: Arc<AtomicUsize>,
    verifications: Arc<AtomicUsize>,
}

impl FakeHasher {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
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

    async fn verify(&self, password: Password, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(
            hash.is_some_and(|hash| {
                hash.as_ref() == format!("hashed:{}", password.expose_secret())
            }),
        )
    }
}

/// Tokens of the form `access:<user>:<session>:<jti>`.
pub struct FakeTokens;

impl TokenIssuer for FakeTokens {
    fn issue_access_token(
        &self,
        user: &User,
        session: SessionId,
        now: Timestamp,
    ) -> anyhow::Result<IssuedAccessToken> {
        let grant = AccessGrant {
            user_id: user.id,
            session_id: session,
            token_id: Uuid::new_v4(),
            expires_at: now,
        };
        let token = format!("access:{}:{}:{}", user.id, session, grant.token_id);
        Ok(IssuedAccessToken {
            token: AccessToken::new(token),
            grant,
        })
    }

    fn verify_access_token(&self, token: &str) -> Result<AccessGrant, InvalidToken> {
        let invalid = || InvalidToken {
            reason: "not a fake token".into(),
        };
        let parts: Vec<&str> = token.split(':').collect();
        let [_, user, session, jti] = parts.as_slice() else {
            return Err(invalid());
        };
        let id = |s: &str| Uuid::parse_str(s).map_err(|_| invalid());
        Ok(AccessGrant {
            user_id: UserId::from_uuid(id(user)?),
            session_id: SessionId::from_uuid(id(session)?),
            token_id: id(jti)?,
            expires_at: FakeClock::default().now(),
        })
    }

    fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(900)
    }
}

pub struct FakeRefreshTokens;

impl RefreshTokens for FakeRefreshTokens {
    fn for_session(&self, session: SessionId) -> RefreshToken {
        RefreshToken::new(format!("refresh-{session}"))
    }

    fn request_fingerprint(&self, fields: &[&str]) -> TokenFingerprint {
        TokenFingerprint(fields.join("\0").into_bytes())
    }

    fn successor_of(&self, token: &RefreshToken) -> RefreshToken {
        RefreshToken::new(format!("{}'", token.expose_secret()))
    }

    fn fingerprint(&self, token: &RefreshToken) -> TokenFingerprint {
        TokenFingerprint(token.expose_secret().as_bytes().to_vec())
    }
}

struct FakeRefreshRecord {
    fingerprint: Vec<u8>,
    session: SessionId,
    expires_at: Timestamp,
    rotated_at: Option<Timestamp>,
}

#[derive(Default)]
struct SessionsState {
    sessions: Vec<(SessionId, UserId, bool)>,
    tokens: Vec<FakeRefreshRecord>,
    revoked_access: Vec<Uuid>,
}

#[derive(Clone, Default)]
pub struct InMemorySessions(Arc<Mutex<SessionsState>>);

impl InMemorySessions {
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().sessions.len()
    }
}

impl SessionStore for InMemorySessions {
    async fn start(&self, session: &NewSession) -> anyhow::Result<()> {
        let mut state = self.0.lock().unwrap();
        state.sessions.push((session.id, session.user_id, false));
        state.tokens.push(FakeRefreshRecord {
            fingerprint: session.refresh_token.0.clone(),
            session: session.id,
            expires_at: session.refresh_expires_at,
            rotated_at: None,
        });
        Ok(())
    }

    async fn rotate(
        &self,
        presented: &TokenFingerprint,
        successor: &TokenFingerprint,
        successor_expires_at: Timestamp,
        now: Timestamp,
        grace: Duration,
    ) -> anyhow::Result<Rotation> {
        let mut state = self.0.lock().unwrap();
        let Some(index) = state
            .tokens
            .iter()
            .position(|t| t.fingerprint == presented.0)
        else {
            return Ok(Rotation::Refused);
        };
        let session = state.tokens[index].session;
        let (_, user_id, revoked) = *state
            .sessions
            .iter()
            .find(|(id, ..)| *id == session)
            .unwrap();
        let record = &state.tokens[index];
        let decision = RefreshTokenState {
            expires_at: record.expires_at,
            rotated_at: record.rotated_at,
            successor_rotated: state
                .tokens
                .iter()
                .find(|t| t.fingerprint == successor.0)
                .is_none_or(|t| t.rotated_at.is_some()),
            session_revoked: revoked,
        }
        .decide(now, grace);
        Ok(match decision {
            RefreshDecision::Rotate => {
                state.tokens[index].rotated_at = Some(now);
                state.tokens.push(FakeRefreshRecord {
                    fingerprint: successor.0.clone(),
                    session,
                    expires_at: successor_expires_at,
                    rotated_at: None,
                });
                Rotation::Rotated {
                    user_id,
                    session_id: session,
                }
            }
            RefreshDecision::ReplaySuccessor => Rotation::Replayed {
                user_id,
                session_id: session,
            },
            RefreshDecision::RevokeFamily => {
                state
                    .sessions
                    .iter_mut()
                    .filter(|(id, ..)| *id == session)
                    .for_each(|s| s.2 = true);
                Rotation::FamilyRevoked
            }
            RefreshDecision::Refuse => Rotation::Refused,
        })
    }

    async fn is_current(&self, refresh_token: &TokenFingerprint) -> anyhow::Result<bool> {
        let state = self.0.lock().unwrap();
        let record = state
            .tokens
            .iter()
            .find(|t| t.fingerprint == refresh_token.0);
        Ok(record.is_some_and(|record| {
            record.rotated_at.is_none()
                && state
                    .sessions
                    .iter()
                    .any(|(id, _, revoked)| *id == record.session && !revoked)
        }))
    }

    async fn revoke(&self, access: &AccessGrant) -> anyhow::Result<()> {
        let mut state = self.0.lock().unwrap();
        state.revoked_access.push(access.token_id);
        state
            .sessions
            .iter_mut()
            .filter(|(id, ..)| *id == access.session_id)
            .for_each(|s| s.2 = true);
        Ok(())
    }

    async fn is_revoked(&self, access: &AccessGrant) -> anyhow::Result<bool> {
        let state = self.0.lock().unwrap();
        Ok(state.revoked_access.contains(&access.token_id)
            || state
                .sessions
                .iter()
                .any(|(id, _, revoked)| *id == access.session_id && *revoked))
    }

    async fn prune_expired(&self, _now: Timestamp) -> anyhow::Result<u64> {
        Ok(0)
    }
}

/// Claims by key; completions are read from the users fake, as the real store shares the
/// database transaction with the user.
#[derive(Clone, Default)]
pub struct InMemoryIdempotency {
    claims: Arc<Mutex<Vec<(IdempotencyKey, TokenFingerprint)>>>,
    completed: Completions,
}

impl Fakes {
    /// Wires the fakes that share state, as one database would.
    pub fn new() -> Self {
        let fakes = Self::default();
        Self {
            idempotency: InMemoryIdempotency {
                completed: fakes.users.completed.clone(),
                ..InMemoryIdempotency::default()
            },
            ..fakes
        }
    }
}

impl IdempotencyStore for InMemoryIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        request: &TokenFingerprint,
        _now: Timestamp,
    ) -> anyhow::Result<IdempotencyClaim> {
        let mut claims = self.claims.lock().unwrap();
        let Some((_, fingerprint)) = claims.iter().find(|(k, _)| k == key) else {
            claims.push((key.clone(), request.clone()));
            return Ok(IdempotencyClaim::Fresh);
        };
        if fingerprint != request {
            return Ok(IdempotencyClaim::Mismatch);
        }
        let completed = self.completed.lock().unwrap();
        Ok(completed.iter().find(|(k, ..)| k == key).map_or(
            IdempotencyClaim::InProgress,
            |(_, user_id, session_id)| IdempotencyClaim::Completed {
                user_id: *user_id,
                session_id: *session_id,
            },
        ))
    }

    async fn release(&self, key: &IdempotencyKey) -> anyhow::Result<()> {
        self.claims.lock().unwrap().retain(|(k, _)| k != key);
        Ok(())
    }
}

/// A clock that stands still until told to move.
#[derive(Clone)]
pub struct FakeClock(Arc<Mutex<Timestamp>>);

impl Default for FakeClock {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Timestamp::from_datetime(
            Utc.with_ymd_and_hms(2025, 10, 19, 16, 37, 15).unwrap(),
        ))))
    }
}

impl FakeClock {
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now =
            Timestamp::from_datetime(now.as_datetime() + chrono::TimeDelta::from_std(by).unwrap());
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
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
        occurred_at: FakeClock::default().now(),
        trace: None,
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
