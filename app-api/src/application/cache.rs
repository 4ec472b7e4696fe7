use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_domain::RepositoryError;
use strata_domain::ports::{CacheError, CacheStore, InvalidationJournal, InvalidationMark};
use uuid::Uuid;

use super::AppError;

/// How a query's answer is cached: under `key` for `ttl`, as a member of `tags`.
/// With `negative_ttl`, a not-found answer is cached too, for that long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// The cache key; it must identify everything the answer depends on.
    pub key: String,
    /// How long the answer may be served from the cache.
    pub ttl: Duration,
    /// Groups the answer belongs to, for invalidation.
    pub tags: Vec<String>,
    /// How long a not-found answer may be served from the cache, if at all.
    pub negative_ttl: Option<Duration>,
}

impl CachePolicy {
    /// Cache under `key` for `ttl`.
    pub fn new(key: impl Into<String>, ttl: Duration) -> Self {
        Self {
            key: key.into(),
            ttl,
            tags: Vec::new(),
            negative_ttl: None,
        }
    }

    /// The same policy, adding the answer to `tag`.
    #[must_use]
    pub fn tagged(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// The same policy, caching not-found answers for `ttl`.
    #[must_use]
    pub fn remember_not_found(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }
}

/// What a command makes stale: cached keys and tags, dropped once its unit of
/// work has committed (never if it rolls back).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invalidation {
    /// Keys to drop.
    pub keys: Vec<String>,
    /// Tags whose every key to drop.
    pub tags: Vec<String>,
}

impl Invalidation {
    /// Nothing to drop.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The same invalidation, also dropping `key`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// The same invalidation, also dropping every key tagged `tag`.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Whether there is nothing to drop.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.tags.is_empty()
    }
}

/// A cached answer: a value, or the remembered fact that there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The serialized value.
    Value(Vec<u8>),
    /// A not-found answer, for `kind` `id`.
    NotFound {
        /// The kind of thing that was not found.
        kind: String,
        /// Its id.
        id: String,
    },
}

const VALUE: u8 = 1;
const NOT_FOUND: u8 = 0;

