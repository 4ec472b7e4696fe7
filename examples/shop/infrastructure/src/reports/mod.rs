//! The sales report's tables.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use shop_domain::catalog::{Currency, Money, ProductId};
use shop_domain::reports::{CatalogDay, Day, PriceChange, ProductSales, SalesReportStore};
use strata_domain::{Id, RepositoryError};
use strata_infrastructure::{Database, insert_absent, storage_error};

use crate::migration::m20261202_000001_create_sales_report::CatalogDays;
use crate::migration::m20261203_000002_create_product_sales::ProductSales as Sales;

/// The [`SalesReportStore`] on sea-orm: one row a day, upserted in the unit of
/// work of the event it counts.
#[derive(Debug, Clone)]
pub struct SeaOrmSalesReportStore {
    database: Database,
}

impl SeaOrmSalesReportStore {
    /// The store in `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[derive(Debug, FromQueryResult)]
struct DayRow {
    day: i32,
    products_added: i64,
    price_changes: i64,
    last_changed_product: Option<uuid::Uuid>,
    last_price_minor: Option<i64>,
    last_currency: Option<String>,
    last_changed_at: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct SalesRow {
    day: i32,
    product: uuid::Uuid,
    currency: String,
    units: i64,
    revenue_minor: i64,
}

#[async_trait]
impl SalesReportStore for SeaOrmSalesReportStore {
    async fn sold(
        &self,
        day: Day,
        product: ProductId,
        units: u32,
        revenue: Money,
    ) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        let upsert = Query::insert()
            .into_table(Sales::Table)
            .columns([
                Sales::Day,
                Sales::Product,
                Sales::Currency,
                Sales::Units,
                Sales::RevenueMinor,
            ])
            .values_panic([
                day.days_since_epoch().into(),
                product.as_uuid().into(),
                revenue.currency().as_str().into(),
                i64::from(units).into(),
                revenue.amount_minor().into(),
            ])
            .on_conflict(
                OnConflict::columns([Sales::Day, Sales::Product, Sales::Currency])
                    .value(
                        Sales::Units,
                        Expr::col((Sales::Table, Sales::Units)).add(i64::from(units)),
                    )
                    .value(
                        Sales::RevenueMinor,
                        Expr::col((Sales::Table, Sales::RevenueMinor)).add(revenue.amount_minor()),
                    )
                    .to_owned(),
            )
            .to_owned();
        session
            .execute_raw(StatementBuilder::build(&upsert, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    async fn sales(&self, from: Day, to: Day) -> Result<Vec<ProductSales>, RepositoryError> {
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let select = Query::select()
            .columns([
                Sales::Day,
                Sales::Product,
                Sales::Currency,
                Sales::Units,
                Sales::RevenueMinor,
            ])
            .from(Sales::Table)
            .and_where(Expr::col(Sales::Day).gte(from.days_since_epoch()))
            .and_where(Expr::col(Sales::Day).lte(to.days_since_epoch()))
            .order_by(Sales::Day, Order::Asc)
            .order_by(Sales::Product, Order::Asc)
            .order_by(Sales::Currency, Order::Asc)
            .to_owned();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.iter()
            .map(|row| {
                let row = SalesRow::from_query_result(row, "").map_err(storage_error)?;
                Ok(ProductSales {
                    day: Day::from_days_since_epoch(row.day),
                    product: Id::from_uuid(row.product),
                    units: u64::try_from(row.units).unwrap_or_default(),
                    revenue_minor: row.revenue_minor,
                    currency: Currency::parse(&row.currency).map_err(RepositoryError::storage)?,
                })
            })
            .collect()
    }

    async fn product_added(&self, day: Day) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        let upsert = Query::insert()
            .into_table(CatalogDays::Table)
            .columns([CatalogDays::Day, CatalogDays::ProductsAdded])
            .values_panic([day.days_since_epoch().into(), 1_i64.into()])
            .on_conflict(
                OnConflict::column(CatalogDays::Day)
                    .value(
                        CatalogDays::ProductsAdded,
                        Expr::col((CatalogDays::Table, CatalogDays::ProductsAdded)).add(1),
                    )
                    .to_owned(),
            )
            .to_owned();
        session
            .execute_raw(StatementBuilder::build(&upsert, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    async fn price_changed(&self, day: Day, change: PriceChange) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        let seed = Query::insert()
            .into_table(CatalogDays::Table)
            .columns([CatalogDays::Day])
            .values_panic([day.days_since_epoch().into()])
            .to_owned();
        insert_absent(&session, seed, [CatalogDays::Day]).await?;
        let count = Query::update()
            .table(CatalogDays::Table)
            .value(
                CatalogDays::PriceChanges,
                Expr::col(CatalogDays::PriceChanges).add(1),
            )
            .and_where(Expr::col(CatalogDays::Day).eq(day.days_since_epoch()))
            .to_owned();
        session
            .execute_raw(StatementBuilder::build(&count, &backend))
            .await
            .map_err(storage_error)?;
        let latest = Query::update()
            .table(CatalogDays::Table)
            .value(CatalogDays::LastChangedProduct, change.product.as_uuid())
            .value(CatalogDays::LastPriceMinor, change.price.amount_minor())
            .value(CatalogDays::LastCurrency, change.price.currency().as_str())
            .value(CatalogDays::LastChangedAt, change.at_ms)
            .and_where(Expr::col(CatalogDays::Day).eq(day.days_since_epoch()))
            .and_where(
                Expr::col(CatalogDays::LastChangedAt)
                    .is_null()
                    .or(Expr::col(CatalogDays::LastChangedAt).lte(change.at_ms)),
            )
            .to_owned();
        session
            .execute_raw(StatementBuilder::build(&latest, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    async fn catalog_days(&self, from: Day, to: Day) -> Result<Vec<CatalogDay>, RepositoryError> {
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let select = Query::select()
            .columns([
                CatalogDays::Day,
                CatalogDays::ProductsAdded,
                CatalogDays::PriceChanges,
                CatalogDays::LastChangedProduct,
                CatalogDays::LastPriceMinor,
                CatalogDays::LastCurrency,
                CatalogDays::LastChangedAt,
            ])
            .from(CatalogDays::Table)
            .and_where(Expr::col(CatalogDays::Day).gte(from.days_since_epoch()))
            .and_where(Expr::col(CatalogDays::Day).lte(to.days_since_epoch()))
            .order_by(CatalogDays::Day, Order::Asc)
            .to_owned();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.iter()
            .map(|row| {
                let row = DayRow::from_query_result(row, "").map_err(storage_error)?;
                let last_price_change = match (
                    row.last_changed_product,
                    row.last_price_minor,
                    row.last_currency,
                    row.last_changed_at,
                ) {
                    (Some(product), Some(minor), Some(currency), Some(at_ms)) => {
                        Some(PriceChange {
                            product: Id::from_uuid(product),
                            price: Money::new(minor, &currency)
                                .map_err(RepositoryError::storage)?,
                            at_ms,
                        })
                    }
                    _ => None,
                };
                Ok(CatalogDay {
                    day: Day::from_days_since_epoch(row.day),
                    products_added: u64::try_from(row.products_added).unwrap_or_default(),
                    price_changes: u64::try_from(row.price_changes).unwrap_or_default(),
                    last_price_change,
                })
            })
            .collect()
    }
}
