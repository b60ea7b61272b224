//! The use cases of registrar and the ports they reach the outside world through.
//!
//! Outbound ports (implemented in `adapters`): [`UserRepository`], [`PasswordHasher`],
//! [`TokenIssuer`], [`RefreshTokens`], [`SessionStore`], [`Clock`], [`IdGenerator`], [`Outbox`]
//! and [`EventBus`]. Inbound port (driven by the AMQP consumer): [`EventListener`].
mod accounts;
mod audit;
mod authenticate;
mod clock;
mod envelope;
mod idempotency;
mod listener;
mod log_in;
mod outbox;
mod overload;
mod password_hasher;
mod refresh;
mod register;
mod relay_outbox;
mod retry_policy;
mod session_store;
mod token_issuer;
mod user_repository;

#[cfg(test)]
mod fakes;

pub use accounts::{Accounts, PortSet, Ports, SessionPolicy, SessionTokens, SignedIn};
pub use audit::{AuditEntry, AuditEvents, AuditLog};
pub use authenticate::AuthError;
pub use clock::{Clock, IdGenerator};
pub use envelope::{DecodeError, IncomingEvent, decode_event, encode_user_registered};
pub use idempotency::{IdempotencyClaim, IdempotencyStore, IdempotentCompletion};
pub use listener::{EventListener, LogEvents, wants};
pub use log_in::{LogInCommand, LogInError};
pub use outbox::{EventBus, Outbox, OutboxEvent, PublishOutcome, TraceContext};
pub use overload::{Overloaded, is_overloaded};
pub use password_hasher::PasswordHasher;
pub use refresh::RefreshError;
pub use register::{FieldError, RegisterUserCommand, RegisterUserError, Registration};
pub use relay_outbox::{RelayError, RelayOutbox, RelayReport};
pub use retry_policy::{AfterFailure, RetryPolicy};
pub use session_store::{NewSession, Rotation, SessionStore};
pub use token_issuer::{
    AccessGrant, AccessToken, InvalidToken, IssuedAccessToken, RefreshToken, RefreshTokens,
    TokenFingerprint, TokenIssuer,
};
pub use user_repository::{CreateUserError, UserRepository};
