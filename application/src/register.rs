//! Use case: register a new user, announce it, and sign them in.
use crate::accounts::{Accounts, Ports, SignedIn};
use crate::{
    Clock, CreateUserError, IdGenerator, OutboxEvent, PasswordHasher, UserRepository,
    encode_user_registered,
};
use domain::{Email, EventId, Password, User, UserId, UserRegistered, Username};

/// The raw input, exactly as the client sent it. No `Debug`: it holds a password.
pub struct RegisterUserCommand {
    pub email: String,
    pub username: String,
    pub password: String,
}

/// One invalid input field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterUserError {
    #[error("invalid input: {}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("email is already registered")]
    EmailTaken,
    #[error("username is already taken")]
    UsernameTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl<P: Ports> Accounts<P> {
    /// Validates every field, hashes the password, stores the user together with its
    /// `user.registered` event, and opens a session.
    ///
    /// # Errors
    /// `Invalid` lists every invalid field at once; `EmailTaken` / `UsernameTaken` when the
    /// account exists (case-insensitively); `Unexpected` for failures of the ports.
    #[tracing::instrument(name = "register_user", skip_all)]
    pub async fn register(
        &self,
        command: RegisterUserCommand,
    ) -> Result<SignedIn, RegisterUserError> {
        let (email, username, password) = validate(&command)?;
        let password_hash = self.ports.hasher.hash(password).await?;
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::from_uuid(self.ports.ids.next_id()),
            email,
            username,
            created_at: now,
        };
        let event = UserRegistered::new(EventId::from_uuid(self.ports.ids.next_id()), &user, now);
        let outbox_event = OutboxEvent {
            id: event.event_id,
            event_type: UserRegistered::TYPE.to_owned(),
            payload: encode_user_registered(&event),
            occurred_at: event.occurred_at,
        };
        self.ports
            .users
            .create(&user, &password_hash, &outbox_event)
            .await
            .map_err(|error| match error {
                CreateUserError::EmailTaken => RegisterUserError::EmailTaken,
                CreateUserError::UsernameTaken => RegisterUserError::UsernameTaken,
                CreateUserError::Unexpected(error) => RegisterUserError::Unexpected(error),
            })?;
        tracing::info!(user_id = %user.id, event_id = %event.event_id, "user registered");
        Ok(self.start_session(user).await?)
    }
}

/// Parses every field, so that the client learns about all its mistakes in one answer.
fn validate(
    command: &RegisterUserCommand,
) -> Result<(Email, Username, Password), RegisterUserError> {
    let email = Email::parse(&command.email);
    let username = Username::parse(&command.username);
    let password = Password::parse(&command.password);
    let password = match (&email, &username, password) {
        (Ok(email), Ok(username), Ok(password)) => password
            .ensure_differs_from(email, username)
            .map(|()| password),
        (_, _, password) => password,
    };
    match (email, username, password) {
        (Ok(email), Ok(username), Ok(password)) => Ok((email, username, password)),
        (email, username, password) => {
            let errors = [
                email.err().map(|e| ("email", e.to_string())),
                username.err().map(|e| ("username", e.to_string())),
                password.err().map(|e| ("password", e.to_string())),
            ];
            let errors = errors
                .into_iter()
                .flatten()
                .map(|(field, message)| FieldError { field, message })
                .collect();
            Err(RegisterUserError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{Fakes, accounts};
    use crate::{IncomingEvent, decode_event};

    fn command(email: &str, username: &str, password: &str) -> RegisterUserCommand {
        RegisterUserCommand {
            email: email.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    #[tokio::test]
    async fn a_valid_registration_stores_the_user_with_its_event_and_opens_a_session() {
        let fakes = Fakes::default();
        let signed_in = accounts(&fakes)
            .register(command(" Alice@Example.com ", "alice", "correct horse"))
            .await
            .unwrap();

        assert_eq!(signed_in.user.email.as_ref(), "Alice@Example.com");
        assert!(
            signed_in
                .tokens
                .access_token
                .expose_secret()
                .starts_with("access:")
        );
        assert!(!signed_in.tokens.refresh_token.expose_secret().is_empty());
        let stored = fakes.users.stored();
        assert_eq!(stored.len(), 1);
        let (user, hash, event) = &stored[0];
        assert_eq!(user, &signed_in.user);
        assert_eq!(hash.as_ref(), "hashed:correct horse");
        assert_eq!(event.event_type, "user.registered");
        let decoded = decode_event(Some(&event.id.to_string()), event.payload.as_bytes()).unwrap();
        let IncomingEvent::UserRegistered(decoded) = decoded else {
            panic!("wrong type")
        };
        assert_eq!(decoded.user_id, user.id);
        assert_eq!(decoded.created_at, user.created_at);
        assert_ne!(
            event.id.as_uuid(),
            user.id.as_uuid(),
            "event and user have their own ids"
        );
        assert_eq!(fakes.sessions.count(), 1);
    }

    #[tokio::test]
    async fn every_invalid_field_is_reported_and_nothing_is_stored_or_hashed() {
        let fakes = Fakes::default();
        let Err(RegisterUserError::Invalid(errors)) = accounts(&fakes)
            .register(command("nope", "a", "short"))
            .await
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "username", "password"]);
        assert!(fakes.users.stored().is_empty());
        assert_eq!(
            fakes.hasher.calls(),
            0,
            "invalid input is rejected before the expensive hash"
        );
    }

    #[tokio::test]
    async fn a_password_equal_to_the_username_is_invalid() {
        let fakes = Fakes::default();
        let result = accounts(&fakes)
            .register(command("alice@example.com", "alice.smith", "Alice.Smith"))
            .await;
        let Err(RegisterUserError::Invalid(errors)) = result else {
            panic!("expected a validation error")
        };
        assert_eq!(
            errors.iter().map(|e| e.field).collect::<Vec<_>>(),
            ["password"]
        );
    }

    #[tokio::test]
    async fn taken_email_and_username_are_business_errors() {
        let fakes = Fakes::default();
        let accounts = accounts(&fakes);
        accounts
            .register(command("alice@example.com", "alice", "correct horse"))
            .await
            .unwrap();

        let again = accounts
            .register(command("ALICE@example.com", "other", "correct horse"))
            .await;
        assert!(matches!(again, Err(RegisterUserError::EmailTaken)));
        let again = accounts
            .register(command("bob@example.com", "Alice", "correct horse"))
            .await;
        assert!(matches!(again, Err(RegisterUserError::UsernameTaken)));
        assert_eq!(fakes.users.stored().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_store_is_unexpected_and_opens_no_session() {
        let fakes = Fakes::default();
        fakes.users.fail_next();
        let result = accounts(&fakes)
            .register(command("alice@example.com", "alice", "correct horse"))
            .await;
        assert!(matches!(result, Err(RegisterUserError::Unexpected(_))));
        assert!(fakes.users.stored().is_empty());
        assert_eq!(fakes.sessions.count(), 0);
    }
}
