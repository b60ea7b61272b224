//! Access tokens as HS256-signed JWTs.
use anyhow::Context;
use application::{AccessGrant, AccessToken, InvalidToken, IssuedAccessToken, TokenIssuer};
use chrono::{DateTime, Utc};
use domain::{SessionId, Timestamp, User, UserId};
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
        validation.validate_exp = true;
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
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
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
        let session = SessionId::from_uuid(Uuid::now_v7());
        let issued = issuer
            .issue_access_token(&user, session, Timestamp::from_datetime(Utc::now()))
            .unwrap();
        let claims = issuer.verify(issued.token.expose_secret()).unwrap();
        assert_eq!(claims.sid, session.as_uuid());
        assert_eq!(issued.grant.token_id, claims.jti);
        assert_eq!(claims.sub, user.id.as_uuid());
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let now = Timestamp::from_datetime(Utc::now());
        let issued = issuer(b"one secret")
            .issue_access_token(&user(), SessionId::from_uuid(Uuid::nil()), now)
            .unwrap();
        assert!(
            issuer(b"another secret")
                .verify_access_token(issued.token.expose_secret())
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
