//! Consumer groups: the members of a group share its messages, each message
//! delivered to one member at a time and acknowledged only after that
//! member's commit — load-balanced and unordered, where an ordered consumer
//! keeps order per aggregate.

use std::time::Duration;

use async_trait::async_trait;
use strata_domain::ports::Message;

use super::{ReadError, Undecodable};

/// One delivery of a message to a member of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The partition (stream or queue) it came from.
    pub partition: u32,
    /// The broker's handle for it: what acknowledging it names.
    pub position: String,
    /// How many times the broker delivered it, this time included.
    pub deliveries: u32,
    /// The message, or why it could not be read as one.
    pub message: Result<Message, Undecodable>,
}

/// How a group hands messages around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    /// A message a member took and left unacknowledged this long (the member
    /// stalled or died) is delivered to another member.
    pub claim_idle: Duration,
    /// A message delivered this many times without being acknowledged goes to
    /// the dead-letter stream (or exchange) and is acknowledged there, so it
    /// cannot keep a group busy for ever.
    pub max_deliveries: u32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            claim_idle: Duration::from_secs(30),
            max_deliveries: 5,
        }
    }
}

/// A group's backlog, as the broker counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStatus {
    /// Delivered to a member and not acknowledged yet, when the broker can
    /// tell (AMQP cannot).
    pub pending: Option<u64>,
    /// Not delivered to any member yet, when the broker can tell.
    pub lag: Option<u64>,
}

/// This instance's membership of a consumer group.
#[async_trait]
pub trait GroupSubscription: Send + Sync {
    /// The group's name.
    fn group(&self) -> &str;

    /// Up to about `max` messages for this member — first those other members
    /// left unacknowledged past [`GroupSettings::claim_idle`], then new ones —
    /// waiting up to `wait` for one when there is none. A message past
    /// [`GroupSettings::max_deliveries`] is dead-lettered by the broker
    /// instead of being returned.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, ReadError>;

    /// Acknowledges `deliveries`, once their effects committed: the broker
    /// forgets them.
    ///
    /// # Errors
    /// When the broker cannot be reached; the messages are then delivered
    /// again, and the consumer's inbox recognises them.
    async fn ack(&self, deliveries: &[Delivery]) -> Result<(), ReadError>;

    /// Hands `deliveries` back unacknowledged after a failure that may pass,
    /// to be delivered again, counting toward the delivery limit. By default
    /// nothing is done, and the broker delivers them again once they have
    /// been idle past [`GroupSettings::claim_idle`].
    ///
    /// # Errors
    /// When the broker cannot be reached.
    async fn release(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
        let _ = deliveries;
        Ok(())
    }

    /// The group's backlog.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    async fn status(&self) -> Result<GroupStatus, ReadError>;

    /// Leaves the group (on shutdown), handing back what it holds.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    async fn leave(&self) -> Result<(), ReadError> {
        Ok(())
    }
}

#[cfg(feature = "redis")]
pub use redis_group::RedisStreamsGroup;

