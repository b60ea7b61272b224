//! An email address that has been checked once, at the edge, and is valid from then on.
use email_address::{EmailAddress, Options};
use std::fmt;

/// The longest address SMTP can carry (RFC 5321 path limit minus the angle brackets).
const MAX_LEN: usize = 254;

/// A syntactically valid email address, trimmed, stored as entered.
///
/// Two addresses that differ only in case are the same account; [`Email::normalized`] is the
/// form uniqueness is decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is required")]
    Empty,
    #[error("email must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("email is not a valid address: {0}")]
    Invalid(String),
}

impl Email {
    /// Trims surrounding white space and checks the address with the `email_address` parser:
    /// a plain `local@domain.tld`, no display name, no IP-literal domain.
    ///
    /// # Errors
    /// [`EmailError`] says what is wrong with the address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        EmailAddress::parse_with_options(trimmed, options)
            .map_err(|error| EmailError::Invalid(describe(&error)))?;
        Ok(Self(trimmed.to_owned()))
    }

    /// The lower-cased form on which two addresses are the same account.
    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// The parser's message, in the house style: lower case, no trailing period.
fn describe(error: &email_address::Error) -> String {
    error.to_string().trim_end_matches('.').to_lowercase()
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_kept_as_entered_without_padding() {
        let email = Email::parse("  Alice@Example.com ").unwrap();
        assert_eq!(email.as_ref(), "Alice@Example.com");
        assert_eq!(email.normalized(), "alice@example.com");
    }

    #[test]
    fn invalid_addresses_are_rejected_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("   ", "only spaces"),
            ("alice", "no @"),
            ("alice@", "no domain"),
            ("@example.com", "no local part"),
            ("alice@localhost", "no top-level domain"),
            ("Alice <alice@example.com>", "display name"),
            ("alice@[127.0.0.1]", "IP literal"),
            ("al ice@example.com", "space inside"),
        ];
        for (raw, why) in cases {
            assert!(
                Email::parse(raw).is_err(),
                "{raw:?} must be rejected: {why}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }
}
