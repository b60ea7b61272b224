//! Access tokens as HS256-signed JWTs.
use anyhow::Context;
use application::{AccessToken, TokenIssuer};
use domain::User;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

pub struct JwtSettings {
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub email: String,
    pub username: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
}

pub struct JwtTokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl JwtTokenIssuer {
    /// # Errors
    /// When the secret is empty.
    pub fn new(settings: JwtSettings) -> anyhow::Result<Self> {
        let encoding =
            EncodingKey::from_secret(&settings.secret).context("JWT secret is unusable")?;
        let decoding =
            DecodingKey::from_secret(&settings.secret).context("JWT secret is unusable")?;
        let mut validation = Validation::new(Algorithm::HS256);
        // The crate's default leeway is 60 s; a few seconds of clock skew is all we forgive.
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Self {
            encoding,
            decoding,
            validation,
            issuer: settings.issuer,
            audience: settings.audience,
            ttl: settings.access_token_ttl,
        })
    }

    /// Checks signature, algorithm, issuer, audience and lifetime.
    ///
    /// # Errors
    /// When the token is not one this issuer signed, or no longer valid.
    pub fn verify(&self, token: &str) -> anyhow::Result<AccessClaims> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)?;
        Ok(data.claims)
    }
}

impl TokenIssuer for JwtTokenIssuer {
    fn issue_access_token(&self, user: &User) -> anyhow::Result<AccessToken> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).context("access token lifetime is too long")?;
        let claims = AccessClaims {
            sub: user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: Uuid::new_v4(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("sign access token")?;
        Ok(AccessToken::new(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::{Email, Timestamp, UserId, Username};

    fn issuer(secret: &[u8]) -> JwtTokenIssuer {
        JwtTokenIssuer::new(JwtSettings {
            secret: secret.to_vec(),
            issuer: "registrar".into(),
            audience: "registrar-clients".into(),
            access_token_ttl: Duration::from_secs(900),
        })
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

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let issuer = issuer(b"a secret of enough length for hs256");
        let user = user();
        let token = issuer.issue_access_token(&user).unwrap();
        let claims = issuer.verify(token.expose_secret()).unwrap();
        assert_eq!(claims.sub, user.id.as_uuid());
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = issuer(b"one secret").issue_access_token(&user()).unwrap();
        assert!(
            issuer(b"another secret")
                .verify(token.expose_secret())
                .is_err()
        );
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(
            JwtTokenIssuer::new(JwtSettings {
                secret: Vec::new(),
                issuer: "i".into(),
                audience: "a".into(),
                access_token_ttl: Duration::from_secs(1),
            })
            .is_err()
        );
    }
}
