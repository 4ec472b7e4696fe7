//! The sales report: a read model the catalog's and the orders' events feed,
//! day by day.

use async_trait::async_trait;
use strata_domain::RepositoryError;

use crate::catalog::{Currency, Money, ProductId};

/// A calendar day (UTC), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i32);

impl Day {
    const MS_PER_DAY: i64 = 24 * 60 * 60 * 1_000;

    /// The day the instant `unix_ms` (milliseconds since the Unix epoch) falls on.
    #[must_use]
    pub fn of_unix_ms(unix_ms: i64) -> Self {
        let days = unix_ms.div_euclid(Self::MS_PER_DAY);
        Self(i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX }))
    }

    /// The day `days` after 1970-01-01.
    #[must_use]
    pub fn from_days_since_epoch(days: i32) -> Self {
        Self(days)
    }

    /// Days since 1970-01-01.
    #[must_use]
    pub fn days_since_epoch(self) -> i32 {
        self.0
    }
}

/// A price change, as the report keeps the latest of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    /// The product.
    pub product: ProductId,
    /// Its new price.
    pub price: Money,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// What the catalog did on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogDay {
    /// The day.
    pub day: Day,
    /// Products added.
    pub products_added: u64,
    /// Price changes made.
    pub price_changes: u64,
    /// The day's last price change.
    pub last_price_change: Option<PriceChange>,
}

/// What one product sold on one day, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    /// The day.
    pub day: Day,
    /// The product.
    pub product: ProductId,
    /// Units sold.
    pub units: u64,
    /// Revenue, in minor units of `currency`.
    pub revenue_minor: i64,
    /// The currency.
    pub currency: Currency,
}

/// Where the report is kept. Each call is one event applied; the caller runs
/// it in the unit of work that records the event as applied, so none is
/// counted twice.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SalesReportStore: Send + Sync {
    /// Counts a product added on `day`.
    async fn product_added(&self, day: Day) -> Result<(), RepositoryError>;

    /// Counts a price change on `day`, and keeps it as the day's last when it
    /// is later than the one kept.
    async fn price_changed(&self, day: Day, change: PriceChange) -> Result<(), RepositoryError>;

    /// The days from `from` to `to` (both included) on which anything
    /// happened, in order.
    async fn catalog_days(&self, from: Day, to: Day) -> Result<Vec<CatalogDay>, RepositoryError>;

    /// Counts `units` of `product` sold on `day` for `revenue`.
    async fn sold(
        &self,
        day: Day,
        product: ProductId,
        units: u32,
        revenue: Money,
    ) -> Result<(), RepositoryError>;

    /// What each product sold from `from` to `to` (both included), by day,
    /// then product.
    async fn sales(&self, from: Day, to: Day) -> Result<Vec<ProductSales>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_falls_on_its_utc_day() {
        assert_eq!(Day::of_unix_ms(0).days_since_epoch(), 0);
        assert_eq!(Day::of_unix_ms(86_399_999).days_since_epoch(), 0);
        assert_eq!(Day::of_unix_ms(86_400_000).days_since_epoch(), 1);
        assert_eq!(Day::of_unix_ms(-1).days_since_epoch(), -1, "before 1970");
        // 2026-12-01T12:00:00Z
        assert_eq!(
            Day::of_unix_ms(1_796_126_400_000).days_since_epoch(),
            20_788
        );
    }
}
