//! A [`CacheStore`] in Redis, shared by every instance that uses the same key
//! prefix.
//!
//! Under a prefix `p` the store keeps:
//!
//! * `p:key:<key>` — a value, a plain string with the entry's TTL;
//! * `p:tag:<tag>` — a sorted set of the keys carrying the tag, each scored with
//!   the millisecond its entry expires;
//! * `p:invalidations` — the pub/sub channel every invalidation is announced on;
//! * `p:stamp:key:<key>`, `p:stamp:tag:<tag>` — when (the server's `TIME`, in
//!   microseconds) an invalidation last named a key or tag, kept for a minute:
//!   a value whose look-up ran at that microsecond or before is not stored.
//!   Server time, not a counter, so a restart or a flush cannot set it back;
//!   a stamp is an ordinary key with an expiry, so a server that evicts keys
//!   with one (`volatile-*`, `allkeys-*` policies) under memory pressure can
//!   drop a stamp early and let such a value through.
//!
//! Writes and invalidations are Lua scripts, so each is atomic: no invalidation
//! can run between a value being written and its joining its tags (which would
//! let the value outlive the invalidation of a tag it carries), and a value is
//! deleted and its invalidation announced in one step. A pipeline would batch
//! the commands but not isolate them; `MULTI` would isolate them but could not
//! read a tag's members and delete them in the same transaction.
//!
//! Scoring members by expiry lets every write prune the members that have
//! expired, so a tag written to forever still holds only about as many members
//! as it has live entries. The set itself expires with its longest-lived member.
//!
//! The scripts touch keys they find at run time (a tag's members), which Redis
//! Cluster forbids: use a single server or a primary with replicas.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionInfo, IntoConnectionInfo, RedisResult, Script};
use strata_domain::ports::{CacheError, CacheStore, InvalidationMark};

use super::in_memory::STAMP_TTL;

use super::invalidation_message::InvalidationMessage;

