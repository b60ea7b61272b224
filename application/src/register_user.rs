//! Use case: register a new user and announce it.
use crate::{
    AccessToken, Clock, CreateUserError, IdGenerator, OutboxEvent, PasswordHasher, TokenIssuer,
    UserRepository, encode_user_registered,
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

#[derive(Debug)]
pub struct Registration {
    pub user: User,
    pub access_token: AccessToken,
}

pub struct RegisterUser<R, H, T, C, I> {
    users: R,
    hasher: H,
    tokens: T,
    clock: C,
    ids: I,
}

impl<R, H, T, C, I> RegisterUser<R, H, T, C, I>
where
    R: UserRepository,
    H: PasswordHasher,
    T: TokenIssuer,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(users: R, hasher: H, tokens: T, clock: C, ids: I) -> Self {
        Self {
            users,
            hasher,
            tokens,
            clock,
            ids,
        }
    }

    /// Validates every field, hashes the password, stores the user together with its
    /// `user.registered` event, and issues an access token.
    ///
    /// # Errors
    /// `Invalid` lists every invalid field at once; `EmailTaken` / `UsernameTaken` when the
    /// account exists (case-insensitively); `Unexpected` for failures of the ports.
    #[tracing::instrument(name = "register_user", skip_all)]
    pub async fn execute(
        &self,
        command: RegisterUserCommand,
    ) -> Result<Registration, RegisterUserError> {
        let (email, username, password) = validate(&command)?;
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let user = User {
            id: UserId::from_uuid(self.ids.next_id()),
            email,
            username,
            created_at: now,
        };
        let event = UserRegistered::new(EventId::from_uuid(self.ids.next_id()), &user, now);
        let outbox_event = OutboxEvent {
            id: event.event_id,
            event_type: UserRegistered::TYPE.to_owned(),
            payload: encode_user_registered(&event),
            occurred_at: event.occurred_at,
        };
        self.users
            .create(&user, &password_hash, &outbox_event)
            .await
            .map_err(|error| match error {
                CreateUserError::EmailTaken => RegisterUserError::EmailTaken,
                CreateUserError::UsernameTaken => RegisterUserError::UsernameTaken,
                CreateUserError::Unexpected(error) => RegisterUserError::Unexpected(error),
            })?;
        tracing::info!(user_id = %user.id, event_id = %event.event_id, "user registered");
        let access_token = self.tokens.issue_access_token(&user)?;
        Ok(Registration { user, access_token })
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
    use crate::fakes::{FakeClock, FakeHasher, FakeTokens, InMemoryUsers, SequentialIds};
    use crate::{IncomingEvent, decode_event};

    type Subject = RegisterUser<InMemoryUsers, FakeHasher, FakeTokens, FakeClock, SequentialIds>;

    fn subject(users: InMemoryUsers) -> Subject {
        RegisterUser::new(
            users,
            FakeHasher::default(),
            FakeTokens,
            FakeClock,
            SequentialIds::default(),
        )
    }

    fn command(email: &str, username: &str, password: &str) -> RegisterUserCommand {
        RegisterUserCommand {
            email: email.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    #[tokio::test]
    async fn a_valid_registration_stores_the_user_with_its_event() {
        let users = InMemoryUsers::default();
        let registration = subject(users.clone())
            .execute(command(" Alice@Example.com ", "alice", "correct horse"))
            .await
            .unwrap();

        assert_eq!(registration.user.email.as_ref(), "Alice@Example.com");
        assert_eq!(
            registration.access_token.expose_secret(),
            format!("token-for-{}", registration.user.id)
        );
        let stored = users.stored();
        assert_eq!(stored.len(), 1);
        let (user, hash, event) = &stored[0];
        assert_eq!(user, &registration.user);
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
    }

    #[tokio::test]
    async fn every_invalid_field_is_reported_and_nothing_is_stored_or_hashed() {
        let users = InMemoryUsers::default();
        let hasher = FakeHasher::default();
        let use_case = RegisterUser::new(
            users.clone(),
            hasher.clone(),
            FakeTokens,
            FakeClock,
            SequentialIds::default(),
        );
        let Err(RegisterUserError::Invalid(errors)) =
            use_case.execute(command("nope", "a", "short")).await
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "username", "password"]);
        assert!(users.stored().is_empty());
        assert_eq!(
            hasher.calls(),
            0,
            "invalid input is rejected before the expensive hash"
        );
    }

    #[tokio::test]
    async fn taken_email_and_username_are_business_errors() {
        let users = InMemoryUsers::default();
        let use_case = subject(users.clone());
        use_case
            .execute(command("alice@example.com", "alice", "correct horse"))
            .await
            .unwrap();

        let again = use_case
            .execute(command("ALICE@example.com", "other", "correct horse"))
            .await;
        assert!(matches!(again, Err(RegisterUserError::EmailTaken)));
        let again = use_case
            .execute(command("bob@example.com", "Alice", "correct horse"))
            .await;
        assert!(matches!(again, Err(RegisterUserError::UsernameTaken)));
        assert_eq!(users.stored().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_store_is_unexpected_and_issues_no_token() {
        let users = InMemoryUsers::default();
        users.fail_next();
        let result = subject(users.clone())
            .execute(command("alice@example.com", "alice", "correct horse"))
            .await;
        assert!(matches!(result, Err(RegisterUserError::Unexpected(_))));
        assert!(users.stored().is_empty());
    }
}