#[cfg(feature = "redis")]
mod redis_group {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use redis::streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply,
        StreamPendingCountReply, StreamReadOptions, StreamReadReply,
    };
    use redis::{Client, IntoConnectionInfo};

    use super::{Delivery, GroupSettings, GroupStatus, GroupSubscription};
    use crate::consumer::{ReadError, entry_of};
    use crate::outbox::RedisStreamsConfig;

    /// A member of a consumer group over the streams a
    /// [`crate::outbox::RedisStreamsPublisher`] writes: `XREADGROUP` for new
    /// entries, `XAUTOCLAIM` for those another member left idle, `XACK` after
    /// the commit, and past the delivery limit an `XADD` to the partition's
    /// dead-letter stream with the `XACK`, in one `MULTI`.
    pub struct RedisStreamsGroup {
        config: RedisStreamsConfig,
        group: String,
        member: String,
        settings: GroupSettings,
        connection: ConnectionManager,
        /// Whether the group exists on every partition's stream.
        created: AtomicBool,
    }

    impl std::fmt::Debug for RedisStreamsGroup {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStreamsGroup")
                .field("key_prefix", &self.config.key_prefix)
                .field("group", &self.group)
                .field("member", &self.member)
                .finish_non_exhaustive()
        }
    }

    impl RedisStreamsGroup {
        /// `member` of `group` on `config`'s streams. The group is made on
        /// first use, reading each stream from its oldest entry.
        ///
        /// # Errors
        /// When the URL is not a Redis URL.
        ///
        /// # Panics
        /// When called outside a Tokio runtime.
        pub fn new(
            config: RedisStreamsConfig,
            group: impl Into<String>,
            member: impl Into<String>,
            settings: GroupSettings,
        ) -> Result<Self, redis::RedisError> {
            let client = Client::open(config.url.as_str().into_connection_info()?)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_number_of_retries(0);
            let connection = ConnectionManager::new_lazy_with_config(client, manager)?;
            Ok(Self {
                config,
                group: group.into(),
                member: member.into(),
                settings,
                connection,
                created: AtomicBool::new(false),
            })
        }

        /// Where the group's messages of `partition` go past the delivery
        /// limit: beside the partition's stream, in its hash slot.
        #[must_use]
        pub fn dead_letter_key(&self, partition: u32) -> String {
            format!(
                "{}:dead-letters:{}",
                self.config.stream_key(partition),
                self.group
            )
        }

        async fn create(&self) -> Result<(), ReadError> {
            if self.created.load(Ordering::Acquire) {
                return Ok(());
            }
            let mut connection = self.connection.clone();
            for partition in 0..self.config.partitions {
                let made: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.config.stream_key(partition))
                    .arg(&self.group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut connection)
                    .await;
                match made {
                    Ok(()) => {}
                    Err(error) if error.code() == Some("BUSYGROUP") => {}
                    Err(error) => return Err(Box::new(error)),
                }
            }
            self.created.store(true, Ordering::Release);
            Ok(())
        }

        /// Runs `pipe`; a stream deleted under the group (`NOGROUP`) has the
        /// group made again on the next call.
        async fn query<T: redis::FromRedisValue>(
            &self,
            pipe: &redis::Pipeline,
        ) -> Result<T, ReadError> {
            let mut connection = self.connection.clone();
            pipe.query_async(&mut connection).await.map_err(|error| {
                if error.code() == Some("NOGROUP") {
                    self.created.store(false, Ordering::Release);
                }
                Box::new(error) as ReadError
            })
        }

        fn per_partition(&self, max: usize) -> usize {
            max.div_ceil(self.config.partitions.max(1) as usize).max(1)
        }

        /// Entries other members left idle past the threshold, claimed for
        /// this one; those past the delivery limit dead-lettered instead.
        async fn claim(&self, max: usize) -> Result<Vec<Delivery>, ReadError> {
            let idle = u64::try_from(self.settings.claim_idle.as_millis()).unwrap_or(u64::MAX);
            let mut pipe = redis::pipe();
            for partition in 0..self.config.partitions {
                pipe.xautoclaim_options(
                    self.config.stream_key(partition),
                    &self.group,
                    &self.member,
                    idle,
                    "0-0",
                    StreamAutoClaimOptions::default().count(self.per_partition(max)),
                );
            }
            let replies: Vec<StreamAutoClaimReply> = self.query(&pipe).await?;
            let mut claimed = Vec::new();
            for (partition, reply) in (0..self.config.partitions).zip(replies) {
                let (Some(first), Some(last)) = (reply.claimed.first(), reply.claimed.last())
                else {
                    continue;
                };
                let mut pipe = redis::pipe();
                pipe.xpending_consumer_count(
                    self.config.stream_key(partition),
                    &self.group,
                    &first.id,
                    &last.id,
                    reply.claimed.len() + 100,
                    &self.member,
                );
                let (pending,): (StreamPendingCountReply,) = self.query(&pipe).await?;
                let times: HashMap<&str, usize> = pending
                    .ids
                    .iter()
                    .map(|entry| (entry.id.as_str(), entry.times_delivered))
                    .collect();
                for entry in &reply.claimed {
                    let deliveries =
                        u32::try_from(times.get(entry.id.as_str()).copied().unwrap_or(1))
                            .unwrap_or(u32::MAX);
                    if deliveries > self.settings.max_deliveries {
                        self.dead_letter(partition, entry, deliveries).await?;
                    } else {
                        claimed.push(delivery(partition, entry, deliveries));
                    }
                }
            }
            Ok(claimed)
        }

        /// Moves `entry` to the dead-letter stream and acknowledges it, both
        /// or neither.
        async fn dead_letter(
            &self,
            partition: u32,
            entry: &StreamId,
            deliveries: u32,
        ) -> Result<(), ReadError> {
            let stream = self.config.stream_key(partition);
            let mut fields: Vec<(String, Vec<u8>)> = entry
                .map
                .iter()
                .map(|(name, value)| {
                    let bytes = redis::from_redis_value_ref::<Vec<u8>>(value)
                        .unwrap_or_else(|_| format!("{value:?}").into_bytes());
                    (name.clone(), bytes)
                })
                .collect();
            fields.sort();
            fields.extend([
                (
                    "dead_reason".to_owned(),
                    format!(
                        "delivered {deliveries} times without being acknowledged (limit {})",
                        self.settings.max_deliveries
                    )
                    .into_bytes(),
                ),
                ("dead_from".to_owned(), stream.clone().into_bytes()),
                ("dead_entry".to_owned(), entry.id.clone().into_bytes()),
            ]);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .xadd(self.dead_letter_key(partition), "*", &fields)
                .ignore()
                .xack(&stream, &self.group, &[&entry.id])
                .ignore();
            self.query::<()>(&pipe).await?;
            tracing::error!(group = %self.group, stream, entry = %entry.id, deliveries, "a message past its delivery limit was dead-lettered");
            Ok(())
        }

        /// Entries no member of the group was given yet.
        async fn fresh(&self, max: usize) -> Result<Vec<Delivery>, ReadError> {
            let options = StreamReadOptions::default()
                .group(&self.group, &self.member)
                .count(self.per_partition(max));
            let mut pipe = redis::pipe();
            for partition in 0..self.config.partitions {
                pipe.xread_options(&[self.config.stream_key(partition)], &[">"], &options);
            }
            let replies: Vec<Option<StreamReadReply>> = self.query(&pipe).await?;
            Ok((0..self.config.partitions)
                .zip(replies)
                .flat_map(|(partition, reply)| {
                    reply
                        .into_iter()
                        .flat_map(|reply| reply.keys)
                        .flat_map(|stream| stream.ids)
                        .map(move |entry| delivery(partition, &entry, 1))
                })
                .collect())
        }

        /// Entries no member was given yet, waiting up to `wait` for the first:
        /// one `XREADGROUP … BLOCK` over every partition's stream. On a Redis
        /// Cluster, where the streams live in different slots, the command is
        /// refused; it then waits `wait` and reads once more.
        async fn fresh_waiting(
            &self,
            max: usize,
            wait: Duration,
        ) -> Result<Vec<Delivery>, ReadError> {
            // Within the connection's response timeout.
            let wait = wait.min(self.config.timeout / 2);
            let keys: Vec<String> = (0..self.config.partitions)
                .map(|partition| self.config.stream_key(partition))
                .collect();
            let ids: Vec<&str> = keys.iter().map(|_| ">").collect();
            let options = StreamReadOptions::default()
                .group(&self.group, &self.member)
                .count(self.per_partition(max))
                .block(
                    usize::try_from(wait.as_millis())
                        .unwrap_or(usize::MAX)
                        .max(1),
                );
            let mut pipe = redis::pipe();
            pipe.xread_options(&keys, &ids, &options);
            match self.query::<(Option<StreamReadReply>,)>(&pipe).await {
                Ok((reply,)) => Ok(reply
                    .into_iter()
                    .flat_map(|reply| reply.keys)
                    .flat_map(|stream| {
                        let partition = keys
                            .iter()
                            .position(|key| *key == stream.key)
                            .and_then(|index| u32::try_from(index).ok())
                            .unwrap_or(0);
                        stream
                            .ids
                            .into_iter()
                            .map(move |entry| delivery(partition, &entry, 1))
                    })
                    .collect()),
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    self.fresh(max).await
                }
            }
        }
    }

    fn delivery(partition: u32, entry: &StreamId, deliveries: u32) -> Delivery {
        Delivery {
            partition,
            position: entry.id.clone(),
            deliveries,
            message: entry_of(&entry.map),
        }
    }

    #[async_trait::async_trait]
    impl GroupSubscription for RedisStreamsGroup {
        fn group(&self) -> &str {
            &self.group
        }

        async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, ReadError> {
            self.create().await?;
            let mut deliveries = self.claim(max).await?;
            if deliveries.len() < max {
                deliveries.extend(self.fresh(max - deliveries.len()).await?);
            }
            if deliveries.is_empty() && !wait.is_zero() {
                deliveries = self.fresh_waiting(max, wait).await?;
            }
            Ok(deliveries)
        }

        async fn ack(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
            let mut by_partition: HashMap<u32, Vec<&str>> = HashMap::new();
            for delivery in deliveries {
                by_partition
                    .entry(delivery.partition)
                    .or_default()
                    .push(&delivery.position);
            }
            if by_partition.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for (partition, ids) in by_partition {
                pipe.xack(self.config.stream_key(partition), &self.group, &ids)
                    .ignore();
            }
            self.query::<()>(&pipe).await
        }

        async fn status(&self) -> Result<GroupStatus, ReadError> {
            let mut pipe = redis::pipe();
            for partition in 0..self.config.partitions {
                pipe.xinfo_groups(self.config.stream_key(partition));
            }
            let mut connection = self.connection.clone();
            let replies: Vec<StreamInfoGroupsReply> = match pipe.query_async(&mut connection).await
            {
                Ok(replies) => replies,
                // A stream not made yet: nothing is waiting.
                Err(error) if error.to_string().contains("no such key") => {
                    return Ok(GroupStatus {
                        pending: Some(0),
                        lag: Some(0),
                    });
                }
                Err(error) => return Err(Box::new(error)),
            };
            let mut status = GroupStatus {
                pending: Some(0),
                lag: Some(0),
            };
            for group in replies
                .iter()
                .flat_map(|reply| &reply.groups)
                .filter(|group| group.name == self.group)
            {
                status.pending = status.pending.map(|total| total + group.pending as u64);
                status.lag = match (status.lag, group.lag) {
                    (Some(total), Some(lag)) => Some(total + lag as u64),
                    _ => None,
                };
            }
            Ok(status)
        }

        async fn leave(&self) -> Result<(), ReadError> {
            // A member is forgotten only when it holds nothing: forgetting
            // one drops what it holds from the group's pending list.
            for partition in 0..self.config.partitions {
                let stream = self.config.stream_key(partition);
                let mut pipe = redis::pipe();
                pipe.xpending_consumer_count(&stream, &self.group, "-", "+", 1, &self.member);
                let (pending,): (StreamPendingCountReply,) = self.query(&pipe).await?;
                if pending.ids.is_empty() {
                    let mut pipe = redis::pipe();
                    pipe.xgroup_delconsumer(&stream, &self.group, &self.member)
                        .ignore();
                    self.query::<()>(&pipe).await?;
                }
            }
            Ok(())
        }
    }
}