impl Cached {
    fn encode(&self) -> Vec<u8> {
        match self {
            Self::Value(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 1);
                out.push(VALUE);
                out.extend_from_slice(bytes);
                out
            }
            Self::NotFound { kind, id } => {
                let mut out = vec![NOT_FOUND];
                out.extend_from_slice(
                    serde_json::json!({ "kind": kind, "id": id })
                        .to_string()
                        .as_bytes(),
                );
                out
            }
        }
    }

    /// An entry as a cache store holds it, decoded (for the fuzz targets).
    #[cfg(fuzzing)]
    #[doc(hidden)]
    #[must_use]
    pub fn fuzz_decode(bytes: &[u8]) -> Option<Self> {
        Self::decode(bytes)
    }

    /// The entry as a cache store holds it (for the fuzz targets).
    #[cfg(fuzzing)]
    #[doc(hidden)]
    #[must_use]
    pub fn fuzz_encode(&self) -> Vec<u8> {
        self.encode()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (&VALUE, rest) => Some(Self::Value(rest.to_vec())),
            (&NOT_FOUND, rest) => {
                let parsed: serde_json::Value = serde_json::from_slice(rest).ok()?;
                Some(Self::NotFound {
                    kind: parsed["kind"].as_str()?.to_owned(),
                    id: parsed["id"].as_str()?.to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// The application's cache: read-through over any [`CacheStore`], with one loader
/// per key under a stampede, jittered TTLs (so entries written together do not
/// all expire together), optional negative caching, and typed values.
///
/// A cache failure never fails a request: a read error counts as a miss and a
/// write error is logged.
pub struct Cache {
    store: Arc<dyn CacheStore>,
    jitter: f64,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `store`, with TTLs jittered by up to ±10 %.
    #[must_use]
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self {
            store,
            jitter: 0.1,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The answer under `policy.key`, or `load`'s, stored for next time. Of many
    /// concurrent callers missing the same key, one runs `load`; the others wait
    /// and read what it stored.
    ///
    /// # Errors
    /// `load`'s error. A not-found error is remembered when the policy says so.
    pub async fn load_bytes<F, Fut>(
        &self,
        policy: &CachePolicy,
        load: F,
    ) -> Result<Vec<u8>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, AppError>>,
    {
        match self.read(&policy.key).await {
            Read::Hit(hit) => return hit,
            // The store is failing: no turn to wait for and nothing to store;
            // callers load side by side, as with no cache at all.
            Read::Failed => return load().await,
            Read::Miss => {}
        }
        let flight = self.flight(&policy.key);
        let answer = {
            let mut turn = Some(flight.turn.lock().await);
            // Whoever held the turn before may have stored the answer.
            match self.look_up(&policy.key).await {
                LookUp::Hit(hit) => hit,
                LookUp::Miss(mark) => {
                    if flight.unstored.load(Ordering::SeqCst) >= UNSTORED_BEFORE_SIDE_BY_SIDE {
                        // The loads before found nothing they could keep: waiting
                        // for the turn would only load one caller after another.
                        turn = None;
                    }
                    let loaded = load().await;
                    let stored = match &loaded {
                        Ok(bytes) => {
                            let cached = Cached::Value(bytes.clone());
                            self.write(policy, &cached, policy.ttl, mark).await
                        }
                        Err(AppError::NotFound { kind, id }) => match policy.negative_ttl {
                            Some(ttl) => {
                                let cached = Cached::NotFound {
                                    kind: (*kind).to_owned(),
                                    id: id.clone(),
                                };
                                self.write(policy, &cached, ttl, mark).await
                            }
                            None => Written::NotAsked,
                        },
                        Err(_) => Written::NotAsked,
                    };
                    match stored {
                        Written::Stored => flight.unstored.store(0, Ordering::SeqCst),
                        Written::Refused | Written::Failed => {
                            flight.unstored.fetch_add(1, Ordering::SeqCst);
                        }
                        Written::NotAsked => {}
                    }
                    drop(turn);
                    loaded
                }
                LookUp::Failed => {
                    // The store is failing: callers load side by side, as
                    // they would with no cache at all.
                    drop(turn);
                    load().await
                }
            }
        };
        self.land(&policy.key, flight);
        answer
    }

    /// [`Cache::load_bytes`] for a typed value, stored as JSON.
    ///
    /// # Errors
    /// `load`'s error, or an internal error when the value cannot be serialized.
    pub async fn get_or_load<T, F, Fut>(&self, policy: &CachePolicy, load: F) -> Result<T, AppError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let bytes = self
            .load_bytes(policy, || async {
                let value = load().await?;
                serde_json::to_vec(&value).map_err(AppError::internal)
            })
            .await?;
        serde_json::from_slice(&bytes).map_err(AppError::internal)
    }

    /// Drops `invalidation`'s keys and tags; a failure is logged, not returned.
    pub async fn invalidate(&self, invalidation: &Invalidation) {
        if let Err(error) = self.try_invalidate(invalidation).await {
            tracing::warn!(error = %crate::application::error_chain(&error), "cache invalidation failed; entries expire by their TTL");
        }
    }

    /// Drops `invalidation`'s keys and tags.
    ///
    /// # Errors
    /// When the store could not drop them.
    pub async fn try_invalidate(&self, invalidation: &Invalidation) -> Result<(), CacheError> {
        if invalidation.is_empty() {
            return Ok(());
        }
        self.store
            .invalidate(&invalidation.keys, &invalidation.tags)
            .await
    }

    async fn read(&self, key: &str) -> Read {
        match self.store.get(key).await {
            Ok(Some(bytes)) => match Cached::decode(&bytes) {
                Some(Cached::Value(value)) => Read::Hit(Ok(value)),
                Some(Cached::NotFound { kind, id }) => Read::Hit(Err(AppError::NotFound {
                    kind: leak_kind(&kind),
                    id,
                })),
                None => Read::Miss,
            },
            Ok(None) => Read::Miss,
            Err(error) => {
                tracing::warn!(error = %crate::application::error_chain(&error), "cache read failed; loading instead");
                Read::Failed
            }
        }
    }

    /// The look-up before a load: a hit, or a miss with the store's mark of
    /// the invalidations so far, which the load's answer is stored under.
    async fn look_up(&self, key: &str) -> LookUp {
        match self.store.get_marked(key).await {
            Ok((Some(bytes), mark)) => match Cached::decode(&bytes) {
                Some(Cached::Value(value)) => LookUp::Hit(Ok(value)),
                Some(Cached::NotFound { kind, id }) => LookUp::Hit(Err(AppError::NotFound {
                    kind: leak_kind(&kind),
                    id,
                })),
                // An entry that does not read is replaced, but only under a
                // mark. A hit carries none (the invalidations the load may
                // cross cannot be told), so the entry is dropped instead and
                // the next caller loads and stores under a mark of its own.
                None if mark.is_some() => LookUp::Miss(mark),
                None => {
                    if let Err(error) = self.store.invalidate(&[key.to_owned()], &[]).await {
                        tracing::warn!(error = %crate::application::error_chain(&error), "an unreadable cache entry could not be dropped");
                    }
                    LookUp::Failed
                }
            },
            Ok((None, mark)) => LookUp::Miss(mark),
            Err(error) => {
                tracing::warn!(error = %crate::application::error_chain(&error), "cache read failed; loading instead");
                LookUp::Failed
            }
        }
    }

    /// Stores `cached` unless an invalidation of its key or tags came after
    /// `mark`: what was loaded may then predate the change it announced.
    async fn write(
        &self,
        policy: &CachePolicy,
        cached: &Cached,
        ttl: Duration,
        mark: Option<InvalidationMark>,
    ) -> Written {
        match self
            .store
            .put_unless_invalidated(
                &policy.key,
                cached.encode(),
                self.jittered(ttl),
                &policy.tags,
                mark,
            )
            .await
        {
            Ok(true) => Written::Stored,
            Ok(false) => {
                tracing::debug!(key = %policy.key, "not cached: invalidated while it was loaded");
                Written::Refused
            }
            Err(error) => {
                tracing::warn!(error = %crate::application::error_chain(&error), "cache write failed");
                Written::Failed
            }
        }
    }

    fn jittered(&self, ttl: Duration) -> Duration {
        // Random enough to spread expiries; not a security boundary.
        let unit = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX);
        ttl.mul_f64(1.0 + self.jitter * (2.0 * unit - 1.0))
    }

    fn flight(&self, key: &str) -> Arc<Flight> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(flights.entry(key.to_owned()).or_default())
    }

    fn land(&self, key: &str, flight: Arc<Flight>) {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map and this caller hold it: nobody else is waiting on this key.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(key);
        }
    }
}

/// What became of a loaded answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Stored.
    Stored,
    /// Not stored: an invalidation came after the look-up.
    Refused,
    /// The store failed.
    Failed,
    /// Nothing to store (an error, or a not-found answer not remembered).
    NotAsked,
}

