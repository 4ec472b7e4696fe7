use std::fmt;

use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateEmail;

/// An email address, trimmed and lower-cased so one person has one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in characters.
    pub const MAX_CHARS: u64 = 254;
    /// What an address looks like as a client sends it: a local part of
    /// letters, digits and `._%+-`, an `@`, and a domain of dotted labels.
    /// Every address it matches is one [`Email::parse`] accepts.
    pub const PATTERN: &str = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

    /// Parses an address.
    ///
    /// # Errors
    /// When it is not a valid address of at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let email = raw.trim().to_lowercase();
        if email.chars().count() > Self::MAX_CHARS as usize || !email.validate_email() {
            return Err(ValidationFailure::single(
                "",
                "email",
                "must be a valid email address",
            ));
        }
        Ok(Self(email))
    }

    /// The address as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
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
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_address_the_document_allows_is_accepted(
            raw in crate::text::tests::matching(Email::PATTERN, 3, 254)
        ) {
            prop_assert!(Email::parse(&raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    proptest! {
        #[test]
        fn accepts_plain_addresses(local in "[a-z][a-z0-9.]{0,20}[a-z0-9]", domain in "[a-z]{1,20}\\.[a-z]{2,6}") {
            prop_assume!(!local.contains(".."));
            let address = format!("{local}@{domain}");
            let email = Email::parse(&address).expect("valid");
            prop_assert_eq!(email.as_str(), address.as_str());
        }
    }
}
