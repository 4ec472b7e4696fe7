//! The inventory's database: its stock counters, and its migrations (it keeps
//! a database of its own).

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, uuid};
use shop_domain::catalog::ProductId;
use shop_domain::inventory::{StockLedger, StockLevel, StockLine};
use strata_domain::RepositoryError;
use strata_infrastructure::{Database, storage_error};

/// The inventory's schema; Strata's tables (barrier, idempotency keys, audit)
/// are added by the runtime.
#[derive(Debug)]
pub struct InventoryMigrator;

#[async_trait::async_trait]
impl MigratorTrait for InventoryMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateStock)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateStock;

#[async_trait::async_trait]
impl MigrationTrait for CreateStock {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stock::Table)
                    .if_not_exists()
                    .col(uuid(Stock::ProductId).primary_key())
                    .col(big_integer(Stock::Available))
                    .col(big_integer(Stock::Reserved).default(0))
                    .col(big_integer(Stock::Sold).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Stock::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Stock {
    #[sea_orm(iden = "inventory_stock")]
    Table,
    ProductId,
    Available,
    Reserved,
    Sold,
}

/// The [`StockLedger`] on sea-orm: each move one conditional `UPDATE` in the
/// caller's unit of work, refused (no row changed) rather than taken below
/// zero, so concurrent orders of one product never oversell it.
#[derive(Debug, Clone)]
pub struct SeaOrmStockLedger {
    database: Database,
}

impl SeaOrmStockLedger {
    /// The ledger in `database` (the inventory's).
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Moves `line`'s units from `from` to `to`, if `from` holds them.
    async fn shift(
        &self,
        line: StockLine,
        from: Stock,
        to: Stock,
    ) -> Result<bool, RepositoryError> {
        let units = i64::from(line.quantity.units());
        let update = Query::update()
            .table(Stock::Table)
            .value(from, Expr::col(from).sub(units))
            .value(to, Expr::col(to).add(units))
            .and_where(Expr::col(Stock::ProductId).eq(line.product.as_uuid()))
            .and_where(Expr::col(from).gte(units))
            .to_owned();
        Ok(crate::execute(&self.database, &update).await? == 1)
    }
}

#[derive(Debug, FromQueryResult)]
struct LevelRow {
    available: i64,
    reserved: i64,
    sold: i64,
}

fn count(value: i64) -> u64 {
    <u64 as TryFrom<i64>>::try_from(value).unwrap_or(0)
}

#[async_trait]
impl StockLedger for SeaOrmStockLedger {
    async fn open(&self, product: ProductId, units: u32) -> Result<bool, RepositoryError> {
        let insert = Query::insert()
            .into_table(Stock::Table)
            .columns([
                Stock::ProductId,
                Stock::Available,
                Stock::Reserved,
                Stock::Sold,
            ])
            .values([
                SimpleExpr::from(product.as_uuid()),
                i64::from(units).into(),
                0_i64.into(),
                0_i64.into(),
            ])
            .map_err(RepositoryError::storage)?
            .to_owned();
        crate::insert_absent(&self.database, insert, [Stock::ProductId]).await
    }

    async fn reserve(&self, line: StockLine) -> Result<bool, RepositoryError> {
        self.shift(line, Stock::Available, Stock::Reserved).await
    }

    async fn deduct(&self, line: StockLine) -> Result<bool, RepositoryError> {
        self.shift(line, Stock::Reserved, Stock::Sold).await
    }

    async fn release(&self, line: StockLine) -> Result<bool, RepositoryError> {
        self.shift(line, Stock::Reserved, Stock::Available).await
    }

    async fn level(&self, product: ProductId) -> Result<Option<StockLevel>, RepositoryError> {
        let select = Query::select()
            .columns([Stock::Available, Stock::Reserved, Stock::Sold])
            .from(Stock::Table)
            .and_where(Expr::col(Stock::ProductId).eq(product.as_uuid()))
            .to_owned();
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let row = LevelRow::find_by_statement(StatementBuilder::build(&select, &backend))
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(row.map(|row| StockLevel {
            available: count(row.available),
            reserved: count(row.reserved),
            sold: count(row.sold),
        }))
    }
}