/// One key's loads: one caller at a time, so a stampede loads once.
#[derive(Default)]
struct Flight {
    turn: tokio::sync::Mutex<()>,
    /// How many loads in a row could not store their answer (refused as
    /// crossed by an invalidation, or the store failed). After one, the next
    /// caller loads under a fresh mark and usually stores; after
    /// [`UNSTORED_BEFORE_SIDE_BY_SIDE`], waiting for the turn would only load
    /// one caller after another, so the callers load at once instead.
    unstored: AtomicU32,
}

/// Loads in a row that stored nothing before a key's callers stop taking turns.
const UNSTORED_BEFORE_SIDE_BY_SIDE: u32 = 2;

/// What the first read found.
enum Read {
    /// The answer, stored.
    Hit(Result<Vec<u8>, AppError>),
    /// Nothing (or nothing that reads).
    Miss,
    /// The store failed.
    Failed,
}

/// What the look-up before a load found.
enum LookUp {
    /// The answer, stored.
    Hit(Result<Vec<u8>, AppError>),
    /// Nothing, with the store's mark of the invalidations so far.
    Miss(Option<InvalidationMark>),
    /// The store failed: the answer is loaded and not stored, as the
    /// invalidations it may cross cannot be told.
    Failed,
}

/// The most applied entries a [`InvalidationLog`] remembers before its next
/// catch-up settles them; past it, entries are applied again by the catch-up,
/// which is harmless.
const MOST_SETTLED_IN_MEMORY: usize = 100_000;

