use std::time::Duration;

use async_trait::async_trait;

/// The cache could not be used. Callers treat it as a miss (reads) or log it
/// (invalidations): a cache outage slows the service down, it does not break it.
#[derive(Debug, thiserror::Error)]
#[error("the cache is unavailable")]
pub struct CacheError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl CacheError {
    /// A cache failure caused by `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// Where a store's invalidations stood when a value was looked up: a value
/// loaded after that look-up is stored with it by
/// [`CacheStore::put_unless_invalidated`], which refuses it if its key or one
/// of its tags was invalidated since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InvalidationMark(pub u64);

/// Where cached values live: bytes under a key, with an expiry and tags.
///
/// A tag names a group of keys invalidated together (`products` for every
/// catalog listing page). Implementations: in-process, Redis, and two-level
/// (in-process in front of Redis, with invalidations broadcast to every instance).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores `value` under `key` for `ttl`, as a member of each of `tags`.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
    ) -> Result<(), CacheError>;

    /// Removes `keys` and every key of `tags`, here and (for shared stores) on
    /// every other instance.
    async fn invalidate(&self, keys: &[String], tags: &[String]) -> Result<(), CacheError>;

    /// The value under `key`, as [`CacheStore::get`], with a mark of the
    /// invalidations so far when the store keeps one.
    async fn get_marked(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<InvalidationMark>), CacheError> {
        Ok((self.get(key).await?, None))
    }

    /// Stores a value loaded after `mark` was taken, as [`CacheStore::put`]
    /// does — unless `key` or one of `tags` was invalidated since: the value
    /// may then predate the change the invalidation announced, and storing it
    /// would serve that old value until its TTL. Answers whether it stored
    /// the value. Without a mark it always stores.
    async fn put_unless_invalidated(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
        mark: Option<InvalidationMark>,
    ) -> Result<bool, CacheError> {
        let _ = mark;
        self.put(key, value, ttl, tags).await?;
        Ok(true)
    }

    /// Whether the store answers now, for readiness: a store on a server asks it
    /// (Redis `PING`); one in this process is always there.
    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    /// Whether the store lives on a server that readiness should report on.
    fn is_remote(&self) -> bool {
        false
    }
}

/// Cache invalidations a unit of work owes, as its journal keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedInvalidation {
    /// The entry's id, to settle it by.
    pub id: uuid::Uuid,
    /// Keys to drop.
    pub keys: Vec<String>,
    /// Tags whose every key to drop.
    pub tags: Vec<String>,
}

/// Where a unit of work writes down the cache entries its changes make stale,
/// in its own transaction: kept exactly when the changes are, so an
/// invalidation that a crash, a restart or an unreachable cache server kept
/// from happening after the commit is still owed, and is applied later.
///
/// Applying an invalidation twice costs a cache miss, never a wrong answer;
/// so an entry is settled after it was applied, and one applied but not yet
/// settled is simply applied again.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait InvalidationJournal: Send + Sync {
    /// Writes down `keys` and `tags` in the unit of work running on this task;
    /// answers the entry's id.
    ///
    /// # Errors
    /// When no unit of work of the journal's database runs here, or the entry
    /// cannot be written (the unit of work then fails with it).
    async fn record(
        &self,
        keys: &[String],
        tags: &[String],
    ) -> Result<uuid::Uuid, super::RepositoryError>;

    /// Forgets `ids`, applied.
    ///
    /// # Errors
    /// When the journal cannot be written; the entries stay owed.
    async fn settle(&self, ids: &[uuid::Uuid]) -> Result<(), super::RepositoryError>;

    /// Committed entries written down at least `age` ago, oldest first, at
    /// most `limit` of them.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn owed(
        &self,
        age: Duration,
        limit: u64,
    ) -> Result<Vec<OwedInvalidation>, super::RepositoryError>;
}
