//! Strata's sea-orm adapters: connecting to SQLite or PostgreSQL, the
//! [`SeaOrmUnitOfWork`] that binds repositories to one transaction, the mapping
//! of database errors to the domain's [`strata_domain::RepositoryError`], the
//! transactional [`outbox`], and an in-process [`InMemoryRateLimiter`].
//!
//! The [`cache`] stores implement the domain's [`strata_domain::ports::CacheStore`]:
//! [`InMemoryCacheStore`] in this process (moka: per-entry TTL, a byte budget, tags),
//! and with the `redis` feature (on by default) [`RedisCacheStore`], shared by every
//! instance, and [`TwoLevelCacheStore`], a short-lived local copy in front of Redis
//! whose invalidations are broadcast to every instance over pub/sub.
//!
//! A repository never holds a connection of its own choosing. It reads through
//! [`Database::reader`], which joins the unit of work of its database running on
//! the current task (so a command sees its own writes) or else runs each
//! statement on a read-only pool, and writes through [`Database::writer`], which only
//! ever joins that unit of work: a write outside one is refused, not committed
//! on its own. [`Database::autonomous`] names the rare work that commits by
//! itself on purpose. See `docs/decisions/0002-ambient-unit-of-work.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sea_orm::DbErr> {
//! use strata_infrastructure::{Database, SeaOrmUnitOfWork};
//!
//! let database = Database::connect("sqlite::memory:").await?;
//! let unit_of_work = SeaOrmUnitOfWork::new(database.clone());
//! # Ok(()) }
//! ```

mod audit;
pub mod cache;
pub mod consumer;
mod database;
mod db_error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod idempotency;
pub mod migration;
pub mod outbox;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
mod rate_limiter;
mod sqlite_limit;
pub mod tcc;
mod unit_of_work;
mod versioned;

pub use audit::SeaOrmAuditTrail;
pub use cache::{InMemoryCacheStore, SeaOrmInvalidationJournal, cache_store_for};
#[cfg(feature = "redis")]
pub use cache::{
    InvalidRedisUrl, RedisCacheConfig, RedisCacheStore, TwoLevelCacheConfig, TwoLevelCacheStore,
};
pub use database::{Database, DatabaseOptions, MisplacedWork, PoolStatus, Session, insert_absent};
pub use db_error::{missing_or_stale, repository_error, storage_error};
pub use idempotency::{IDEMPOTENCY_RETENTION, SeaOrmIdempotencyStore};
pub use migration::{migrate_down, migrate_up, migration_status};
pub use outbox::{SeaOrmOutbox, SeaOrmTransactionalMessages};
pub use rate_limiter::{InMemoryRateLimiter, InvalidRateLimit, MonotonicClock, RateLimit};
pub use unit_of_work::SeaOrmUnitOfWork;
pub use versioned::{save_versioned, stored_version};