/// Owed entries a catch-up reads, applies and settles at a time.
const CATCH_UP_BATCH: u64 = 500;

/// Why a catch-up stopped: what it had not applied stays owed.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// The journal could not be read or written.
    #[error("the invalidation journal failed")]
    Journal(#[from] RepositoryError),
    /// The cache could not drop what is owed.
    #[error("the cache could not apply owed invalidations")]
    Cache(#[from] CacheError),
}

/// Invalidations made durable: a command writes what it makes stale in its own
/// unit of work's [`InvalidationJournal`], so the debt commits with the
/// change. After the commit the entries are dropped from the cache and the
/// journal entry settled; a commit whose invalidation never ran — the process
/// died after the commit, or the cache's server was unreachable — leaves the
/// entry owed, and [`InvalidationLog::catch_up`] (at start, then on a timer)
/// applies it. Without it, a shared cache would serve the value from before
/// the change until its TTL ran out.
///
/// Only a cache that outlives the process needs it: an in-process cache dies
/// with what it holds.
pub struct InvalidationLog {
    journal: Arc<dyn InvalidationJournal>,
    settled: Mutex<Vec<Uuid>>,
}

impl std::fmt::Debug for InvalidationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidationLog").finish_non_exhaustive()
    }
}

impl InvalidationLog {
    /// Invalidations written down in `journal`, which must live in the
    /// database of the units of work that owe them.
    #[must_use]
    pub fn new(journal: Arc<dyn InvalidationJournal>) -> Self {
        Self {
            journal,
            settled: Mutex::new(Vec::new()),
        }
    }

    /// Writes `invalidation` down in the unit of work running here.
    pub(crate) async fn record(&self, invalidation: &Invalidation) -> Result<Uuid, AppError> {
        Ok(self
            .journal
            .record(&invalidation.keys, &invalidation.tags)
            .await?)
    }

    /// Entry `id` was applied: the next catch-up settles it.
    pub(crate) fn applied(&self, id: Uuid) {
        let mut settled = self.settled.lock().unwrap_or_else(PoisonError::into_inner);
        if settled.len() < MOST_SETTLED_IN_MEMORY {
            settled.push(id);
        }
    }

    /// Settles the entries applied since the last catch-up, then applies to
    /// `cache` and settles every entry owed for at least `age`, oldest first;
    /// answers how many it applied. Entries younger than `age` are left to
    /// the commits that wrote them, which apply them within moments; at
    /// start, a zero `age` applies everything a previous run left owed.
    ///
    /// # Errors
    /// When the journal or the cache fails; what was not applied stays owed.
    pub async fn catch_up(&self, cache: &Cache, age: Duration) -> Result<usize, CatchUpError> {
        // Applied entries that cannot be forgotten now are applied again
        // below, harmlessly; what is owed is applied all the same.
        let unsettled = self.settle_applied().await.err();
        let mut applied = 0;
        loop {
            let owed = self.journal.owed(age, CATCH_UP_BATCH).await?;
            if owed.is_empty() {
                return self.settle_again(unsettled).await.map(|()| applied);
            }
            let mut invalidation = Invalidation::none();
            let mut ids = Vec::with_capacity(owed.len());
            for entry in owed {
                ids.push(entry.id);
                invalidation.keys.extend(entry.keys);
                invalidation.tags.extend(entry.tags);
            }
            invalidation.keys.sort_unstable();
            invalidation.keys.dedup();
            invalidation.tags.sort_unstable();
            invalidation.tags.dedup();
            cache.try_invalidate(&invalidation).await?;
            self.journal.settle(&ids).await?;
            applied += ids.len();
            if ids.len() < usize::try_from(CATCH_UP_BATCH).unwrap_or(usize::MAX) {
                return self.settle_again(unsettled).await.map(|()| applied);
            }
        }
    }
}

