//! At capacity the service says so at once (503 with Retry-After) instead of piling requests
//! up, and loses nothing it accepted.
use crate::helpers::{Options, TestApp, poll_until, spawn_app, spawn_app_with, valid_registration};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// Sends `count` registrations at once; returns the statuses counted, checking every 503.
async fn register_at_once(app: &TestApp, prefix: &str, count: usize) -> BTreeMap<u16, usize> {
    let responses: Vec<reqwest::Response> = futures_util::stream::iter(0..count)
        .map(|n| async move {
            app.register(&valid_registration(&format!("{prefix}{n}")))
                .await
        })
        .buffer_unordered(count)
        .collect()
        .await;
    let mut statuses = BTreeMap::new();
    for response in responses {
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        if status == 503 {
            assert_eq!(
                response.headers()["retry-after"],
                "1",
                "503 says when to retry"
            );
            let problem: serde_json::Value = response.json().await.unwrap();
            assert_eq!(problem["code"], "SERVICE_UNAVAILABLE");
        }
    }
    statuses
}

#[tokio::test]
async fn a_full_hashing_line_answers_503_at_once_and_accepts_the_rest() {
    let app = spawn_app_with(Options {
        adjust: Some(|settings| {
            settings.hash_concurrency = 1;
            settings.hash_queue_size = 1;
        }),
        ..Options::default()
    })
    .await;
    let statuses = register_at_once(&app, "burst", 24).await;
    println!("24 registrations at once, 1 hashing + 1 waiting: {statuses:?}");
    let created = statuses.get(&201).copied().unwrap_or_default();
    assert!(created >= 2, "{statuses:?}");
    assert!(
        statuses.get(&503).copied().unwrap_or_default() >= 1,
        "{statuses:?}"
    );
    assert_eq!(
        created + statuses[&503],
        24,
        "nothing but 201 and 503: {statuses:?}"
    );
    // Refused requests left nothing behind; accepted ones lost nothing.
    assert_eq!(app.user_count().await, created as i64);
    app.wait_for_empty_outbox(Duration::from_secs(15)).await;
    assert_eq!(app.drain_published().await.len(), created);
}

#[tokio::test]
async fn an_exhausted_connection_pool_answers_503_not_a_hang_or_a_500() {
    let app = spawn_app_with(Options {
        adjust: Some(|settings| {
            settings.database_max_connections = 2;
            settings.database_acquire_timeout = Duration::from_millis(200);
        }),
        ..Options::default()
    })
    .await;
    app.registered("pooled").await;

    // Hold the users table: sign-ins that got a connection wait on the lock, holding it.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let logins = futures_util::stream::iter(0..6)
        .map(|_| app.login("pooled", "correct horse battery staple"))
        .buffer_unordered(6);
    let first_answers: Vec<u16> = logins
        .take(3)
        .map(|response| response.status().as_u16())
        .collect()
        .await;
    lock.rollback().await.unwrap();
    println!("first answers while the pool is exhausted: {first_answers:?}");
    assert!(
        first_answers.iter().all(|status| *status == 503),
        "{first_answers:?}"
    );

    // Once released, the service serves again.
    assert_eq!(
        app.login("pooled", "correct horse battery staple")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_database_connection_lost_mid_request_answers_503_and_a_retry_succeeds() {
    let app = spawn_app().await;
    let registration = valid_registration("interrupted");

    // Hold the users table, so the registration waits inside its transaction; then kill the
    // connection it waits on, as a database restart or an operator would.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (response, killed) = tokio::join!(
        app.register(&registration),
        kill_connections_waiting_on_a_lock(&app)
    );
    lock.rollback().await.unwrap();
    assert!(
        killed.is_some(),
        "the registration never waited on the lock"
    );

    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap()),
        Some("1")
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "SERVICE_UNAVAILABLE", "{problem}");
    assert_eq!(app.user_count().await, 0, "nothing was committed");

    let retried = app.register(&registration).await;
    assert_eq!(retried.status(), 201, "the retry gets a fresh connection");
}

#[tokio::test]
async fn a_registration_whose_session_was_cut_off_is_completed_by_a_retry_with_its_key() {
    let app = spawn_app().await;
    let registration = valid_registration("half");
    let key = uuid::Uuid::new_v4().to_string();
    let register = || async {
        app.client
            .post(app.url("/auth/register"))
            .header("idempotency-key", &key)
            .json(&registration)
            .send()
            .await
            .unwrap()
    };

    // The user is stored; the connection dies while the session waits on the lock.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (response, killed) = tokio::join!(register(), kill_connections_waiting_on_a_lock(&app));
    lock.rollback().await.unwrap();
    assert!(killed.is_some(), "the session never waited on the lock");
    assert_eq!(response.status(), 503);
    assert_eq!(
        app.user_count().await,
        1,
        "the user was committed before the session"
    );

    let retried = register().await;
    assert_eq!(retried.status(), 201);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    let session: serde_json::Value = retried.json().await.unwrap();
    assert_eq!(session["user"]["username"], "half");
    let me = app.me(session["accessToken"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200, "the retry opened a working session");
    assert_eq!(app.user_count().await, 1);
}

/// Kills the connections of this test's database that wait on a lock, once there is one.
async fn kill_connections_waiting_on_a_lock(app: &TestApp) -> Option<()> {
    poll_until(Duration::from_secs(15), || async {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_all(&app.db)
        .await
        .unwrap();
        (!killed.is_empty()).then_some(())
    })
    .await
}
