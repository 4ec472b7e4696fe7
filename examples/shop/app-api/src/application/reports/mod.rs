//! The sales report: kept up to date by the catalog's events (through the
//! `sales_report` consumer) and read by administrators.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shop_domain::catalog::{Money, ProductId};
use shop_domain::reports::{Day, PriceChange, SalesReportStore};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, DispatcherBuilder, InputRules, Query, QueryHandler,
    UseCaseContext,
};
use strata_domain::ValidationFailure;
use utoipa::ToSchema;

use crate::application::permissions::{REPORTS_READ, REPORTS_WRITE};

/// What a catalog event changed, as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogChange {
    /// A product joined the catalog.
    ProductAdded,
    /// A product's price changed.
    PriceChanged {
        /// The product.
        product: ProductId,
        /// Its new price.
        price: Money,
    },
}

/// Counts one catalog event in the report.
#[derive(Debug, Clone)]
pub struct RecordCatalogEvent {
    /// What changed.
    pub change: CatalogChange,
    /// When the event was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl InputRules for RecordCatalogEvent {
    fn check_rules(&self) -> Result<(), ValidationFailure> {
        Ok(())
    }
}

impl Command for RecordCatalogEvent {
    type Output = ();
    const NAME: &'static str = "reports.record_catalog_event";
    const ACCESS: Access = Access::Permission(REPORTS_WRITE);
}

/// One product of a confirmed order, as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldLine {
    /// The product.
    pub product: ProductId,
    /// Units sold.
    pub units: u32,
    /// What they cost together.
    pub revenue: Money,
}

/// Counts a confirmed order's products in the report.
#[derive(Debug, Clone)]
pub struct RecordSale {
    /// What was sold.
    pub lines: Vec<SoldLine>,
    /// When the order was confirmed, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl InputRules for RecordSale {
    fn check_rules(&self) -> Result<(), ValidationFailure> {
        Ok(())
    }
}

impl Command for RecordSale {
    type Output = ();
    const NAME: &'static str = "reports.record_sale";
    const ACCESS: Access = Access::Permission(REPORTS_WRITE);
}

/// The sales report from `from` to `to`, both included.
#[derive(Debug, Clone, Copy)]
pub struct ReadSalesReport {
    /// The first day.
    pub from: Day,
    /// The last day.
    pub to: Day,
}

impl InputRules for ReadSalesReport {
    /// Any two days: a span that ends before it begins has no days, and a
    /// long one answers only the days with activity.
    fn check_rules(&self) -> Result<(), ValidationFailure> {
        Ok(())
    }
}

impl Query for ReadSalesReport {
    type Output = SalesReportView;
    const NAME: &'static str = "reports.read_sales";
    const ACCESS: Access = Access::Permission(REPORTS_READ);
}

/// A price, as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportPrice {
    /// In minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// The last price change of a day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PriceChangeView {
    /// The product.
    pub product_id: uuid::Uuid,
    /// Its new price.
    pub price: ReportPrice,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// What the catalog did on one day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogDayView {
    /// The day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// Products added.
    pub products_added: u64,
    /// Price changes made.
    pub price_changes: u64,
    /// The day's last price change.
    pub last_price_change: Option<PriceChangeView>,
}

/// What one product sold on one day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductSalesView {
    /// The day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// The product.
    pub product_id: uuid::Uuid,
    /// Units sold.
    pub units: u64,
    /// Revenue.
    pub revenue: ReportPrice,
}

/// The sales report of a span of days: the days on which the catalog
/// changed, and what each product sold each day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SalesReportView {
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, `YYYY-MM-DD`.
    pub to: String,
    /// The days with catalog activity, in order.
    pub days: Vec<CatalogDayView>,
    /// Units and revenue per product per day, by day, then product.
    pub sales: Vec<ProductSalesView>,
}

/// `YYYY-MM-DD` of `day`.
#[must_use]
pub fn day_text(day: Day) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(day.days_since_epoch() + UNIX_EPOCH_FROM_CE)
        .map_or_else(
            || day.days_since_epoch().to_string(),
            |date| date.format("%Y-%m-%d").to_string(),
        )
}

/// The day `text` (`YYYY-MM-DD`) names, if it names one.
#[must_use]
pub fn parse_day(text: &str) -> Option<Day> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(Day::from_days_since_epoch(
        date.num_days_from_ce() - UNIX_EPOCH_FROM_CE,
    ))
}

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

use chrono::Datelike as _;

/// The report's use cases.
pub struct Reports {
    store: Arc<dyn SalesReportStore>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    /// The use cases over `store`.
    #[must_use]
    pub fn new(store: Arc<dyn SalesReportStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl CommandHandler<RecordCatalogEvent> for Reports {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: RecordCatalogEvent,
    ) -> Result<(), AppError> {
        let day = Day::of_unix_ms(command.recorded_at_ms);
        match command.change {
            CatalogChange::ProductAdded => self.store.product_added(day).await?,
            CatalogChange::PriceChanged { product, price } => {
                self.store
                    .price_changed(
                        day,
                        PriceChange {
                            product,
                            price,
                            at_ms: command.recorded_at_ms,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl QueryHandler<ReadSalesReport> for Reports {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ReadSalesReport,
    ) -> Result<SalesReportView, AppError> {
        let days = self.store.catalog_days(query.from, query.to).await?;
        let sales = self.store.sales(query.from, query.to).await?;
        Ok(SalesReportView {
            from: day_text(query.from),
            to: day_text(query.to),
            days: days
                .into_iter()
                .map(|day| CatalogDayView {
                    day: day_text(day.day),
                    products_added: day.products_added,
                    price_changes: day.price_changes,
                    last_price_change: day.last_price_change.map(|change| PriceChangeView {
                        product_id: change.product.as_uuid(),
                        price: ReportPrice {
                            amount_minor: change.price.amount_minor(),
                            currency: change.price.currency().as_str().to_owned(),
                        },
                        at_ms: change.at_ms,
                    }),
                })
                .collect(),
            sales: sales
                .into_iter()
                .map(|sold| ProductSalesView {
                    day: day_text(sold.day),
                    product_id: sold.product.as_uuid(),
                    units: sold.units,
                    revenue: ReportPrice {
                        amount_minor: sold.revenue_minor,
                        currency: sold.currency.as_str().to_owned(),
                    },
                })
                .collect(),
        })
    }
}

#[async_trait]
impl CommandHandler<RecordSale> for Reports {
    async fn handle(&self, _cx: &UseCaseContext, command: RecordSale) -> Result<(), AppError> {
        let day = Day::of_unix_ms(command.recorded_at_ms);
        for line in command.lines {
            self.store
                .sold(day, line.product, line.units, line.revenue)
                .await?;
        }
        Ok(())
    }
}

/// Registers the report's use cases with `reports` as their handler.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, reports: Arc<Reports>) -> DispatcherBuilder {
    dispatcher
        .command::<RecordCatalogEvent>(reports.clone())
        .command::<RecordSale>(reports.clone())
        .query::<ReadSalesReport>(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_and_print_as_calendar_dates() {
        let day = parse_day("2026-12-01").expect("a date");
        assert_eq!(day.days_since_epoch(), 20_788);
        assert_eq!(day_text(day), "2026-12-01");
        assert_eq!(parse_day("1970-01-01").map(Day::days_since_epoch), Some(0));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "yesterday",
            "",
            "2026-12-01T00:00",
        ] {
            assert!(parse_day(bad).is_none(), "{bad}");
        }
    }
}
