//! Inventory: how many units of each product are available, reserved for
//! orders under way, and sold. The one source of truth for stock: a product's
//! `stock` at creation becomes its first available units here.
//!
//! Stock is the hottest data of a shop: many orders reserve the same product
//! at once. Its moves are therefore conditional updates of counters
//! ([`StockLedger`]), each refused rather than taken below zero, instead of
//! whole aggregates saved under optimistic versions that would make
//! concurrent orders of one product conflict.

use async_trait::async_trait;
use serde::Serialize;
use strata_domain::{DomainError, RepositoryError, ValidationFailure};

use crate::catalog::ProductId;

/// How many units one order line asks for: 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    /// The most units one line may ask for.
    pub const MAX: u32 = 1_000;

    /// A quantity of `units`.
    ///
    /// # Errors
    /// When `units` is not between 1 and [`Quantity::MAX`].
    pub fn new(units: i64) -> Result<Self, ValidationFailure> {
        match u32::try_from(units) {
            Ok(units) if (1..=Self::MAX).contains(&units) => Ok(Self(units)),
            _ => Err(ValidationFailure::single(
                "",
                "range",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    /// The number of units.
    #[must_use]
    pub const fn units(self) -> u32 {
        self.0
    }
}

/// Units of one product to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StockLine {
    /// The product.
    pub product: ProductId,
    /// How many units.
    pub quantity: Quantity,
}

/// Where a product's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StockLevel {
    /// Free to reserve.
    pub available: u64,
    /// Held for orders under way.
    pub reserved: u64,
    /// Gone with confirmed orders.
    pub sold: u64,
}

impl StockLevel {
    /// Every unit the product ever had.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.available + self.reserved + self.sold
    }
}

/// The code of a reservation refused for lack of stock.
pub const OUT_OF_STOCK: &str = "out_of_stock";

/// A reservation refused because `product` has fewer units available.
#[must_use]
pub fn out_of_stock(product: ProductId) -> DomainError {
    DomainError::RuleViolated {
        code: OUT_OF_STOCK,
        message: format!("product {product} does not have enough units available"),
    }
}

/// The inventory's port: stock counters moved by conditional updates inside
/// the caller's unit of work, so a move and whatever goes with it (a TCC
/// barrier row) commit together.
#[async_trait]
pub trait StockLedger: Send + Sync {
    /// Gives `product` its first `units`; a product that has stock already
    /// keeps it (answers `false`).
    async fn open(&self, product: ProductId, units: u32) -> Result<bool, RepositoryError>;

    /// Moves `line`'s units from available to reserved; `false` when fewer
    /// are available (nothing moved).
    async fn reserve(&self, line: StockLine) -> Result<bool, RepositoryError>;

    /// Moves `line`'s units from reserved to sold; `false` when fewer are
    /// reserved.
    async fn deduct(&self, line: StockLine) -> Result<bool, RepositoryError>;

    /// Moves `line`'s units from reserved back to available; `false` when
    /// fewer are reserved.
    async fn release(&self, line: StockLine) -> Result<bool, RepositoryError>;

    /// Where `product`'s units are, if it has stock.
    async fn level(&self, product: ProductId) -> Result<Option<StockLevel>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`StockLedger`] for application tests.
    pub StockLedger {}

    #[async_trait]
    impl StockLedger for StockLedger {
        async fn open(&self, product: ProductId, units: u32) -> Result<bool, RepositoryError>;
        async fn reserve(&self, line: StockLine) -> Result<bool, RepositoryError>;
        async fn deduct(&self, line: StockLine) -> Result<bool, RepositoryError>;
        async fn release(&self, line: StockLine) -> Result<bool, RepositoryError>;
        async fn level(&self, product: ProductId) -> Result<Option<StockLevel>, RepositoryError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_is_one_to_a_thousand_units() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-1).is_err());
        assert_eq!(Quantity::new(1).ok().map(Quantity::units), Some(1));
        assert_eq!(Quantity::new(1_000).ok().map(Quantity::units), Some(1_000));
        assert!(Quantity::new(1_001).is_err());
        assert!(Quantity::new(i64::MAX).is_err());
    }
}
