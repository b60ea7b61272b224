//! The audit log in PostgreSQL, with the inbox row that makes each event count once.
use anyhow::Context;
use application::{AuditEntry, AuditLog};
use sqlx::PgPool;

#[derive(Clone, Debug)]
pub struct PostgresAuditLog {
    pool: PgPool,
}

impl PostgresAuditLog {
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl AuditLog for PostgresAuditLog {
    async fn record(&self, listener: &str, entry: &AuditEntry) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("begin transaction")?;
        let first_time = sqlx::query(
            "INSERT INTO inbox (listener, event_id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (listener, event_id) DO NOTHING",
        )
        .bind(listener)
        .bind(entry.event_id.as_uuid())
        .bind(entry.received_at.as_datetime())
        .execute(&mut *tx)
        .await
        .context("record the event in the inbox")?
        .rows_affected()
            == 1;
        if first_time {
            sqlx::query(
                "INSERT INTO audit_log (event_id, event_type, user_id, occurred_at, received_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(entry.event_id.as_uuid())
            .bind(&entry.event_type)
            .bind(entry.user_id.map(|id| id.as_uuid()))
            .bind(entry.occurred_at.as_datetime())
            .bind(entry.received_at.as_datetime())
            .execute(&mut *tx)
            .await
            .context("insert audit log row")?;
        }
        tx.commit().await.context("commit audit")?;
        Ok(first_time)
    }
}
