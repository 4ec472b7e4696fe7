//! Redis Streams as the event bus: one stream per partition.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamMaxlen;
use redis::{Client, IntoConnectionInfo};
use strata_domain::ports::{EventPublisher, Message, PublishError};

/// Where a Redis Streams bus keeps its streams, and how long they grow.
#[derive(Debug, Clone)]
pub struct RedisStreamsConfig {
    /// The server, as a `redis://` URL.
    pub url: String,
    /// Put before every key, as `{prefix}:events:{3}`.
    pub key_prefix: String,
    /// How many partitions (streams) events are spread over by key.
    pub partitions: u32,
    /// Trim each stream to about this many entries (`MAXLEN ~`); `None`
    /// keeps every entry.
    pub max_len: Option<usize>,
    /// How long connecting, and each command, may take.
    pub timeout: Duration,
}

impl RedisStreamsConfig {
    /// A configuration for `url` with the prefix `key_prefix`, 8 partitions,
    /// streams trimmed to about a million entries, and 2-second timeouts.
    #[must_use]
    pub fn new(url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: key_prefix.into(),
            partitions: 8,
            max_len: Some(1_000_000),
            timeout: Duration::from_secs(2),
        }
    }

    /// The stream of `partition`. The partition is the key's hash tag, so on
    /// Redis Cluster the partitions spread over the nodes while every key of
    /// one partition stays on one.
    #[must_use]
    pub fn stream_key(&self, partition: u32) -> String {
        format!("{}:events:{{{partition}}}", self.key_prefix)
    }
}

/// Publishes to Redis Streams: each message is one `XADD` to its partition's
/// stream with the message id as a field (entries get Redis's own ids), all
/// of a batch in one pipeline; the reply to the pipeline is the broker's
/// confirmation.
pub struct RedisStreamsPublisher {
    config: RedisStreamsConfig,
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisStreamsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsPublisher")
            .field("key_prefix", &self.config.key_prefix)
            .field("partitions", &self.config.partitions)
            .finish_non_exhaustive()
    }
}

impl RedisStreamsPublisher {
    /// A publisher for `config`. It connects on first use, and again after
    /// the connection is lost.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    ///
    /// # Panics
    /// When called outside a Tokio runtime: the connection is driven by a task.
    pub fn new(config: RedisStreamsConfig) -> Result<Self, redis::RedisError> {
        let client = Client::open(config.url.as_str().into_connection_info()?)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, manager)?;
        Ok(Self { config, connection })
    }

    /// The configuration it publishes with.
    #[must_use]
    pub fn config(&self) -> &RedisStreamsConfig {
        &self.config
    }
}

/// A message as the fields of a stream entry.
pub(crate) fn entry_fields(message: &Message) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", message.id.to_string()),
        ("topic", message.topic.clone()),
        ("key", message.key.clone()),
        ("version", message.version.to_string()),
        ("type", message.event_type.clone()),
        ("payload", message.payload.to_string()),
        ("recorded_at", message.recorded_at_ms.to_string()),
    ];
    if let Some(traceparent) = &message.traceparent {
        fields.push(("traceparent", traceparent.clone()));
    }
    fields
}

#[async_trait]
impl EventPublisher for RedisStreamsPublisher {
    fn name(&self) -> &'static str {
        "redis-streams"
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for message in messages {
            let key = self
                .config
                .stream_key(message.partition(self.config.partitions));
            let fields = entry_fields(message);
            match self.config.max_len {
                Some(max_len) => pipe.xadd_maxlen(key, StreamMaxlen::Approx(max_len), "*", &fields),
                None => pipe.xadd(key, "*", &fields),
            }
            .ignore();
        }
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|error| PublishError::Unavailable(Box::new(error)))
    }
}
