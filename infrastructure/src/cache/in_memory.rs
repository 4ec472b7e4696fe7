//! A [`CacheStore`] in this process's memory, on moka: an expiry per entry, a
//! budget in bytes, and an index from each tag to the keys that carry it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use strata_domain::ports::{CacheError, CacheStore, InvalidationMark};

/// What each entry is charged beyond its key, value and tags: roughly what moka
/// and the tag index keep for it, so a flood of tiny entries still counts.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// For each tag, the keys carrying it and the id of the entry that put them there.
type TagIndex = HashMap<String, HashMap<String, u64>>;

/// A [`CacheStore`] that keeps entries in this process's memory.
///
/// Memory stays within `max_bytes` (keys, values and tags, plus a fixed charge
/// per entry); when full, moka's TinyLFU policy decides which entries go, so a
/// value read once may not displace values read often. Each entry expires after
/// the TTL it was put with.
///
/// The tag index never outgrows the cache: when moka removes an entry — expired,
/// evicted for room, replaced or invalidated — its removal listener drops the
/// entry's tag memberships. An expired entry is removed by the first
/// housekeeping after moka's expiry timer next ticks (about once a second;
/// housekeeping runs as the cache is used), so its memberships linger about that
/// long; meanwhile they cost memory, never a stale read, since moka does not
/// return an expired entry.
///
/// Clones share the same entries.
///
/// Each invalidation is numbered, and the keys and tags it named remember its
/// number for a minute: a value loaded after a look-up marked with an
/// earlier number is not stored ([`CacheStore::put_unless_invalidated`]).
#[derive(Clone)]
pub struct InMemoryCacheStore {
    entries: Cache<String, Entry>,
    tags: Arc<Mutex<TagIndex>>,
    next_entry_id: Arc<AtomicU64>,
    stamps: Arc<Mutex<Stamps>>,
}

/// How long a key or tag remembers the invalidation that last named it: a
/// load that takes longer may store a value that predates it.
pub(crate) const STAMP_TTL: Duration = Duration::from_secs(60);

/// A key or a tag, as stamped by the invalidations that name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Stamped {
    Key(String),
    Tag(String),
}

/// The invalidations so far, and for each key and tag one of them named in
/// the last [`STAMP_TTL`], the number of the last one. Every stamp is kept
/// for its whole time (none is dropped to make room), and no longer: the
/// stamps are also queued in the order they were made, and each new
/// invalidation forgets those whose time is up.
#[derive(Debug, Default)]
struct Stamps {
    last: u64,
    named: HashMap<Stamped, u64>,
    made: VecDeque<(Instant, Stamped, u64)>,
}

impl Stamps {
    fn stamp(&mut self, keys: &[String], tags: &[String]) {
        self.last += 1;
        let now = Instant::now();
        while let Some((at, _, _)) = self.made.front()
            && now.duration_since(*at) >= STAMP_TTL
        {
            if let Some((_, stamped, number)) = self.made.pop_front()
                && self.named.get(&stamped) == Some(&number)
            {
                self.named.remove(&stamped);
            }
        }
        let named = keys
            .iter()
            .map(|key| Stamped::Key(key.clone()))
            .chain(tags.iter().map(|tag| Stamped::Tag(tag.clone())));
        for stamped in named {
            self.named.insert(stamped.clone(), self.last);
            self.made.push_back((now, stamped, self.last));
        }
        if self.named.capacity() > 4 * self.named.len().max(1_024) {
            self.named.shrink_to_fit();
            self.made.shrink_to_fit();
        }
    }

    /// Whether an invalidation numbered after `mark` named `key` or one of
    /// `tags` (within the last [`STAMP_TTL`], or since the last invalidation
    /// when none has run for longer).
    fn named_since(&self, mark: u64, key: &str, tags: &[String]) -> bool {
        let recent =
            |stamped: &Stamped| self.named.get(stamped).is_some_and(|number| *number > mark);
        recent(&Stamped::Key(key.to_owned()))
            || tags.iter().any(|tag| recent(&Stamped::Tag(tag.clone())))
    }
}

#[derive(Clone)]
struct Entry {
    /// Tells this entry from earlier and later ones under the same key, so the
    /// removal of a replaced entry cannot drop its successor's tag memberships.
    id: u64,
    value: Arc<[u8]>,
    ttl: Duration,
    tags: Arc<[String]>,
}

