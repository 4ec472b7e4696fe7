//! The sample shop's adapters: sea-orm entities, migrations, repositories and the
//! demo data a fresh database is seeded with.

pub mod catalog;
pub mod identity;
pub mod inventory;
pub mod migration;
pub mod ordering;
pub mod reports;
pub mod wallet;
pub mod wishlists;

pub use catalog::{SeaOrmProductRepository, seed_catalog};
pub use identity::{Argon2PasswordHasher, SeaOrmRefreshTokens, SeaOrmUserRepository};
pub use inventory::{InventoryMigrator, SeaOrmStockLedger};
pub use migration::Migrator;
pub use ordering::{SeaOrmOrderRepository, TccOrderPlacement};
pub use reports::SeaOrmSalesReportStore;
pub use wallet::{SeaOrmWallets, WalletMigrator};
pub use wishlists::SeaOrmWishlistRepository;

use sea_orm::{ConnectionTrait, DbErr, StatementBuilder};
use strata_domain::RepositoryError;
use strata_infrastructure::{Database, storage_error};

/// Runs `statement` through a writing session of `database` (the caller's
/// unit of work): how many rows it changed.
pub(crate) async fn execute(
    database: &Database,
    statement: &impl StatementBuilder,
) -> Result<u64, RepositoryError> {
    let session = database.writer().await?;
    let backend = session.get_database_backend();
    let changed = session
        .execute_raw(StatementBuilder::build(statement, &backend))
        .await
        .map_err(storage_error)?
        .rows_affected();
    session.finish().await?;
    Ok(changed)
}

/// Inserts the one row of `insert` unless a row with its `key` is there:
/// whether it did, in a session of its own or the running unit of work's.
pub(crate) async fn insert_absent<C: sea_orm::sea_query::IntoIden>(
    database: &Database,
    insert: sea_orm::sea_query::InsertStatement,
    key: impl IntoIterator<Item = C>,
) -> Result<bool, RepositoryError> {
    let session = database.writer().await?;
    let inserted = strata_infrastructure::insert_absent(&session, insert, key).await?;
    session.finish().await?;
    Ok(inserted)
}

/// Brings the schema up to date: applies every migration not yet applied.
///
/// # Errors
/// When a migration fails; the failed migration's changes are not kept.
pub async fn migrate(database: &Database) -> Result<(), DbErr> {
    strata_infrastructure::migrate_up::<Migrator>(database).await
}

/// Undoes the last `steps` applied migrations, newest first.
///
/// # Errors
/// When a migration's `down` fails.
pub async fn rollback(database: &Database, steps: u32) -> Result<(), DbErr> {
    strata_infrastructure::migrate_down::<Migrator>(database, steps).await
}

/// Every migration, oldest first, with whether it has been applied.
///
/// # Errors
/// When the migration table cannot be read.
pub async fn migration_status(database: &Database) -> Result<Vec<(String, bool)>, DbErr> {
    strata_infrastructure::migration_status::<Migrator>(database).await
}
