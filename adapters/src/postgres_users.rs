//! Users in PostgreSQL, written in one transaction with the event that announces them.
use crate::auth_cache::AuthCache;
use crate::postgres::OUTBOX_CHANNEL;
use anyhow::Context;
use application::{CreateUserError, IdempotentCompletion, OutboxEvent, UserRepository};
use chrono::{DateTime, Utc};
use domain::{Email, LoginIdentifier, PasswordHash, Timestamp, User, UserId, Username};
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct PostgresUserRepository {
    pool: PgPool,
    cache: Arc<AuthCache>,
}

impl PostgresUserRepository {
    /// Reads every user from the database.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_cache(pool, AuthCache::new())
    }

    /// Remembers users looked up by id in `cache`, which serves while it follows the
    /// database's changes ([`AuthCache::follow_changes`]).
    #[must_use]
    pub fn with_cache(pool: PgPool, cache: Arc<AuthCache>) -> Self {
        Self { pool, cache }
    }
}

impl UserRepository for PostgresUserRepository {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(
        &self,
        user: &User,
        password_hash: &PasswordHash,
        event: &OutboxEvent,
        completes: Option<&IdempotentCompletion>,
    ) -> Result<(), CreateUserError> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, username, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_uuid())
        .bind(user.email.as_ref())
        .bind(user.email.normalized())
        .bind(user.username.as_ref())
        .bind(password_hash.as_ref())
        .bind(user.created_at.as_datetime())
        .execute(&mut *tx)
        .await
        .map_err(constraint_to_domain)?;
        sqlx::query(
            "INSERT INTO outbox (id, event_type, payload, occurred_at, request_id, traceparent)
             VALUES ($1, $2, $3::json, $4, $5, $6)",
        )
        .bind(event.id.as_uuid())
        .bind(&event.event_type)
        .bind(&event.payload)
        .bind(event.occurred_at.as_datetime())
        .bind(event.trace.as_ref().map(|trace| &trace.request_id))
        .bind(event.trace.as_ref().map(|trace| &trace.traceparent))
        .execute(&mut *tx)
        .await
        .context("insert outbox event")?;
        // Delivered to listening relays only when the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(OUTBOX_CHANNEL)
            .execute(&mut *tx)
            .await
            .context("notify the outbox relay")?;
        if let Some(completion) = completes {
            sqlx::query("UPDATE idempotency_keys SET user_id = $2, session_id = $3 WHERE key = $1")
                .bind(completion.key.as_ref())
                .bind(user.id.as_uuid())
                .bind(completion.session_id.as_uuid())
                .execute(&mut *tx)
                .await
                .context("complete idempotency key")?;
        }
        tx.commit().await.context("commit registration")?;
        Ok(())
    }

    async fn find_by_login(
        &self,
        identifier: &LoginIdentifier,
    ) -> anyhow::Result<Option<(User, PasswordHash)>> {
        // The lookups use the same expressions as the unique indexes, so they use them.
        match identifier {
            LoginIdentifier::Email(email) => {
                self.find_one("SELECT id, email, username, password_hash, created_at FROM users WHERE email_normalized = $1", email.clone()).await
            }
            LoginIdentifier::Username(name) => {
                self.find_one("SELECT id, email, username, password_hash, created_at FROM users WHERE lower(username) = $1", name.clone())
                    .await
            }
            LoginIdentifier::Unmatchable => Ok(None),
        }
    }

    async fn find_by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        if let Some(user) = self.cache.user(id) {
            return Ok(Some(user));
        }
        let ticket = self.cache.ticket();
        let found = self
            .find_one("SELECT id, email, username, password_hash, created_at FROM users WHERE id = $1::uuid", id.to_string())
            .await?
            .map(|(user, _)| user);
        if let Some(user) = &found {
            self.cache.remember_user(user, ticket);
        }
        Ok(found)
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    created_at: DateTime<Utc>,
}

impl UserRow {
    fn into_user(self) -> anyhow::Result<(User, PasswordHash)> {
        // Stored values passed these same rules on the way in; failing here means the rules
        // tightened since, which the operator must hear about.
        let user = User {
            id: UserId::from_uuid(self.id),
            email: Email::parse(&self.email)
                .with_context(|| format!("stored email of user {} no longer parses", self.id))?,
            username: Username::parse(&self.username)
                .with_context(|| format!("stored username of user {} no longer parses", self.id))?,
            created_at: Timestamp::from_datetime(self.created_at),
        };
        Ok((user, PasswordHash::from_phc(self.password_hash)))
    }
}

impl PostgresUserRepository {
    async fn find_one(
        &self,
        query: &'static str,
        key: String,
    ) -> anyhow::Result<Option<(User, PasswordHash)>> {
        let row: Option<UserRow> = sqlx::query_as(query)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .context("look up user")?;
        row.map(UserRow::into_user).transpose()
    }
}

/// The unique indexes are the source of truth for "already taken"; their names say which.
fn constraint_to_domain(error: sqlx::Error) -> CreateUserError {
    if let sqlx::Error::Database(db) = &error {
        match db.constraint() {
            Some("users_email_unique") => return CreateUserError::EmailTaken,
            Some("users_username_unique") => return CreateUserError::UsernameTaken,
            _ => {}
        }
    }
    CreateUserError::Unexpected(anyhow::Error::new(error).context("insert user"))
}
