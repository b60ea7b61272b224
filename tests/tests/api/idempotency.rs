//! `Idempotency-Key` on registration: a retry has no second effect and gets the first answer.
use crate::helpers::{TestApp, spawn_app, valid_registration};
use futures_util::future::join_all;
use serde_json::Value;
use std::time::Duration;

async fn register_with_key(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/auth/register"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_answer_with_one_user_and_one_event() {
    let app = spawn_app().await;
    let key = uuid::Uuid::new_v4().to_string();
    let first = register_with_key(&app, &key, &valid_registration("alice")).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let retry = register_with_key(&app, &key, &valid_registration("alice")).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["user"], first["user"]);
    assert_eq!(retry["refreshToken"], first["refreshToken"]);
    assert_eq!(
        app.me(retry["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );

    assert_eq!(app.user_count().await, 1);
    app.wait_for_empty_outbox(Duration::from_secs(15)).await;
    assert_eq!(app.drain_published().await.len(), 1, "no second event");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let key = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        register_with_key(&app, &key, &valid_registration("alice"))
            .await
            .status(),
        201
    );
    let other = register_with_key(&app, &key, &valid_registration("bob")).await;
    assert_eq!(other.status(), 422);
    assert_eq!(other.headers()["content-type"], "application/problem+json");
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn an_unusable_key_is_a_validation_error() {
    let app = spawn_app().await;
    let response = register_with_key(&app, &"k".repeat(300), &valid_registration("alice")).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_key_that_is_not_plain_ascii_or_is_sent_twice_is_refused_not_ignored() {
    let app = spawn_app().await;
    let non_ascii = reqwest::header::HeaderValue::from_bytes("ключ-1".as_bytes()).unwrap();
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("idempotency-key", non_ascii)
        .json(&valid_registration("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let twice = app
        .client
        .post(app.url("/auth/register"))
        .header("idempotency-key", "one")
        .header("idempotency-key", "two")
        .json(&valid_registration("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_replay_after_the_client_refreshed_hands_out_working_tokens() {
    let app = spawn_app().await;
    let key = uuid::Uuid::new_v4().to_string();
    let first: Value = register_with_key(&app, &key, &valid_registration("alice"))
        .await
        .json()
        .await
        .unwrap();
    let refreshed = app.refresh(first["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);

    let replay = register_with_key(&app, &key, &valid_registration("alice")).await;
    assert_eq!(replay.status(), 201);
    let replay: Value = replay.json().await.unwrap();
    assert_ne!(
        replay["refreshToken"], first["refreshToken"],
        "the used-up token is not handed out again"
    );
    assert_eq!(
        app.refresh(replay["refreshToken"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(
        app.refresh(refreshed["refreshToken"].as_str().unwrap())
            .await
            .status(),
        200,
        "the client's own session lives on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_create_one_account() {
    let app = spawn_app().await;
    let key = uuid::Uuid::new_v4().to_string();
    let body = valid_registration("alice");
    let responses = join_all((0..5).map(|_| register_with_key(&app, &key, &body))).await;
    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            409 => assert_eq!(
                response.json::<Value>().await.unwrap()["code"],
                "IDEMPOTENCY_KEY_IN_USE"
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(created >= 1, "at least the first attempt succeeds");
    assert_eq!(app.user_count().await, 1);
}