pub use in_process_group::InProcessGroup;

mod in_process_group {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use strata_domain::ports::Message;

    use super::{Delivery, GroupSettings, GroupStatus, GroupSubscription};
    use crate::consumer::ReadError;
    use crate::outbox::InProcessBus;

    /// A consumer group over the [`InProcessBus`], for a service without a
    /// broker: its members (in this process) share the bus's messages as a
    /// broker's would — claimed from a member idle past the threshold,
    /// dead-lettered past the delivery limit — and, like the bus, it keeps
    /// nothing across a restart.
    #[derive(Debug, Clone)]
    pub struct InProcessGroup {
        bus: Arc<InProcessBus>,
        name: String,
        /// What the group is known as to the bus, as a reader of it.
        reader: String,
        member: String,
        settings: GroupSettings,
        state: Arc<Mutex<State>>,
    }

    #[derive(Debug, Default)]
    struct State {
        /// Per partition, the offset of the first message not delivered yet.
        next: BTreeMap<u32, u64>,
        /// Delivered and not acknowledged, by partition and offset.
        pending: BTreeMap<(u32, u64), Pending>,
        /// Given up on past the delivery limit, with why.
        dead: Vec<(Message, String)>,
    }

    #[derive(Debug)]
    struct Pending {
        member: String,
        delivered_at: Instant,
        deliveries: u32,
    }

