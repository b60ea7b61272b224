//! The pure core of registrar: the identity rules a new account must meet, the user it becomes
//! and the event that announces it. No IO, no async runtime, no framework types.
mod email;
mod event;
mod id;
mod idempotency;
mod login;
mod password;
mod session;
mod timestamp;
mod user;
mod username;

pub use email::{Email, EmailError, normalize as normalize_email};
pub use event::{EventId, UserRegistered};
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use login::LoginIdentifier;
pub use password::{Password, PasswordError, PasswordHash};
pub use session::{RefreshDecision, RefreshTokenState, SessionId};
pub use timestamp::Timestamp;
pub use user::{User, UserId};
pub use username::{Username, UsernameError};
