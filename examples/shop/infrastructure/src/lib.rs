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
