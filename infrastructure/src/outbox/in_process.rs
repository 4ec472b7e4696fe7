//! The in-process event bus: the default, so a service runs with no broker.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use strata_domain::ports::{EventPublisher, Message, PublishError};
use tokio::sync::Notify;

/// An event bus inside this process: one log per partition, each entry at an
/// offset that only grows.
///
/// An entry is kept while a reader still needs it: readers
/// [subscribe](InProcessBus::subscribe) and say how far they have
/// [passed](InProcessBus::passed), and what every one of them has passed is
/// dropped. Once [every reader has subscribed](InProcessBus::all_readers_subscribed),
/// a bus with none keeps nothing. Either way a partition keeps at most
/// `max_len` entries: a reader that far behind misses the oldest.
///
/// Consumers in the same process read it from the offsets they stored, and
/// only they: each instance's relay publishes into its own bus and its own
/// consumers read it, their positions kept per bus ([`InProcessBus::id`]).
/// It lives as long as the process. Its outbox rows are marked published
/// once it holds them, so what it had not delivered when the process ended —
/// killed or stopped — would be gone; [`InProcessReplay`](super::InProcessReplay)
/// records how far its readers have got and has the next process publish the
/// rest again. A broker (Redis Streams) keeps its log itself.
#[derive(Debug)]
pub struct InProcessBus {
    /// Which bus this is: positions in it mean nothing to another one (the
    /// same service restarted, or another instance).
    id: String,
    partitions: Vec<Mutex<Log>>,
    max_len: usize,
    published: Notify,
    /// Per reader, per partition, the offset of the first entry it still needs.
    readers: Mutex<BTreeMap<String, Vec<u64>>>,
    /// No reader subscribes from now on.
    readers_complete: AtomicBool,
}

#[derive(Debug, Default)]
struct Log {
    /// The offset of `entries[0]`.
    first: u64,
    /// Each message with when it was published, in milliseconds since the
    /// Unix epoch.
    entries: VecDeque<(i64, Message)>,
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
            readers: Mutex::default(),
            readers_complete: AtomicBool::new(false),
        }
    }

    /// Registers `reader`: from now on entries are kept until it has passed
    /// them, starting with those kept now. Subscribing again changes nothing.
    pub fn subscribe(&self, reader: &str) {
        let firsts: Vec<u64> = self
            .partitions
            .iter()
            .map(|log| log.lock().unwrap_or_else(PoisonError::into_inner).first)
            .collect();
        self.lock_readers()
            .entry(reader.to_owned())
            .or_insert(firsts);
    }

    /// Says that no reader subscribes after this: with none, nothing can ever
    /// be read, so nothing is kept.
    pub fn all_readers_subscribed(&self) {
        self.readers_complete.store(true, Ordering::Release);
        for partition in 0..self.partitions() {
            self.trim(partition);
        }
    }

    /// `reader` needs nothing of `partition` before offset `next` any more.
    /// A reader that never subscribed is not waited for, and moving back is
    /// ignored.
    pub fn passed(&self, reader: &str, partition: u32, next: u64) {
        {
            let mut readers = self.lock_readers();
            let Some(needed) = readers
                .get_mut(reader)
                .and_then(|positions| positions.get_mut(partition as usize))
            else {
                return;
            };
            *needed = (*needed).max(next);
        }
        self.trim(partition);
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u64>>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The offset of the first entry of `partition` some reader still needs
    /// (`u64::MAX` when no reader can come), or `None` when readers may still
    /// subscribe and none has.
    fn needed_from(&self, partition: u32) -> Option<u64> {
        let readers = self.lock_readers();
        if readers.is_empty() {
            return self
                .readers_complete
                .load(Ordering::Acquire)
                .then_some(u64::MAX);
        }
        readers
            .values()
            .filter_map(|positions| positions.get(partition as usize).copied())
            .min()
    }

    fn trim(&self, partition: u32) {
        let Some(log) = self.partitions.get(partition as usize) else {
            return;
        };
        let needed = self.needed_from(partition);
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.trim(self.max_len, needed);
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
            .map(|(_, message)| message.clone())
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

    /// When the oldest message some reader may still need was published, in
    /// milliseconds since the Unix epoch; `None` when none is kept.
    #[must_use]
    pub fn oldest_kept_ms(&self) -> Option<i64> {
        self.partitions
            .iter()
            .filter_map(|log| {
                let log = log.lock().unwrap_or_else(PoisonError::into_inner);
                log.entries.iter().map(|(published, _)| *published).min()
            })
            .min()
    }

    /// Resolves at the next publish (register before reading, then await).
    pub fn published(&self) -> tokio::sync::futures::Notified<'_> {
        self.published.notified()
    }
}

