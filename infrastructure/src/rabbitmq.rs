//! RabbitMQ as the event bus: publisher confirms, a durable quorum queue per
//! consumer group, manual acknowledgements, and a dead-letter exchange that
//! takes a message past its delivery limit.
//!
//! Topology, all durable and declared by whoever connects first:
//!
//! * the direct exchange `{prefix}.events`; a message's routing key is its
//!   partition (`0`…`partitions - 1`), computed from its key as everywhere;
//! * per group, the quorum queue `{prefix}.{group}` bound to every partition,
//!   with `x-delivery-limit` and `x-dead-letter-exchange`;
//! * the direct exchange `{prefix}.dead-letters` and, per group, the queue
//!   `{prefix}.{group}.dead-letters` that keeps what that group gave up on.
//!
//! RabbitMQ routes a message only to queues that exist when it is published,
//! so the publisher declares the groups it is told of
//! ([`RabbitMqConfig::groups`]) before its first publish, and a message no
//! queue takes is not confirmed as published: it stays in the outbox.
//! RabbitMQ keeps no log to read from an offset, so it serves consumer groups
//! only; ordered consumers read Redis Streams or the in-process bus.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind, Queue,
};
use strata_domain::ports::{EventPublisher, Message, PublishError};
use tokio::sync::Mutex;

use crate::consumer::{
    Delivery, GroupSettings, GroupStatus, GroupSubscription, ReadError, Undecodable,
};

/// Where a RabbitMQ bus lives and how it is laid out.
#[derive(Debug, Clone)]
pub struct RabbitMqConfig {
    /// The server, as an `amqp://` URL.
    pub url: String,
    /// Put before every exchange and queue name.
    pub prefix: String,
    /// How many partitions (routing keys) messages are spread over by key.
    pub partitions: u32,
    /// The consumer groups whose queues the publisher makes before it
    /// publishes, so no message is published before its group's queue exists.
    pub groups: Vec<String>,
    /// How the groups of [`RabbitMqConfig::groups`], and the group a
    /// [`RabbitMqGroup`] joins, hand messages around; RabbitMQ applies the delivery
    /// limit itself, and redelivers a member's unacknowledged messages when
    /// its channel closes (or the broker's `consumer_timeout` passes).
    pub group_settings: GroupSettings,
    /// Messages a member holds unacknowledged at most.
    pub prefetch: u16,
    /// How long connecting, and each publish, may take.
    pub timeout: Duration,
}

impl RabbitMqConfig {
    /// A configuration for `url` under `prefix`, 8 partitions, no groups,
    /// the default group settings, a prefetch of 200 and 5-second timeouts.
    #[must_use]
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            partitions: 8,
            groups: Vec::new(),
            group_settings: GroupSettings::default(),
            prefetch: 200,
            timeout: Duration::from_secs(5),
        }
    }

    /// The exchange messages are published to.
    #[must_use]
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// The queue of `group`.
    #[must_use]
    pub fn queue(&self, group: &str) -> String {
        format!("{}.{group}", self.prefix)
    }

    /// The exchange that takes what a group gives up on.
    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// The queue that keeps what `group` gave up on.
    #[must_use]
    pub fn dead_letter_queue(&self, group: &str) -> String {
        format!("{}.{group}.dead-letters", self.prefix)
    }
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> PublishError {
    PublishError::Unavailable(Box::new(error))
}

async fn connect(config: &RabbitMqConfig) -> Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    declare_exchange(&channel, config.exchange()).await?;
    Ok((connection, channel))
}

