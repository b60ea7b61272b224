//! The password policy, and the two forms a password takes: the secret and its hash.
use std::fmt;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 256;

/// A password that meets the policy. It has no `Debug` or `Display` output of its content, so
/// it cannot reach a log line by accident; [`Password::expose_secret`] is the one way in.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters long")]
    TooLong,
}

impl Password {
    /// Checks the length policy: 8 to 256 characters. Passwords are not trimmed: spaces
    /// are characters the user chose.
    ///
    /// # Errors
    /// [`PasswordError`] when the password is too short or too long.
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        // Counting stops early so a huge input costs no more than a long one.
        match raw.chars().take(MAX_CHARS + 1).count() {
            n if n < MIN_CHARS => Err(PasswordError::TooShort),
            n if n > MAX_CHARS => Err(PasswordError::TooLong),
            _ => Ok(Self(raw.to_owned())),
        }
    }

    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(redacted)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    #[must_use]
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }
}

impl AsRef<str> for PasswordHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_policy_counts_characters_not_bytes() {
        assert!(Password::parse("12345678").is_ok());
        assert!(
            Password::parse("ééééééé").is_err(),
            "7 characters, 14 bytes"
        );
        assert!(
            Password::parse(&"é".repeat(256)).is_ok(),
            "256 characters, 512 bytes"
        );
        assert_eq!(
            Password::parse("1234567").err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            Password::parse(&"x".repeat(257)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let password = Password::parse("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        let hash = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
