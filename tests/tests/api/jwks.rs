//! EdDSA mode: tokens verifiable by anyone holding the published public key, and nothing else.
use crate::helpers::{Options, spawn_app, spawn_app_with};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

fn private_key_pem() -> String {
    let seed: [u8; 32] = *uuid::Uuid::new_v4()
        .as_bytes()
        .repeat(2)
        .first_chunk()
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    key.to_pkcs8_pem(Default::default()).unwrap().to_string()
}

fn decode(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

#[tokio::test]
async fn an_eddsa_token_verifies_against_the_published_key_with_an_independent_verifier() {
    let options = Options {
        ed25519_private_key_pem: Some(private_key_pem()),
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let session = app.registered("alice").await;
    let token = session["accessToken"].as_str().unwrap();
    assert_eq!(app.me(token).await.status(), 200);

    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");

    // Verify by hand, as a downstream service in any language would: no registrar code.
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&decode(parts[0])).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);
    let public: [u8; 32] = decode(key["x"].as_str().unwrap())
        .try_into()
        .expect("32 bytes");
    let verifying = VerifyingKey::from_bytes(&public).unwrap();
    let signature = Signature::from_slice(&decode(parts[2])).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert!(
        verifying.verify(signed.as_bytes(), &signature).is_ok(),
        "the signature verifies"
    );
    assert!(verifying.verify(b"something else", &signature).is_err());
    let claims: Value = serde_json::from_slice(&decode(parts[1])).unwrap();
    assert_eq!(claims["sub"], session["user"]["id"]);
}

#[tokio::test]
async fn with_a_shared_secret_no_key_is_published() {
    let app = spawn_app().await;
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks, serde_json::json!({"keys": []}));
}
