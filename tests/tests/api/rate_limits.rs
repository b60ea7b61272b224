//! Over the limit, the answer is 429 with `Retry-After`, and nothing is done.
use crate::helpers::{Options, spawn_app_with, valid_registration};
use bootstrap::http::RateLimitSettings;
use serde_json::Value;

async fn assert_limited(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 429, "{why}");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "{why}: Retry-After {retry_after}"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "RATE_LIMITED", "{why}");
}

#[tokio::test]
async fn the_registration_after_the_per_ip_budget_is_refused() {
    let limits = RateLimitSettings {
        register_per_ip: 3,
        ..RateLimitSettings::off()
    };
    let app = spawn_app_with(Options {
        rate_limits: Some(limits),
        ..Options::default()
    })
    .await;
    for n in 0..3 {
        assert_eq!(
            app.register(&valid_registration(&format!("user{n}")))
                .await
                .status(),
            201
        );
    }
    assert_limited(
        app.register(&valid_registration("user3")).await,
        "fourth registration",
    )
    .await;
    assert_eq!(
        app.user_count().await,
        3,
        "the refused request created nothing"
    );
}

#[tokio::test]
async fn guesses_at_one_account_are_limited_whatever_the_spelling() {
    let limits = RateLimitSettings {
        login_per_identifier: 2,
        ..RateLimitSettings::off()
    };
    let app = spawn_app_with(Options {
        rate_limits: Some(limits),
        ..Options::default()
    })
    .await;
    app.registered("alice").await;
    assert_eq!(app.login("alice", "guess one").await.status(), 401);
    assert_eq!(app.login(" ＡＬＩＣＥ ", "guess two").await.status(), 401);
    assert_limited(
        app.login("Alice", "correct horse battery staple").await,
        "third guess",
    )
    .await;
    assert_eq!(
        app.login("bob", "guess").await.status(),
        401,
        "another account has its own budget"
    );
}

#[tokio::test]
async fn refreshes_are_limited_per_client() {
    let limits = RateLimitSettings {
        refresh_per_ip: 1,
        ..RateLimitSettings::off()
    };
    let app = spawn_app_with(Options {
        rate_limits: Some(limits),
        ..Options::default()
    })
    .await;
    assert_eq!(app.refresh("first").await.status(), 401);
    assert_limited(app.refresh("second").await, "second refresh").await;
}
