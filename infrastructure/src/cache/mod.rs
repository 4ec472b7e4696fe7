//! Cache stores: where [`CacheStore`] values live.
//!
//! * [`InMemoryCacheStore`] — this process's memory; the default, and what a
//!   single instance needs.
//! * [`RedisCacheStore`] (feature `redis`) — one copy shared by every instance.
//! * [`TwoLevelCacheStore`] (feature `redis`) — a short-lived local copy in front
//!   of Redis, with invalidations broadcast to every instance.
//!
//! `docs/decisions/0008-cache-backends.md` records why they work as they do.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), strata_domain::ports::CacheError> {
//! use std::time::Duration;
//! use strata_domain::ports::CacheStore;
//! use strata_infrastructure::InMemoryCacheStore;
//!
//! let cache = InMemoryCacheStore::with_max_bytes(16 * 1024 * 1024);
//! let products = vec!["products".to_owned()];
//! let page = b"[{\"sku\":\"TEA-POT-01\"}]".to_vec();
//! cache.put("products:page:1", page, Duration::from_secs(30), &products).await?;
//!
//! cache.invalidate(&[], &products).await?;
//!
//! assert_eq!(cache.get("products:page:1").await?, None);
//! # Ok(()) }
//! ```
//!
//! Shared by several instances, with a local copy of at most two seconds:
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use strata_infrastructure::{RedisCacheConfig, TwoLevelCacheConfig, TwoLevelCacheStore};
//!
//! let redis = RedisCacheConfig::new("redis://127.0.0.1:6379", "shop:cache")?;
//! let cache = TwoLevelCacheStore::new(
//!     TwoLevelCacheConfig::new(redis).with_local_ttl(Duration::from_secs(2)),
//! )?;
//! # Ok(()) }
//! ```

mod in_memory;
#[cfg(feature = "redis")]
mod invalidation_message;
mod journal;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
mod two_level;

pub use in_memory::InMemoryCacheStore;
#[cfg(all(fuzzing, feature = "redis"))]
pub(crate) use invalidation_message::InvalidationMessage;
pub use journal::SeaOrmInvalidationJournal;
pub(crate) use journal::migration::CreateInvalidationJournal;
#[cfg(feature = "redis")]
pub use redis_store::{InvalidRedisUrl, RedisCacheConfig, RedisCacheStore};
#[cfg(feature = "redis")]
pub use two_level::{TwoLevelCacheConfig, TwoLevelCacheStore};

use std::sync::Arc;

use strata_domain::ports::{CacheError, CacheStore};

/// The cache store a service runs on: with `redis_url`, two-level (in-process in
/// front of that Redis, keys under `key_prefix`, invalidations broadcast to every
/// instance); without one, in-process only.
///
/// # Errors
/// When the URL is not a Redis URL, or this build has no `redis` feature.
pub fn cache_store_for(
    redis_url: Option<&str>,
    key_prefix: &str,
) -> Result<Arc<dyn CacheStore>, CacheError> {
    let Some(url) = redis_url else {
        return Ok(Arc::new(InMemoryCacheStore::default()));
    };
    two_level(url, key_prefix)
}

#[cfg(feature = "redis")]
fn two_level(url: &str, key_prefix: &str) -> Result<Arc<dyn CacheStore>, CacheError> {
    let redis = RedisCacheConfig::new(url, key_prefix).map_err(CacheError::new)?;
    TwoLevelCacheStore::new(TwoLevelCacheConfig::new(redis))
        .map(|store| Arc::new(store) as Arc<dyn CacheStore>)
}

#[cfg(not(feature = "redis"))]
fn two_level(_url: &str, _key_prefix: &str) -> Result<Arc<dyn CacheStore>, CacheError> {
    Err(CacheError::new(std::io::Error::other(
        "a Redis URL is configured but this build has no `redis` feature",
    )))
}
