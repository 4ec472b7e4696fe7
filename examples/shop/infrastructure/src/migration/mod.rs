//! The shop's schema, as ordered sea-orm migrations.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261125_000001_create_products;
mod m20261125_000002_create_identity_and_wishlists;
pub(crate) mod m20261202_000001_create_sales_report;
mod m20261203_000001_create_orders;
pub(crate) mod m20261203_000002_create_product_sales;

/// Every migration of the shop, oldest first. Strata's own tables (the outbox,
/// idempotency keys) are added by `strata_infrastructure::migrate_up`.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_products::Migration),
            Box::new(m20261125_000002_create_identity_and_wishlists::Migration),
            Box::new(m20261202_000001_create_sales_report::Migration),
            Box::new(m20261203_000001_create_orders::Migration),
            Box::new(m20261203_000002_create_product_sales::Migration),
        ]
    }
}
