//! Domain events: facts that happened, named in the past tense.
use crate::{Email, Timestamp, User, UserId, Username};

crate::id::uuid_id!(
    /// The identity of one event; consumers deduplicate on it.
    EventId
);

/// A new account exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRegistered {
    pub event_id: EventId,
    pub user_id: UserId,
    pub email: Email,
    pub username: Username,
    pub created_at: Timestamp,
    pub occurred_at: Timestamp,
}

impl UserRegistered {
    /// The stable type name downstream services subscribe to.
    pub const TYPE: &'static str = "user.registered";
    /// Raised whenever a field changes meaning or disappears; adding a field keeps it.
    pub const VERSION: u32 = 1;

    #[must_use]
    pub fn new(event_id: EventId, user: &User, occurred_at: Timestamp) -> Self {
        Self {
            event_id,
            user_id: user.id,
            email: user.email.clone(),
            username: user.username.clone(),
            created_at: user.created_at,
            occurred_at,
        }
    }
}
