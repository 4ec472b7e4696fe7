//! The shop's schema, as ordered sea-orm migrations.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261125_000001_create_products;

/// Every migration of the shop, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(strata_infrastructure::CreateOutboxTable),
            Box::new(m20261125_000001_create_products::Migration),
        ]
    }
}