    impl InProcessGroup {
        /// The group `name` on `bus`, as its first member.
        #[must_use]
        pub fn new(
            bus: Arc<InProcessBus>,
            name: impl Into<String>,
            settings: GroupSettings,
        ) -> Self {
            let name = name.into();
            let reader = format!("group {name}");
            bus.subscribe(&reader);
            Self {
                bus,
                name,
                reader,
                member: "0".into(),
                settings,
                state: Arc::default(),
            }
        }

        /// Another member of the same group, named `member`.
        #[must_use]
        pub fn member(&self, member: impl Into<String>) -> Self {
            Self {
                member: member.into(),
                ..self.clone()
            }
        }

        /// The messages given up on past the delivery limit, and why.
        #[must_use]
        pub fn dead_letters(&self) -> Vec<(Message, String)> {
            self.lock().dead.clone()
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Tells the bus what the group needs no more: per partition, what
        /// comes before both the first undelivered and the first pending message.
        fn release(&self, state: &State) {
            for partition in 0..self.bus.partitions() {
                let next = state.next.get(&partition).copied().unwrap_or(0);
                let pending = state
                    .pending
                    .range((partition, 0)..=(partition, u64::MAX))
                    .next()
                    .map_or(next, |((_, offset), _)| *offset);
                self.bus.passed(&self.reader, partition, next.min(pending));
            }
        }

        /// What is there for this member now.
        fn take(&self, max: usize) -> Vec<Delivery> {
            let mut state = self.lock();
            let mut deliveries = Vec::new();
            let idle: Vec<(u32, u64)> = state
                .pending
                .iter()
                .filter(|(_, pending)| pending.delivered_at.elapsed() >= self.settings.claim_idle)
                .map(|(at, _)| *at)
                .take(max)
                .collect();
            for (partition, offset) in idle {
                let message = self.bus.read(partition, offset, 1).0.pop();
                let Some(pending) = state.pending.get_mut(&(partition, offset)) else {
                    continue;
                };
                pending.deliveries += 1;
                let deliveries_so_far = pending.deliveries;
                match message {
                    Some((at, message)) if at == offset => {
                        if deliveries_so_far > self.settings.max_deliveries {
                            state.pending.remove(&(partition, offset));
                            tracing::error!(group = %self.name, partition, offset, deliveries = deliveries_so_far, "a message past its delivery limit was dead-lettered");
                            state.dead.push((
                                message,
                                format!(
                                    "delivered {deliveries_so_far} times without being acknowledged (limit {})",
                                    self.settings.max_deliveries
                                ),
                            ));
                            continue;
                        }
                        pending.member.clone_from(&self.member);
                        pending.delivered_at = Instant::now();
                        deliveries.push(Delivery {
                            partition,
                            position: offset.to_string(),
                            deliveries: deliveries_so_far,
                            message: Ok(message),
                        });
                    }
                    // Trimmed off the bus meanwhile: nothing left to deliver.
                    _ => {
                        state.pending.remove(&(partition, offset));
                    }
                }
            }
            let partitions = self.bus.partitions();
            let per_partition = max.div_ceil(partitions as usize).max(1);
            for partition in 0..partitions {
                if deliveries.len() >= max {
                    break;
                }
                let from = state.next.get(&partition).copied().unwrap_or(0);
                let (read, next) = self.bus.read(partition, from, per_partition);
                state.next.insert(partition, next);
                for (offset, message) in read {
                    state.pending.insert(
                        (partition, offset),
                        Pending {
                            member: self.member.clone(),
                            delivered_at: Instant::now(),
                            deliveries: 1,
                        },
                    );
                    deliveries.push(Delivery {
                        partition,
                        position: offset.to_string(),
                        deliveries: 1,
                        message: Ok(message),
                    });
                }
            }
            self.release(&state);
            deliveries
        }
    }

