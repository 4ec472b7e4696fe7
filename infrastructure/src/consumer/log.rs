//! The logs ordered consumers read, one per partition, each entry at a
//! position that only grows.

use std::time::Duration;

use async_trait::async_trait;
use strata_domain::ports::Message;

use crate::outbox::InProcessBus;

/// Why a log could not be read.
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// One entry of a partition's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Where it stands in its partition; reading after it goes on from here.
    pub position: String,
    /// The message, or why it could not be read as one (it is then
    /// dead-lettered with its raw text, never retried).
    pub message: Result<Message, Undecodable>,
}

/// An entry that is not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The entry as it came.
    pub raw: String,
    /// What is wrong with it.
    pub error: String,
}

/// A log split into partitions, read from a stored position on.
#[async_trait]
pub trait PartitionLog: Send + Sync {
    /// How many partitions it has.
    fn partitions(&self) -> u32;

    /// For a log that lives in one process only, its id: consumers then keep
    /// their partitions and positions per log, each instance reading its own.
    /// `None` for a log every instance shares (a broker).
    fn local_to(&self) -> Option<&str> {
        None
    }

    /// Up to `max` entries of `partition` after `after` (from the oldest kept
    /// when `None`), waiting up to `wait` for one when there is none yet.
    ///
    /// # Errors
    /// When the log cannot be reached.
    async fn read(
        &self,
        partition: u32,
        after: Option<&str>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogEntry>, ReadError>;

    /// Registers `reader` with a log that keeps entries only while a reader
    /// needs them, before it first reads. By default nothing happens.
    fn subscribe(&self, reader: &str) {
        let _ = reader;
    }

    /// Tells the log that `reader` has committed everything of `partition` up
    /// to and including `position` and needs none of it again. By default
    /// nothing happens.
    fn passed(&self, reader: &str, partition: u32, position: &str) {
        let _ = (reader, partition, position);
    }

    /// Returns once any of `positions` (a partition and where its reader
    /// stands) has an entry after it, or after `wait`, whichever comes first:
    /// an idle consumer waits here rather than asking again and again. By
    /// default it waits `wait`.
    async fn wait_for_any(&self, positions: &[(u32, Option<String>)], wait: Duration) {
        let _ = positions;
        tokio::time::sleep(wait).await;
    }
}

#[async_trait]
impl PartitionLog for InProcessBus {
    fn partitions(&self) -> u32 {
        InProcessBus::partitions(self)
    }

    fn local_to(&self) -> Option<&str> {
        Some(self.id())
    }

    fn subscribe(&self, reader: &str) {
        InProcessBus::subscribe(self, &format!("ordered {reader}"));
    }

    fn passed(&self, reader: &str, partition: u32, position: &str) {
        if let Ok(position) = position.parse::<u64>() {
            InProcessBus::passed(
                self,
                &format!("ordered {reader}"),
                partition,
                position.saturating_add(1),
            );
        }
    }

    async fn wait_for_any(&self, positions: &[(u32, Option<String>)], wait: Duration) {
        let published = self.published();
        tokio::pin!(published);
        published.as_mut().enable();
        let waiting = positions.iter().any(|(partition, after)| {
            let next = after
                .as_deref()
                .and_then(|position| position.parse::<u64>().ok())
                .map_or(0, |position| position.saturating_add(1));
            InProcessBus::end(self, *partition) > next
        });
        if !waiting {
            let _ = tokio::time::timeout(wait, published).await;
        }
    }

    async fn read(
        &self,
        partition: u32,
        after: Option<&str>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogEntry>, ReadError> {
        let from = match after {
            None => 0,
            Some(position) => position
                .parse::<u64>()
                .map_err(|_| format!("`{position}` is not a position of the in-process bus"))?
                .saturating_add(1),
        };
        let published = self.published();
        tokio::pin!(published);
        published.as_mut().enable();
        let (mut entries, _) = InProcessBus::read(self, partition, from, max);
        if entries.is_empty() {
            let _ = tokio::time::timeout(wait, published).await;
            entries = InProcessBus::read(self, partition, from, max).0;
        }
        Ok(entries
            .into_iter()
            .map(|(offset, message)| LogEntry {
                position: offset.to_string(),
                message: Ok(message),
            })
            .collect())
    }
}

#[cfg(feature = "redis")]
pub use redis_log::RedisStreamsLog;
#[cfg(feature = "redis")]
pub(crate) use redis_log::entry_of;

#[cfg(feature = "redis")]
mod redis_log {
    use std::collections::HashMap;

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use redis::streams::{StreamReadOptions, StreamReadReply};
    use redis::{AsyncCommands, Client, IntoConnectionInfo, Value};
    use strata_domain::ports::Message;

    use super::{LogEntry, PartitionLog, ReadError, Undecodable};
    use crate::outbox::RedisStreamsConfig;

    /// Reads the streams a [`crate::outbox::RedisStreamsPublisher`] writes
    /// (`XREAD BLOCK … COUNT …` from the stored entry id), on a connection of
    /// its own, since a blocking read holds its connection.
    pub struct RedisStreamsLog {
        config: RedisStreamsConfig,
        connection: ConnectionManager,
    }

