//! Use case: register a new user, announce it, and sign them in.
use crate::accounts::{Accounts, Ports, SignedIn};
use crate::{
    Clock, CreateUserError, IdGenerator, IdempotencyClaim, IdempotencyStore, IdempotentCompletion,
    OutboxEvent, PasswordHasher, RefreshTokens, SessionStore, TraceContext, UserRepository,
    encode_user_registered,
};
use domain::{
    Email, EventId, IdempotencyKey, Password, SessionId, User, UserId, UserRegistered, Username,
};

/// The raw input, exactly as the client sent it. No `Debug`: it holds a password.
pub struct RegisterUserCommand {
    pub email: String,
    pub username: String,
    pub password: String,
    /// The client's name for this attempt; a retry with the same key and body has no second
    /// effect and gets the first answer.
    pub idempotency_key: Option<String>,
    /// Carried into the event, so the listeners' logs name the request.
    pub trace: Option<TraceContext>,
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
    /// A request with the same idempotency key is still running.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyKeyInUse,
    /// The idempotency key was used for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug)]
pub struct Registration {
    pub signed_in: SignedIn,
    /// The answer is the one given to an earlier request with the same idempotency key.
    pub replayed: bool,
}

struct NewAccount {
    email: Email,
    username: Username,
    password: Password,
    key: Option<IdempotencyKey>,
    trace: Option<TraceContext>,
}

impl<P: Ports> Accounts<P> {
    /// Validates every field, hashes the password, stores the user together with its
    /// `user.registered` event, and opens a session. With an idempotency key, a retry of a
    /// completed registration answers as the first time, and nothing happens twice.
    ///
    /// # Errors
    /// `Invalid` lists every invalid field at once; `EmailTaken` / `UsernameTaken` when the
    /// account exists (case-insensitively); `IdempotencyKeyInUse` / `IdempotencyKeyReused` for
    /// a key that is busy or was used for another request; `Unexpected` for failures of ports.
    #[tracing::instrument(name = "register_user", skip_all)]
    pub async fn register(
        &self,
        command: RegisterUserCommand,
    ) -> Result<Registration, RegisterUserError> {
        let account = validate(&command)?;
        let Some(key) = account.key.clone() else {
            let signed_in = self
                .create_account(account, SessionId::from_uuid(self.ports.ids.next_id()))
                .await?;
            return Ok(Registration {
                signed_in,
                replayed: false,
            });
        };
        let fingerprint = self.ports.refresh_tokens.request_fingerprint(&[
            &account.email.normalized(),
            &account.username.normalized(),
            account.password.expose_secret(),
        ]);
        match self
            .ports
            .idempotency
            .claim(&key, &fingerprint, self.ports.clock.now())
            .await?
        {
            IdempotencyClaim::Fresh => {}
            IdempotencyClaim::InProgress => return Err(RegisterUserError::IdempotencyKeyInUse),
            IdempotencyClaim::Mismatch => return Err(RegisterUserError::IdempotencyKeyReused),
            IdempotencyClaim::Completed {
                user_id,
                session_id,
            } => {
                let signed_in = self.replay(&key, user_id, session_id).await?;
                return Ok(Registration {
                    signed_in,
                    replayed: true,
                });
            }
        }
        let created = self
            .create_account(account, SessionId::from_uuid(self.ports.ids.next_id()))
            .await;
        if created.is_err() {
            // The attempt had no effect, so there is nothing to replay.
            if let Err(error) = self.ports.idempotency.release(&key).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not release an idempotency key; it lapses by itself"
                );
            }
        }
        Ok(Registration {
            signed_in: created?,
            replayed: false,
        })
    }

    /// The answer to a retry of a completed registration: the same user and, while it is still
    /// good, the same refresh token. Once the client has refreshed or logged out, that token
    /// is used up, and handing it out again would trip reuse detection: a new session then.
    async fn replay(
        &self,
        key: &IdempotencyKey,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<SignedIn, RegisterUserError> {
        let user = self.ports.users.find_by_id(user_id).await?.ok_or_else(|| {
            anyhow::anyhow!("idempotency key {key} names user {user_id}, who is gone")
        })?;
        let first_token = self.ports.refresh_tokens.for_session(session_id);
        if self
            .ports
            .sessions
            .is_current(&self.ports.refresh_tokens.fingerprint(&first_token))
            .await?
        {
            return Ok(self.sign_in(user, session_id, first_token)?);
        }
        Ok(self.start_session(user).await?)
    }

    async fn create_account(
        &self,
        account: NewAccount,
        session_id: SessionId,
    ) -> Result<SignedIn, RegisterUserError> {
        let password_hash = self.ports.hasher.hash(account.password).await?;
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::from_uuid(self.ports.ids.next_id()),
            email: account.email,
            username: account.username,
            created_at: now,
        };
        let event = UserRegistered::new(EventId::from_uuid(self.ports.ids.next_id()), &user, now);
        let outbox_event = OutboxEvent {
            id: event.event_id,
            event_type: UserRegistered::TYPE.to_owned(),
            payload: encode_user_registered(&event),
            occurred_at: event.occurred_at,
            trace: account.trace,
        };
        let completion = account
            .key
            .map(|key| IdempotentCompletion { key, session_id });
        self.ports
            .users
            .create(&user, &password_hash, &outbox_event, completion.as_ref())
            .await
            .map_err(|error| match error {
                CreateUserError::EmailTaken => RegisterUserError::EmailTaken,
                CreateUserError::UsernameTaken => RegisterUserError::UsernameTaken,
                CreateUserError::Unexpected(error) => RegisterUserError::Unexpected(error),
            })?;
        tracing::info!(user_id = %user.id, event_id = %event.event_id, "user registered");
        Ok(self.open_session(user, session_id).await?)
    }
}

