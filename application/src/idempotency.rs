//! Port: remembered attempts, keyed by the client's `Idempotency-Key`.
use crate::TokenFingerprint;
use domain::{IdempotencyKey, SessionId, Timestamp, UserId};
use std::future::Future;

/// What is known about a key when a request presents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use (or the old record expired, or its attempt died): go ahead.
    Fresh,
    /// Another request with this key is running right now.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
    /// The key's request succeeded: answer as it did.
    Completed {
        user_id: UserId,
        session_id: SessionId,
    },
}

/// Ties a registration to the key it completes.
#[derive(Clone, Debug)]
pub struct IdempotentCompletion {
    pub key: IdempotencyKey,
    pub session_id: SessionId,
}

pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for the request with fingerprint `request`, or says why not.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn claim(
        &self,
        key: &IdempotencyKey,
        request: &TokenFingerprint,
        now: Timestamp,
    ) -> impl Future<Output = anyhow::Result<IdempotencyClaim>> + Send;

    /// Forgets a claim whose request failed, so that it has nothing to replay.
    ///
    /// # Errors
    /// When the store cannot be reached; the claim then lapses by itself.
    fn release(&self, key: &IdempotencyKey) -> impl Future<Output = anyhow::Result<()>> + Send;
}
