//! Sessions and the rules for refresh-token rotation.
use crate::Timestamp;
use std::time::Duration;

crate::id::uuid_id!(
    /// One sign-in: the family of refresh tokens that descend from it, and the access tokens
    /// issued along the way. Logging out revokes the whole family.
    SessionId
);

/// What is known about a refresh token at the moment it is presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshTokenState {
    pub expires_at: Timestamp,
    /// When it was exchanged for its successor, if it was.
    pub rotated_at: Option<Timestamp>,
    /// Whether that successor was itself exchanged (or is gone): then it is no answer to give.
    pub successor_rotated: bool,
    pub session_revoked: bool,
}

/// What to do with a presented refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Current and valid: exchange it for a successor.
    Rotate,
    /// Exchanged a moment ago: a concurrent duplicate (two tabs, a retry). Answer with the same
    /// successor instead of logging the user out.
    ReplaySuccessor,
    /// Exchanged earlier and presented again: someone holds a copy. Revoke the whole family.
    RevokeFamily,
    /// Expired, or its session is over.
    Refuse,
}

impl RefreshTokenState {
    #[must_use]
    pub fn decide(&self, now: Timestamp, grace: Duration) -> RefreshDecision {
        if self.session_revoked || now >= self.expires_at {
            return RefreshDecision::Refuse;
        }
        match self.rotated_at {
            None => RefreshDecision::Rotate,
            Some(rotated_at)
                if !self.successor_rotated
                    && now.as_datetime() - rotated_at.as_datetime() <= chrono_duration(grace) =>
            {
                RefreshDecision::ReplaySuccessor
            }
            Some(_) => RefreshDecision::RevokeFamily,
        }
    }
}

fn chrono_duration(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(second: u32) -> Timestamp {
        Timestamp::from_datetime(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second).unwrap())
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[test]
    fn a_fresh_token_rotates() {
        let state = RefreshTokenState {
            expires_at: at(50),
            rotated_at: None,
            successor_rotated: false,
            session_revoked: false,
        };
        assert_eq!(state.decide(at(0), GRACE), RefreshDecision::Rotate);
    }

    #[test]
    fn a_token_presented_again_within_the_grace_window_replays_its_successor() {
        let state = RefreshTokenState {
            expires_at: at(50),
            rotated_at: Some(at(0)),
            successor_rotated: false,
            session_revoked: false,
        };
        assert_eq!(
            state.decide(at(10), GRACE),
            RefreshDecision::ReplaySuccessor
        );
        assert_eq!(state.decide(at(11), GRACE), RefreshDecision::RevokeFamily);
    }

    #[test]
    fn a_duplicate_gets_no_successor_that_was_itself_used() {
        let state = RefreshTokenState {
            expires_at: at(50),
            rotated_at: Some(at(0)),
            successor_rotated: true,
            session_revoked: false,
        };
        assert_eq!(state.decide(at(1), GRACE), RefreshDecision::RevokeFamily);
    }

    #[test]
    fn expired_tokens_and_revoked_sessions_are_refused() {
        let expired = RefreshTokenState {
            expires_at: at(5),
            rotated_at: None,
            successor_rotated: false,
            session_revoked: false,
        };
        assert_eq!(expired.decide(at(5), GRACE), RefreshDecision::Refuse);
        let revoked = RefreshTokenState {
            expires_at: at(50),
            rotated_at: Some(at(0)),
            successor_rotated: false,
            session_revoked: true,
        };
        assert_eq!(revoked.decide(at(1), GRACE), RefreshDecision::Refuse);
    }
}
