//! The outbox table as the relay sees it: claim, mark, release; and the wake-up signal.
use crate::postgres::OUTBOX_CHANNEL;
use anyhow::Context;
use application::{Outbox, OutboxEvent, TraceContext};
use chrono::{DateTime, Utc};
use domain::{EventId, Timestamp};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct PostgresOutbox {
    pool: PgPool,
    lease: Duration,
}

impl PostgresOutbox {
    /// `lease` is how long a claim keeps other relays away; it must exceed a batch's publish
    /// time, or two relays may publish the same event (harmless, but wasteful).
    #[must_use]
    pub fn new(pool: PgPool, lease: Duration) -> Self {
        Self { pool, lease }
    }

    /// Events not yet confirmed by the broker.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn pending_count(&self) -> anyhow::Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .context("count pending outbox events")
    }

    /// Events not yet confirmed and how long the oldest has waited. Read through the index of
    /// pending events, so it stays cheap however many published events are retained: health
    /// probes and metric scrapes ask for it all the time.
    ///
    /// The database gives up after `time_limit` (waiting on a lock included). A timeout of our
    /// own alone would not do: the abandoned query would keep its pooled connection busy until
    /// the server-wide statement timeout, and a few probes against a locked table would take
    /// the whole pool. Ours still bounds the wait, should the database not answer at all.
    ///
    /// # Errors
    /// When the database cannot be reached or does not answer within `time_limit`.
    pub async fn backlog(&self, time_limit: Duration) -> anyhow::Result<OutboxBacklog> {
        let margin = Duration::from_millis(250);
        tokio::time::timeout(
            time_limit + margin,
            self.backlog_limited_by_the_database(time_limit),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {time_limit:?}"))
        .context("read the outbox backlog")?
    }

    async fn backlog_limited_by_the_database(
        &self,
        time_limit: Duration,
    ) -> anyhow::Result<OutboxBacklog> {
        let mut transaction = self.pool.begin().await.context("read the outbox backlog")?;
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(format!("{}ms", time_limit.as_millis().max(1)))
            .execute(&mut *transaction)
            .await
            .context("limit the outbox backlog query")?;
        let (pending, oldest_pending_seconds): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(occurred_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&mut *transaction)
        .await
        .context("read the outbox backlog")?;
        transaction
            .commit()
            .await
            .context("read the outbox backlog")?;
        Ok(OutboxBacklog {
            pending,
            oldest_pending_age: oldest_pending_seconds
                .map(|seconds| Duration::from_secs_f64(seconds.max(0.0))),
        })
    }

    /// What an operator wants to know at a glance: is the relay keeping up?
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn status(&self) -> anyhow::Result<OutboxStatus> {
        // An operator at a terminal can wait longer than a probe.
        let backlog = self.backlog(Duration::from_secs(30)).await?;
        let published_last_hour: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE published_at > now() - interval '1 hour'",
        )
        .fetch_one(&self.pool)
        .await
        .context("count recently published outbox events")?;
        Ok(OutboxStatus {
            pending: backlog.pending,
            oldest_pending_age: backlog.oldest_pending_age,
            published_last_hour,
        })
    }

    /// Up to `limit` retained events (published or not) that occurred at or after `since`,
    /// in publication order, after sequence number `after`; for replays, page by page.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn retained_since(
        &self,
        since: Timestamp,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, OutboxEvent)>> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, seq, event_type, payload::text AS payload, occurred_at, request_id, traceparent FROM outbox
             WHERE occurred_at >= $1 AND seq > $2
             ORDER BY seq
             LIMIT $3",
        )
        .bind(since.as_datetime())
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .context("read retained outbox events")?;
        Ok(rows.into_iter().map(|row| (row.seq, row.into())).collect())
    }

    /// Deletes events published before `published_before`; pending ones are never deleted.
    /// Returns how many went.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn prune_published(&self, published_before: Timestamp) -> anyhow::Result<u64> {
        let deleted = sqlx::query("DELETE FROM outbox WHERE published_at < $1")
            .bind(published_before.as_datetime())
            .execute(&self.pool)
            .await
            .context("prune published outbox events")?;
        Ok(deleted.rows_affected())
    }
}

