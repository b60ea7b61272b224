//! Ports: access tokens (signed, short-lived) and refresh tokens (opaque, stored as hashes).
use domain::{SessionId, Timestamp, User, UserId};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

macro_rules! secret_string {
    ($name:ident) => {
        /// A bearer secret. Its `Debug` output hides the value.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            #[must_use]
            pub fn new(token: String) -> Self {
                Self(token)
            }

            #[must_use]
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(redacted)"))
            }
        }
    };
}

secret_string!(AccessToken);
secret_string!(RefreshToken);

/// What a valid access token vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessGrant {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The token's own id (`jti`), by which it can be revoked.
    pub token_id: Uuid,
    pub expires_at: Timestamp,
}

#[derive(Debug)]
pub struct IssuedAccessToken {
    pub token: AccessToken,
    pub grant: AccessGrant,
}

/// Why an access token was not accepted. Deliberately coarse: clients learn only that it was
/// not, the log learns why.
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {reason}")]
pub struct InvalidToken {
    pub reason: String,
}

pub trait TokenIssuer: Send + Sync + 'static {
    /// Signing is cheap CPU work, so this is a plain function.
    ///
    /// # Errors
    /// Only for unexpected failures such as an unusable key.
    fn issue_access_token(
        &self,
        user: &User,
        session: SessionId,
        now: Timestamp,
    ) -> anyhow::Result<IssuedAccessToken>;

    /// Checks signature, algorithm, issuer, audience and lifetime.
    ///
    /// # Errors
    /// [`InvalidToken`] for anything but a current token this service signed.
    fn verify_access_token(&self, token: &str) -> Result<AccessGrant, InvalidToken>;

    fn access_token_ttl(&self) -> Duration;
}

/// A refresh token's stored form: a hash, so a copy of the database cannot be replayed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenFingerprint(pub Vec<u8>);

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenFingerprint(..)")
    }
}

pub trait RefreshTokens: Send + Sync + 'static {
    /// The first refresh token of a session. Derived from the session id with a server-side
    /// key: unguessable without the key, and the same every time, so that a replayed
    /// registration can answer with the token it first gave.
    fn for_session(&self, session: SessionId) -> RefreshToken;

    /// The token that replaces `token` on rotation. Derived with a server-side key, so the same
    /// token always has the same successor (a concurrent duplicate refresh gets the same answer)
    /// and nobody without the key can compute it.
    fn successor_of(&self, token: &RefreshToken) -> RefreshToken;

    fn fingerprint(&self, token: &RefreshToken) -> TokenFingerprint;

    /// A keyed hash of a request's fields, to tell a retry from a different request without
    /// storing the fields (a password among them) in a form that could be reversed.
    fn request_fingerprint(&self, fields: &[&str]) -> TokenFingerprint;
}
