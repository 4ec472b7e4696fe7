use std::fmt;

use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateLength;

/// A stock-keeping unit: 3 to 32 upper-case letters, digits and inner dashes,
/// unique across the catalog. Lower case is accepted and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    /// The fewest characters a SKU has.
    pub const MIN_CHARS: u64 = 3;
    /// The most characters a SKU has.
    pub const MAX_CHARS: u64 = 32;
    /// What a SKU looks like as a client sends it: upper-case letters, digits
    /// and inner dashes.
    pub const PATTERN: &str = "^[A-Z0-9][A-Z0-9-]*[A-Z0-9]$";

    /// Parses a SKU, trimming space and upper-casing letters.
    ///
    /// # Errors
    /// When the SKU has the wrong length or characters, or starts or ends with a dash.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let sku = raw.trim().to_ascii_uppercase();
        if !sku.validate_length(Some(Self::MIN_CHARS), Some(Self::MAX_CHARS), None) {
            return Err(ValidationFailure::single(
                "",
                "length",
                "must be 3 to 32 characters",
            ));
        }
        let allowed = sku
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if !allowed || sku.starts_with('-') || sku.ends_with('-') {
            return Err(ValidationFailure::single(
                "",
                "format",
                "must hold only letters, digits and inner dashes",
            ));
        }
        Ok(Self(sku))
    }

    /// The SKU as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(Sku::parse(" tea-01 ").expect("valid").as_str(), "TEA-01");
    }

    #[test]
    fn rejects_edge_dashes_and_symbols() {
        for bad in ["-TEA", "TEA-", "TE A", "TEA_1", "TÉA", "AB"] {
            assert!(Sku::parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    proptest! {
        #[test]
        fn every_sku_the_document_allows_is_accepted(
            raw in crate::text::tests::matching(Sku::PATTERN, 3, 32)
        ) {
            prop_assert!(Sku::parse(&raw).is_ok());
        }

        #[test]
        fn accepts_well_formed_skus(sku in "[A-Z0-9][A-Z0-9-]{1,30}[A-Z0-9]") {
            let parsed = Sku::parse(&sku).expect("well formed");
            prop_assert_eq!(parsed.as_str(), sku.as_str());
        }

        #[test]
        fn parsing_is_idempotent(raw in "\\PC{0,40}") {
            if let Ok(sku) = Sku::parse(&raw) {
                prop_assert_eq!(Sku::parse(sku.as_str()).expect("reparses"), sku);
            }
        }
    }
}
