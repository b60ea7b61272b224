//! Use case: exchange a refresh token for a new pair (rotation, with reuse detection).
use crate::accounts::{Accounts, Ports, SignedIn};
use crate::session_store::Rotation;
use crate::{Clock, RefreshToken, RefreshTokens, SessionStore, UserRepository};

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token is invalid or expired")]
    Invalid,
    /// An already rotated token came back: its session is now revoked.
    #[error("refresh token was already used; the session is revoked")]
    Reused,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl<P: Ports> Accounts<P> {
    /// # Errors
    /// `Invalid` for an unknown, expired or revoked token; `Reused` when an old token is
    /// presented after the grace window (the session is then revoked); `Unexpected` otherwise.
    #[tracing::instrument(name = "refresh", skip_all)]
    pub async fn refresh(&self, presented: RefreshToken) -> Result<SignedIn, RefreshError> {
        let now = self.ports.clock.now();
        let successor = self.ports.refresh_tokens.successor_of(&presented);
        let rotation = self
            .ports
            .sessions
            .rotate(
                &self.ports.refresh_tokens.fingerprint(&presented),
                &self.ports.refresh_tokens.fingerprint(&successor),
                self.refresh_expiry(now),
                now,
                self.policy.refresh_grace,
            )
            .await?;
        let (user_id, session_id) = match rotation {
            Rotation::Rotated {
                user_id,
                session_id,
            }
            | Rotation::Replayed {
                user_id,
                session_id,
            } => (user_id, session_id),
            Rotation::FamilyRevoked => {
                tracing::warn!("a rotated refresh token was reused; its session is revoked");
                return Err(RefreshError::Reused);
            }
            Rotation::Refused => return Err(RefreshError::Invalid),
        };
        let user = self
            .ports
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(RefreshError::Invalid)?;
        Ok(self.sign_in(user, session_id, successor)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{Fakes, accounts, register_alice};

    async fn registered(fakes: &Fakes) -> RefreshToken {
        register_alice(&accounts(fakes)).await.tokens.refresh_token
    }

    #[tokio::test]
    async fn a_refresh_rotates_and_a_duplicate_within_the_grace_window_gets_the_same_successor() {
        let fakes = Fakes::new();
        let first = registered(&fakes).await;
        let accounts = accounts(&fakes);

        let second = accounts
            .refresh(first.clone())
            .await
            .unwrap()
            .tokens
            .refresh_token;
        assert_ne!(second, first);
        let duplicate = accounts
            .refresh(first.clone())
            .await
            .unwrap()
            .tokens
            .refresh_token;
        assert_eq!(duplicate, second, "same successor, nobody logged out");
        assert!(accounts.refresh(second).await.is_ok());
    }

    #[tokio::test]
    async fn reuse_after_the_grace_window_revokes_the_family() {
        let fakes = Fakes::new();
        let first = registered(&fakes).await;
        let accounts = accounts(&fakes);
        let second = accounts
            .refresh(first.clone())
            .await
            .unwrap()
            .tokens
            .refresh_token;

        fakes.clock.advance(std::time::Duration::from_secs(11));
        assert!(matches!(
            accounts.refresh(first).await,
            Err(RefreshError::Reused)
        ));
        assert!(
            matches!(accounts.refresh(second).await, Err(RefreshError::Invalid)),
            "the successor died with its family"
        );
    }

    #[tokio::test]
    async fn an_unknown_token_is_invalid() {
        let fakes = Fakes::new();
        let result = accounts(&fakes)
            .refresh(RefreshToken::new("made up".into()))
            .await;
        assert!(matches!(result, Err(RefreshError::Invalid)));
    }
}
