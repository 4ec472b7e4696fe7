//! A [`CacheStore`] with a small in-process level in front of Redis, kept
//! coherent across instances by broadcasting every invalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use strata_domain::ports::{CacheError, CacheStore, InvalidationMark};
use tokio::task::JoinHandle;

use super::in_memory::InMemoryCacheStore;
use super::invalidation_message::InvalidationMessage;
use super::redis_store::{RedisCacheConfig, RedisCacheStore};

/// How often the listener checks that its connection still answers. A
/// connection that died without closing (a vanished peer, a dropped route)
/// shows up only this way.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The first wait before resubscribing after a failure; it doubles on each
/// further failure up to [`LONGEST_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(100);
const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(5);

/// How a [`TwoLevelCacheStore`] is set up: its Redis, and the size and lifetime
/// of its local level.
#[derive(Debug, Clone)]
pub struct TwoLevelCacheConfig {
    redis: RedisCacheConfig,
    local_ttl: Duration,
    local_max_bytes: u64,
}

impl TwoLevelCacheConfig {
    /// The longest a value stays in the local level unless changed: five seconds.
    pub const DEFAULT_LOCAL_TTL: Duration = Duration::from_secs(5);
    /// The local level's size unless changed: 32 MiB.
    pub const DEFAULT_LOCAL_MAX_BYTES: u64 = 32 * 1024 * 1024;

    /// Redis as `redis` says, with the default local level.
    #[must_use]
    pub fn new(redis: RedisCacheConfig) -> Self {
        Self {
            redis,
            local_ttl: Self::DEFAULT_LOCAL_TTL,
            local_max_bytes: Self::DEFAULT_LOCAL_MAX_BYTES,
        }
    }

    /// Keeps a value locally for at most `ttl` (and never past its Redis expiry).
    /// This bounds how long a lost invalidation message can leave a stale value
    /// in service.
    #[must_use]
    pub fn with_local_ttl(self, ttl: Duration) -> Self {
        Self {
            local_ttl: ttl,
            ..self
        }
    }

    /// Keeps at most `max_bytes` of keys, values and tags locally.
    #[must_use]
    pub fn with_local_max_bytes(self, max_bytes: u64) -> Self {
        Self {
            local_max_bytes: max_bytes,
            ..self
        }
    }
}

/// A [`CacheStore`] that answers from this process's memory when it can and
/// from Redis otherwise, for values read far more often than written.
///
/// Every instance sharing the Redis key prefix keeps its own local copies.
/// An invalidation deletes from Redis and announces the deleted keys and tags on
/// the prefix's channel in one atomic step; each instance's listener task drops
/// them from its local level when the announcement arrives. Until then — the
/// time pub/sub takes to deliver, typically well under a millisecond on a local
/// network — another instance may still serve the old value.
///
/// Pub/sub does not queue messages for a listener that is not connected, so the
/// local level is used only while the listener is: when its connection drops or
/// stops answering a heartbeat, the local level is emptied and reads go to Redis
/// until the listener has subscribed again (it retries with a doubling backoff).
/// What remains is a connection that dies silently between heartbeats; the local
/// TTL, kept short, bounds that case.
///
/// A read or write that races with an invalidation never leaves the value it
/// was carrying in the local level: any invalidation (or listener reconnect)
/// that happens while it is in flight makes it drop its local copy.
///
/// Needs a Tokio runtime: the listener is a task, stopped when the store is dropped.
pub struct TwoLevelCacheStore {
    local: Arc<LocalLevel>,
    redis: RedisCacheStore,
    local_ttl: Duration,
    _listener: ListenerTask,
}

/// The local entries and what decides whether they may be trusted.
struct LocalLevel {
    entries: InMemoryCacheStore,
    /// Whether invalidations from other instances are reaching this one.
    listening: AtomicBool,
    /// Counts every event that may make a value read earlier stale: an
    /// invalidation here or from elsewhere, and the listener connecting or
    /// disconnecting. A local fill keeps its value only if this did not move
    /// while the value was being fetched.
    generation: AtomicU64,
}

