//! The schema, as ordered sea-orm migrations. Add a file per change; never edit
//! one that has run somewhere.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20260101_000001_create_tasks;

/// Every migration, oldest first. Strata's own tables (the outbox, idempotency
/// keys) are added by `strata_infrastructure::migrate_up`.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20260101_000001_create_tasks::Migration)]
    }
}
