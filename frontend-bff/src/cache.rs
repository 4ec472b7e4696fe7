//! Hot data kept as far forward as the BFF: read models (a catalog page, a
//! product) served from memory while fresh, served stale while one refresh
//! runs in the background, and dropped when the data they came from changes.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry<V> {
    value: V,
    fetched: Instant,
}

/// A stale-while-revalidate cache of read models by key.
#[derive(Clone)]
pub struct HotCache<V> {
    fresh_for: Duration,
    entries: moka::future::Cache<String, Arc<Entry<V>>>,
    refreshing: Arc<Mutex<HashSet<String>>>,
}

impl<V> std::fmt::Debug for HotCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCache")
            .field("fresh_for", &self.fresh_for)
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> HotCache<V> {
    /// Entries are served as they are for `fresh_for`, then for `stale_for`
    /// more while a refresh runs (or fails: an upstream that went away does
    /// not take the page with it); `capacity` entries at most.
    #[must_use]
    pub fn new(fresh_for: Duration, stale_for: Duration, capacity: u64) -> Self {
        Self {
            fresh_for,
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(fresh_for + stale_for)
                .build(),
            refreshing: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The value under `key`: from memory while fresh; from memory while
    /// stale, with `load` run once in the background to replace it; else
    /// from `load`, kept for next time.
    ///
    /// # Errors
    /// What `load` fails with when nothing usable is held.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if let Some(entry) = self.entries.get(key).await {
            if entry.fetched.elapsed() >= self.fresh_for && self.start_refresh(key) {
                let cache = self.clone();
                let key = key.to_owned();
                tokio::spawn(async move {
                    match load().await {
                        Ok(value) => cache.put(&key, value).await,
                        Err(error) => {
                            tracing::warn!(key, error = %error, "a stale entry could not be refreshed; it is served until it expires");
                        }
                    }
                    cache.end_refresh(&key);
                });
            }
            return Ok(entry.value.clone());
        }
        let value = load().await?;
        self.put(key, value.clone()).await;
        Ok(value)
    }

    /// Keeps `value` under `key`, fresh from now.
    pub async fn put(&self, key: &str, value: V) {
        let entry = Arc::new(Entry {
            value,
            fetched: Instant::now(),
        });
        self.entries.insert(key.to_owned(), entry).await;
    }

    /// Drops the entry under `key`: the next read loads it.
    pub async fn invalidate(&self, key: &str) {
        self.entries.invalidate(key).await;
    }

    /// Drops every entry, for a change that may touch any of them.
    pub fn invalidate_all(&self) {
        self.entries.invalidate_all();
    }

    fn start_refresh(&self, key: &str) -> bool {
        self.refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned())
    }

    fn end_refresh(&self, key: &str) {
        self.refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn counting(
        calls: &Arc<AtomicU32>,
    ) -> impl FnOnce() -> std::future::Ready<Result<u32, String>> + Send + 'static {
        let calls = calls.clone();
        move || std::future::ready(Ok(calls.fetch_add(1, Ordering::SeqCst) + 1))
    }

    #[tokio::test]
    async fn a_fresh_entry_is_served_without_loading() {
        let cache = HotCache::new(Duration::from_secs(60), Duration::from_secs(60), 10);
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(1));
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_entry_is_served_at_once_and_replaced_in_the_background() {
        let cache = HotCache::new(Duration::ZERO, Duration::from_secs(60), 10);
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(1));
        // Stale at once: served, and one refresh started.
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(1));
        for _ in 0..100 {
            if calls.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let mut seen = 0;
        for _ in 0..100 {
            seen = cache
                .get_or_load("k", || {
                    std::future::ready(Err::<u32, _>("not called".to_owned()))
                })
                .await
                .expect("held");
            if seen == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, 2, "the refreshed value replaced the stale one");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_stale_value() {
        let cache = HotCache::new(Duration::ZERO, Duration::from_secs(60), 10);
        cache.put("k", 7_u32).await;
        for _ in 0..3 {
            let value = cache
                .get_or_load("k", || {
                    std::future::ready(Err::<u32, _>("upstream down".to_owned()))
                })
                .await;
            assert_eq!(value, Ok(7));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn an_invalidated_entry_is_loaded_again() {
        let cache = HotCache::new(Duration::from_secs(60), Duration::from_secs(60), 10);
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(1));
        cache.invalidate("k").await;
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(2));
        cache.invalidate_all();
        assert_eq!(cache.get_or_load("k", counting(&calls)).await, Ok(3));
    }

    #[tokio::test]
    async fn nothing_held_and_a_failing_load_is_an_error() {
        let cache: HotCache<u32> =
            HotCache::new(Duration::from_secs(1), Duration::from_secs(1), 10);
        let value = cache
            .get_or_load("k", || std::future::ready(Err::<u32, _>("down".to_owned())))
            .await;
        assert_eq!(value, Err("down".to_owned()));
    }
}
