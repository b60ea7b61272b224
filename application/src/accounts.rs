//! The account use cases share one set of ports; [`Accounts`] holds them, and each use case
//! lives in its own file as a method on it.
use crate::session_store::NewSession;
use crate::{
    AccessToken, Clock, IdGenerator, IdempotencyStore, PasswordHasher, RefreshToken, RefreshTokens,
    SessionStore, TokenIssuer, UserRepository,
};
use domain::{SessionId, Timestamp, User};
use std::time::Duration;

/// The adapters behind the account use cases, named once so that the use cases need one type
/// parameter rather than seven.
pub trait Ports: Send + Sync + 'static {
    type Users: UserRepository;
    type Hasher: PasswordHasher;
    type Tokens: TokenIssuer;
    type Sessions: SessionStore;
    type RefreshTokens: RefreshTokens;
    type Idempotency: IdempotencyStore;
    type Clock: Clock;
    type Ids: IdGenerator;
}

pub struct PortSet<P: Ports> {
    pub users: P::Users,
    pub hasher: P::Hasher,
    pub tokens: P::Tokens,
    pub sessions: P::Sessions,
    pub refresh_tokens: P::RefreshTokens,
    pub idempotency: P::Idempotency,
    pub clock: P::Clock,
    pub ids: P::Ids,
}

#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub refresh_token_ttl: Duration,
    /// How long after a rotation the old refresh token still yields the same successor.
    pub refresh_grace: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
        }
    }
}

pub struct Accounts<P: Ports> {
    pub(crate) ports: PortSet<P>,
    pub(crate) policy: SessionPolicy,
}

/// What a client holds after signing up or in.
#[derive(Debug)]
pub struct SessionTokens {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
    /// Lifetime of the access token.
    pub expires_in: Duration,
}

/// A user with a fresh pair of tokens.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub tokens: SessionTokens,
}

impl<P: Ports> Accounts<P> {
    pub fn new(ports: PortSet<P>, policy: SessionPolicy) -> Self {
        Self { ports, policy }
    }

    pub(crate) fn refresh_expiry(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_datetime(
            now.as_datetime()
                + chrono::TimeDelta::from_std(self.policy.refresh_token_ttl)
                    .unwrap_or(chrono::TimeDelta::MAX),
        )
    }

    /// Opens a new session for `user`: a refresh-token family and a first access token.
    pub(crate) async fn start_session(&self, user: User) -> anyhow::Result<SignedIn> {
        let session_id = SessionId::from_uuid(self.ports.ids.next_id());
        self.open_session(user, session_id).await
    }

    /// As [`Accounts::start_session`], with an id chosen beforehand.
    pub(crate) async fn open_session(
        &self,
        user: User,
        session_id: SessionId,
    ) -> anyhow::Result<SignedIn> {
        let now = self.ports.clock.now();
        let refresh_token = self.ports.refresh_tokens.for_session(session_id);
        self.ports
            .sessions
            .start(&NewSession {
                id: session_id,
                user_id: user.id,
                created_at: now,
                refresh_token: self.ports.refresh_tokens.fingerprint(&refresh_token),
                refresh_expires_at: self.refresh_expiry(now),
            })
            .await?;
        self.sign_in(user, session_id, refresh_token)
    }

    /// Issues an access token for a session whose refresh token the client will hold.
    pub(crate) fn sign_in(
        &self,
        user: User,
        session_id: SessionId,
        refresh_token: RefreshToken,
    ) -> anyhow::Result<SignedIn> {
        let issued =
            self.ports
                .tokens
                .issue_access_token(&user, session_id, self.ports.clock.now())?;
        Ok(SignedIn {
            user,
            tokens: SessionTokens {
                access_token: issued.token,
                refresh_token,
                expires_in: self.ports.tokens.access_token_ttl(),
            },
        })
    }
}
