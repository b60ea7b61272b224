//! An email address that has been checked once, at the edge, and is valid from then on.
use email_address::{EmailAddress, Options};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

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
    #[error("email must not contain spaces, control or invisible characters")]
    HiddenCharacter,
    #[error("email must end in a top-level domain of letters, like .com")]
    TopLevelDomain,
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
        // Characters that render as nothing (or reorder the text) would let two addresses
        // look identical and still be two accounts.
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
        {
            return Err(EmailError::HiddenCharacter);
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        EmailAddress::parse_with_options(trimmed, options)
            .map_err(|error| EmailError::Invalid(describe(&error)))?;
        let top_level = trimmed.rsplit('.').next().unwrap_or_default();
        let is_name = top_level.len() >= 2 && top_level.chars().all(char::is_alphabetic);
        if !is_name && !top_level.starts_with("xn--") {
            return Err(EmailError::TopLevelDomain);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The form on which two addresses are the same account: NFKC, then lower case. Computed
    /// here, not by the database, whose `lower()` depends on its locale.
    #[must_use]
    pub fn normalized(&self) -> String {
        normalize(&self.0)
    }
}

/// [`Email::normalized`] for text that is not (yet) known to be a valid address, such as the
/// identifier typed at sign-in.
#[must_use]
pub fn normalize(raw: &str) -> String {
    // `to_lowercase` writes a word-final capital sigma as ς and any other as σ, so that ΟΔΟΣ
    // and οδοσ would differ; case folding makes both σ.
    raw.trim()
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .replace('ς', "σ")
}

/// Format characters (Unicode category Cf) that occur in text: zero-width spaces and joiners,
/// direction marks and overrides, the byte-order mark, the soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
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
    fn look_alike_spellings_normalise_to_one_address() {
        let one = |raw: &str| Email::parse(raw).unwrap().normalized();
        assert_eq!(
            one("ＡＬＩＣＥ@example.com"),
            one("alice@example.com"),
            "full-width"
        );
        assert_eq!(
            one("a\u{301}lice@example.com"),
            one("\u{e1}lice@example.com"),
            "decomposed accent"
        );
        assert_eq!(
            one("ΣΑΣ@example.com"),
            one("σας@example.com"),
            "Greek final sigma"
        );
        assert_eq!(normalize("  Alice@Example.COM "), "alice@example.com");
    }

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
            ("a\u{200B}lice@example.com", "zero-width space"),
            ("alice\u{202E}@example.com", "right-to-left override"),
            ("\"a\tb\"@example.com", "tab in a quoted local part"),
            ("a@127.0.0.1", "an IP address without brackets"),
            ("a@example.c", "one-letter top-level domain"),
            ("a@example.123", "numeric top-level domain"),
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
