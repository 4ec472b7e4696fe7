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
