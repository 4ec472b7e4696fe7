//! The in-process event bus: the default, so a service runs with no broker.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use strata_domain::ports::{EventPublisher, Message, PublishError};
use tokio::sync::Notify;

/// An event bus inside this process: one log per partition, each entry at an
/// offset that only grows, trimmed to the oldest `max_len` entries.
///
/// Consumers in the same process read it from the offsets they stored, and
/// only they: each instance's relay publishes into its own bus and its own
/// consumers read it, their positions kept per bus ([`InProcessBus::id`]).
/// It lives as long as the process: messages published and not yet consumed
/// when it stops are gone — their outbox rows are already marked published —
/// so a service whose consumers must not miss an event across restarts uses a
/// broker (Redis Streams).
#[derive(Debug)]
pub struct InProcessBus {
    /// Which bus this is: positions in it mean nothing to another one (the
    /// same service restarted, or another instance).
    id: String,
    partitions: Vec<Mutex<Log>>,
    max_len: usize,
    published: Notify,
}

#[derive(Debug, Default)]
struct Log {
    /// The offset of `entries[0]`.
    first: u64,
    entries: VecDeque<Message>,
}

impl InProcessBus {
    /// A bus of `partitions` logs (at least one) of at most `max_len` entries
    /// each (at least one).
    #[must_use]
    pub fn new(partitions: u32, max_len: usize) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            partitions: (0..partitions.max(1))
                .map(|_| Mutex::new(Log::default()))
                .collect(),
            max_len: max_len.max(1),
            published: Notify::new(),
        }
    }

    /// This bus's id, new with each one.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many partitions it has.
    #[must_use]
    pub fn partitions(&self) -> u32 {
        u32::try_from(self.partitions.len()).unwrap_or(u32::MAX)
    }

    /// Up to `max` messages of `partition` from offset `from` on, each with
    /// its offset, and the offset to read from next. A `from` older than the
    /// oldest entry kept starts at the oldest kept.
    #[must_use]
    pub fn read(&self, partition: u32, from: u64, max: usize) -> (Vec<(u64, Message)>, u64) {
        let Some(log) = self.partitions.get(partition as usize) else {
            return (Vec::new(), from);
        };
        let log = log.lock().unwrap_or_else(PoisonError::into_inner);
        let start = from.max(log.first);
        let skip = usize::try_from(start - log.first).unwrap_or(usize::MAX);
        let read: Vec<(u64, Message)> = log
            .entries
            .iter()
            .skip(skip)
            .take(max)
            .cloned()
            .zip(start..)
            .map(|(message, offset)| (offset, message))
            .collect();
        let next = start + read.len() as u64;
        (read, next)
    }

    /// The offset the next message published to `partition` gets.
    #[must_use]
    pub fn end(&self, partition: u32) -> u64 {
        self.partitions.get(partition as usize).map_or(0, |log| {
            let log = log.lock().unwrap_or_else(PoisonError::into_inner);
            log.first + log.entries.len() as u64
        })
    }

    /// Resolves at the next publish (register before reading, then await).
    pub fn published(&self) -> tokio::sync::futures::Notified<'_> {
        self.published.notified()
    }
}

#[async_trait]
impl EventPublisher for InProcessBus {
    fn name(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        for message in messages {
            let partition = message.partition(self.partitions());
            let mut log = self.partitions[partition as usize]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            log.entries.push_back(message.clone());
            while log.entries.len() > self.max_len {
                log.entries.pop_front();
                log.first += 1;
            }
        }
        self.published.notify_waiters();
        Ok(())
    }
}
