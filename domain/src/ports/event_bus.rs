//! Where events go once their transaction committed: the broker a relay hands
//! them to.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event on its way to consumers, as every broker carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message id, kept across redeliveries and republishing: consumers
    /// recognise a message they already applied by it.
    pub id: Uuid,
    /// What it is about, such as `product`: the aggregate's kind.
    pub topic: String,
    /// Which one, such as the product's id. Messages with one key are delivered
    /// in the order they were published, and partitioned by it.
    pub key: String,
    /// The aggregate version the event produced.
    pub version: u64,
    /// The event's stable type name, such as `catalog.product_created`.
    pub event_type: String,
    /// The event itself.
    pub payload: serde_json::Value,
    /// The W3C `traceparent` of the work that recorded it, so the consumer's
    /// span joins that trace.
    pub traceparent: Option<String>,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl Message {
    /// The partition of `partitions` this message's key belongs to: the same
    /// key always lands on the same one, whatever process computes it.
    #[must_use]
    pub fn partition(&self, partitions: u32) -> u32 {
        partition_of(&self.topic, &self.key, partitions)
    }
}

/// The partition of `partitions` that a key of `topic` belongs to (FNV-1a, so
/// every process and every version agrees).
#[must_use]
pub fn partition_of(topic: &str, key: &str, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes().chain([0]).chain(key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let partitions = u64::from(partitions.max(1));
    // The remainder is below `partitions`, itself a u32.
    u32::try_from(hash % partitions).unwrap_or(0)
}

/// Why a broker did not confirm a publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached or did not confirm in time: any of the
    /// messages may or may not have been stored, so all are sent again later
    /// (with their ids, which consumers recognise).
    #[error("the broker is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The broker refused a message for what it is (too large, malformed);
    /// sending it again will not help.
    #[error("the broker refused the message: {0}")]
    Refused(String),
}

/// A broker that takes messages and confirms them.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// A short name for logs and metrics (`redis-streams`).
    fn name(&self) -> &'static str;

    /// Publishes `messages` and returns once the broker has stored every one
    /// of them durably. Messages with the same key are stored in the order
    /// given.
    ///
    /// # Errors
    /// [`PublishError::Unavailable`] when the broker did not confirm them all;
    /// [`PublishError::Refused`] when it refused one for what it is.
    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError>;

    /// Whether [`EventPublisher::publish`] only hands the messages to memory
    /// in this process, answering without I/O and without waiting for
    /// anything. A relay may then keep its database transaction, and on
    /// SQLite the only write lock, open across the call. `false` unless a
    /// publisher says otherwise.
    fn publishes_in_memory(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_lands_on_the_same_partition_and_keys_spread() {
        assert_eq!(
            partition_of("product", "a", 8),
            partition_of("product", "a", 8)
        );
        let used: std::collections::BTreeSet<u32> = (0..200)
            .map(|n| partition_of("product", &n.to_string(), 8))
            .collect();
        assert_eq!(used.len(), 8, "{used:?}");
        assert!(used.iter().all(|partition| *partition < 8));
        assert_eq!(partition_of("product", "a", 0), 0);
        assert_ne!(
            (0..50)
                .filter(|n| partition_of("product", &n.to_string(), 8)
                    == partition_of("order", &n.to_string(), 8))
                .count(),
            50,
            "the topic is part of the key"
        );
    }
}

/// A message a consumer gave up on, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerDeadLetter {
    /// Its id within the consumer.
    pub id: i64,
    /// The consumer.
    pub consumer: String,
    /// The partition it came from.
    pub partition: u32,
    /// Its position there.
    pub position: String,
    /// Its message id, when it could be read.
    pub message_id: Option<String>,
    /// Its event type, when it could be read.
    pub event_type: Option<String>,
    /// Why it was given up on.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub dead_at_ms: i64,
}

/// What a retried consumer dead letter came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRetry {
    /// Applied; the dead letter is gone.
    Applied,
    /// No such consumer, or no such dead letter of it.
    NotFound,
    /// It failed again, for this reason; it stays.
    Failed(String),
}

/// The messages the service's consumers gave up on: listed per consumer, and
/// applied again once what made them fail is fixed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ConsumerDeadLetters: Send + Sync {
    /// One page of `consumer`'s dead letters, the newest first; `None` when
    /// the service has no such consumer.
    async fn list(
        &self,
        consumer: &str,
        page: crate::PageRequest,
    ) -> Result<Option<crate::Page<ConsumerDeadLetter>>, crate::RepositoryError>;

    /// Applies `consumer`'s dead letter `id` again, through its handler, in
    /// one unit of work with the dead letter's removal.
    async fn retry(&self, consumer: &str, id: i64)
    -> Result<ConsumerRetry, crate::RepositoryError>;
}
