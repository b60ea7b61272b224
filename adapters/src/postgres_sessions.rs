//! Sessions, refresh tokens and revocations in PostgreSQL, so that a logout holds across
//! restarts and across every instance sharing the database.
use crate::auth_cache::AuthCache;
use anyhow::Context;
use application::{AccessGrant, NewSession, Rotation, SessionStore, TokenFingerprint};
use chrono::{DateTime, Utc};
use domain::{RefreshDecision, RefreshTokenState, SessionId, Timestamp, UserId};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct PostgresSessionStore {
    pool: PgPool,
    cache: Arc<AuthCache>,
}

impl PostgresSessionStore {
    /// Checks every access token in the database.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_cache(pool, AuthCache::new())
    }

    /// Remembers live sessions in `cache`, which serves while it follows the database's
    /// revocations ([`AuthCache::follow_changes`]).
    #[must_use]
    pub fn with_cache(pool: PgPool, cache: Arc<AuthCache>) -> Self {
        Self { pool, cache }
    }
}

#[derive(sqlx::FromRow)]
struct PresentedRow {
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl SessionStore for PostgresSessionStore {
    async fn start(&self, session: &NewSession) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(session.id.as_uuid())
            .bind(session.user_id.as_uuid())
            .bind(session.created_at.as_datetime())
            .execute(&mut *tx)
            .await
            .context("insert session")?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&session.refresh_token.0)
        .bind(session.id.as_uuid())
        .bind(session.refresh_expires_at.as_datetime())
        .execute(&mut *tx)
        .await
        .context("insert refresh token")?;
        tx.commit().await.context("commit session")?;
        Ok(())
    }

    async fn rotate(
        &self,
        presented: &TokenFingerprint,
        successor: &TokenFingerprint,
        successor_expires_at: Timestamp,
        now: Timestamp,
        grace: Duration,
    ) -> anyhow::Result<Rotation> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        // FOR UPDATE: concurrent refreshes of one token are decided one after the other, so
        // the second sees the first's rotation and gets the same successor.
        let row: Option<PresentedRow> = sqlx::query_as(
            "SELECT t.session_id, s.user_id, t.expires_at, t.rotated_at, s.revoked_at
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
             WHERE t.token_hash = $1
             FOR UPDATE OF t, s",
        )
        .bind(&presented.0)
        .fetch_optional(&mut *tx)
        .await
        .context("look up refresh token")?;
        let Some(row) = row else {
            return Ok(Rotation::Refused);
        };
        let successor_rotated = match row.rotated_at {
            None => false,
            Some(_) => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
                "SELECT rotated_at FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(&successor.0)
            .fetch_optional(&mut *tx)
            .await
            .context("look up successor refresh token")?
            .is_none_or(|rotated_at| rotated_at.is_some()),
        };
        let state = RefreshTokenState {
            expires_at: Timestamp::from_datetime(row.expires_at),
            rotated_at: row.rotated_at.map(Timestamp::from_datetime),
            successor_rotated,
            session_revoked: row.revoked_at.is_some(),
        };
        let (user_id, session_id) = (
            UserId::from_uuid(row.user_id),
            SessionId::from_uuid(row.session_id),
        );
        let rotation = match state.decide(now, grace) {
            RefreshDecision::Rotate => {
                sqlx::query("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1")
                    .bind(&presented.0)
                    .bind(now.as_datetime())
                    .execute(&mut *tx)
                    .await
                    .context("mark refresh token rotated")?;
                sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)")
                    .bind(&successor.0)
                    .bind(row.session_id)
                    .bind(successor_expires_at.as_datetime())
                    .execute(&mut *tx)
                    .await
                    .context("insert successor refresh token")?;
                Rotation::Rotated {
                    user_id,
                    session_id,
                }
            }
            RefreshDecision::ReplaySuccessor => Rotation::Replayed {
                user_id,
                session_id,
            },
            RefreshDecision::RevokeFamily => {
                revoke_session(&mut tx, row.session_id, now).await?;
                Rotation::FamilyRevoked
            }
            RefreshDecision::Refuse => Rotation::Refused,
        };
        tx.commit().await.context("commit rotation")?;
        if rotation == Rotation::FamilyRevoked {
            // After the commit, so that no check on this instance reads it live again.
            self.cache.forget_session(row.session_id);
        }
        Ok(rotation)
    }

    async fn is_current(&self, refresh_token: &TokenFingerprint) -> anyhow::Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (
                 SELECT 1 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                 WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND t.expires_at > now()
                   AND s.revoked_at IS NULL)",
        )
        .bind(&refresh_token.0)
        .fetch_one(&self.pool)
        .await
        .context("check refresh token")
    }

    async fn revoke(&self, access: &AccessGrant) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        sqlx::query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(access.token_id)
            .bind(access.expires_at.as_datetime())
            .execute(&mut *tx)
            .await
            .context("revoke access token")?;
        revoke_session(
            &mut tx,
            access.session_id.as_uuid(),
            Timestamp::from_datetime(Utc::now()),
        )
        .await?;
        tx.commit().await.context("commit revocation")?;
        // Other instances hear of it from PostgreSQL; this one knows already.
        self.cache.forget_session(access.session_id.as_uuid());
        Ok(())
    }

    async fn is_revoked(&self, access: &AccessGrant) -> anyhow::Result<bool> {
        // An access token is only ever revoked together with its session (`revoke`), whose
        // revocation every instance is told of.
        if self.cache.session_is_live(access.session_id) {
            return Ok(false);
        }
        let ticket = self.cache.ticket();
        let revoked: bool = sqlx::query_scalar(
            // A session that does not exist counts as revoked: fail closed.
            "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1)
                 OR NOT EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND revoked_at IS NULL)",
        )
        .bind(access.token_id)
        .bind(access.session_id.as_uuid())
        .fetch_one(&self.pool)
        .await
        .context("check revocation")?;
        if !revoked {
            self.cache.remember_live_session(access.session_id, ticket);
        }
        Ok(revoked)
    }

    async fn prune_expired(&self, now: Timestamp) -> anyhow::Result<u64> {
        let revocations = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
            .bind(now.as_datetime())
            .execute(&self.pool)
            .await
            .context("prune revocations")?;
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now.as_datetime())
            .execute(&self.pool)
            .await
            .context("prune refresh tokens")?;
        Ok(revocations.rows_affected() + tokens.rows_affected())
    }
}

async fn revoke_session(
    tx: &mut sqlx::PgConnection,
    session_id: Uuid,
    now: Timestamp,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .bind(now.as_datetime())
        .execute(tx)
        .await
        .context("revoke session")?;
    Ok(())
}
