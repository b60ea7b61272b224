//! `POST /auth/register` through real HTTP, PostgreSQL and RabbitMQ.
use crate::helpers::{JWT_SECRET, Options, spawn_app, spawn_app_with, valid_registration};
use adapters::{JwtSettings, JwtTokenIssuer, SigningKey};
use application::IncomingEvent;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn is_millisecond_utc(text: &str) -> bool {
    // 2025-10-19T16:37:15.123Z
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[tokio::test]
async fn registering_answers_201_stores_the_user_and_publishes_the_seed_envelope() {
    let app = spawn_app().await;

    let response = app.register(&json!({"email": "  Alice@Example.com ", "username": " alice ", "password": "correct horse"})).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(
        user["email"], "Alice@Example.com",
        "trimmed, stored as entered"
    );
    assert_eq!(user["username"], "alice");
    let created_at = user["createdAt"].as_str().unwrap();
    assert!(is_millisecond_utc(created_at), "{created_at}");
    assert!(body.get("password").is_none() && user.get("password").is_none());

    // The access token is a JWT for this user, signed with the configured secret.
    let verifier = JwtTokenIssuer::new(JwtSettings {
        key: SigningKey::Hs256(JWT_SECRET.as_bytes().to_vec()),
        issuer: "registrar".into(),
        audience: "registrar".into(),
        access_token_ttl: Duration::from_secs(900),
    })
    .unwrap();
    let claims = verifier
        .verify(body["accessToken"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub.to_string(), user["id"].as_str().unwrap());

    // The row exists, with an argon2id hash and never the password itself.
    let (email, hash): (String, String) =
        sqlx::query_as("SELECT email, password_hash FROM users WHERE id = $1::uuid")
            .bind(user["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(email, "Alice@Example.com");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // Exactly the seed's envelope arrives on a queue bound to the exchange.
    let published = app
        .next_published(WAIT)
        .await
        .expect("the event is published");
    let timestamp = published.json()["timestamp"].as_str().unwrap().to_owned();
    assert!(is_millisecond_utc(&timestamp), "{timestamp}");
    let expected = format!(
        r#"{{"event":"user.registered","data":{{"id":"{}","email":"Alice@Example.com","username":"alice","createdAt":"{created_at}"}},"timestamp":"{timestamp}"}}"#,
        user["id"].as_str().unwrap()
    );
    assert_eq!(published.body, expected);
    let properties = &published.properties;
    assert_eq!(
        properties.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        properties.kind().as_ref().unwrap().as_str(),
        "user.registered"
    );
    assert!(properties.timestamp().is_some());
    let message_id = uuid::Uuid::parse_str(&published.message_id()).expect("message_id is a UUID");

    // The service's own consumer handled the same event.
    let handled = app
        .next_handled(WAIT)
        .await
        .expect("the consumer handles the event");
    let IncomingEvent::UserRegistered(handled) = handled else {
        panic!("unexpected {handled:?}")
    };
    assert_eq!(handled.event_id.as_uuid(), message_id);
    assert_eq!(handled.user_id.to_string(), user["id"].as_str().unwrap());
    assert_eq!(handled.created_at.to_string(), created_at);
}

#[tokio::test]
async fn an_email_or_username_taken_in_another_case_is_a_conflict() {
    let app = spawn_app().await;
    assert_eq!(
        app.register(&valid_registration("alice")).await.status(),
        201
    );

    let cases = [
        (
            json!({"email": "ALICE@example.COM", "username": "other", "password": "correct horse"}),
            "same email, other case",
        ),
        (
            json!({"email": "other@example.com", "username": "ALICE", "password": "correct horse"}),
            "same username, other case",
        ),
        (
            json!({"email": " alice@example.com ", "username": "other2", "password": "correct horse"}),
            "same email, padded",
        ),
    ];
    for (body, why) in cases {
        let response = app.register(&body).await;
        assert_eq!(response.status(), 409, "{why}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{why}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "USER_ALREADY_EXISTS", "{why}");
    }
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_email_make_one_account_and_one_event() {
    // Room for all twenty in the hashing line: this is about the race, not back-pressure.
    let app = spawn_app_with(Options {
        adjust: Some(|settings| settings.hash_queue_size = 32),
        ..Options::default()
    })
    .await;
    let bodies: Vec<Value> = (0..20)
        .map(|n| json!({"email": "race@example.com", "username": format!("racer{n}"), "password": "correct horse"}))
        .collect();
    let responses = join_all(bodies.iter().map(|body| app.register(body))).await;

    let mut statuses: Vec<u16> = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !body.to_lowercase().contains("insert") && !body.contains("users_"),
            "no SQL leaks: {body}"
        );
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(app.user_count().await, 1);

    app.wait_for_empty_outbox(WAIT).await;
    let published = app.drain_published().await;
    assert_eq!(published.len(), 1, "one event for one account");
}

#[tokio::test]
async fn invalid_bodies_get_a_problem_json_naming_what_is_wrong() {
    let app = spawn_app().await;
    let ok_password = "correct horse";
    let json_body = |body: Value| body.to_string();
    // (body, content type, expected status, expected code, fields named, why)
    type Case<'a> = (
        String,
        Option<&'a str>,
        u16,
        &'a str,
        &'a [&'a str],
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            json_body(
                json!({"email": "not-an-email", "username": "alice", "password": ok_password}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["email"],
            "email without @",
        ),
        (
            json_body(
                json!({"email": "a@localhost", "username": "alice", "password": ok_password}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["email"],
            "email without a top-level domain",
        ),
        (
            json_body(json!({"email": "a@example.com", "username": "al", "password": ok_password})),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["username"],
            "username too short",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "a".repeat(33), "password": ok_password}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["username"],
            "username too long",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "al ice", "password": ok_password}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["username"],
            "username with a space",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "alice", "password": "1234567"}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["password"],
            "password of 7 characters",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "alice", "password": "x".repeat(257)}),
            ),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["password"],
            "password of 257 characters",
        ),
        (
            json_body(json!({"email": "", "username": "", "password": ""})),
            Some("application/json"),
            400,
            "VALIDATION_FAILED",
            &["email", "username", "password"],
            "everything empty",
        ),
        (
            r#"{"email": "a@example.com", "username": "#.into(),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "truncated JSON",
        ),
        (
            json_body(json!({"email": "a@example.com", "username": "alice"})),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "missing password",
        ),
        (
            json_body(json!({"email": "a@example.com", "username": "alice", "password": 12345678})),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "password is a number",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "alice", "password": ok_password, "admin": true}),
            ),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "unknown field",
        ),
        (
            "[]".into(),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "an array",
        ),
        (
            "null".into(),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "null",
        ),
        (
            format!(r#"["a@example.com", "alice", "{ok_password}"]"#),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "an array holding the password, which must not be echoed",
        ),
        (
            format!(r#""{ok_password}""#),
            Some("application/json"),
            400,
            "MALFORMED_REQUEST",
            &[],
            "a bare string, which must not be echoed",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "alice", "password": ok_password}),
            ),
            None,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            &[],
            "no Content-Type",
        ),
        (
            json_body(
                json!({"email": "a@example.com", "username": "alice", "password": ok_password}),
            ),
            Some("text/plain"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            &[],
            "text/plain",
        ),
        (
            format!(
                r#"{{"email":"a@example.com","username":"alice","password":"{}"}}"#,
                "x".repeat(70_000)
            ),
            Some("application/json"),
            413,
            "PAYLOAD_TOO_LARGE",
            &[],
            "body over 64 KiB",
        ),
    ];
    for (body, content_type, status, code, fields, why) in cases {
        let mut request = app.client.post(app.url("/auth/register")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{why}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{why}"
        );
        let problem: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{why}: body is not JSON: {e}"));
        assert_eq!(problem["code"], code, "{why}: {problem}");
        assert_eq!(problem["status"], status, "{why}");
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(named, fields, "{why}: {problem}");
        assert!(
            !problem.to_string().contains(ok_password),
            "{why}: the password is never echoed"
        );
    }
    assert_eq!(app.user_count().await, 0, "nothing invalid was stored");
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_refused_too() {
    let app = spawn_app().await;
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..80).map(|_| Ok("x".repeat(1024))).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json_too() {
    let app = spawn_app().await;
    let missing = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );

    let wrong_method = app
        .client
        .get(app.url("/auth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_relay_is_woken_by_the_commit_not_by_its_poll() {
    // With a poll of ten minutes, only the commit's NOTIFY can bring the event out in time.
    let options = crate::helpers::Options {
        outbox_poll_interval: Some(Duration::from_secs(600)),
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(options).await;
    assert_eq!(
        app.register(&valid_registration("prompt")).await.status(),
        201
    );
    let published = app
        .next_published(Duration::from_secs(5))
        .await
        .expect("published at once");
    assert_eq!(published.json()["data"]["username"], "prompt");
}
