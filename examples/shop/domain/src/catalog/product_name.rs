use std::fmt;

use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateLength;

/// A product's display name: 1 to 120 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ProductName(String);

impl ProductName {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: u64 = 120;
    /// What a name looks like: printable, not only white space.
    pub const PATTERN: &str = strata_domain::text::PRINTABLE;

    /// Parses a name, trimming surrounding white space.
    ///
    /// # Errors
    /// When the trimmed name is empty, too long or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let name = raw.trim();
        if !name.validate_length(Some(1), Some(Self::MAX_CHARS), None) {
            return Err(ValidationFailure::single(
                "",
                "length",
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if !strata_domain::text::is_printable(name) {
            return Err(ValidationFailure::single(
                "",
                "characters",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_name_the_document_allows_is_accepted(
            raw in crate::text::tests::matching(super::ProductName::PATTERN, 1, 120)
        ) {
            prop_assert!(super::ProductName::parse(&raw).is_ok());
        }
    }

    use super::*;

    #[test]
    fn trims_surrounding_space() {
        assert_eq!(
            ProductName::parse("  Tea pot ").expect("valid").as_str(),
            "Tea pot"
        );
    }

    #[test]
    fn rejects_blank_and_control_characters() {
        assert_eq!(
            ProductName::parse("   ").expect_err("blank").violations()[0].code,
            "length"
        );
        assert_eq!(
            ProductName::parse("tea\u{0}pot")
                .expect_err("control")
                .violations()[0]
                .code,
            "characters"
        );
    }

    proptest! {
        #[test]
        fn accepts_any_printable_name_up_to_the_limit(name in "[\\p{L}\\p{N}][\\p{L}\\p{N} .,-]{0,118}[\\p{L}\\p{N}]") {
            let parsed = ProductName::parse(&name).expect("printable and short enough");
            prop_assert_eq!(parsed.as_str(), name.as_str());
        }

        #[test]
        fn rejects_names_over_the_limit(name in "[a-z]{121,300}") {
            prop_assert!(ProductName::parse(&name).is_err());
        }
    }
}