impl InvalidationLog {
    /// Forgets the entries applied since the last settle; those it cannot
    /// forget now are kept for the next.
    async fn settle_applied(&self) -> Result<(), RepositoryError> {
        let settled =
            std::mem::take(&mut *self.settled.lock().unwrap_or_else(PoisonError::into_inner));
        let settling = self.journal.settle(&settled).await;
        if settling.is_err() {
            let mut pending = self.settled.lock().unwrap_or_else(PoisonError::into_inner);
            pending.extend(settled);
            pending.truncate(MOST_SETTLED_IN_MEMORY);
        }
        settling
    }

    /// After a first settle failed: once more, as the journal may have come
    /// back while the owed entries were applied.
    async fn settle_again(&self, failed: Option<RepositoryError>) -> Result<(), CatchUpError> {
        if failed.is_none() {
            return Ok(());
        }
        Ok(self.settle_applied().await?)
    }
}

/// `AppError::NotFound` names its kind with a `&'static str`; kinds read back
/// from the cache are the same few names, so they are interned once each.
fn leak_kind(kind: &str) -> &'static str {
    static KINDS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut kinds = KINDS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = kinds.iter().find(|known| **known == kind) {
        return known;
    }
    if kinds.len() >= 256 {
        return "resource";
    }
    let interned: &'static str = Box::leak(kind.to_owned().into_boxed_str());
    kinds.push(interned);
    interned
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use strata_domain::ports::{
        CacheError, InvalidationMark, MockInvalidationJournal, OwedInvalidation,
    };

    use super::*;

    /// A store that keeps everything forever and counts writes: enough to watch
    /// the facade's behaviour, not a backend.
    #[derive(Default)]
    struct MapStore {
        entries: Mutex<HashMap<String, (Vec<u8>, Duration)>>,
        puts: AtomicUsize,
    }

    #[async_trait]
    impl CacheStore for MapStore {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Ok(self
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .map(|(value, _)| value.clone()))
        }

        async fn put(
            &self,
            key: &str,
            value: Vec<u8>,
            ttl: Duration,
            _tags: &[String],
        ) -> Result<(), CacheError> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned(), (value, ttl));
            Ok(())
        }

        async fn invalidate(&self, keys: &[String], _tags: &[String]) -> Result<(), CacheError> {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            for key in keys {
                entries.remove(key);
            }
            Ok(())
        }
    }

    /// A store that always fails.
    struct DownStore;

    #[async_trait]
    impl CacheStore for DownStore {
        async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Err(CacheError::new(std::io::Error::other("connection refused")))
        }
        async fn put(
            &self,
            _: &str,
            _: Vec<u8>,
            _: Duration,
            _: &[String],
        ) -> Result<(), CacheError> {
            Err(CacheError::new(std::io::Error::other("connection refused")))
        }
        async fn invalidate(&self, _: &[String], _: &[String]) -> Result<(), CacheError> {
            Err(CacheError::new(std::io::Error::other("connection refused")))
        }
    }

    fn policy() -> CachePolicy {
        CachePolicy::new("tea:1", Duration::from_secs(100)).tagged("teas")
    }

    fn owed(keys: &[&str]) -> OwedInvalidation {
        OwedInvalidation {
            id: Uuid::now_v7(),
            keys: keys.iter().map(|key| (*key).to_owned()).collect(),
            tags: Vec::new(),
        }
    }

    async fn cached(store: &MapStore, keys: &[&str]) {
        for key in keys {
            store
                .put(key, b"old".to_vec(), Duration::from_secs(60), &[])
                .await
                .expect("stored");
        }
    }

    /// A store that refuses its first `refusals` marked puts, as when an
    /// invalidation crossed each of those loads, and keeps what it is given
    /// after.
    struct Refusing {
        refusals: AtomicUsize,
        value: Mutex<Option<Vec<u8>>>,
    }

    impl Refusing {
        fn first(refusals: usize) -> Self {
            Self {
                refusals: AtomicUsize::new(refusals),
                value: Mutex::new(None),
            }
        }
    }

    #[async_trait]
    impl CacheStore for Refusing {
        async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Ok(self
                .value
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone())
        }
        async fn put(
            &self,
            _: &str,
            value: Vec<u8>,
            _: Duration,
            _: &[String],
        ) -> Result<(), CacheError> {
            *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
            Ok(())
        }
        async fn invalidate(&self, _: &[String], _: &[String]) -> Result<(), CacheError> {
            Ok(())
        }
        async fn get_marked(
            &self,
            key: &str,
        ) -> Result<(Option<Vec<u8>>, Option<InvalidationMark>), CacheError> {
            Ok((self.get(key).await?, Some(InvalidationMark(0))))
        }
        async fn put_unless_invalidated(
            &self,
            key: &str,
            value: Vec<u8>,
            ttl: Duration,
            tags: &[String],
            _: Option<InvalidationMark>,
        ) -> Result<bool, CacheError> {
            let refused = self
                .refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if refused {
                return Ok(false);
            }
            self.put(key, value, ttl, tags).await?;
            Ok(true)
        }
    }

    /// `callers` tasks asking `cache` at once for one missing entry, whose
    /// load takes 50 ms; each must get the loaded value. How many loads ran,
    /// and the most that ran at one time.
    async fn concurrent_misses(cache: Cache, callers: usize) -> (usize, usize) {
        let cache = Arc::new(cache);
        let (loads, running, most_at_once) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let callers: Vec<_> = (0..callers)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let (loads, running, most_at_once) = (
                    Arc::clone(&loads),
                    Arc::clone(&running),
                    Arc::clone(&most_at_once),
                );
                tokio::spawn(async move {
                    cache
                        .get_or_load(&policy(), || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most_at_once.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, AppError>("sencha".to_owned())
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.expect("task ran").expect("loaded"), "sencha");
        }
        (
            loads.load(Ordering::SeqCst),
            most_at_once.load(Ordering::SeqCst),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_waiting_on_a_load_whose_answer_was_refused_load_side_by_side() {
        let cache = Cache::new(Arc::new(Refusing::first(usize::MAX)));
        let (loads, most_at_once) = concurrent_misses(cache, 8).await;
        assert_eq!(loads, 8, "nothing could be stored");
        assert!(
            most_at_once > 1,
            "after the first refusal the waiting callers did not queue one by one"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_one_refused_store_the_next_caller_loads_and_the_rest_read_what_it_stored() {
        let cache = Cache::new(Arc::new(Refusing::first(1)));
        let (loads, _) = concurrent_misses(cache, 8).await;
        assert_eq!(
            loads, 2,
            "the refused load, then one that was kept; no stampede"
        );
    }

    #[tokio::test]
    async fn a_catch_up_applies_what_is_owed_then_settles_it() {
        let store = Arc::new(MapStore::default());
        cached(&store, &["tea:1", "tea:2", "tea:3"]).await;
        let entries = vec![owed(&["tea:1", "tea:2"]), owed(&["tea:2"])];
        let ids: Vec<Uuid> = entries.iter().map(|entry| entry.id).collect();
        let mut journal = MockInvalidationJournal::new();
        journal
            .expect_settle()
            .withf(|ids| ids.is_empty())
            .times(1)
            .returning(|_| Ok(()));
        journal
            .expect_owed()
            .withf(|age, _| *age == Duration::from_secs(10))
            .times(1)
            .return_once(move |_, _| Ok(entries));
        journal
            .expect_settle()
            .withf(move |settled| settled == ids.as_slice())
            .times(1)
            .returning(|_| Ok(()));
        let log = InvalidationLog::new(Arc::new(journal));
        let cache = Cache::new(Arc::clone(&store) as Arc<dyn CacheStore>);

        let applied = log
            .catch_up(&cache, Duration::from_secs(10))
            .await
            .expect("caught up");

        assert_eq!(applied, 2);
        assert_eq!(store.get("tea:1").await.expect("reads"), None);
        assert_eq!(store.get("tea:2").await.expect("reads"), None);
        assert!(store.get("tea:3").await.expect("reads").is_some());
    }

    #[tokio::test]
    async fn what_the_cache_refuses_stays_owed() {
        let mut journal = MockInvalidationJournal::new();
        journal
            .expect_settle()
            .withf(|ids| ids.is_empty())
            .times(1)
            .returning(|_| Ok(()));
        journal
            .expect_owed()
            .times(1)
            .return_once(|_, _| Ok(vec![owed(&["tea:1"])]));
        let log = InvalidationLog::new(Arc::new(journal));
        let cache = Cache::new(Arc::new(DownStore));

        let refused = log.catch_up(&cache, Duration::ZERO).await;

        assert!(matches!(refused, Err(CatchUpError::Cache(_))));
        // The mock fails the test if the entry had been settled.
    }

    #[tokio::test]
    async fn entries_applied_after_their_commit_are_settled_by_the_next_catch_up_even_if_it_first_fails()
     {
        let applied = Uuid::now_v7();
        let mut journal = MockInvalidationJournal::new();
        let mut sequence = mockall::Sequence::new();
        journal
            .expect_settle()
            .withf(move |ids| ids == [applied])
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Err(RepositoryError::storage(std::io::Error::other("locked"))));
        // What is owed is still applied, then the settle is tried once more.
        journal
            .expect_owed()
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(|_, _| Ok(Vec::new()));
        journal
            .expect_settle()
            .withf(move |ids| ids == [applied])
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Err(RepositoryError::storage(std::io::Error::other("locked"))));
        journal
            .expect_settle()
            .withf(move |ids| ids == [applied])
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok(()));
        journal
            .expect_owed()
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(|_, _| Ok(Vec::new()));
        let log = InvalidationLog::new(Arc::new(journal));
        let cache = Cache::new(Arc::new(MapStore::default()));
        log.applied(applied);

        assert!(matches!(
            log.catch_up(&cache, Duration::ZERO).await,
            Err(CatchUpError::Journal(_))
        ));
        assert_eq!(
            log.catch_up(&cache, Duration::ZERO)
                .await
                .expect("caught up"),
            0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_concurrent_misses_run_the_loader_once() {
        let cache = Cache::new(Arc::new(MapStore::default()));
        let (loads, _) = concurrent_misses(cache, 100).await;
        assert_eq!(loads, 1);
    }

    #[tokio::test]
    async fn a_remembered_not_found_is_answered_without_loading() {
        let cache = Cache::new(Arc::new(MapStore::default()));
        let negative = policy().remember_not_found(Duration::from_secs(10));
        let first = cache
            .get_or_load::<String, _, _>(&negative, || async {
                Err(AppError::not_found("tea", "1"))
            })
            .await;
        assert!(matches!(first, Err(AppError::NotFound { kind: "tea", .. })));
        let second = cache
            .get_or_load::<String, _, _>(&negative, || async { panic!("must not load again") })
            .await;
        assert!(matches!(second, Err(AppError::NotFound { kind: "tea", ref id }) if id == "1"));
    }

    #[tokio::test]
    async fn errors_other_than_not_found_are_never_cached() {
        let store = Arc::new(MapStore::default());
        let cache = Cache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
        let failed = cache
            .get_or_load::<String, _, _>(&policy(), || async {
                Err(AppError::internal(std::io::Error::other("db down")))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(store.puts.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn ttls_are_jittered_within_ten_percent() {
        let store = Arc::new(MapStore::default());
        let cache = Cache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
        for n in 0..20 {
            let policy = CachePolicy::new(format!("k{n}"), Duration::from_secs(100));
            cache
                .get_or_load(&policy, || async { Ok::<_, AppError>(n) })
                .await
                .expect("loaded");
        }
        let ttls: Vec<Duration> = store
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(_, ttl)| *ttl)
            .collect();
        assert!(
            ttls.iter().all(|ttl| (90..=110).contains(&ttl.as_secs())),
            "{ttls:?}"
        );
        assert!(
            ttls.iter().any(|ttl| *ttl != ttls[0]),
            "not all the same: {ttls:?}"
        );
    }

    #[tokio::test]
    async fn an_unavailable_cache_still_answers_by_loading() {
        let cache = Cache::new(Arc::new(DownStore));
        let value = cache
            .get_or_load(&policy(), || async { Ok::<_, AppError>(7) })
            .await
            .expect("loaded despite the cache");
        assert_eq!(value, 7);
        cache.invalidate(&Invalidation::none().key("tea:1")).await;
    }
}
