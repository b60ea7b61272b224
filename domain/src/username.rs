//! A username: the short public handle of an account.
use std::fmt;
use unicode_normalization::UnicodeNormalization;

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 32;

/// 3 to 32 ASCII letters, digits, `.`, `_` or `-`, after trimming and NFKC normalisation.
///
/// NFKC folds compatibility look-alikes (full-width `ａｌｉｃｅ`, ligatures, ...) into their plain
/// form, so a look-alike of an existing name is either that name (and taken) or rejected: it can
/// never be a second account. Uniqueness is case-insensitive: see [`Username::normalized`].
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
    /// [`UsernameError`] when the normalised name is too short, too long or has another character.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Bound the work before normalising: a valid name is short.
        if raw.trim().chars().count() > MAX_LEN * 4 {
            return Err(UsernameError::Length);
        }
        let name: String = raw.trim().nfkc().collect();
        if !name.chars().all(is_allowed) {
            return Err(UsernameError::Characters);
        }
        // All allowed characters are ASCII, so bytes and characters count the same here.
        if !(MIN_LEN..=MAX_LEN).contains(&name.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(name))
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
    fn compatibility_look_alikes_fold_into_the_plain_name() {
        assert_eq!(
            Username::parse("ａｌｉｃｅ").unwrap().as_ref(),
            "alice",
            "full-width"
        );
        assert_eq!(Username::parse("ﬁnn").unwrap().as_ref(), "finn", "ligature");
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap().normalized(), "alice");
    }

    #[test]
    fn invalid_names_are_rejected_with_a_reason() {
        let cases = [
            ("ab", UsernameError::Length, "too short"),
            ("   ab  ", UsernameError::Length, "too short once trimmed"),
            ("", UsernameError::Length, "empty"),
            (&"a".repeat(33), UsernameError::Length, "too long"),
            (&"a".repeat(10_000), UsernameError::Length, "huge"),
            ("al ice", UsernameError::Characters, "inner space"),
            ("alice!", UsernameError::Characters, "punctuation"),
            ("ålice", UsernameError::Characters, "non-ASCII letter"),
            (
                "аlice",
                UsernameError::Characters,
                "Cyrillic a: a look-alike NFKC keeps apart",
            ),
            ("al\u{0}ice", UsernameError::Characters, "NUL"),
        ];
        for (raw, expected, why) in cases {
            assert_eq!(Username::parse(raw), Err(expected), "{raw:?}: {why}");
        }
    }
}
