//! Published events are kept for a while, then pruned; pending ones never are.
use crate::helpers::spawn_app;
use adapters::PostgresOutbox;
use chrono::{TimeDelta, Utc};
use domain::Timestamp;
use std::time::Duration;

#[tokio::test]
async fn published_events_past_their_retention_are_pruned_and_pending_ones_are_kept() {
    let app = spawn_app().await;
    let insert = |published: Option<i64>| {
        let db = app.db.clone();
        async move {
            sqlx::query(
                "INSERT INTO outbox (id, event_type, payload, occurred_at, published_at)
                 VALUES ($1, 'user.registered', '{}'::json, now() - interval '30 days',
                         now() - make_interval(days => $2::int))",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(published.map(|days| i32::try_from(days).unwrap()))
            .execute(&db)
            .await
            .unwrap();
        }
    };
    insert(Some(10)).await; // published 10 days ago: past a 7-day retention
    insert(Some(1)).await; // published yesterday: kept
    // Never published (the broker has been away for a month): kept whatever its age. Inserted
    // as claimed far ahead, so that the running relay leaves it alone.
    sqlx::query(
        "INSERT INTO outbox (id, event_type, payload, occurred_at, claimed_until)
         VALUES ($1, 'user.registered', '{}'::json, now() - interval '30 days', now() + interval '1 day')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&app.db)
    .await
    .unwrap();

    let outbox = PostgresOutbox::new(app.db.clone(), Duration::from_secs(60));
    let week_ago = Timestamp::from_datetime(Utc::now() - TimeDelta::days(7));
    // The service's own maintenance may prune first (it runs at start-up too): count what is
    // left, not what this call deleted.
    assert!(outbox.prune_published(week_ago).await.unwrap() <= 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 2);
    assert_eq!(
        app.pending_outbox_events().await,
        1,
        "the pending event survives"
    );
}
