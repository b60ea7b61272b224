//! The password policy, and the two forms a password takes: the secret and its hash.
use crate::{Email, Username};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 256;

/// A password in NFKC form, so that the same characters typed on another keyboard or input
/// method hash the same. It has no `Debug` or `Display` output of its content, so it cannot
/// reach a log line by accident; [`Password::expose_secret`] is the one way in.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters long")]
    TooLong,
    #[error("password must not contain control characters")]
    ControlCharacter,
    #[error("password must not be the same as the email or the username")]
    SameAsIdentity,
}

impl Password {
    /// Checks a new password against the policy: 8 to 256 characters after NFKC, no NUL or other
    /// control characters. Passwords are not trimmed: spaces are characters the user chose.
    ///
    /// # Errors
    /// [`PasswordError`] says which rule the password breaks.
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let password = Self::candidate(raw)?;
        if password.0.chars().any(char::is_control) {
            return Err(PasswordError::ControlCharacter);
        }
        if password.0.chars().count() < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        Ok(password)
    }

    /// A password offered at sign-in: normalised like a new one, but not held to the current
    /// policy, which may be stricter than when it was set. Over-long input is refused before it
    /// costs a hash.
    ///
    /// # Errors
    /// [`PasswordError::TooLong`].
    pub fn candidate(raw: &str) -> Result<Self, PasswordError> {
        // Counting stops early, so a megabyte costs no more than a long password.
        if raw.chars().take(MAX_CHARS + 1).count() > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let normalized: String = raw.nfkc().collect();
        if normalized.chars().count() > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(normalized))
    }

    /// A password equal to the account's own email or username is the first thing guessed.
    ///
    /// # Errors
    /// [`PasswordError::SameAsIdentity`].
    pub fn ensure_differs_from(
        &self,
        email: &Email,
        username: &Username,
    ) -> Result<(), PasswordError> {
        let lowered = self.0.to_lowercase();
        if lowered == email.normalized() || lowered == username.normalized() {
            return Err(PasswordError::SameAsIdentity);
        }
        Ok(())
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
    fn length_policy_counts_characters_after_nfkc() {
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
        assert_eq!(
            Password::parse(&"x".repeat(1 << 20)).err(),
            Some(PasswordError::TooLong),
            "1 MiB"
        );
        // U+FDFA is one character that NFKC expands to eighteen.
        assert_eq!(
            Password::parse(&"\u{FDFA}".repeat(20)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn equivalent_spellings_become_the_same_password() {
        let composed = Password::parse("caf\u{e9} au lait").unwrap();
        let decomposed = Password::parse("cafe\u{301} au lait").unwrap();
        assert_eq!(composed.expose_secret(), decomposed.expose_secret());
        let full_width = Password::parse("ｐａｓｓｗｏｒｄ１").unwrap();
        assert_eq!(full_width.expose_secret(), "password1");
    }

    #[test]
    fn control_characters_are_refused() {
        for raw in [
            "pass\u{0}word",
            "pass\nword1",
            "pass\u{7f}word",
            "\u{1b}[31mpassword",
        ] {
            assert_eq!(
                Password::parse(raw).err(),
                Some(PasswordError::ControlCharacter),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_password_equal_to_the_email_or_username_is_refused() {
        let email = Email::parse("alice@example.com").unwrap();
        let username = Username::parse("alice.smith").unwrap();
        let same = |raw: &str| {
            Password::parse(raw)
                .unwrap()
                .ensure_differs_from(&email, &username)
        };
        assert_eq!(
            same("ALICE@example.com"),
            Err(PasswordError::SameAsIdentity)
        );
        assert_eq!(same("Alice.Smith"), Err(PasswordError::SameAsIdentity));
        assert_eq!(same("correct horse"), Ok(()));
    }

    #[test]
    fn sign_in_candidates_are_normalised_but_not_held_to_the_policy() {
        assert!(Password::candidate("short").is_ok());
        assert_eq!(Password::candidate("ｐｗ").unwrap().expose_secret(), "pw");
        assert!(Password::candidate(&"x".repeat(257)).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let password = Password::parse("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        let hash = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