impl Entry {
    fn weight(&self, key: &str) -> u32 {
        let tags: usize = self.tags.iter().map(String::len).sum();
        let bytes = ENTRY_OVERHEAD_BYTES + key.len() + self.value.len() + tags;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Each entry lives for the TTL it was put with; putting it again restarts the
/// clock with the new TTL (moka's default would keep the old deadline).
struct TtlOfEachEntry;

impl Expiry<String, Entry> for TtlOfEachEntry {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl InMemoryCacheStore {
    /// What [`Default`] allows: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    /// A store holding at most `max_bytes` of keys, values and tags.
    #[must_use]
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        let tags: Arc<Mutex<TagIndex>> = Arc::default();
        let index = Arc::clone(&tags);
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| entry.weight(key))
            .expire_after(TtlOfEachEntry)
            .eviction_listener(move |key: Arc<String>, entry: Entry, _cause| {
                forget_memberships(&index, &key, &entry);
            })
            .build();
        Self {
            entries,
            tags,
            next_entry_id: Arc::new(AtomicU64::new(0)),
            stamps: Arc::default(),
        }
    }

    fn stamps(&self) -> MutexGuard<'_, Stamps> {
        self.stamps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an invalidation after `mark` named `key` or one of `tags`.
    fn invalidated_since(&self, mark: InvalidationMark, key: &str, tags: &[String]) -> bool {
        self.stamps().named_since(mark.0, key, tags)
    }

    /// Removes `keys` and every key of `tags`, here only, leaving no stamp:
    /// for a level whose values are never stored under a mark.
    pub(crate) async fn forget(&self, keys: &[String], tags: &[String]) {
        // The memberships stay until each entry's removal is reported: were this
        // call abandoned halfway, the entries not yet removed must still be
        // found by the next invalidation of their tags.
        let tagged: Vec<String> = {
            let index = self.index();
            tags.iter()
                .filter_map(|tag| index.get(tag))
                .flat_map(|keys| keys.keys().cloned())
                .collect()
        };
        for key in keys.iter().chain(&tagged) {
            self.entries.invalidate(key).await;
        }
    }

    /// Removes `key`, here only.
    pub(crate) async fn remove(&self, key: &str) {
        self.entries.invalidate(key).await;
    }

    /// Removes every entry at once; their tag memberships follow as moka reports
    /// each removal.
    #[cfg(feature = "redis")]
    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
    }

    fn index(&self) -> MutexGuard<'_, TagIndex> {
        lock(&self.tags)
    }
}

impl Default for InMemoryCacheStore {
    fn default() -> Self {
        Self::with_max_bytes(Self::DEFAULT_MAX_BYTES)
    }
}

impl std::fmt::Debug for InMemoryCacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryCacheStore")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .finish_non_exhaustive()
    }
}

/// A panic while the index was held cannot leave it torn (each step is a single
/// map operation), so a poisoned lock is still safe to use.
fn lock(tags: &Mutex<TagIndex>) -> MutexGuard<'_, TagIndex> {
    tags.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget_memberships(tags: &Mutex<TagIndex>, key: &str, entry: &Entry) {
    let mut index = lock(tags);
    for tag in entry.tags.iter() {
        let Some(keys) = index.get_mut(tag) else {
            continue;
        };
        if keys.get(key) == Some(&entry.id) {
            keys.remove(key);
            if keys.is_empty() {
                index.remove(tag);
            }
        }
    }
}

