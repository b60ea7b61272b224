//! Idempotency keys in PostgreSQL: shared by every instance, kept for a day.
use anyhow::Context;
use application::{IdempotencyClaim, IdempotencyStore, TokenFingerprint};
use domain::{IdempotencyKey, SessionId, Timestamp, UserId};
use sqlx::PgPool;
use uuid::Uuid;

/// How long a key is remembered.
const RETENTION_HOURS: i32 = 24;
/// A claim with no result after this long belongs to an attempt that died; it may be taken over.
const ABANDONED_AFTER_SECONDS: i32 = 60;

#[derive(Clone, Debug)]
pub struct PostgresIdempotencyStore {
    pool: PgPool,
}

impl PostgresIdempotencyStore {
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Deletes keys past their retention; returns how many.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn prune_expired(&self, now: Timestamp) -> anyhow::Result<u64> {
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < $1")
            .bind(now.as_datetime())
            .execute(&self.pool)
            .await
            .context("prune idempotency keys")?;
        Ok(deleted.rows_affected())
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_fingerprint: Vec<u8>,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
}

impl IdempotencyStore for PostgresIdempotencyStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        request: &TokenFingerprint,
        now: Timestamp,
    ) -> anyhow::Result<IdempotencyClaim> {
        // Insert, or take over a record that expired or whose attempt died; the primary key
        // makes concurrent first uses of one key race safely.
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (key, request_fingerprint, created_at, expires_at)
             VALUES ($1, $2, $3, $3 + make_interval(hours => $4))
             ON CONFLICT (key) DO UPDATE
                 SET request_fingerprint = EXCLUDED.request_fingerprint, created_at = EXCLUDED.created_at,
                     expires_at = EXCLUDED.expires_at, user_id = NULL, session_id = NULL
                 WHERE idempotency_keys.expires_at < $3
                    OR (idempotency_keys.user_id IS NULL
                        AND idempotency_keys.created_at < $3 - make_interval(secs => $5))
             RETURNING key",
        )
        .bind(key.as_ref())
        .bind(&request.0)
        .bind(now.as_datetime())
        .bind(RETENTION_HOURS)
        .bind(f64::from(ABANDONED_AFTER_SECONDS))
        .fetch_optional(&self.pool)
        .await
        .context("claim idempotency key")?;
        if claimed.is_some() {
            return Ok(IdempotencyClaim::Fresh);
        }
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT request_fingerprint, user_id, session_id FROM idempotency_keys WHERE key = $1",
        )
        .bind(key.as_ref())
        .fetch_optional(&self.pool)
        .await
        .context("read idempotency key")?;
        // Released between our insert and our read: the next attempt will find it free.
        let Some(row) = row else {
            return Ok(IdempotencyClaim::InProgress);
        };
        Ok(
            match (
                row.request_fingerprint == request.0,
                row.user_id,
                row.session_id,
            ) {
                (false, ..) => IdempotencyClaim::Mismatch,
                (true, Some(user_id), Some(session_id)) => IdempotencyClaim::Completed {
                    user_id: UserId::from_uuid(user_id),
                    session_id: SessionId::from_uuid(session_id),
                },
                (true, ..) => IdempotencyClaim::InProgress,
            },
        )
    }

    async fn release(&self, key: &IdempotencyKey) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND user_id IS NULL")
            .bind(key.as_ref())
            .execute(&self.pool)
            .await
            .context("release idempotency key")?;
        Ok(())
    }
}