/// Makes the durable direct exchange `name`.
async fn declare_exchange(channel: &Channel, name: String) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Makes `group`'s queue, whose messages go to its dead-letter queue past
/// `settings`' delivery limit, and that dead-letter queue, bound as they must
/// be; answers the group's queue as the broker reports it. Every declarer of
/// a group must give it the same settings.
async fn declare_group(
    channel: &Channel,
    config: &RabbitMqConfig,
    group: &str,
    settings: GroupSettings,
) -> Result<Queue, lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    declare_exchange(channel, config.dead_letter_exchange()).await?;
    channel
        .queue_declare(
            config.dead_letter_queue(group).into(),
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            config.dead_letter_queue(group).into(),
            config.dead_letter_exchange().into(),
            group.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    // RabbitMQ counts returns: a limit of N - 1 returns is N deliveries.
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(
            i32::try_from(settings.max_deliveries.saturating_sub(1)).unwrap_or(i32::MAX),
        ),
    );
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(config.dead_letter_exchange().into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(group.into()),
    );
    let queue = channel
        .queue_declare(config.queue(group).into(), durable, arguments)
        .await?;
    for partition in 0..config.partitions {
        channel
            .queue_bind(
                config.queue(group).into(),
                config.exchange().into(),
                partition.to_string().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(queue)
}

/// Publishes to RabbitMQ with publisher confirms: a batch is published on
/// one confirming channel, `mandatory`, persistent, each message with its id
/// as the AMQP `message-id`; it is published once the broker confirmed every
/// message and routed each to a queue.
pub struct RabbitMqPublisher {
    config: RabbitMqConfig,
    /// The groups whose queues it makes before publishing.
    groups: std::sync::Mutex<Vec<(String, GroupSettings)>>,
    /// The connection and its confirming channel, made on first use and
    /// again after a failure, and how many of the groups it declared.
    open: Mutex<Option<Open>>,
}

struct Open {
    connection: Connection,
    channel: Channel,
    declared: usize,
}

impl std::fmt::Debug for RabbitMqPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqPublisher")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl RabbitMqPublisher {
    /// A publisher for `config`; it connects on first use.
    #[must_use]
    pub fn new(config: RabbitMqConfig) -> Self {
        let groups = config
            .groups
            .iter()
            .map(|group| (group.clone(), config.group_settings))
            .collect();
        Self {
            config,
            groups: std::sync::Mutex::new(groups),
            open: Mutex::new(None),
        }
    }

    /// Makes `group`'s queue, with `settings`, before the next publish, so
    /// the group receives every message published from then on.
    pub fn declare(&self, group: impl Into<String>, settings: GroupSettings) {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((group.into(), settings));
    }

    async fn channel(&self) -> Result<Channel, lapin::Error> {
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut open = self.open.lock().await;
        let reusable = open.as_ref().is_some_and(|open| {
            open.connection.status().connected() && open.channel.status().connected()
        });
        let open = match open.as_mut() {
            Some(open) if reusable => open,
            _ => {
                let (connection, channel) = connect(&self.config).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                open.insert(Open {
                    connection,
                    channel,
                    declared: 0,
                })
            }
        };
        for (group, settings) in groups.iter().skip(open.declared) {
            declare_group(&open.channel, &self.config, group, *settings).await?;
            open.declared += 1;
        }
        Ok(open.channel.clone())
    }

    async fn publish_confirmed(&self, messages: &[Message]) -> Result<(), PublishError> {
        let channel = self.channel().await.map_err(unavailable)?;
        let mut confirms = Vec::with_capacity(messages.len());
        for message in messages {
            let body = serde_json::to_vec(message)
                .map_err(|error| PublishError::Refused(error.to_string()))?;
            let properties = BasicProperties::default()
                .with_message_id(message.id.to_string().into())
                .with_content_type("application/json".into())
                .with_type(message.event_type.as_str().into())
                .with_delivery_mode(2);
            let routing_key = message.partition(self.config.partitions).to_string();
            let confirm = channel
                .basic_publish(
                    self.config.exchange().into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties,
                )
                .await
                .map_err(unavailable)?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await.map_err(unavailable)? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(PublishError::Unavailable(
                        "no queue is bound to take the message yet".into(),
                    ));
                }
                Confirmation::Nack(_) => {
                    return Err(PublishError::Unavailable(
                        "the broker could not store the message".into(),
                    ));
                }
                Confirmation::NotRequested => {
                    return Err(PublishError::Unavailable(
                        "the channel does not confirm publishes".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventPublisher for RabbitMqPublisher {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        if messages.is_empty() {
            return Ok(());
        }
        let outcome =
            match tokio::time::timeout(self.config.timeout, self.publish_confirmed(messages)).await
            {
                Ok(outcome) => outcome,
                Err(elapsed) => Err(unavailable(elapsed)),
            };
        if let Err(PublishError::Unavailable(_)) = &outcome {
            // Start afresh next time: the channel may be closed or stuck.
            self.open.lock().await.take();
        }
        outcome
    }
}

/// A member of a consumer group on RabbitMQ: a consumer on the group's queue
/// with manual acknowledgements. A message it returns (a failure that may
/// pass) is delivered again at once, and past the delivery limit RabbitMQ
/// moves it to the group's dead-letter queue.
pub struct RabbitMqGroup {
    config: RabbitMqConfig,
    group: String,
    member: String,
    open: Mutex<Option<Member>>,
}

struct Member {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    /// Which channel this is: delivery tags mean nothing on another.
    generation: u64,
}

impl std::fmt::Debug for RabbitMqGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqGroup")
            .field("prefix", &self.config.prefix)
            .field("group", &self.group)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

fn read_error(error: lapin::Error) -> ReadError {
    Box::new(error)
}

fn delivery_count(properties: &BasicProperties) -> u32 {
    let count = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-delivery-count"))
        .and_then(|value| match value {
            AMQPValue::LongLongInt(count) => u64::try_from(*count).ok(),
            AMQPValue::LongInt(count) => u64::try_from(*count).ok(),
            AMQPValue::LongUInt(count) => Some(u64::from(*count)),
            AMQPValue::ShortInt(count) => u64::try_from(*count).ok(),
            AMQPValue::ShortShortUInt(count) => Some(u64::from(*count)),
            _ => None,
        })
        .unwrap_or(0);
    u32::try_from(count.saturating_add(1)).unwrap_or(u32::MAX)
}

impl RabbitMqGroup {
    /// `member` of `group` on `config`'s bus; it connects on first use.
    #[must_use]
    pub fn new(
        config: RabbitMqConfig,
        group: impl Into<String>,
        member: impl Into<String>,
    ) -> Self {
        Self {
            config,
            group: group.into(),
            member: member.into(),
            open: Mutex::new(None),
        }
    }

    async fn open(&self, open: &mut Option<Member>) -> Result<(), lapin::Error> {
        if let Some(member) = open.as_ref()
            && member.connection.status().connected()
            && member.channel.status().connected()
        {
            return Ok(());
        }
        let generation = open.as_ref().map_or(0, |member| member.generation + 1);
        let (connection, channel) = connect(&self.config).await?;
        declare_group(
            &channel,
            &self.config,
            &self.group,
            self.config.group_settings,
        )
        .await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                self.config.queue(&self.group).into(),
                format!("{}-{generation}", self.member).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        *open = Some(Member {
            connection,
            channel,
            consumer,
            generation,
        });
        Ok(())
    }

    fn delivery(generation: u64, delivery: &lapin::message::Delivery) -> Delivery {
        Delivery {
            partition: delivery.routing_key.as_str().parse().unwrap_or(0),
            position: format!("{generation}:{}", delivery.delivery_tag),
            deliveries: delivery_count(&delivery.properties),
            message: serde_json::from_slice::<Message>(&delivery.data).map_err(|error| {
                Undecodable {
                    raw: String::from_utf8_lossy(&delivery.data).into_owned(),
                    error: error.to_string(),
                }
            }),
        }
    }

    /// The tags of `deliveries` taken on `member`'s channel; those of an
    /// earlier channel are redelivered by the broker anyway.
    fn tags(member: &Member, deliveries: &[Delivery]) -> Vec<u64> {
        deliveries
            .iter()
            .filter_map(|delivery| {
                let (generation, tag) = delivery.position.split_once(':')?;
                (generation.parse::<u64>().ok()? == member.generation)
                    .then(|| tag.parse::<u64>().ok())
                    .flatten()
            })
            .collect()
    }

    /// Hands `deliveries` back to the queue to be delivered again (counting
    /// toward the delivery limit).
    ///
    /// # Errors
    /// When the broker cannot be reached; they are then redelivered when the
    /// channel closes.
    pub async fn release(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
        let open = self.open.lock().await;
        let Some(member) = open.as_ref() else {
            return Ok(());
        };
        for tag in Self::tags(member, deliveries) {
            member
                .channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    },
                )
                .await
                .map_err(read_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl GroupSubscription for RabbitMqGroup {
    fn group(&self) -> &str {
        &self.group
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, ReadError> {
        let mut open = self.open.lock().await;
        if let Err(error) = self.open(&mut open).await {
            open.take();
            return Err(read_error(error));
        }
        let Some(member) = open.as_mut() else {
            return Ok(Vec::new());
        };
        let mut deliveries = Vec::new();
        let first = if wait.is_zero() {
            member.consumer.next().now_or_never().flatten()
        } else {
            tokio::time::timeout(wait, member.consumer.next())
                .await
                .ok()
                .flatten()
        };
        let mut next = first;
        while let Some(delivery) = next {
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(error) => {
                    open.take();
                    return Err(read_error(error));
                }
            };
            deliveries.push(Self::delivery(member.generation, &delivery));
            if deliveries.len() >= max {
                break;
            }
            next = member.consumer.next().now_or_never().flatten();
        }
        Ok(deliveries)
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
        let open = self.open.lock().await;
        let Some(member) = open.as_ref() else {
            return Ok(());
        };
        for tag in Self::tags(member, deliveries) {
            member
                .channel
                .basic_ack(tag, BasicAckOptions::default())
                .await
                .map_err(read_error)?;
        }
        Ok(())
    }

    async fn release(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
        RabbitMqGroup::release(self, deliveries).await
    }

    async fn status(&self) -> Result<GroupStatus, ReadError> {
        let (connection, channel) = connect(&self.config).await.map_err(read_error)?;
        let queue = declare_group(
            &channel,
            &self.config,
            &self.group,
            self.config.group_settings,
        )
        .await
        .map_err(read_error)?;
        let _ = connection.close(200, "done".into()).await;
        Ok(GroupStatus {
            // AMQP does not tell how many are delivered and unacknowledged.
            pending: None,
            lag: Some(u64::from(queue.message_count())),
        })
    }

    async fn leave(&self) -> Result<(), ReadError> {
        if let Some(member) = self.open.lock().await.take() {
            // Closing returns what it holds unacknowledged to the queue.
            member
                .connection
                .close(200, "leaving the group".into())
                .await
                .map_err(read_error)?;
        }
        Ok(())
    }
}
