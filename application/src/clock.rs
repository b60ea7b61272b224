//! Time and identity sources, as ports so that use cases stay deterministic under test.
use domain::Timestamp;
use uuid::Uuid;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub trait IdGenerator: Send + Sync + 'static {
    /// A new, globally unique id.
    fn next_id(&self) -> Uuid;
}
