//! Users in PostgreSQL, written in one transaction with the event that announces them.
use crate::postgres::OUTBOX_CHANNEL;
use anyhow::Context;
use application::{CreateUserError, OutboxEvent, UserRepository};
use domain::{PasswordHash, User};
use sqlx::PgPool;

#[derive(Clone, Debug)]
pub struct PostgresUserRepository {
    pool: PgPool,
}

impl PostgresUserRepository {
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl UserRepository for PostgresUserRepository {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(
        &self,
        user: &User,
        password_hash: &PasswordHash,
        event: &OutboxEvent,
    ) -> Result<(), CreateUserError> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        sqlx::query(
            "INSERT INTO users (id, email, username, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.as_uuid())
        .bind(user.email.as_ref())
        .bind(user.username.as_ref())
        .bind(password_hash.as_ref())
        .bind(user.created_at.as_datetime())
        .execute(&mut *tx)
        .await
        .map_err(constraint_to_domain)?;
        sqlx::query(
            "INSERT INTO outbox (id, event_type, payload, occurred_at) VALUES ($1, $2, $3::json, $4)",
        )
        .bind(event.id.as_uuid())
        .bind(&event.event_type)
        .bind(&event.payload)
        .bind(event.occurred_at.as_datetime())
        .execute(&mut *tx)
        .await
        .context("insert outbox event")?;
        // Delivered to listening relays only when the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(OUTBOX_CHANNEL)
            .execute(&mut *tx)
            .await
            .context("notify the outbox relay")?;
        tx.commit().await.context("commit registration")?;
        Ok(())
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
