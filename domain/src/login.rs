//! How a user names their account at sign-in.
use crate::{Email, Username};

/// The `emailOrUsername` of a sign-in, normalised like the identity it refers to, so that any
/// case or padding of it finds the one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginIdentifier {
    /// Trimmed, NFKC, lower-cased email: [`crate::Email::normalized`].
    Email(String),
    /// Lower-cased, NFKC-normalised username.
    Username(String),
    /// Cannot name any account; sign-in fails, after the same work as a wrong password.
    Unmatchable,
}

impl LoginIdentifier {
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.contains('@') {
            // Every stored email passed `Email::parse`; what fails it names no account, and
            // never reaches the database (a NUL byte would make PostgreSQL fail the query).
            return Email::parse(trimmed)
                .map_or(Self::Unmatchable, |email| Self::Email(email.normalized()));
        }
        Username::parse(trimmed).map_or(Self::Unmatchable, |name| Self::Username(name.normalized()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_like_the_identity() {
        assert_eq!(
            LoginIdentifier::parse("  Alice@Example.COM "),
            LoginIdentifier::Email("alice@example.com".into())
        );
        assert_eq!(
            LoginIdentifier::parse(" ＡＬＩＣＥ "),
            LoginIdentifier::Username("alice".into())
        );
        assert_eq!(
            LoginIdentifier::parse("no way"),
            LoginIdentifier::Unmatchable
        );
        assert_eq!(
            LoginIdentifier::parse(&format!("{}@x.io", "a".repeat(300))),
            LoginIdentifier::Unmatchable
        );
    }
}