/// The longest a value may live in Redis; longer TTLs are shortened to it. It
/// keeps expiry arithmetic far from overflow, and nothing cached should outlive it.
const LONGEST_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Writes a value and adds its key to each tag — unless, given a mark, an
/// invalidation at or after it named the key or a tag; answers 1 if it
/// wrote, 0 if not.
///
/// `KEYS`: the value's key, then the tags' sets. `ARGV`: the value, its TTL in
/// milliseconds, the key as tag members name it, the store's prefix with its
/// `:`, and the mark (empty for none). A key's stamp is named after it:
/// `<prefix>stamp:` and the key without the prefix.
const PUT_SCRIPT: &str = r"
if ARGV[5] ~= '' then
  local mark = tonumber(ARGV[5])
  for i = 1, #KEYS do
    local stamp = redis.call('GET', ARGV[4] .. 'stamp:' .. string.sub(KEYS[i], #ARGV[4] + 1))
    if stamp and tonumber(stamp) >= mark then
      return 0
    end
  end
end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expires_at = string.format('%.0f', now_ms + ttl)
for i = 2, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.0f', now_ms))
  redis.call('ZADD', KEYS[i], expires_at, ARGV[3])
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
";

/// Stamps its keys and tags with the server's time in microseconds, deletes
/// the keys and every key of the tags, then announces what it deleted.
///
/// `KEYS`: the values' keys, then the tags' sets. `ARGV`: the prefix of a value's
/// key, how many of `KEYS` are values, the channel, the message announcing
/// the keys and tags (the keys found under the tags are appended to it), the
/// store's prefix with its `:`, and how long a stamp lasts in milliseconds.
const INVALIDATE_SCRIPT: &str = r"
local now = redis.call('TIME')
local number = string.format('%.0f', tonumber(now[1]) * 1000000 + tonumber(now[2]))
for i = 1, #KEYS do
  redis.call('SET', ARGV[5] .. 'stamp:' .. string.sub(KEYS[i], #ARGV[5] + 1), number, 'PX', ARGV[6])
end
local values = tonumber(ARGV[2])
for i = 1, values do
  redis.call('UNLINK', KEYS[i])
end
local message = { ARGV[4] }
for i = values + 1, #KEYS do
  for _, key in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    redis.call('UNLINK', ARGV[1] .. key)
    local item = 'k' .. key
    message[#message + 1] = #item .. ':' .. item .. ','
  end
  redis.call('UNLINK', KEYS[i])
end
redis.call('PUBLISH', ARGV[3], table.concat(message))
return #message - 1
";

/// Where a [`RedisCacheStore`] connects and how long it waits.
#[derive(Clone)]
pub struct RedisCacheConfig {
    server: ConnectionInfo,
    key_prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
}

/// A Redis URL that could not be read. The URL is left out of the message: it
/// may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("the Redis URL is malformed")]
pub struct InvalidRedisUrl(#[source] redis::RedisError);

impl RedisCacheConfig {
    /// How long connecting may take unless changed: one second.
    pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
    /// How long an answer may take unless changed: half a second.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

    /// The server at `url` (`redis://[user:password@]host[:port][/db]`), keys
    /// under `key_prefix` (`shop:cache`, say: stores with the same prefix share
    /// entries, stores with different prefixes never see each other's).
    ///
    /// # Errors
    /// When `url` is not a Redis URL, or asks for TLS (`rediss://`), which this
    /// build leaves out.
    pub fn new(url: &str, key_prefix: impl Into<String>) -> Result<Self, InvalidRedisUrl> {
        Ok(Self {
            server: url.into_connection_info().map_err(InvalidRedisUrl)?,
            key_prefix: key_prefix.into(),
            connection_timeout: Self::DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
        })
    }

    /// Gives up connecting after `timeout`.
    #[must_use]
    pub fn with_connection_timeout(self, timeout: Duration) -> Self {
        Self {
            connection_timeout: timeout,
            ..self
        }
    }

    /// Gives up waiting for an answer after `timeout`.
    #[must_use]
    pub fn with_response_timeout(self, timeout: Duration) -> Self {
        Self {
            response_timeout: timeout,
            ..self
        }
    }
}

impl std::fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `ConnectionInfo` prints the password as `<redacted>`.
        f.debug_struct("RedisCacheConfig")
            .field("server", &self.server)
            .field("key_prefix", &self.key_prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// A [`CacheStore`] in Redis: one copy of each entry, shared by every instance.
///
/// The connection is made on first use and remade after it drops; a call made
/// while Redis is unreachable fails with [`CacheError`] within the connection
/// timeout plus the response timeout, and the next call tries again. Nothing
/// waits for Redis at start-up, so a service starts (and serves uncached) while
/// Redis is down.
///
/// Every invalidation is announced on the prefix's channel, so
/// [`TwoLevelCacheStore`](super::TwoLevelCacheStore)s sharing the prefix drop
/// their local copies whichever kind of store did the invalidating.
///
/// Needs Redis 5 or later.
pub struct RedisCacheStore {
    client: Client,
    connection: ConnectionManager,
    layout: KeyLayout,
    connection_timeout: Duration,
    response_timeout: Duration,
    put_script: Script,
    invalidate_script: Script,
}

impl RedisCacheStore {
    /// A store for `config`'s server and prefix. It does not connect yet.
    ///
    /// # Errors
    /// When the Redis client cannot be set up from `config`.
    ///
    /// # Panics
    /// When called outside a Tokio runtime: the connection is driven by a task.
    pub fn new(config: RedisCacheConfig) -> Result<Self, CacheError> {
        let client = Client::open(config.server).map_err(CacheError::new)?;
        // No retries inside a call: a cache that is down should cost a caller one
        // connection attempt, not a backoff schedule. The next call tries afresh.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connection_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(CacheError::new)?;
        Ok(Self {
            client,
            connection,
            layout: KeyLayout {
                prefix: config.key_prefix,
            },
            connection_timeout: config.connection_timeout,
            response_timeout: config.response_timeout,
            put_script: Script::new(PUT_SCRIPT),
            invalidate_script: Script::new(INVALIDATE_SCRIPT),
        })
    }

    /// The value under `key` and how much longer Redis keeps it (`None`: no
    /// expiry), with the server's time as the mark.
    pub(crate) async fn get_with_remaining_ttl(
        &self,
        key: &str,
    ) -> Result<(Option<(Vec<u8>, Option<Duration>)>, InvalidationMark), CacheError> {
        let key = self.layout.value_key(key);
        let mut connection = self.connection.clone();
        let (value, remaining_ms, (seconds, micros)): (Option<Vec<u8>>, i64, (u64, u64)) = self
            .bounded(
                redis::pipe()
                    .get(&key)
                    .cmd("PTTL")
                    .arg(&key)
                    .cmd("TIME")
                    .query_async(&mut connection),
            )
            .await?;
        let remaining = u64::try_from(remaining_ms).ok().map(Duration::from_millis);
        Ok((
            value.map(|value| (value, remaining)),
            InvalidationMark(seconds.saturating_mul(1_000_000).saturating_add(micros)),
        ))
    }

    /// Asks the server for `PONG`, within the store's timeouts.
    pub(crate) async fn ping_server(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _: String = self
            .bounded(redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn channel(&self) -> String {
        self.layout.channel()
    }

    pub(crate) fn connection_timeout(&self) -> Duration {
        self.connection_timeout
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// Runs `operation`, giving up once a connection attempt and an answer have
    /// both had their full time: the client's own timeouts should fire first,
    /// this is the guarantee that nothing waits longer.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, CacheError> {
        let limit = self.connection_timeout + self.response_timeout;
        match tokio::time::timeout(limit, operation).await {
            Ok(result) => result.map_err(CacheError::new),
            Err(_) => Err(CacheError::new(NoAnswer(limit))),
        }
    }
}

impl std::fmt::Debug for RedisCacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCacheStore")
            .field("key_prefix", &self.layout.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("Redis did not answer within {0:?}")]
struct NoAnswer(Duration);

/// Where the store's keys, tag sets and channel live under its prefix.
#[derive(Debug, Clone)]
struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    fn prefix_with_separator(&self) -> String {
        format!("{}:", self.prefix)
    }

    fn value_key_prefix(&self) -> String {
        format!("{}:key:", self.prefix)
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}:key:{key}", self.prefix)
    }

    fn tag_key(&self, tag: &str) -> String {
        format!("{}:tag:{tag}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:invalidations", self.prefix)
    }
}

/// `ttl` in whole milliseconds, rounded up (Redis refuses an expiry of zero) and
/// at most [`LONGEST_TTL`].
fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.min(LONGEST_TTL).as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut connection = self.connection.clone();
        let mut get = redis::cmd("GET");
        get.arg(self.layout.value_key(key));
        self.bounded(get.query_async(&mut connection)).await
    }

    /// A zero `ttl` invalidates `key` instead: the value would be expired on
    /// arrival.
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

    async fn get_marked(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<InvalidationMark>), CacheError> {
        let (value, mark) = self.get_with_remaining_ttl(key).await?;
        Ok((value.map(|(value, _)| value), Some(mark)))
    }

    /// A zero `ttl` invalidates `key` instead, and stores nothing.
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
        let mut invocation = self.put_script.key(self.layout.value_key(key));
        for tag in tags {
            invocation.key(self.layout.tag_key(tag));
        }
        invocation
            .arg(value)
            .arg(ttl_millis(ttl))
            .arg(key)
            .arg(self.layout.prefix_with_separator())
            .arg(mark.map_or_else(String::new, |mark| mark.0.to_string()));
        let mut connection = self.connection.clone();
        let stored: i64 = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, keys: &[String], tags: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() && tags.is_empty() {
            return Ok(());
        }
        let mut invocation = self.invalidate_script.prepare_invoke();
        for key in keys {
            invocation.key(self.layout.value_key(key));
        }
        for tag in tags {
            invocation.key(self.layout.tag_key(tag));
        }
        invocation
            .arg(self.layout.value_key_prefix())
            .arg(keys.len())
            .arg(self.layout.channel())
            .arg(InvalidationMessage::encode(keys, tags))
            .arg(self.layout.prefix_with_separator())
            .arg(ttl_millis(STAMP_TTL));
        let mut connection = self.connection.clone();
        self.bounded(invocation.invoke_async::<()>(&mut connection))
            .await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.ping_server().await
    }

    fn is_remote(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_a_whole_millisecond() {
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(ttl_millis(Duration::from_millis(250)), 250);
    }

    #[test]
    fn ttls_longer_than_a_year_are_shortened() {
        assert_eq!(ttl_millis(Duration::MAX), ttl_millis(LONGEST_TTL));
    }

    #[test]
    fn the_config_never_prints_the_password() {
        let config = RedisCacheConfig::new("redis://cache:hunter2hunter2@127.0.0.1:6379/0", "p")
            .expect("a valid URL");

        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_echoing_it() {
        let error = RedisCacheConfig::new("http://:secret@nowhere", "p").expect_err("not Redis");

        assert!(!error.to_string().contains("secret"));
    }
}
