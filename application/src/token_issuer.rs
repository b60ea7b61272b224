//! Port: issuing the access token a client uses after registering.
use domain::User;
use std::fmt;

/// A signed access token. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(redacted)")
    }
}

pub trait TokenIssuer: Send + Sync + 'static {
    /// Signing is cheap CPU work, so this is a plain function.
    ///
    /// # Errors
    /// Only for unexpected failures such as an unusable key.
    fn issue_access_token(&self, user: &User) -> anyhow::Result<AccessToken>;
}
