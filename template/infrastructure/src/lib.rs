//! The adapters: sea-orm entities, migrations and the repositories that
//! implement the domain's ports on SQLite or PostgreSQL.

pub mod migration;
pub mod tasks;

pub use migration::Migrator;
pub use tasks::SeaOrmTaskRepository;

use sea_orm::DbErr;
use sea_orm_migration::MigratorTrait;
use strata_infrastructure::Database;

/// Brings the schema up to date: applies every migration not yet applied.
///
/// # Errors
/// When a migration fails; the failed migration's changes are not kept.
pub async fn migrate(database: &Database) -> Result<(), DbErr> {
    Migrator::up(database.connection(), None).await
}
