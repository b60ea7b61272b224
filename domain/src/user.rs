//! A registered user.
use crate::{Email, Timestamp, Username};

crate::id::uuid_id!(
    /// A user's identity; never reused.
    UserId
);

/// A user as the rest of the system sees it: never with a password or its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub created_at: Timestamp,
}
