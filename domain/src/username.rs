//! A username: the short public handle of an account.
use std::fmt;

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 32;

/// 3 to 32 ASCII letters, digits, `.`, `_` or `-`, trimmed, stored as entered.
///
/// Uniqueness is case-insensitive: [`Username::normalized`] is the form it is decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must be {MIN_LEN} to {MAX_LEN} characters long")]
    Length,
    #[error("username may contain only ASCII letters, digits, '.', '_' and '-'")]
    Characters,
}

impl Username {
    /// # Errors
    /// [`UsernameError`] when the trimmed name is too short, too long or has another character.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let trimmed = raw.trim();
        if !trimmed.chars().all(is_allowed) {
            return Err(UsernameError::Characters);
        }
        // All allowed characters are ASCII, so bytes and characters count the same here.
        if !(MIN_LEN..=MAX_LEN).contains(&trimmed.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The lower-cased form on which two usernames are the same account.
    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_trimmed() {
        assert_eq!(
            Username::parse(" Alice.B_c-9 ").unwrap().as_ref(),
            "Alice.B_c-9"
        );
        assert_eq!(Username::parse("abc").unwrap().normalized(), "abc");
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn invalid_names_are_rejected_with_a_reason() {
        let cases = [
            ("ab", UsernameError::Length, "too short"),
            ("   ab  ", UsernameError::Length, "too short once trimmed"),
            ("", UsernameError::Length, "empty"),
            (&"a".repeat(33), UsernameError::Length, "too long"),
            ("al ice", UsernameError::Characters, "inner space"),
            ("alice!", UsernameError::Characters, "punctuation"),
            ("ålice", UsernameError::Characters, "non-ASCII letter"),
            (
                "ａｌｉｃｅ",
                UsernameError::Characters,
                "full-width look-alike",
            ),
        ];
        for (raw, expected, why) in cases {
            assert_eq!(Username::parse(raw), Err(expected), "{raw:?}: {why}");
        }
    }
}
