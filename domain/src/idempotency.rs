//! Idempotency keys: a client's name for one attempt, so that retrying it has no second effect.
use std::fmt;

const MAX_LEN: usize = 255;

/// 1 to 255 visible ASCII characters; a UUID is the usual choice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// # Errors
    /// [`IdempotencyKeyError`] for an empty, over-long or non-printable key.
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        let valid = (1..=MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        valid
            .then(|| Self(raw.to_owned()))
            .ok_or(IdempotencyKeyError)
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("0199fd4e-8a3b-7c1e-9d2f-3a4b5c6d7e8f").is_ok());
        for bad in ["", " ", "with space", "tab\there", "ключ", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