    #[async_trait::async_trait]
    impl GroupSubscription for InProcessGroup {
        fn group(&self) -> &str {
            &self.name
        }

        async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, ReadError> {
            let published = self.bus.published();
            tokio::pin!(published);
            published.as_mut().enable();
            let deliveries = self.take(max);
            if !deliveries.is_empty() || wait.is_zero() {
                return Ok(deliveries);
            }
            let _ = tokio::time::timeout(wait, published).await;
            Ok(self.take(max))
        }

        async fn ack(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
            let mut state = self.lock();
            for delivery in deliveries {
                let offset = delivery.position.parse::<u64>().map_err(|_| {
                    format!(
                        "`{}` is not a position of the in-process bus",
                        delivery.position
                    )
                })?;
                let held_by_me = state
                    .pending
                    .get(&(delivery.partition, offset))
                    .is_some_and(|pending| pending.member == self.member);
                if held_by_me {
                    state.pending.remove(&(delivery.partition, offset));
                }
            }
            self.release(&state);
            Ok(())
        }

        async fn status(&self) -> Result<GroupStatus, ReadError> {
            let state = self.lock();
            let lag = (0..self.bus.partitions())
                .map(|partition| {
                    let next = state.next.get(&partition).copied().unwrap_or(0);
                    self.bus.end(partition).saturating_sub(next)
                })
                .sum();
            Ok(GroupStatus {
                pending: Some(state.pending.len() as u64),
                lag: Some(lag),
            })
        }
    }
}