/// Parses every field, so that the client learns about all its mistakes in one answer.
fn validate(command: &RegisterUserCommand) -> Result<NewAccount, RegisterUserError> {
    let email = Email::parse(&command.email);
    let username = Username::parse(&command.username);
    let password = Password::parse(&command.password);
    let password = match (&email, &username, password) {
        (Ok(email), Ok(username), Ok(password)) => password
            .ensure_differs_from(email, username)
            .map(|()| password),
        (_, _, password) => password,
    };
    let key = command
        .idempotency_key
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose();
    match (email, username, password, key) {
        (Ok(email), Ok(username), Ok(password), Ok(key)) => Ok(NewAccount {
            email,
            username,
            password,
            key,
            trace: command.trace.clone(),
        }),
        (email, username, password, key) => {
            let errors = [
                email.err().map(|e| ("email", e.to_string())),
                username.err().map(|e| ("username", e.to_string())),
                password.err().map(|e| ("password", e.to_string())),
                key.err().map(|e| ("Idempotency-Key", e.to_string())),
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
            idempotency_key: None,
            trace: None,
        }
    }

    #[tokio::test]
    async fn a_valid_registration_stores_the_user_with_its_event_and_opens_a_session() {
        let fakes = Fakes::new();
        let signed_in = accounts(&fakes)
            .register(command(" Alice@Example.com ", "alice", "correct horse"))
            .await
            .unwrap()
            .signed_in;

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
        let fakes = Fakes::new();
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
        let fakes = Fakes::new();
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
        let fakes = Fakes::new();
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
        let fakes = Fakes::new();
        fakes.users.fail_next();
        let result = accounts(&fakes)
            .register(command("alice@example.com", "alice", "correct horse"))
            .await;
        assert!(matches!(result, Err(RegisterUserError::Unexpected(_))));
        assert!(fakes.users.stored().is_empty());
        assert_eq!(fakes.sessions.count(), 0);
    }

    fn keyed(key: &str, email: &str, username: &str) -> RegisterUserCommand {
        RegisterUserCommand {
            idempotency_key: Some(key.into()),
            trace: None,
            ..command(email, username, "correct horse")
        }
    }

    #[tokio::test]
    async fn a_retry_with_the_same_key_and_body_replays_the_first_answer_and_stores_nothing_twice()
    {
        let fakes = Fakes::new();
        let accounts = accounts(&fakes);
        let first = accounts
            .register(keyed("k1", "alice@example.com", "alice"))
            .await
            .unwrap();
        let again = accounts
            .register(keyed("k1", " ALICE@example.com", "alice"))
            .await
            .unwrap();

        assert!(!first.replayed);
        assert!(again.replayed);
        assert_eq!(again.signed_in.user, first.signed_in.user);
        assert_eq!(
            again.signed_in.tokens.refresh_token,
            first.signed_in.tokens.refresh_token
        );
        assert_eq!(fakes.users.stored().len(), 1, "one user, one event");
        assert_eq!(fakes.sessions.count(), 1);
    }

    #[tokio::test]
    async fn a_replay_after_the_first_session_moved_on_opens_a_new_one() {
        let fakes = Fakes::new();
        let accounts = accounts(&fakes);
        let first = accounts
            .register(keyed("k1", "alice@example.com", "alice"))
            .await
            .unwrap();
        accounts
            .refresh(first.signed_in.tokens.refresh_token.clone())
            .await
            .unwrap();

        let again = accounts
            .register(keyed("k1", "alice@example.com", "alice"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_ne!(
            again.signed_in.tokens.refresh_token, first.signed_in.tokens.refresh_token,
            "the used-up token is not handed out"
        );
        assert!(
            accounts
                .refresh(again.signed_in.tokens.refresh_token)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_same_key_with_another_body_is_refused() {
        let fakes = Fakes::new();
        let accounts = accounts(&fakes);
        accounts
            .register(keyed("k1", "alice@example.com", "alice"))
            .await
            .unwrap();
        let other = accounts
            .register(keyed("k1", "bob@example.com", "bob"))
            .await;
        assert!(matches!(
            other,
            Err(RegisterUserError::IdempotencyKeyReused)
        ));
        assert_eq!(fakes.users.stored().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_attempt_leaves_its_key_free() {
        let fakes = Fakes::new();
        let accounts = accounts(&fakes);
        accounts
            .register(command("alice@example.com", "alice", "correct horse"))
            .await
            .unwrap();
        let taken = accounts
            .register(keyed("k2", "alice@example.com", "other"))
            .await;
        assert!(matches!(taken, Err(RegisterUserError::EmailTaken)));
        let retried = accounts
            .register(keyed("k2", "carol@example.com", "carol"))
            .await;
        assert!(
            retried.is_ok(),
            "nothing was done under the key, so it is free again"
        );
    }

    #[tokio::test]
    async fn an_invalid_key_is_a_validation_error() {
        let fakes = Fakes::new();
        let Err(RegisterUserError::Invalid(errors)) = accounts(&fakes)
            .register(keyed("has space", "a@example.com", "alice"))
            .await
        else {
            panic!("expected a validation error");
        };
        assert_eq!(
            errors.iter().map(|e| e.field).collect::<Vec<_>>(),
            ["Idempotency-Key"]
        );
    }
}
