use std::fmt;

use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateRange;

/// An ISO 4217 currency code: three upper-case ASCII letters, such as `EUR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// What a currency code looks like as a client sends it.
    pub const PATTERN: &str = "^[A-Z]{3}$";

    /// Parses a currency code; lower case is accepted and normalised.
    ///
    /// # Errors
    /// When the text is not three ASCII letters.
    pub fn parse(raw: &str) -> Result<Self, ValidationFailure> {
        let code = raw.trim().to_ascii_uppercase();
        match <[u8; 3]>::try_from(code.as_bytes()) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Self(bytes)),
            _ => Err(ValidationFailure::single(
                "",
                "currency",
                "must be a three-letter ISO 4217 code such as EUR",
            )),
        }
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail; the fallback keeps
        // the method total without a panic path.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An amount of money in a currency's minor unit (cents for EUR), never negative.
///
/// Integer minor units keep arithmetic exact; there is no floating point anywhere
/// near a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// The largest amount accepted, in minor units (one billion in major units).
    pub const MAX_MINOR: i64 = 100_000_000_000;

    /// An amount of `amount_minor` minor units of `currency`.
    ///
    /// # Errors
    /// Names each bad part: `amount_minor` out of range, `currency` not a code.
    pub fn new(amount_minor: i64, currency: &str) -> Result<Self, ValidationFailure> {
        let mut failure = ValidationFailure::default();
        if !amount_minor.validate_range(Some(0), Some(Self::MAX_MINOR), None, None) {
            failure.absorb(
                "amount_minor",
                ValidationFailure::single(
                    "",
                    "range",
                    format!("must be between 0 and {}", Self::MAX_MINOR),
                ),
            );
        }
        let currency = Currency::parse(currency);
        if let Err(error) = &currency {
            failure.absorb("currency", error.clone());
        }
        match (failure.into_result(), currency) {
            (Ok(()), Ok(currency)) => Ok(Self {
                amount_minor,
                currency,
            }),
            (Err(failure), _) => Err(failure),
            (Ok(()), Err(error)) => Err(error),
        }
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.amount_minor / 100,
            self.amount_minor % 100,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_code_the_document_allows_is_accepted(
            raw in crate::text::tests::matching(Currency::PATTERN, 3, 3)
        ) {
            prop_assert!(Currency::parse(&raw).is_ok());
        }
    }

    fn fields(failure: &ValidationFailure) -> Vec<&str> {
        failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect()
    }

    #[test]
    fn formats_minor_units_as_a_decimal_amount() {
        let price = Money::new(1299, "eur").expect("valid");
        assert_eq!(price.to_string(), "12.99 EUR");
        assert_eq!(price.currency().as_str(), "EUR");
    }

    #[test]
    fn names_every_bad_part() {
        let failure = Money::new(-1, "euro").expect_err("both parts are bad");
        assert_eq!(fields(&failure), ["amount_minor", "currency"]);
    }

    proptest! {
        #[test]
        fn accepts_every_amount_in_range(amount in 0..=Money::MAX_MINOR, code in "[A-Za-z]{3}") {
            let money = Money::new(amount, &code).expect("in range");
            let currency = money.currency();
            prop_assert_eq!(money.amount_minor(), amount);
            prop_assert_eq!(currency.as_str(), code.to_ascii_uppercase());
        }

        #[test]
        fn rejects_negative_amounts(amount in i64::MIN..0) {
            let failure = Money::new(amount, "EUR").expect_err("negative");
            prop_assert_eq!(fields(&failure), ["amount_minor"]);
        }

        #[test]
        fn rejects_amounts_over_the_maximum(amount in (Money::MAX_MINOR + 1)..=i64::MAX) {
            prop_assert!(Money::new(amount, "EUR").is_err());
        }

        #[test]
        fn rejects_codes_that_are_not_three_letters(code in "\\PC*".prop_filter("not three letters", |c| {
            let c = c.trim();
            !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        })) {
            prop_assert!(Currency::parse(&code).is_err());
        }
    }
}