impl LocalLevel {
    fn is_trusted(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `value` locally unless the level is untrusted or `generation` has
    /// moved on since the value was fetched.
    async fn keep(
        self: &Arc<Self>,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
        generation: u64,
    ) {
        if !self.is_trusted() {
            return;
        }
        let level = Arc::clone(self);
        let key = key.to_owned();
        let tags = tags.to_vec();
        // Insert, then check: an invalidation that bumps the generation after the
        // check removes its keys after the insert, so one side or the other
        // always removes a value that raced with it. Abandoned between the two
        // steps, the value would stay unchecked; as a task of its own the pair
        // finishes even if the caller gives up.
        let checked = tokio::spawn(async move {
            let _infallible = level.entries.put(&key, value, ttl, &tags).await;
            if level.generation() != generation {
                level.entries.remove(&key).await;
            }
        });
        let _finished_even_if_not_awaited = checked.await;
    }

    async fn drop_entries(&self, keys: &[String], tags: &[String]) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.forget(keys, tags).await;
    }

    fn start_trusting(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.listening.store(true, Ordering::SeqCst);
    }

    fn stop_trusting(&self) {
        self.listening.store(false, Ordering::SeqCst);
        self.drop_everything();
    }

    fn drop_everything(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }
}

impl TwoLevelCacheStore {
    /// A store for `config`, with its listener started. Neither connects before
    /// returning: until the listener has subscribed, reads and writes go
    /// straight to Redis.
    ///
    /// # Errors
    /// When the Redis client cannot be set up from the configuration.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn new(config: TwoLevelCacheConfig) -> Result<Self, CacheError> {
        let redis = RedisCacheStore::new(config.redis)?;
        let local = Arc::new(LocalLevel {
            entries: InMemoryCacheStore::with_max_bytes(config.local_max_bytes),
            listening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        });
        let listener = Listener {
            local: Arc::clone(&local),
            client: redis.client().clone(),
            channel: redis.channel(),
            connection_timeout: redis.connection_timeout(),
            response_timeout: redis.response_timeout(),
        };
        Ok(Self {
            local,
            redis,
            local_ttl: config.local_ttl,
            _listener: ListenerTask(tokio::spawn(listener.run())),
        })
    }

    /// Whether invalidations from other instances are being received, and so
    /// whether the local level is in use.
    pub fn is_listening(&self) -> bool {
        self.local.is_trusted()
    }
}

impl std::fmt::Debug for TwoLevelCacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoLevelCacheStore")
            .field("local", &self.local.entries)
            .field("redis", &self.redis)
            .field("local_ttl", &self.local_ttl)
            .field("listening", &self.is_listening())
            .finish()
    }
}

