//! Port: turning a password into a slow, salted hash.
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
}
