//! Port: where sessions, refresh tokens and revocations live.
use crate::{AccessGrant, TokenFingerprint};
use domain::{SessionId, Timestamp, UserId};
use std::future::Future;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub refresh_token: TokenFingerprint,
    pub refresh_expires_at: Timestamp,
}

/// The result of presenting a refresh token, decided by [`domain::RefreshTokenState::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The successor is now the session's current refresh token.
    Rotated {
        user_id: UserId,
        session_id: SessionId,
    },
    /// A duplicate within the grace window: the successor stands.
    Replayed {
        user_id: UserId,
        session_id: SessionId,
    },
    /// An already rotated token was reused: the whole session is now revoked.
    FamilyRevoked,
    /// Unknown, expired, or of a revoked session.
    Refused,
}

pub trait SessionStore: Send + Sync + 'static {
    /// # Errors
    /// When the store cannot be reached.
    fn start(&self, session: &NewSession) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Applies the rotation rules to `presented`, atomically, so that concurrent refreshes of
    /// one token are decided one after the other.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn rotate(
        &self,
        presented: &TokenFingerprint,
        successor: &TokenFingerprint,
        successor_expires_at: Timestamp,
        now: Timestamp,
        grace: Duration,
    ) -> impl Future<Output = anyhow::Result<Rotation>> + Send;

    /// Whether `refresh_token` is its session's current one: not exchanged, not expired, of a
    /// session that was not revoked.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn is_current(
        &self,
        refresh_token: &TokenFingerprint,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Revokes the access token (until it expires) and the session's whole refresh family.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn revoke(&self, access: &AccessGrant) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Whether the access token or its session was revoked.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn is_revoked(&self, access: &AccessGrant)
    -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Deletes revocations and refresh tokens that have expired anyway; returns how many.
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn prune_expired(&self, now: Timestamp) -> impl Future<Output = anyhow::Result<u64>> + Send;
}