impl Log {
    /// Drops the oldest entries beyond `max_len` and those before `needed`.
    fn trim(&mut self, max_len: usize, needed: Option<u64>) {
        let needed = needed.unwrap_or(0);
        while self.entries.len() > max_len || (self.first < needed && !self.entries.is_empty()) {
            self.entries.pop_front();
            self.first += 1;
        }
    }
}

impl InProcessBus {
    /// Publishes `messages`, each with the moment it was first published
    /// (by a bus before this one), so the watermark keeps their place.
    pub(crate) fn publish_again(&self, messages: Vec<(i64, Message)>) {
        self.push(messages);
    }

    /// Appends each message, published at the moment it comes with, to its
    /// partition's log, and wakes the readers waiting for one.
    fn push(&self, messages: impl IntoIterator<Item = (i64, Message)>) {
        for (published, message) in messages {
            let partition = message.partition(self.partitions());
            let needed = self.needed_from(partition);
            let mut log = self.partitions[partition as usize]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            log.entries.push_back((published, message));
            log.trim(self.max_len, needed);
        }
        self.published.notify_waiters();
    }
}

#[async_trait]
impl EventPublisher for InProcessBus {
    fn name(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        let now = super::now_ms();
        self.push(messages.iter().map(|message| (now, message.clone())));
        Ok(())
    }

    fn publishes_in_memory(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use strata_domain::ports::EventPublisher as _;
    use strata_domain::ports::Message;

    use super::InProcessBus;

    fn message(number: u32) -> Message {
        Message {
            id: uuid::Uuid::now_v7(),
            topic: "parcel".into(),
            key: "one".into(),
            version: u64::from(number) + 1,
            event_type: "parcel.moved".into(),
            payload: serde_json::json!({ "number": number }),
            traceparent: None,
            recorded_at_ms: 0,
        }
    }

    async fn publish(bus: &InProcessBus, numbers: std::ops::Range<u32>) {
        let messages: Vec<Message> = numbers.map(message).collect();
        bus.publish(&messages).await.expect("published");
    }

    fn kept(bus: &InProcessBus) -> Vec<u64> {
        bus.read(0, 0, usize::MAX)
            .0
            .into_iter()
            .map(|(offset, _)| offset)
            .collect()
    }

    #[tokio::test]
    async fn entries_are_kept_until_every_reader_has_passed_them() {
        let bus = InProcessBus::new(1, 1_000);
        bus.subscribe("reports");
        bus.subscribe("mailer");
        publish(&bus, 0..10).await;
        bus.passed("reports", 0, 6);
        assert_eq!(kept(&bus), (0..10).collect::<Vec<_>>());
        bus.passed("mailer", 0, 3);
        assert_eq!(kept(&bus), (3..10).collect::<Vec<_>>());
        // Moving back changes nothing.
        bus.passed("mailer", 0, 1);
        bus.passed("mailer", 0, 10);
        assert_eq!(kept(&bus), (6..10).collect::<Vec<_>>());
        bus.passed("reports", 0, 10);
        assert!(kept(&bus).is_empty());
        // Offsets go on from where they were.
        publish(&bus, 10..11).await;
        assert_eq!(kept(&bus), vec![10]);
        assert_eq!(bus.end(0), 11);
    }

    #[tokio::test]
    async fn a_reader_subscribing_late_starts_from_what_is_kept() {
        let bus = InProcessBus::new(1, 1_000);
        bus.subscribe("reports");
        publish(&bus, 0..4).await;
        bus.passed("reports", 0, 2);
        bus.subscribe("mailer");
        bus.passed("reports", 0, 4);
        assert_eq!(kept(&bus), vec![2, 3]);
    }

    #[tokio::test]
    async fn with_no_reader_entries_are_kept_up_to_the_limit_until_none_can_come() {
        let bus = InProcessBus::new(1, 5);
        publish(&bus, 0..8).await;
        assert_eq!(kept(&bus), (3..8).collect::<Vec<_>>());
        bus.all_readers_subscribed();
        assert!(kept(&bus).is_empty());
        publish(&bus, 8..9).await;
        assert!(kept(&bus).is_empty());
    }

    #[tokio::test]
    async fn a_reader_too_far_behind_misses_entries_beyond_the_limit() {
        let bus = InProcessBus::new(1, 5);
        bus.subscribe("slow");
        publish(&bus, 0..8).await;
        assert_eq!(kept(&bus), (3..8).collect::<Vec<_>>());
    }
}
