//! `/.well-known/jwks.json`: the public keys that verify access tokens.
use adapters::PublicJwk;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

#[derive(Tags)]
enum WellKnownTags {
    /// For services that verify tokens
    Keys,
}

/// One Ed25519 public key (RFC 8037).
#[derive(Object, Clone)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id tokens name in their header (the key's RFC 7638 thumbprint).
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    pub usage: String,
}

/// A JWK set (RFC 7517). Empty when tokens are signed with a shared secret (HS256).
#[derive(Object, Clone)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

pub struct WellKnownApi {
    keys: JwkSet,
}

impl WellKnownApi {
    pub fn new(public_keys: &[PublicJwk]) -> Self {
        let keys = public_keys
            .iter()
            .map(|key| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: key.x.clone(),
                kid: key.kid.clone(),
                alg: "EdDSA".into(),
                usage: "sig".into(),
            })
            .collect();
        Self {
            keys: JwkSet { keys },
        }
    }
}

#[OpenApi(tag = "WellKnownTags::Keys")]
impl WellKnownApi {
    /// Token verification keys
    ///
    /// The current signing key first, then keys being rotated out whose tokens may still be
    /// in use. Cache it, and fetch it again on an unknown `kid`.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self) -> Json<JwkSet> {
        Json(self.keys.clone())
    }
}
