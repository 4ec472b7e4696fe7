//! The schema, as ordered sea-orm migrations. Add a file per change; never edit
//! one that has run somewhere.

use sea_orm_migration::{MigrationTrait, MigratorTrait};
use strata_infrastructure::{CreateIdempotencyTable, CreateOutboxTable};

mod m20260101_000001_create_tasks;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxTable),
            Box::new(CreateIdempotencyTable),
            Box::new(m20260101_000001_create_tasks::Migration),
        ]
    }
}
