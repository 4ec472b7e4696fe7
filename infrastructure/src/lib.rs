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
//! A repository never holds a connection of its own choosing: it asks
//! [`Database::session`] for one, which joins the unit of work running on the
//! current task, or else opens a short transaction just for that call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sea_orm::DbErr> {
//! use strata_infrastructure::{Database, SeaOrmUnitOfWork};
//!
//! let database = Database::connect("sqlite::memory:").await?;
//! let unit_of_work = SeaOrmUnitOfWork::new(database.clone());
//! # Ok(()) }
//! ```

pub mod cache;
mod database;
mod db_error;
pub mod idempotency;
pub mod outbox;
mod rate_limiter;
mod unit_of_work;
mod versioned;

pub use cache::{InMemoryCacheStore, cache_store_for};
#[cfg(feature = "redis")]
pub use cache::{
    InvalidRedisUrl, RedisCacheConfig, RedisCacheStore, TwoLevelCacheConfig, TwoLevelCacheStore,
};
pub use database::{Database, PoolStatus, Session};
pub use db_error::{missing_or_stale, repository_error};
pub use idempotency::{CreateIdempotencyTable, IDEMPOTENCY_RETENTION, SeaOrmIdempotencyStore};
pub use outbox::{CreateOutboxTable, SeaOrmOutbox};
pub use rate_limiter::{InMemoryRateLimiter, InvalidRateLimit, MonotonicClock, RateLimit};
pub use unit_of_work::SeaOrmUnitOfWork;
pub use versioned::{save_versioned, stored_version};