/// What the relay has yet to publish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutboxBacklog {
    pub pending: i64,
    /// How long the oldest pending event has waited; `None` when nothing is pending.
    pub oldest_pending_age: Option<Duration>,
}

/// The outbox at a glance.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxStatus {
    pub pending: i64,
    /// How long the oldest pending event has waited; `None` when nothing is pending.
    pub oldest_pending_age: Option<Duration>,
    pub published_last_hour: i64,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    seq: i64,
    event_type: String,
    payload: String,
    occurred_at: DateTime<Utc>,
    request_id: Option<String>,
    traceparent: Option<String>,
}

impl From<OutboxRow> for OutboxEvent {
    fn from(row: OutboxRow) -> Self {
        Self {
            id: EventId::from_uuid(row.id),
            event_type: row.event_type,
            payload: row.payload,
            occurred_at: Timestamp::from_datetime(row.occurred_at),
            trace: row
                .request_id
                .zip(row.traceparent)
                .map(|(request_id, traceparent)| TraceContext {
                    request_id,
                    traceparent,
                }),
        }
    }
}

impl Outbox for PostgresOutbox {
    async fn claim_pending(&self, limit: usize) -> anyhow::Result<Vec<OutboxEvent>> {
        // SKIP LOCKED lets several relays claim disjoint batches without waiting on each other.
        let mut rows: Vec<OutboxRow> = sqlx::query_as(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
                 ORDER BY seq
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, seq, event_type, payload::text AS payload, occurred_at, request_id, traceparent",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .context("claim pending outbox events")?;
        rows.sort_by_key(|row| row.seq);
        Ok(rows.into_iter().map(OutboxEvent::from).collect())
    }

    async fn mark_published(&self, ids: &[EventId]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE outbox SET published_at = now(), claimed_until = NULL, attempts = attempts + 1
             WHERE id = ANY($1)",
        )
        .bind(uuids(ids))
        .execute(&self.pool)
        .await
        .context("mark outbox events published")?;
        Ok(())
    }

    async fn release(&self, ids: &[EventId], reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, attempts = attempts + 1, last_error = $2
             WHERE id = ANY($1)",
        )
        .bind(uuids(ids))
        .bind(reason)
        .execute(&self.pool)
        .await
        .context("release outbox events")?;
        Ok(())
    }
}

fn uuids(ids: &[EventId]) -> Vec<Uuid> {
    ids.iter().map(EventId::as_uuid).collect()
}

/// Wakes the relay when a registration commits, via PostgreSQL LISTEN/NOTIFY. Works across
/// instances sharing the database; the relay still polls, in case a notification is missed.
pub struct OutboxWakeups {
    listener: Option<PgListener>,
    pool: PgPool,
}

impl OutboxWakeups {
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self {
            listener: None,
            pool,
        }
    }

    /// Returns when a new event was committed, or after `at_most`, whichever comes first.
    pub async fn wait(&mut self, at_most: Duration) {
        if self.listener.is_none() {
            self.listener = self.listen().await;
            if self.listener.is_some() {
                // A commit between the relay's last look and this LISTEN sent its notification
                // to nobody: return at once, so the relay looks again now that it listens.
                return;
            }
        }
        let Some(listener) = self.listener.as_mut() else {
            // No listener: plain polling until the database lets us listen again.
            tokio::time::sleep(at_most).await;
            return;
        };
        match tokio::time::timeout(at_most, listener.recv()).await {
            Ok(Ok(_)) => {
                // One batch serves every registration committed so far.
                while listener.next_buffered().is_some() {}
            }
            Err(_) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "lost the outbox notification listener; polling meanwhile");
                self.listener = None;
                tokio::time::sleep(at_most).await;
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(OUTBOX_CHANNEL).await.ok()?;
        Some(listener)
    }
}
