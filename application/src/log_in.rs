//! Use case: sign in with an email or username and a password.
use crate::PasswordHasher;
use crate::UserRepository;
use crate::accounts::{Accounts, Ports, SignedIn};
use domain::{LoginIdentifier, Password};

/// No `Debug`: it holds a password.
pub struct LogInCommand {
    pub email_or_username: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogInError {
    /// The same for an unknown account and a wrong password, so that sign-in does not tell
    /// which accounts exist.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl<P: Ports> Accounts<P> {
    /// # Errors
    /// `InvalidCredentials` for an unknown account, a wrong password or an over-long one;
    /// `Unexpected` for failures of the ports.
    #[tracing::instrument(name = "log_in", skip_all)]
    pub async fn log_in(&self, command: LogInCommand) -> Result<SignedIn, LogInError> {
        // Longer than any password the policy allows: refused before it costs a hash.
        let password =
            Password::candidate(&command.password).map_err(|_| LogInError::InvalidCredentials)?;
        let identifier = LoginIdentifier::parse(&command.email_or_username);
        let account = match identifier {
            LoginIdentifier::Unmatchable => None,
            ref identifier => self.ports.users.find_by_login(identifier).await?,
        };
        let (user, hash) = match account {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        // With no account this verifies against a dummy hash: the same work, the same time.
        let matches = self.ports.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(LogInError::InvalidCredentials);
        };
        tracing::info!(user_id = %user.id, "user signed in");
        Ok(self.start_session(user).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{Fakes, accounts, register_alice};

    async fn registered(fakes: &Fakes) {
        register_alice(&accounts(fakes)).await;
    }

    fn login(id: &str, password: &str) -> LogInCommand {
        LogInCommand {
            email_or_username: id.into(),
            password: password.into(),
        }
    }

    #[tokio::test]
    async fn any_case_or_padding_of_the_email_or_username_signs_in() {
        let fakes = Fakes::new();
        registered(&fakes).await;
        for id in [
            "alice@example.com",
            " ALICE@EXAMPLE.COM ",
            "alice",
            "  Alice ",
            "ａｌｉｃｅ",
        ] {
            let signed_in = accounts(&fakes).log_in(login(id, "correct horse")).await;
            assert!(signed_in.is_ok(), "{id:?}");
        }
    }

    #[tokio::test]
    async fn unknown_accounts_and_wrong_passwords_fail_alike_after_the_same_work() {
        let fakes = Fakes::new();
        registered(&fakes).await;
        let hashes_before = fakes.hasher.verifications();
        for (id, password) in [
            ("alice", "wrong horse"),
            ("nobody", "correct horse"),
            ("no one at all", "x"),
        ] {
            let result = accounts(&fakes).log_in(login(id, password)).await;
            assert!(
                matches!(result, Err(LogInError::InvalidCredentials)),
                "{id:?}"
            );
        }
        assert_eq!(
            fakes.hasher.verifications() - hashes_before,
            3,
            "every attempt costs one verification"
        );
        assert_eq!(
            fakes.sessions.count(),
            1,
            "only the registration opened a session"
        );
    }
}
