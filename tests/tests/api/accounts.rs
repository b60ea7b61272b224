//! Sign-in, the current user, logout and refresh, through the real API and database.
use crate::helpers::{Options, poll_until, spawn_app, spawn_app_with};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

fn assert_session(session: &Value, username: &str) {
    assert!(
        session["accessToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3),
        "{session}"
    );
    assert!(
        session["refreshToken"]
            .as_str()
            .is_some_and(|t| t.len() >= 43),
        "{session}"
    );
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["expiresIn"], 900);
    assert_eq!(session["user"]["username"], username);
}

#[tokio::test]
async fn registering_signs_the_user_in() {
    let app = spawn_app().await;
    let response = app
        .register(&crate::helpers::valid_registration("alice"))
        .await;
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "tokens are not for caches"
    );
    let session: Value = response.json().await.unwrap();
    assert_session(&session, "alice");
    let me = app.me(session["accessToken"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(body(me).await["user"], session["user"]);
}

#[tokio::test]
async fn any_case_or_padding_of_the_email_or_username_signs_in() {
    let app = spawn_app().await;
    app.registered("alice").await;
    for identifier in [
        "alice@example.com",
        "alice",
        "  ALICE@Example.COM ",
        " Alice\t",
        "ａｌｉｃｅ",
    ] {
        let response = app.login(identifier, PASSWORD).await;
        assert_eq!(response.status(), 200, "{identifier:?}");
        assert_session(&body(response).await, "alice");
    }
}

#[tokio::test]
async fn an_unknown_account_and_a_wrong_password_get_the_same_answer_byte_for_byte() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let wrong_password = app.login("alice", "not the password").await;
    let unknown_user = app.login("nobody", PASSWORD).await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;

    let mut answers = Vec::new();
    for response in [wrong_password, unknown_user, unknown_email] {
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        answers.push(response.bytes().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let problem: Value = serde_json::from_slice(&answers[0]).unwrap();
    assert_eq!(problem["code"], "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn me_without_a_valid_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/auth/me")).send().await.unwrap();
    let malformed = app.me("not.a.token").await;
    let basic = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    for (response, why) in [
        (missing, "missing"),
        (malformed, "malformed"),
        (basic, "basic auth"),
    ] {
        assert_eq!(response.status(), 401, "{why}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{why}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{why}"
        );
        assert_eq!(body(response).await["code"], "INVALID_TOKEN", "{why}");
    }
}

#[tokio::test]
async fn logout_revokes_the_token_everywhere_and_its_refresh_family() {
    let app = spawn_app().await;
    let session = app.registered("alice").await;
    let access = session["accessToken"].as_str().unwrap();
    let sibling = app.spawn_sibling().await;
    crate::auth_cache::wait_until_serving(&app, &sibling).await;
    assert_eq!(
        app.me_at(&sibling, access).await.status(),
        200,
        "the sibling accepts it before logout (and remembers the session)"
    );

    assert_eq!(app.logout(access).await.status(), 204);

    let me = app.me(access).await;
    assert_eq!(me.status(), 401, "at once on the instance that logged out");
    assert_eq!(body(me).await["code"], "TOKEN_REVOKED");
    // The sibling hears of it from PostgreSQL, as soon as the notification arrives.
    let started = std::time::Instant::now();
    let refused = poll_until(Duration::from_secs(5), || async {
        (app.me_at(&sibling, access).await.status() == 401).then_some(started.elapsed())
    })
    .await;
    assert!(refused.is_some(), "revocation is shared through PostgreSQL");
    println!("logout seen by the sibling after {refused:?}");
    let refresh = app.refresh(session["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refresh.status(), 401, "the refresh family is revoked too");
    assert_eq!(
        app.logout(access).await.status(),
        401,
        "a revoked token cannot log out again"
    );

    // Other sessions of the same user are untouched.
    let other = body(app.login("alice", PASSWORD).await).await;
    assert_eq!(
        app.me(other["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let app = spawn_app().await;
    let first = app.registered("alice").await;
    let second = body(app.refresh(first["refreshToken"].as_str().unwrap()).await).await;
    assert_session(&second, "alice");
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert_eq!(
        app.me(second["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let third = app.refresh(second["refreshToken"].as_str().unwrap()).await;
    assert_eq!(third.status(), 200, "the successor can be rotated in turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_within_the_grace_window_get_the_same_successor() {
    let app = spawn_app().await;
    let first = app.registered("alice").await;
    let token = first["refreshToken"].as_str().unwrap();

    let responses = join_all((0..2).map(|_| app.refresh(token))).await;
    let mut successors = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        successors.push(body(response).await["refreshToken"].clone());
    }
    assert_eq!(
        successors[0], successors[1],
        "both get the same successor, nobody is logged out"
    );
    assert_eq!(
        app.refresh(successors[0].as_str().unwrap()).await.status(),
        200
    );
}

#[tokio::test]
async fn a_duplicate_within_the_grace_window_never_gets_a_successor_that_was_used() {
    let app = spawn_app().await;
    let first = app.registered("alice").await;
    let r0 = first["refreshToken"].as_str().unwrap();
    let r1 = body(app.refresh(r0).await).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let r2 = body(app.refresh(&r1).await).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let stale = app.refresh(r0).await;
    assert_eq!(
        stale.status(),
        401,
        "r1 is used up, so r0 coming back is reuse"
    );
    assert_eq!(body(stale).await["code"], "TOKEN_REVOKED");
    assert_eq!(
        app.refresh(&r2).await.status(),
        401,
        "the family is revoked"
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app_with(Options {
        refresh_grace: Some(Duration::ZERO),
        ..Options::default()
    })
    .await;
    let first = app.registered("alice").await;
    let old = first["refreshToken"].as_str().unwrap();
    let second = body(app.refresh(old).await).await;

    let reuse = app.refresh(old).await;
    assert_eq!(reuse.status(), 401);
    assert_eq!(body(reuse).await["code"], "TOKEN_REVOKED");

    let successor = app.refresh(second["refreshToken"].as_str().unwrap()).await;
    assert_eq!(
        successor.status(),
        401,
        "the thief's and the owner's successors die together"
    );
    assert_eq!(
        app.me(second["accessToken"].as_str().unwrap())
            .await
            .status(),
        401,
        "and the session's access tokens"
    );
}

#[tokio::test]
async fn tokens_are_not_interchangeable() {
    let app = spawn_app().await;
    let session = app.registered("alice").await;
    let (access, refresh) = (
        session["accessToken"].as_str().unwrap(),
        session["refreshToken"].as_str().unwrap(),
    );
    assert_eq!(
        app.me(refresh).await.status(),
        401,
        "a refresh token is not an access token"
    );
    assert_eq!(
        app.refresh(access).await.status(),
        401,
        "an access token is not a refresh token"
    );
    assert_eq!(app.refresh("made-up").await.status(), 401);
}

#[tokio::test]
async fn identity_rules_hold_against_look_alikes_and_odd_input() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let register = |email: &str, username: &str, password: &str| json!({"email": email, "username": username, "password": password});
    let cases = [
        (
            register("a2@example.com", "ａｌｉｃｅ", PASSWORD),
            409,
            "full-width look-alike of a taken name is that name",
        ),
        (
            register("a3@example.com", "ALICE", PASSWORD),
            409,
            "other case of a taken name",
        ),
        (
            register("a4@example.com", "аlice", PASSWORD),
            400,
            "Cyrillic look-alike is refused, not a second alice",
        ),
        (
            register("a5@example.com", "bob", "pass\u{0}word1"),
            400,
            "NUL in the password",
        ),
        (
            register("a6@example.com", "bob2", "A6@EXAMPLE.com"),
            400,
            "password equal to the email",
        ),
        (
            register("a7@example.com", "bob3", &"x".repeat(300)),
            400,
            "password over 256 characters",
        ),
        (
            register("a8@example.com", "bob4", &"x".repeat(1 << 20)),
            413,
            "1 MiB password: over the body cap",
        ),
    ];
    for (request, status, why) in cases {
        assert_eq!(app.register(&request).await.status(), status, "{why}");
    }
    let huge_login = app.login("alice", &"x".repeat(1 << 20)).await;
    assert_eq!(huge_login.status(), 413, "1 MiB password at login");
    let nul_identifier = app.login("a\u{0}@example.com", PASSWORD).await;
    assert_eq!(
        nul_identifier.status(),
        401,
        "a NUL byte in an email-style identifier"
    );
    let long_login = app.login("alice", &"x".repeat(300)).await;
    assert_eq!(
        long_login.status(),
        401,
        "an over-long password cannot be right"
    );
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn expired_revocations_and_refresh_tokens_are_pruned() {
    use adapters::PostgresSessionStore;
    use application::SessionStore;
    let app = spawn_app().await;
    let session = app.registered("alice").await;
    assert_eq!(
        app.logout(session["accessToken"].as_str().unwrap())
            .await
            .status(),
        204
    );
    let count = |table: &'static str| {
        let db = app.db.clone();
        async move {
            let query = format!("SELECT count(*) FROM {table}");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query))
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("revoked_access_tokens").await, 1);
    assert_eq!(count("refresh_tokens").await, 1);

    let store = PostgresSessionStore::new(app.db.clone());
    let now = domain::Timestamp::from_datetime(chrono::Utc::now());
    assert_eq!(
        store.prune_expired(now).await.unwrap(),
        0,
        "nothing has expired yet"
    );
    let after_expiry =
        domain::Timestamp::from_datetime(chrono::Utc::now() + chrono::TimeDelta::days(31));
    assert_eq!(store.prune_expired(after_expiry).await.unwrap(), 2);
    assert_eq!(count("revoked_access_tokens").await, 0);
    assert_eq!(count("refresh_tokens").await, 0);
}
