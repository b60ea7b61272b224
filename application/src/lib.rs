//! The use cases of registrar and the ports they reach the outside world through.
//!
//! Outbound ports (implemented in `adapters`): [`UserRepository`], [`PasswordHasher`],
//! [`TokenIssuer`], [`Clock`], [`IdGenerator`], [`Outbox`] and [`EventBus`].
//! Inbound port (driven by the AMQP consumer): [`EventListener`].
mod clock;
mod envelope;
mod listener;
mod outbox;
mod password_hasher;
mod register_user;
mod relay_outbox;
mod token_issuer;
mod user_repository;

#[cfg(test)]
mod fakes;

pub use clock::{Clock, IdGenerator};
pub use envelope::{DecodeError, IncomingEvent, decode_event, encode_user_registered};
pub use listener::{EventListener, LogEvents};
pub use outbox::{EventBus, Outbox, OutboxEvent, PublishOutcome};
pub use password_hasher::PasswordHasher;
pub use register_user::{
    FieldError, RegisterUser, RegisterUserCommand, RegisterUserError, Registration,
};
pub use relay_outbox::{RelayError, RelayOutbox, RelayReport};
pub use token_issuer::{AccessToken, TokenIssuer};
pub use user_repository::{CreateUserError, UserRepository};
