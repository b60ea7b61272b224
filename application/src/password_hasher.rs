//! Port: turning a password into a slow, salted hash, and checking one against it.
use domain::{Password, PasswordHash};
use std::future::Future;

pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes the password with a fresh salt. Implementations must not block the async runtime:
    /// hashing is deliberately expensive.
    ///
    /// # Errors
    /// Only for unexpected failures of the hashing machinery.
    fn hash(&self, password: Password)
    -> impl Future<Output = anyhow::Result<PasswordHash>> + Send;

    /// Whether `password` matches `hash`. With no hash (the account does not exist) it does the
    /// same work against a dummy hash and answers `false`, so that timing does not tell which
    /// accounts exist.
    ///
    /// # Errors
    /// Only for unexpected failures; a malformed stored hash is one.
    fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
}
