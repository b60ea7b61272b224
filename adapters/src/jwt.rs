//! Access tokens as JWTs: HS256 with a shared secret, or EdDSA (Ed25519) with a private key
//! whose public half is published as a JWK set, so other services verify without a secret.
use anyhow::Context;
use application::{AccessGrant, AccessToken, InvalidToken, IssuedAccessToken, TokenIssuer};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{SessionId, Timestamp, User, UserId};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// How tokens are signed.
pub enum SigningKey {
    /// HMAC-SHA256 with a shared secret: every verifier must hold the secret.
    Hs256(Vec<u8>),
    /// Ed25519: the private key in PKCS#8 PEM; `previous` are public keys (SPKI PEM) of keys
    /// being rotated out, still accepted and still published until their tokens have expired.
    Ed25519 {
        private_pem: Vec<u8>,
        previous: Vec<Vec<u8>>,
    },
}

pub struct JwtSettings {
    pub key: SigningKey,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: Uuid,
    /// The session (refresh-token family) the token belongs to; logging out revokes it.
    pub sid: Uuid,
    pub email: String,
    pub username: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
}

/// A public key as a JWK (RFC 8037): what `/.well-known/jwks.json` lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kid: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub x: String,
}

struct Verifier {
    kid: Option<String>,
    key: DecodingKey,
}

pub struct JwtTokenIssuer {
    encoding: EncodingKey,
    header: Header,
    verifiers: Vec<Verifier>,
    validation: Validation,
    public_keys: Vec<PublicJwk>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl JwtTokenIssuer {
    /// # Errors
    /// When a key is empty or not a valid Ed25519 key in the expected PEM form.
    pub fn new(settings: JwtSettings) -> anyhow::Result<Self> {
        let (encoding, header, verifiers, public_keys) = match settings.key {
            SigningKey::Hs256(secret) => {
                let encoding =
                    EncodingKey::from_secret(&secret).context("JWT secret is unusable")?;
                let decoding =
                    DecodingKey::from_secret(&secret).context("JWT secret is unusable")?;
                (
                    encoding,
                    Header::new(Algorithm::HS256),
                    vec![Verifier {
                        kid: None,
                        key: decoding,
                    }],
                    Vec::new(),
                )
            }
            SigningKey::Ed25519 {
                private_pem,
                previous,
            } => ed25519_keys(&private_pem, &previous)?,
        };
        // The algorithm is pinned: a token naming another (`none`, HS256 signed with the public
        // key, ...) is refused before its signature is looked at.
        let mut validation = Validation::new(header.alg);
        // The crate's default leeway is 60 s; a few seconds of clock skew is all we forgive.
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            encoding,
            header,
            verifiers,
            validation,
            public_keys,
            issuer: settings.issuer,
            audience: settings.audience,
            ttl: settings.access_token_ttl,
        })
    }

    /// The public keys that verify this issuer's tokens; empty for HS256, whose key is secret.
    #[must_use]
    pub fn public_keys(&self) -> &[PublicJwk] {
        &self.public_keys
    }

    /// Checks algorithm, key id, signature, issuer, audience and lifetime.
    ///
    /// # Errors
    /// When the token is not one this issuer signed, or no longer valid.
    pub fn verify(&self, token: &str) -> anyhow::Result<AccessClaims> {
        let header = jsonwebtoken::decode_header(token)?;
        anyhow::ensure!(
            header.alg == self.header.alg,
            "algorithm {:?} is not accepted",
            header.alg
        );
        let verifier = self
            .verifiers
            .iter()
            .find(|verifier| {
                verifier.kid == header.kid || (verifier.kid.is_none() && self.verifiers.len() == 1)
            })
            .context("no key with this key id")?;
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &verifier.key, &self.validation)?.claims)
    }
}

type Keys = (EncodingKey, Header, Vec<Verifier>, Vec<PublicJwk>);