    impl std::fmt::Debug for RedisStreamsLog {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStreamsLog")
                .field("key_prefix", &self.config.key_prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisStreamsLog {
        /// A reader of `config`'s streams that waits at most `max_wait` in
        /// one read.
        ///
        /// # Errors
        /// When the URL is not a Redis URL.
        ///
        /// # Panics
        /// When called outside a Tokio runtime.
        pub fn new(
            config: RedisStreamsConfig,
            max_wait: std::time::Duration,
        ) -> Result<Self, redis::RedisError> {
            let client = Client::open(config.url.as_str().into_connection_info()?)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout + max_wait))
                .set_number_of_retries(0);
            let connection = ConnectionManager::new_lazy_with_config(client, manager)?;
            Ok(Self { config, connection })
        }
    }

    fn text(fields: &HashMap<String, Value>, name: &str) -> Result<String, String> {
        match fields.get(name) {
            Some(value) => redis::from_redis_value_ref::<String>(value)
                .map_err(|error| format!("field `{name}`: {error}")),
            None => Err(format!("no field `{name}`")),
        }
    }

    fn decode(fields: &HashMap<String, Value>) -> Result<Message, String> {
        fn number<T: std::str::FromStr<Err = std::num::ParseIntError>>(
            fields: &HashMap<String, Value>,
            name: &str,
        ) -> Result<T, String> {
            text(fields, name)?
                .parse::<T>()
                .map_err(|error| format!("field `{name}`: {error}"))
        }
        Ok(Message {
            id: text(fields, "id")?
                .parse()
                .map_err(|error| format!("field `id`: {error}"))?,
            topic: text(fields, "topic")?,
            key: text(fields, "key")?,
            version: number(fields, "version")?,
            event_type: text(fields, "type")?,
            payload: serde_json::from_str(&text(fields, "payload")?)
                .map_err(|error| format!("field `payload`: {error}"))?,
            traceparent: text(fields, "traceparent").ok(),
            recorded_at_ms: number(fields, "recorded_at")?,
        })
    }

    /// A stream entry's fields read as a message, or why they are not one.
    pub(crate) fn entry_of(fields: &HashMap<String, Value>) -> Result<Message, Undecodable> {
        decode(fields).map_err(|error| Undecodable {
            raw: raw(fields),
            error,
        })
    }

    fn raw(fields: &HashMap<String, Value>) -> String {
        let readable: std::collections::BTreeMap<&str, String> = fields
            .iter()
            .map(|(name, value)| {
                let shown = redis::from_redis_value_ref::<String>(value)
                    .unwrap_or_else(|_| format!("{value:?}"));
                (name.as_str(), shown)
            })
            .collect();
        serde_json::to_string(&readable).unwrap_or_default()
    }

    #[async_trait::async_trait]
    impl PartitionLog for RedisStreamsLog {
        fn partitions(&self) -> u32 {
            self.config.partitions
        }

        /// One `XREAD BLOCK … COUNT 1` over the partitions' streams. On a
        /// Redis Cluster, where the streams live in different slots, the
        /// command is refused and it waits `wait` instead.
        async fn wait_for_any(
            &self,
            positions: &[(u32, Option<String>)],
            wait: std::time::Duration,
        ) {
            if positions.is_empty() {
                tokio::time::sleep(wait).await;
                return;
            }
            let keys: Vec<String> = positions
                .iter()
                .map(|(partition, _)| self.config.stream_key(*partition))
                .collect();
            let after: Vec<&str> = positions
                .iter()
                .map(|(_, after)| after.as_deref().unwrap_or("0"))
                .collect();
            let options = StreamReadOptions::default().count(1).block(
                usize::try_from(wait.as_millis())
                    .unwrap_or(usize::MAX)
                    .max(1),
            );
            let mut connection = self.connection.clone();
            let read: Result<Option<StreamReadReply>, redis::RedisError> =
                connection.xread_options(&keys, &after, &options).await;
            if read.is_err() {
                tokio::time::sleep(wait).await;
            }
        }

        async fn read(
            &self,
            partition: u32,
            after: Option<&str>,
            max: usize,
            wait: std::time::Duration,
        ) -> Result<Vec<LogEntry>, ReadError> {
            let key = self.config.stream_key(partition);
            let after = after.unwrap_or("0");
            let mut options = StreamReadOptions::default().count(max);
            // No BLOCK at all for a read that must not wait: Redis times
            // blocked reads out on its clock's tick (a tenth of a second by
            // default), however short the timeout asked for.
            if !wait.is_zero() {
                options = options.block(
                    usize::try_from(wait.as_millis())
                        .unwrap_or(usize::MAX)
                        .max(1),
                );
            }
            let mut connection = self.connection.clone();
            let reply: Option<StreamReadReply> = connection
                .xread_options(&[&key], &[after], &options)
                .await?;
            Ok(reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|stream| stream.ids)
                .map(|entry| LogEntry {
                    message: entry_of(&entry.map),
                    position: entry.id,
                })
                .collect())
        }
    }
}
