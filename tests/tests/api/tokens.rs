//! Forged and stale access tokens are refused.
use crate::helpers::{JWT_SECRET, spawn_app};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(algorithm: Algorithm, claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn forged_altered_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let session = app.registered("alice").await;
    let genuine = session["accessToken"].as_str().unwrap().to_owned();
    let claims = claims_of(&genuine);
    assert_eq!(app.me(&genuine).await.status(), 200);
    let secret = JWT_SECRET.as_bytes();

    let with = |change: &dyn Fn(&mut Value)| {
        let mut changed = claims.clone();
        change(&mut changed);
        changed
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tampered = {
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(with(&|c| c["username"] = json!("admin")).to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let cases = [
        (alg_none, "alg none"),
        (
            sign(Algorithm::HS512, &claims, secret),
            "HS512 re-signed with the right secret",
        ),
        (
            sign(Algorithm::HS256, &claims, b"another secret"),
            "signed with another secret",
        ),
        (tampered, "payload changed after signing"),
        (
            sign(
                Algorithm::HS256,
                &with(&|c| c["exp"] = json!(now() - 10)),
                secret,
            ),
            "expired 10 s ago",
        ),
        (
            sign(
                Algorithm::HS256,
                &with(&|c| c["nbf"] = json!(now() + 60)),
                secret,
            ),
            "not valid for another minute",
        ),
        (
            sign(
                Algorithm::HS256,
                &with(&|c| c["aud"] = json!("someone-else")),
                secret,
            ),
            "wrong audience",
        ),
        (
            sign(
                Algorithm::HS256,
                &with(&|c| c["iss"] = json!("someone-else")),
                secret,
            ),
            "wrong issuer",
        ),
        (
            sign(
                Algorithm::HS256,
                &with(&|c| {
                    c.as_object_mut()
                        .unwrap()
                        .remove("exp")
                        .map(drop)
                        .unwrap_or(())
                }),
                secret,
            ),
            "no exp",
        ),
    ];
    for (token, why) in cases {
        let response = app.me(&token).await;
        assert_eq!(response.status(), 401, "{why}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\"",
            "{why}"
        );
    }
    // A correctly signed copy of the genuine claims is accepted: the cases above fail for
    // their one change, not for how the test signs.
    assert_eq!(
        app.me(&sign(Algorithm::HS256, &claims, secret))
            .await
            .status(),
        200
    );
}
