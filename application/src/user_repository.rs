//! Port: where users live.
use crate::{IdempotentCompletion, OutboxEvent};
use domain::{LoginIdentifier, PasswordHash, User, UserId};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email is already registered")]
    EmailTaken,
    #[error("username is already taken")]
    UsernameTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub trait UserRepository: Send + Sync + 'static {
    /// Stores the user and, in the same transaction, the event that announces it (and, for a
    /// request with an idempotency key, that key's completion), so that either all exist or
    /// none does.
    ///
    /// # Errors
    /// [`CreateUserError::EmailTaken`] or [`CreateUserError::UsernameTaken`] when another account
    /// has the same email or username, compared case-insensitively; `Unexpected` otherwise.
    fn create(
        &self,
        user: &User,
        password_hash: &PasswordHash,
        event: &OutboxEvent,
        completes: Option<&IdempotentCompletion>,
    ) -> impl Future<Output = Result<(), CreateUserError>> + Send;

    /// The account a sign-in names, with its password hash.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn find_by_login(
        &self,
        identifier: &LoginIdentifier,
    ) -> impl Future<Output = anyhow::Result<Option<(User, PasswordHash)>>> + Send;

    /// # Errors
    /// When the store cannot be reached.
    fn find_by_id(&self, id: UserId) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;
}