#[async_trait]
impl CacheStore for InMemoryCacheStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .entries
            .get(key)
            .await
            .map(|entry| entry.value.to_vec()))
    }

    /// A zero `ttl` removes `key` instead: the value would be expired on arrival.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
    ) -> Result<(), CacheError> {
        if ttl.is_zero() {
            self.remove(key).await;
            return Ok(());
        }
        let entry = Entry {
            id: self.next_entry_id.fetch_add(1, Ordering::Relaxed),
            value: value.into(),
            ttl,
            tags: tags.into(),
        };
        // Recording the memberships inside moka's per-key lock, just before the
        // entry goes in, keeps the index in the same order as the cache when two
        // puts of one key race: the index always names the entry the cache holds.
        self.entries
            .entry_by_ref(key)
            .and_upsert_with(|_previous| {
                let mut index = self.index();
                for tag in entry.tags.iter() {
                    index
                        .entry(tag.clone())
                        .or_default()
                        .insert(key.to_owned(), entry.id);
                }
                drop(index);
                std::future::ready(entry)
            })
            .await;
        Ok(())
    }

    async fn invalidate(&self, keys: &[String], tags: &[String]) -> Result<(), CacheError> {
        // Stamped before anything is removed: a racing `put_unless_invalidated`
        // that stores first and checks after either finds the stamp or has
        // stored before the removal below.
        self.stamps().stamp(keys, tags);
        self.forget(keys, tags).await;
        Ok(())
    }

    async fn get_marked(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<InvalidationMark>), CacheError> {
        let mark = InvalidationMark(self.stamps().last);
        Ok((self.get(key).await?, Some(mark)))
    }

    /// Stores, then checks: an invalidation that stamps after the check
    /// removes what was stored, one that stamped before it is found. The
    /// pair runs as a task of its own, so a caller that gives up between the
    /// two cannot leave an unchecked value behind.
    async fn put_unless_invalidated(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
        mark: Option<InvalidationMark>,
    ) -> Result<bool, CacheError> {
        let Some(mark) = mark else {
            self.put(key, value, ttl, tags).await?;
            return Ok(true);
        };
        if self.invalidated_since(mark, key, tags) {
            return Ok(false);
        }
        let (store, key, tags) = (self.clone(), key.to_owned(), tags.to_vec());
        let checked = async move {
            let _infallible = store.put(&key, value, ttl, &tags).await;
            if store.invalidated_since(mark, &key, &tags) {
                store.remove(&key).await;
                return false;
            }
            true
        };
        // Outside a Tokio runtime there is no task to hand the pair to: it
        // then runs in the caller.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Ok(runtime.spawn(checked).await.unwrap_or(false)),
            Err(_) => Ok(checked.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl InMemoryCacheStore {
        async fn memberships(&self) -> usize {
            self.entries.run_pending_tasks().await;
            self.index().values().map(HashMap::len).sum()
        }
    }

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[tokio::test]
    async fn expired_entries_leave_the_tag_index() {
        let store = InMemoryCacheStore::default();
        let ttl = Duration::from_millis(50);
        store
            .put("a", b"1".to_vec(), ttl, &tags(&["x", "y"]))
            .await
            .expect("put");
        store
            .put("b", b"2".to_vec(), ttl, &tags(&["x"]))
            .await
            .expect("put");
        assert_eq!(store.memberships().await, 3);

        // moka's expiry timer ticks about once a second; an expired entry goes at
        // the first housekeeping after the tick.
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.memberships().await > 0 {
            assert!(
                Instant::now() < deadline,
                "memberships of expired entries remain"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(store.index().is_empty(), "empty tags are dropped too");
    }

    #[tokio::test]
    async fn evicted_entries_leave_the_tag_index() {
        let store = InMemoryCacheStore::with_max_bytes(4 * 1024);
        let ttl = Duration::from_secs(60);
        for n in 0..200 {
            store
                .put(&format!("key-{n}"), vec![0; 256], ttl, &tags(&["bulk"]))
                .await
                .expect("put");
        }

        let memberships = store.memberships().await;

        assert!(store.entries.weighted_size() <= 4 * 1024);
        assert_eq!(
            memberships,
            usize::try_from(store.entries.entry_count()).expect("fits")
        );
    }

    #[tokio::test]
    async fn a_replaced_entry_keeps_only_its_new_tags() {
        let store = InMemoryCacheStore::default();
        let ttl = Duration::from_secs(60);
        store
            .put("k", b"old".to_vec(), ttl, &tags(&["before"]))
            .await
            .expect("put");
        store
            .put("k", b"new".to_vec(), ttl, &tags(&["after"]))
            .await
            .expect("put");

        store
            .invalidate(&[], &tags(&["before"]))
            .await
            .expect("invalidate");

        assert_eq!(store.get("k").await.expect("get"), Some(b"new".to_vec()));
        assert_eq!(store.memberships().await, 1);
    }

    #[tokio::test]
    async fn putting_again_restarts_the_clock_with_the_new_ttl() {
        let store = InMemoryCacheStore::default();
        store
            .put("k", b"1".to_vec(), Duration::from_millis(50), &[])
            .await
            .expect("put");
        store
            .put("k", b"2".to_vec(), Duration::from_secs(60), &[])
            .await
            .expect("put");

        tokio::time::sleep(Duration::from_millis(150)).await;

        assert_eq!(store.get("k").await.expect("get"), Some(b"2".to_vec()));
    }
}
