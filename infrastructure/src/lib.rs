//! Strata's sea-orm adapters: connecting to SQLite or PostgreSQL, the
//! [`SeaOrmUnitOfWork`] that binds repositories to one transaction, the mapping
//! of database errors to the domain's [`strata_domain::RepositoryError`], the
//! transactional [`outbox`], and an in-process [`InMemoryRateLimiter`].
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

mod database;
mod db_error;
pub mod outbox;
mod rate_limiter;
mod unit_of_work;

pub use database::{Database, Session};
pub use db_error::{missing_or_stale, repository_error};
pub use outbox::{CreateOutboxTable, SeaOrmOutbox};
pub use rate_limiter::{InMemoryRateLimiter, InvalidRateLimit, MonotonicClock, RateLimit};
pub use unit_of_work::SeaOrmUnitOfWork;
