//! The service is at capacity: a bounded resource (hashing, database connections) is full.
//! Adapters return it (inside `anyhow`) instead of queueing without bound; the HTTP adapter
//! answers 503 with `Retry-After`.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("the service is at capacity; retry shortly")]
pub struct Overloaded;

/// Whether `error`, or anything it was caused by, is [`Overloaded`].
#[must_use]
pub fn is_overloaded(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Overloaded>())
}
