use std::error::Error as StdError;

use async_trait::async_trait;

use crate::{AggregateRoot, Version};

/// Why a repository could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The aggregate changed since it was loaded: the write was refused so that
    /// no update is lost.
    #[error("{kind} {id} was changed by someone else (expected version {expected})")]
    Conflict {
        /// The aggregate's kind, such as `product`.
        kind: &'static str,
        /// The aggregate's id.
        id: String,
        /// The version the caller loaded.
        expected: Version,
    },
    /// Another aggregate already holds a value that must be unique.
    #[error("{kind} with this {key} already exists")]
    Duplicate {
        /// The aggregate's kind.
        kind: &'static str,
        /// The unique attribute, such as `sku`.
        key: &'static str,
    },
    /// The aggregate to update does not exist (any more).
    #[error("{kind} {id} was not found")]
    NotFound {
        /// The aggregate's kind.
        kind: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The storage is too busy to answer in time: no connection could be had, or
    /// a lock was not granted within its timeout. Nothing was written; the same
    /// request may succeed if retried a little later.
    #[error("storage is busy")]
    Busy(#[source] Box<dyn StdError + Send + Sync>),
    /// The storage failed; the cause says how.
    #[error("storage failed")]
    Storage(#[source] Box<dyn StdError + Send + Sync>),
}

impl RepositoryError {
    /// A storage failure caused by `error`.
    pub fn storage(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Storage(Box::new(error))
    }
}

/// A unit of work that could not begin or commit, met by repository work run in
/// it: busy stays busy, anything else is a storage failure.
impl From<crate::UnitOfWorkError> for RepositoryError {
    fn from(error: crate::UnitOfWorkError) -> Self {
        match error {
            crate::UnitOfWorkError::Busy(_) => Self::Busy(Box::new(error)),
            _ => Self::storage(error),
        }
    }
}

/// Loads and saves whole aggregates of one kind.
///
/// Object-safe, so handlers hold an `Arc<dyn Repository<A>>` (or a context's own
/// repository trait that extends this one) and tests hand them a mock.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Repository<A: AggregateRoot>: Send + Sync {
    /// The aggregate with this id, if there is one.
    async fn find(&self, id: A::Id) -> Result<Option<A>, RepositoryError>;

    /// Writes the aggregate: inserts it when it is new, otherwise updates it only if
    /// storage still holds the version it was loaded at, then marks it saved at the
    /// next version.
    ///
    /// Recorded events stay on the aggregate for the unit of work to collect.
    async fn save(&self, aggregate: &mut A) -> Result<(), RepositoryError>;
}