#[async_trait]
impl CacheStore for TwoLevelCacheStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.get_marked(key).await?.0)
    }

    /// A zero `ttl` invalidates `key` instead, everywhere.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
    ) -> Result<(), CacheError> {
        self.put_unless_invalidated(key, value, ttl, tags, None)
            .await
            .map(|_| ())
    }

    /// A local hit carries no mark: only a miss is loaded and stored after.
    async fn get_marked(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<InvalidationMark>), CacheError> {
        if self.local.is_trusted()
            && let Some(value) = self.local.entries.get(key).await?
        {
            return Ok((Some(value), None));
        }
        let generation = self.local.generation();
        let (found, mark) = self.redis.get_with_remaining_ttl(key).await?;
        let Some((value, remaining)) = found else {
            return Ok((None, Some(mark)));
        };
        let ttl = remaining.map_or(self.local_ttl, |remaining| remaining.min(self.local_ttl));
        self.local
            .keep(key, value.clone(), ttl, &[], generation)
            .await;
        Ok((Some(value), Some(mark)))
    }

    /// Redis decides, atomically, whether an invalidation came after `mark`;
    /// the local copy is kept only if Redis stored the value.
    async fn put_unless_invalidated(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        tags: &[String],
        mark: Option<InvalidationMark>,
    ) -> Result<bool, CacheError> {
        if ttl.is_zero() {
            self.invalidate(&[key.to_owned()], &[]).await?;
            return Ok(false);
        }
        let generation = self.local.generation();
        let local_copy = self.local.is_trusted().then(|| value.clone());
        let stored = self
            .redis
            .put_unless_invalidated(key, value, ttl, tags, mark)
            .await?;
        if stored && let Some(value) = local_copy {
            self.local
                .keep(key, value, ttl.min(self.local_ttl), tags, generation)
                .await;
        }
        Ok(stored)
    }

    /// Drops the local copies even when Redis cannot be reached; the other
    /// instances then learn nothing and keep theirs until their local TTL ends.
    async fn invalidate(&self, keys: &[String], tags: &[String]) -> Result<(), CacheError> {
        // Redis first: a local read that starts after the local drop must not
        // find the old value still in Redis and bring it back.
        let deleted = self.redis.invalidate(keys, tags).await;
        self.local.drop_entries(keys, tags).await;
        deleted
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.redis.ping_server().await
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// The listener's task, stopped with the store that started it.
struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Receives other instances' invalidations and applies them to the local level.
struct Listener {
    local: Arc<LocalLevel>,
    client: redis::Client,
    channel: String,
    connection_timeout: Duration,
    response_timeout: Duration,
}

impl Listener {
    async fn run(self) {
        let mut retry_wait = FIRST_RETRY_WAIT;
        loop {
            match self.subscribe().await {
                Ok((sink, stream)) => {
                    self.local.start_trusting();
                    tracing::debug!(channel = %self.channel, "listening for cache invalidations");
                    retry_wait = FIRST_RETRY_WAIT;
                    let why = self.relay(sink, stream).await;
                    self.local.stop_trusting();
                    tracing::warn!(
                        channel = %self.channel,
                        reason = why,
                        "stopped hearing cache invalidations; local cache emptied until resubscribed"
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        channel = %self.channel,
                        error = %error,
                        "cannot subscribe to cache invalidations; retrying in {retry_wait:?}"
                    );
                }
            }
            tokio::time::sleep(retry_wait).await;
            retry_wait = (retry_wait * 2).min(LONGEST_RETRY_WAIT);
        }
    }

    async fn subscribe(&self) -> Result<(PubSubSink, PubSubStream), CacheError> {
        let connection =
            tokio::time::timeout(self.connection_timeout, self.client.get_async_pubsub())
                .await
                .map_err(CacheError::new)?
                .map_err(CacheError::new)?;
        let (mut sink, stream) = connection.split();
        tokio::time::timeout(self.response_timeout, sink.subscribe(&self.channel))
            .await
            .map_err(CacheError::new)?
            .map_err(CacheError::new)?;
        Ok((sink, stream))
    }

    /// Applies messages until the connection fails, and says why it stopped.
    async fn relay(&self, mut sink: PubSubSink, mut stream: PubSubStream) -> &'static str {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return "the connection closed";
                    };
                    self.apply(message.get_payload_bytes()).await;
                }
                _ = heartbeat.tick() => {
                    let pong = tokio::time::timeout(self.response_timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return "the connection stopped answering";
                    }
                }
            }
        }
    }

    async fn apply(&self, payload: &[u8]) {
        // An instance's own announcements are applied too. It has dropped its
        // copies already, unless its `invalidate` was abandoned between Redis and
        // the local drop; this catches that case for the price of a spare miss.
        match InvalidationMessage::decode(payload) {
            Some(message) => self.local.drop_entries(&message.keys, &message.tags).await,
            None => {
                // Unreadable, so whatever it named cannot be picked out: drop it all.
                tracing::warn!(channel = %self.channel, "unreadable cache invalidation; local cache emptied");
                self.local.drop_everything();
            }
        }
    }
}
