//! Use cases behind a bearer access token: who is this, and log them out.
use crate::accounts::{Accounts, Ports};
use crate::{AccessGrant, SessionStore, TokenIssuer, UserRepository};
use domain::User;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, wrongly signed, expired, or for an account that is gone.
    #[error("access token is invalid")]
    InvalidToken,
    #[error("access token was revoked")]
    Revoked,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl<P: Ports> Accounts<P> {
    /// The user an access token vouches for, if it is valid and not revoked.
    ///
    /// # Errors
    /// `InvalidToken`, `Revoked`, or `Unexpected` when the stores cannot be reached.
    pub async fn authenticate(&self, access_token: &str) -> Result<(User, AccessGrant), AuthError> {
        let grant = self
            .ports
            .tokens
            .verify_access_token(access_token)
            .map_err(|error| {
                tracing::debug!(%error, "refused an access token");
                AuthError::InvalidToken
            })?;
        if self.ports.sessions.is_revoked(&grant).await? {
            return Err(AuthError::Revoked);
        }
        let user = self
            .ports
            .users
            .find_by_id(grant.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok((user, grant))
    }

    /// Revokes the access token and every refresh token of its session.
    ///
    /// # Errors
    /// As [`Accounts::authenticate`]: only a valid token can log out.
    #[tracing::instrument(name = "log_out", skip_all)]
    pub async fn log_out(&self, access_token: &str) -> Result<(), AuthError> {
        let (user, grant) = self.authenticate(access_token).await?;
        self.ports.sessions.revoke(&grant).await?;
        tracing::info!(user_id = %user.id, session_id = %grant.session_id, "user logged out");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{Fakes, accounts, register_alice};

    #[tokio::test]
    async fn a_token_works_until_its_session_logs_out() {
        let fakes = Fakes::new();
        let accounts = accounts(&fakes);
        let signed_in = register_alice(&accounts).await;
        let token = signed_in.tokens.access_token.expose_secret();

        let (user, _) = accounts.authenticate(token).await.unwrap();
        assert_eq!(user, signed_in.user);
        accounts.log_out(token).await.unwrap();
        assert!(matches!(
            accounts.authenticate(token).await,
            Err(AuthError::Revoked)
        ));
        assert!(
            accounts
                .refresh(signed_in.tokens.refresh_token)
                .await
                .is_err(),
            "the refresh family is revoked too"
        );
    }

    #[tokio::test]
    async fn a_token_that_does_not_verify_is_invalid() {
        let fakes = Fakes::new();
        assert!(matches!(
            accounts(&fakes).authenticate("garbage").await,
            Err(AuthError::InvalidToken)
        ));
    }
}
