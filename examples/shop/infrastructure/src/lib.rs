//! The sample shop's adapters: sea-orm entities, migrations, repositories and the
//! demo data a fresh database is seeded with.

pub mod catalog;
pub mod identity;
pub mod migration;
pub mod wishlists;

pub use catalog::{SeaOrmProductRepository, seed_catalog};
pub use identity::{Argon2PasswordHasher, SeaOrmRefreshTokens, SeaOrmUserRepository};
pub use migration::Migrator;
pub use wishlists::SeaOrmWishlistRepository;

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

/// Undoes the last `steps` applied migrations, newest first.
///
/// # Errors
/// When a migration's `down` fails.
pub async fn rollback(database: &Database, steps: u32) -> Result<(), DbErr> {
    Migrator::down(database.connection(), Some(steps)).await
}

/// Every migration, oldest first, with whether it has been applied.
///
/// # Errors
/// When the migration table cannot be read.
pub async fn migration_status(database: &Database) -> Result<Vec<(String, bool)>, DbErr> {
    use sea_orm_migration::MigrationStatus;
    Ok(Migrator::get_migration_with_status(database.connection())
        .await?
        .into_iter()
        .map(|migration| {
            (
                migration.name().to_owned(),
                migration.status() == MigrationStatus::Applied,
            )
        })
        .collect())
}
