use serde::Serialize;
use strata_domain::ValidationFailure;
use strata_domain::validator::ValidateRange;

/// How many units of a product are on hand: 0 to one million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Stock(u32);

impl Stock {
    /// The most units one product may hold.
    pub const MAX: u32 = 1_000_000;

    /// A stock level of `units`.
    ///
    /// # Errors
    /// When `units` is negative or above [`Stock::MAX`].
    pub fn new(units: i64) -> Result<Self, ValidationFailure> {
        if units.validate_range(Some(0), Some(i64::from(Self::MAX)), None, None) {
            u32::try_from(units).map(Self).map_err(|_| out_of_range())
        } else {
            Err(out_of_range())
        }
    }

    /// The number of units.
    #[must_use]
    pub const fn units(self) -> u32 {
        self.0
    }
}

fn out_of_range() -> ValidationFailure {
    ValidationFailure::single("", "range", format!("must be between 0 and {}", Stock::MAX))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn accepts_exactly_the_range(units in any::<i64>()) {
            let in_range = (0..=i64::from(Stock::MAX)).contains(&units);
            prop_assert_eq!(Stock::new(units).is_ok(), in_range);
        }
    }
}