fn ed25519_keys(private_pem: &[u8], previous: &[Vec<u8>]) -> anyhow::Result<Keys> {
    let pem = std::str::from_utf8(private_pem).context("the private key is not PEM text")?;
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .context("the private key is not an Ed25519 PKCS#8 PEM key")?;
    let der = signing
        .to_pkcs8_der()
        .context("re-encode the private key")?;
    let encoding = EncodingKey::from_ed_der(der.as_bytes());
    let mut public_keys = vec![jwk(&signing.verifying_key())];
    for (n, public_pem) in previous.iter().enumerate() {
        let pem = std::str::from_utf8(public_pem)
            .with_context(|| format!("previous public key {n} is not PEM text"))?;
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .with_context(|| format!("previous public key {n} is not an Ed25519 public key PEM"))?;
        public_keys.push(jwk(&key));
    }
    let verifiers = public_keys
        .iter()
        .map(|public| {
            let key = DecodingKey::from_ed_components(&public.x)
                .context("an Ed25519 public key is unusable")?;
            Ok(Verifier {
                kid: Some(public.kid.clone()),
                key,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(public_keys[0].kid.clone());
    Ok((encoding, header, verifiers, public_keys))
}

/// The key id is the key's RFC 7638 thumbprint: stable, and needing no configuration.
fn jwk(key: &ed25519_dalek::VerifyingKey) -> PublicJwk {
    let x = URL_SAFE_NO_PAD.encode(key.to_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    PublicJwk {
        kid: URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())),
        x,
    }
}

impl TokenIssuer for JwtTokenIssuer {
    fn issue_access_token(
        &self,
        user: &User,
        session: SessionId,
        now: Timestamp,
    ) -> anyhow::Result<IssuedAccessToken> {
        let issued_at = now.unix_millis() / 1000;
        let ttl = i64::try_from(self.ttl.as_secs()).context("access token lifetime is too long")?;
        let claims = AccessClaims {
            sub: user.id.as_uuid(),
            sid: session.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            iat: issued_at,
            nbf: issued_at,
            exp: issued_at + ttl,
            jti: Uuid::new_v4(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .context("sign access token")?;
        Ok(IssuedAccessToken {
            token: AccessToken::new(token),
            grant: grant(&claims),
        })
    }

    fn verify_access_token(&self, token: &str) -> Result<AccessGrant, InvalidToken> {
        self.verify(token)
            .map(|claims| grant(&claims))
            .map_err(|error| InvalidToken {
                reason: error.to_string(),
            })
    }

    fn access_token_ttl(&self) -> Duration {
        self.ttl
    }
}

fn grant(claims: &AccessClaims) -> AccessGrant {
    let expires_at =
        DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    AccessGrant {
        user_id: UserId::from_uuid(claims.sub),
        session_id: SessionId::from_uuid(claims.sid),
        token_id: claims.jti,
        expires_at: Timestamp::from_datetime(expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Email, Username};
    use ed25519_dalek::pkcs8::EncodePublicKey;

    fn settings(key: SigningKey) -> JwtSettings {
        JwtSettings {
            key,
            issuer: "registrar".into(),
            audience: "registrar-clients".into(),
            access_token_ttl: Duration::from_secs(900),
        }
    }

    fn hs256(secret: &[u8]) -> JwtTokenIssuer {
        JwtTokenIssuer::new(settings(SigningKey::Hs256(secret.to_vec()))).unwrap()
    }

    fn ed25519_pair(seed: u8) -> (Vec<u8>, Vec<u8>) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let private = key
            .to_pkcs8_pem(Default::default())
            .unwrap()
            .as_bytes()
            .to_vec();
        let public = key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
            .into_bytes();
        (private, public)
    }

    fn eddsa(seed: u8, previous: Vec<Vec<u8>>) -> JwtTokenIssuer {
        let (private_pem, _) = ed25519_pair(seed);
        JwtTokenIssuer::new(settings(SigningKey::Ed25519 {
            private_pem,
            previous,
        }))
        .unwrap()
    }

    fn user() -> User {
        User {
            id: UserId::from_uuid(Uuid::now_v7()),
            email: Email::parse("alice@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            created_at: Timestamp::from_datetime(Utc::now()),
        }
    }

    fn issue(issuer: &JwtTokenIssuer) -> String {
        let now = Timestamp::from_datetime(Utc::now());
        let issued = issuer
            .issue_access_token(&user(), SessionId::from_uuid(Uuid::nil()), now)
            .unwrap();
        issued.token.expose_secret().to_owned()
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let issuer = hs256(b"a secret of enough length for hs256");
        let user = user();
        let session = SessionId::from_uuid(Uuid::now_v7());
        let issued = issuer
            .issue_access_token(&user, session, Timestamp::from_datetime(Utc::now()))
            .unwrap();
        let claims = issuer.verify(issued.token.expose_secret()).unwrap();
        assert_eq!(claims.sub, user.id.as_uuid());
        assert_eq!(claims.sid, session.as_uuid());
        assert_eq!(issued.grant.token_id, claims.jti);
        assert_eq!(claims.exp - claims.iat, 900);
        assert!(
            issuer.public_keys().is_empty(),
            "a shared secret is never published"
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        assert!(
            hs256(b"another secret")
                .verify(&issue(&hs256(b"one secret")))
                .is_err()
        );
        assert!(
            eddsa(2, Vec::new())
                .verify(&issue(&eddsa(1, Vec::new())))
                .is_err()
        );
        assert!(
            hs256(b"one secret")
                .verify(&issue(&eddsa(1, Vec::new())))
                .is_err(),
            "algorithm is pinned"
        );
    }

    #[test]
    fn eddsa_tokens_name_their_key_and_verify() {
        let issuer = eddsa(1, Vec::new());
        let token = issue(&issuer);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(
            header.kid.as_deref(),
            Some(issuer.public_keys()[0].kid.as_str())
        );
        assert!(issuer.verify(&token).is_ok());
    }

    #[test]
    fn during_rotation_tokens_of_the_previous_key_still_verify() {
        let old = eddsa(1, Vec::new());
        let (_, old_public) = ed25519_pair(1);
        let new = eddsa(2, vec![old_public]);
        assert_eq!(new.public_keys().len(), 2, "both keys are published");
        assert!(
            new.verify(&issue(&old)).is_ok(),
            "a token from before the rotation"
        );
        assert!(new.verify(&issue(&new)).is_ok());
    }

    #[test]
    fn unusable_keys_are_refused() {
        assert!(JwtTokenIssuer::new(settings(SigningKey::Hs256(Vec::new()))).is_err());
        let garbage = SigningKey::Ed25519 {
            private_pem: b"not a key".to_vec(),
            previous: Vec::new(),
        };
        assert!(JwtTokenIssuer::new(settings(garbage)).is_err());
    }
}
