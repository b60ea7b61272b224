//! The audit listener: its own queue, one audit row per event, however often it arrives.
use crate::helpers::{poll_until, spawn_app, valid_registration};
use lapin::BasicProperties;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

async fn audit_rows(app: &crate::helpers::TestApp) -> Vec<(Uuid, String, Option<Uuid>)> {
    sqlx::query_as("SELECT event_id, event_type, user_id FROM audit_log ORDER BY received_at")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_registration_is_audited_once_even_when_delivered_twice() {
    let app = spawn_app().await;
    let response = app.register(&valid_registration("alice")).await;
    let user: serde_json::Value = response.json().await.unwrap();
    let published = app
        .next_published(WAIT)
        .await
        .expect("the event is published");

    let audited = poll_until(WAIT, || async {
        Some(audit_rows(&app).await).filter(|rows| !rows.is_empty())
    })
    .await;
    let rows = audited.expect("the audit listener records the event");
    let event_id = Uuid::parse_str(&published.message_id()).unwrap();
    assert_eq!(
        rows,
        vec![(
            event_id,
            "user.registered".to_owned(),
            Some(Uuid::parse_str(user["user"]["id"].as_str().unwrap()).unwrap())
        )]
    );

    // The same message again, as after a relay crash between publish and mark.
    app.publish_to_exchange(
        published.body.as_bytes(),
        BasicProperties::default().with_message_id(published.message_id().into()),
    )
    .await;
    let stats = app.audit_stats.clone();
    let handled_twice = poll_until(WAIT, || async { (stats.handled() >= 2).then_some(()) }).await;
    assert!(
        handled_twice.is_some(),
        "the duplicate was delivered and acked"
    );
    assert_eq!(audit_rows(&app).await.len(), 1, "and had no second effect");
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
}
