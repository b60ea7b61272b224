//! Health endpoints: live while the process serves; ready while PostgreSQL is usable, whatever
//! the broker does.
use crate::helpers::{Options, poll_until, spawn_app, spawn_app_with};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn ready(app: &crate::helpers::TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn live_and_ready_report_the_service_and_its_dependencies() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/health/live").await["status"], "ok");

    let connected = poll_until(WAIT, || async {
        let (status, body) = ready(&app).await;
        (status == 200 && body["broker"] == "connected").then_some(body)
    })
    .await
    .expect("ready, with the broker connected");
    assert_eq!(connected["status"], "ready");
    assert_eq!(connected["database"], "ok");
    assert_eq!(connected["outboxPending"], 0);
}

#[tokio::test]
async fn a_broker_outage_is_reported_but_leaves_the_service_ready() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    app.proxy.as_ref().expect("a proxy").cut();
    app.registered("waiting").await;

    let reported = poll_until(WAIT, || async {
        let (status, body) = ready(&app).await;
        (body["broker"] == "disconnected").then_some((status, body))
    })
    .await;
    let (status, body) = reported.expect("the outage is reported");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["outboxPending"], 1);
    assert!(
        body["outboxOldestPendingSeconds"].as_f64().is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn a_database_behind_this_build_s_migrations_is_not_ready() {
    let app = spawn_app().await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["database"]
            .as_str()
            .unwrap()
            .contains("migrations applied"),
        "{body}"
    );
    // Liveness is not readiness: the process is fine.
    assert_eq!(app.get_json("/health/live").await["status"], "ok");
}

#[tokio::test]
async fn an_idle_api_only_instance_reports_the_broker_as_it_is() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        consumers_disabled: true,
        ..Options::default()
    })
    .await;
    let broker_is = |expected: &'static str| {
        let app = &app;
        async move {
            poll_until(WAIT, || async {
                let (status, body) = ready(app).await;
                (status == 200 && body["broker"] == expected).then_some(())
            })
            .await
            .is_some()
        }
    };
    // No event has been published, and no consumer runs: the relay looks all the same.
    assert!(broker_is("connected").await, "connected before any event");
    let proxy = app.proxy.as_ref().expect("a proxy");
    proxy.cut();
    assert!(
        broker_is("disconnected").await,
        "the cut is seen while idle"
    );
    proxy.restore().await;
    assert!(broker_is("connected").await, "and the recovery");
}

#[tokio::test]
async fn readiness_does_not_wait_on_the_outbox_backlog() {
    // A small pool, so that probes which left their backlog query running would soon take all
    // of it, and readiness would fail for want of a connection.
    let app = spawn_app_with(Options {
        adjust: Some(|settings| settings.database_max_connections = 4),
        ..Options::default()
    })
    .await;
    // Nobody can count the outbox while this transaction holds it.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    for probe in 1..=8 {
        let (status, body) = ready(&app).await;
        assert_eq!(status, 200, "probe {probe}: {body}");
        assert_eq!(body["status"], "ready");
        assert!(body["outboxPending"].is_null(), "{body}");
    }
    lock.rollback().await.unwrap();
    let (_, body) = ready(&app).await;
    assert_eq!(body["outboxPending"], 0, "counted again once free: {body}");
}
