//! One conformance suite for every event bus: the in-process bus, Redis
//! Streams and RabbitMQ run the same scenarios through the same two ports —
//! the [`EventPublisher`] a relay publishes with and the
//! [`GroupSubscription`] a group consumer reads with. The server backends run
//! when their URL is set (`STRATA_TEST_REDIS_URL`, `STRATA_TEST_RABBITMQ_URL`)
//! and are listed as ignored otherwise.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_domain::ports::{EventPublisher, Message};
use strata_infrastructure::consumer::{
    Delivery, GroupSettings, GroupSubscription, InProcessGroup, RedisStreamsGroup,
};
use strata_infrastructure::outbox::{InProcessBus, RedisStreamsConfig, RedisStreamsPublisher};
use strata_infrastructure::rabbitmq::{RabbitMqConfig, RabbitMqGroup, RabbitMqPublisher};
use strata_tests::servers::{fresh_prefix, rabbitmq_url, redis_url};
use uuid::Uuid;

const GROUP: &str = "conformance";
const PARTITIONS: u32 = 4;

type Joins = Box<dyn Fn(&str) -> Arc<dyn GroupSubscription> + Send + Sync>;
type DeadLetters = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<Uuid>> + Send>> + Send + Sync>;
type RawPublish = Box<dyn Fn(u32) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A bus under test: how to publish, join its group, read what its broker
/// dead-lettered, and put something that is not a message on it.
struct Bus {
    publisher: Arc<dyn EventPublisher>,
    join: Joins,
    dead_letters: DeadLetters,
    /// For a bus that carries bytes (a broker), putting garbage on
    /// `partition`; the in-process bus carries messages only, so it has none.
    raw: Option<RawPublish>,
}

fn settings() -> GroupSettings {
    GroupSettings {
        claim_idle: Duration::from_millis(300),
        max_deliveries: 3,
    }
}

fn in_process() -> Bus {
    let bus = Arc::new(InProcessBus::new(PARTITIONS, 100_000));
    let group = InProcessGroup::new(Arc::clone(&bus), GROUP, settings());
    let dead = group.clone();
    Bus {
        publisher: bus,
        join: Box::new(move |member| Arc::new(group.member(member))),
        dead_letters: Box::new(move || {
            let dead = dead.clone();
            Box::pin(async move {
                dead.dead_letters()
                    .into_iter()
                    .map(|(message, _)| message.id)
                    .collect()
            })
        }),
        raw: None,
    }
}

fn redis_streams() -> Bus {
    let config = RedisStreamsConfig {
        partitions: PARTITIONS,
        ..RedisStreamsConfig::new(redis_url(), fresh_prefix("bus"))
    };
    let publisher = Arc::new(RedisStreamsPublisher::new(config.clone()).expect("a publisher"));
    let joining = config.clone();
    let reading = config.clone();
    let raw = config;
    Bus {
        publisher,
        join: Box::new(move |member| {
            Arc::new(
                RedisStreamsGroup::new(joining.clone(), GROUP, member, settings())
                    .expect("a member"),
            )
        }),
        dead_letters: Box::new(move || {
            let config = reading.clone();
            Box::pin(async move {
                let group = RedisStreamsGroup::new(config.clone(), GROUP, "reader", settings())
                    .expect("a member");
                let mut connection = redis::Client::open(config.url.as_str())
                    .expect("a client")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connected");
                let mut ids = Vec::new();
                for partition in 0..config.partitions {
                    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                        .arg(group.dead_letter_key(partition))
                        .arg("-")
                        .arg("+")
                        .query_async(&mut connection)
                        .await
                        .expect("read");
                    for entry in entries.ids {
                        let id: String = entry.get("id").expect("the message's id");
                        ids.push(id.parse().expect("a uuid"));
                    }
                }
                ids
            })
        }),
        raw: Some(Box::new(move |partition| {
            let config = raw.clone();
            Box::pin(async move {
                let mut connection = redis::Client::open(config.url.as_str())
                    .expect("a client")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connected");
                let _: String = redis::cmd("XADD")
                    .arg(config.stream_key(partition))
                    .arg("*")
                    .arg("garbage")
                    .arg("not a message")
                    .query_async(&mut connection)
                    .await
                    .expect("added");
            })
        })),
    }
}

/// Deletes what a RabbitMQ test declared under `prefix`.
async fn remove_rabbitmq(prefix: &str) {
    let config = RabbitMqConfig::new(rabbitmq_url(), prefix);
    let connection =
        lapin::Connection::connect(&config.url, lapin::ConnectionProperties::default())
            .await
            .expect("connected");
    let channel = connection.create_channel().await.expect("a channel");
    for queue in [config.queue(GROUP), config.dead_letter_queue(GROUP)] {
        channel
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .expect("deleted");
    }
    for exchange in [config.exchange(), config.dead_letter_exchange()] {
        channel
            .exchange_delete(
                exchange.into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await
            .expect("deleted");
    }
    connection
        .close(200, "cleaned".into())
        .await
        .expect("closed");
}

fn rabbitmq(prefix: &str) -> Bus {
    let config = RabbitMqConfig {
        partitions: PARTITIONS,
        groups: vec![GROUP.to_owned()],
        group_settings: settings(),
        ..RabbitMqConfig::new(rabbitmq_url(), prefix)
    };
    let publisher = Arc::new(RabbitMqPublisher::new(config.clone()));
    let joining = config.clone();
    let reading = config.clone();
    let raw = config;
    Bus {
        publisher,
        join: Box::new(move |member| Arc::new(RabbitMqGroup::new(joining.clone(), GROUP, member))),
        dead_letters: Box::new(move || {
            let config = reading.clone();
            Box::pin(async move {
                let connection =
                    lapin::Connection::connect(&config.url, lapin::ConnectionProperties::default())
                        .await
                        .expect("connected");
                let channel = connection.create_channel().await.expect("a channel");
                let mut ids = Vec::new();
                while let Some(got) = channel
                    .basic_get(
                        config.dead_letter_queue(GROUP).into(),
                        lapin::options::BasicGetOptions::default(),
                    )
                    .await
                    .expect("read")
                {
                    let message: Message =
                        serde_json::from_slice(&got.delivery.data).expect("a message");
                    ids.push(message.id);
                }
                // Unacknowledged, they go back to the queue with the channel.
                connection.close(200, "read".into()).await.expect("closed");
                ids
            })
        }),
        raw: Some(Box::new(move |partition| {
            let config = raw.clone();
            Box::pin(async move {
                let connection =
                    lapin::Connection::connect(&config.url, lapin::ConnectionProperties::default())
                        .await
                        .expect("connected");
                let channel = connection.create_channel().await.expect("a channel");
                channel
                    .confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await
                    .expect("confirming");
                channel
                    .basic_publish(
                        config.exchange().into(),
                        partition.to_string().into(),
                        lapin::options::BasicPublishOptions::default(),
                        b"not a message",
                        lapin::BasicProperties::default(),
                    )
                    .await
                    .expect("published")
                    .await
                    .expect("confirmed");
                connection.close(200, "sent".into()).await.expect("closed");
            })
        })),
    }
}

fn message(key: &str, version: u64, payload: serde_json::Value) -> Message {
    Message {
        id: Uuid::now_v7(),
        topic: "note".into(),
        key: key.into(),
        version,
        event_type: "notes.note_written".into(),
        payload,
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        recorded_at_ms: 1_700_000_000_000 + i64::try_from(version).unwrap_or_default(),
    }
}

/// Receives until `enough` says so or ten seconds pass.
async fn receive_until(
    member: &dyn GroupSubscription,
    enough: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut received = Vec::new();
    while !enough(&received) && Instant::now() < deadline {
        received.extend(
            member
                .receive(50, Duration::from_millis(100))
                .await
                .expect("received"),
        );
    }
    received
}

fn ids(deliveries: &[Delivery]) -> Vec<Uuid> {
    deliveries
        .iter()
        .filter_map(|delivery| delivery.message.as_ref().ok())
        .map(|message| message.id)
        .collect()
}

async fn every_message_arrives_whole_in_order_per_key_and_once_acknowledged_never_again(bus: Bus) {
    let sent: Vec<Message> = (1..=6)
        .flat_map(|version| {
            ["a", "b", "c", "d"]
                .map(|key| message(key, version, json!({ "n": version, "key": key })))
        })
        .collect();
    bus.publisher.publish(&sent).await.expect("published");
    let member = (bus.join)("first");
    let received = receive_until(member.as_ref(), |got| got.len() >= sent.len()).await;
    assert_eq!(received.len(), sent.len());
    let by_id: HashMap<Uuid, &Message> = sent.iter().map(|message| (message.id, message)).collect();
    let mut versions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for delivery in &received {
        let message = delivery.message.as_ref().expect("a message");
        assert_eq!(Some(&message), by_id.get(&message.id), "arrives whole");
        assert_eq!(delivery.deliveries, 1);
        assert_eq!(
            delivery.partition,
            message.partition(PARTITIONS),
            "on its key's partition"
        );
        versions
            .entry(message.key.clone())
            .or_default()
            .push(message.version);
    }
    for (key, versions) in &versions {
        assert_eq!(versions, &(1..=6).collect::<Vec<_>>(), "order of {key}");
    }
    member.ack(&received).await.expect("acknowledged");
    tokio::time::sleep(settings().claim_idle * 2).await;
    let again = member
        .receive(50, Duration::from_millis(300))
        .await
        .expect("received");
    assert!(again.is_empty(), "acknowledged: {:?}", ids(&again));
    let other = (bus.join)("second");
    let again = other
        .receive(50, Duration::from_millis(300))
        .await
        .expect("received");
    assert!(again.is_empty(), "nor to another member: {:?}", ids(&again));
}

async fn a_member_that_goes_away_holding_messages_hands_them_to_another(bus: Bus) {
    let sent: Vec<Message> = (1..=5)
        .map(|version| message("a", version, json!({ "n": version })))
        .collect();
    bus.publisher.publish(&sent).await.expect("published");
    let leaving = (bus.join)("leaving");
    let held = receive_until(leaving.as_ref(), |got| got.len() >= sent.len()).await;
    assert_eq!(held.len(), sent.len());
    leaving.leave().await.expect("left");

    let staying = (bus.join)("staying");
    let received = receive_until(staying.as_ref(), |got| {
        ids(got).into_iter().collect::<HashSet<_>>().len() >= sent.len()
    })
    .await;
    let got: HashSet<Uuid> = ids(&received).into_iter().collect();
    let expected: HashSet<Uuid> = sent.iter().map(|message| message.id).collect();
    assert_eq!(got, expected);
    assert!(
        received.iter().all(|delivery| delivery.deliveries >= 2),
        "each counted as delivered again"
    );
    staying.ack(&received).await.expect("acknowledged");
    let status = staying.status().await.expect("a status");
    assert_eq!(status.lag, Some(0), "{status:?}");
    assert!(
        status.pending.is_none_or(|pending| pending == 0),
        "{status:?}"
    );
}

async fn a_message_handed_back_past_the_delivery_limit_is_dead_lettered_and_not_seen_again(
    bus: Bus,
) {
    let failing = message("a", 1, json!({ "fails": true }));
    let fine = message("b", 1, json!({ "n": 1 }));
    bus.publisher
        .publish(&[failing.clone(), fine.clone()])
        .await
        .expect("published");
    let member = (bus.join)("only");
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let received = member
            .receive(10, Duration::from_millis(100))
            .await
            .expect("received");
        for delivery in received {
            let id = delivery.message.as_ref().expect("a message").id;
            if id == failing.id {
                seen += 1;
                member.release(&[delivery]).await.expect("handed back");
            } else {
                member.ack(&[delivery]).await.expect("acknowledged");
            }
        }
        if !(bus.dead_letters)().await.is_empty() {
            break;
        }
    }
    assert_eq!((bus.dead_letters)().await, vec![failing.id]);
    assert_eq!(seen, settings().max_deliveries, "delivered up to the limit");
    tokio::time::sleep(settings().claim_idle * 2).await;
    let after = member
        .receive(10, Duration::from_millis(300))
        .await
        .expect("received");
    assert!(after.is_empty(), "{:?}", ids(&after));
}

async fn a_message_published_again_arrives_again_with_the_same_id(bus: Bus) {
    let once = message("a", 1, json!({ "n": 1 }));
    bus.publisher
        .publish(std::slice::from_ref(&once))
        .await
        .expect("published");
    bus.publisher
        .publish(std::slice::from_ref(&once))
        .await
        .expect("published again");
    let member = (bus.join)("only");
    let received = receive_until(member.as_ref(), |got| got.len() >= 2).await;
    assert_eq!(ids(&received), vec![once.id, once.id]);
    member.ack(&received).await.expect("acknowledged");
}

/// Every field at its edges: the largest version, a time before 1970, a key
/// and type of any text, no trace context, a payload of any JSON.
async fn a_message_at_the_edges_of_its_fields_arrives_as_it_was_sent(bus: Bus) {
    let sent = Message {
        id: Uuid::now_v7(),
        topic: "nöte\n\"x\"".into(),
        key: "ключ \u{0}\t🔑".into(),
        version: u64::MAX,
        event_type: "".into(),
        payload: json!({ "big": u64::MAX, "small": i64::MIN, "real": -1.5e300, "text": "\u{7f}\u{1f600}", "list": [null, true, {}] }),
        traceparent: None,
        recorded_at_ms: i64::MIN,
    };
    bus.publisher
        .publish(std::slice::from_ref(&sent))
        .await
        .expect("published");
    let member = (bus.join)("only");
    let received = receive_until(member.as_ref(), |got| !got.is_empty()).await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].message.as_ref().ok(),
        Some(&sent),
        "{:?}",
        received[0].message
    );
    member.ack(&received).await.expect("acknowledged");
}

async fn a_member_waiting_for_messages_gets_one_published_while_it_waits(bus: Bus) {
    let member = (bus.join)("waiting");
    // Joined, and nothing there yet.
    assert!(
        member
            .receive(10, Duration::ZERO)
            .await
            .expect("received")
            .is_empty()
    );
    let later = message("a", 1, json!({ "n": 1 }));
    let publisher = Arc::clone(&bus.publisher);
    let sent = later.clone();
    let publishing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        publisher.publish(&[sent]).await.expect("published");
    });
    let received = member
        .receive(10, Duration::from_secs(1))
        .await
        .expect("received");
    publishing.await.expect("ran");
    assert_eq!(
        ids(&received),
        vec![later.id],
        "the wait ends with the message"
    );
    member.ack(&received).await.expect("acknowledged");
}

async fn what_is_not_a_message_arrives_as_undecodable_beside_the_rest(bus: Bus) {
    let raw = bus.raw.as_ref().expect("a broker's bus carries bytes");
    let partition = message("a", 1, json!({})).partition(PARTITIONS);
    bus.publisher
        .publish(&[message("a", 1, json!({ "n": 1 }))])
        .await
        .expect("published");
    raw(partition).await;
    bus.publisher
        .publish(&[message("a", 2, json!({ "n": 2 }))])
        .await
        .expect("published");
    let member = (bus.join)("only");
    let received = receive_until(member.as_ref(), |got| got.len() >= 3).await;
    assert_eq!(received.len(), 3);
    assert!(received[0].message.is_ok());
    let undecodable = received[1].message.as_ref().expect_err("not a message");
    assert!(
        undecodable.raw.contains("not a message"),
        "{}",
        undecodable.raw
    );
    assert!(received[2].message.is_ok());
    member.ack(&received).await.expect("acknowledged");
}

/// Each scenario on each bus: in-process always, the brokers when their URL
/// is set; those after `brokers only` need a bus that carries bytes.
macro_rules! on_each_bus {
    ($($scenario:ident),+ $(,)?; brokers only: $($broker_scenario:ident),+ $(,)?) => {
        mod in_process_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::in_process()).await;
                }
            )+
        }
        on_each_bus!(@brokers $($scenario,)+ $($broker_scenario,)+);
    };
    (@brokers $($scenario:ident,)+) => {
        mod redis_streams_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
                async fn $scenario() {
                    super::$scenario(super::redis_streams()).await;
                }
            )+
        }
        mod rabbitmq_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(strata_rabbitmq), ignore = "needs RabbitMQ: set STRATA_TEST_RABBITMQ_URL")]
                async fn $scenario() {
                    let prefix = super::fresh_prefix("bus");
                    super::$scenario(super::rabbitmq(&prefix)).await;
                    super::remove_rabbitmq(&prefix).await;
                }
            )+
        }
    };
}

on_each_bus!(
    every_message_arrives_whole_in_order_per_key_and_once_acknowledged_never_again,
    a_member_that_goes_away_holding_messages_hands_them_to_another,
    a_message_handed_back_past_the_delivery_limit_is_dead_lettered_and_not_seen_again,
    a_message_published_again_arrives_again_with_the_same_id,
    a_member_waiting_for_messages_gets_one_published_while_it_waits,
    a_message_at_the_edges_of_its_fields_arrives_as_it_was_sent;
    brokers only: what_is_not_a_message_arrives_as_undecodable_beside_the_rest,
);

/// How many entries each partition of `bus` still holds.
fn kept(bus: &InProcessBus) -> Vec<usize> {
    (0..bus.partitions())
        .map(|partition| bus.read(partition, 0, usize::MAX).0.len())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_bus_keeps_only_what_its_group_has_not_acknowledged() {
    let bus = Arc::new(InProcessBus::new(PARTITIONS, 100_000));
    let group = InProcessGroup::new(Arc::clone(&bus), GROUP, settings());
    bus.all_readers_subscribed();
    let sent: Vec<Message> = (1..=5)
        .flat_map(|version| {
            ["a", "b", "c", "d", "e", "f"].map(|key| message(key, version, json!({})))
        })
        .collect();
    bus.publish(&sent).await.expect("published");
    assert_eq!(kept(&bus).iter().sum::<usize>(), 30);

    let received = receive_until(&group, |received| received.len() >= 30).await;
    assert_eq!(received.len(), 30);
    // Delivered but not acknowledged: still needed for a redelivery.
    assert_eq!(kept(&bus).iter().sum::<usize>(), 30);

    // All acknowledged but one: its partition keeps it and what follows it.
    let (held, acknowledged): (Vec<Delivery>, Vec<Delivery>) = received
        .into_iter()
        .partition(|delivery| delivery.message.as_ref().is_ok_and(|m| m.id == sent[0].id));
    group.ack(&acknowledged).await.expect("acknowledged");
    let held_partition = held[0].partition as usize;
    let after_it = acknowledged
        .iter()
        .filter(|delivery| delivery.partition as usize == held_partition)
        .count();
    for (partition, kept) in kept(&bus).into_iter().enumerate() {
        let expected = if partition == held_partition {
            after_it + 1
        } else {
            0
        };
        assert_eq!(kept, expected, "partition {partition}");
    }

    group.ack(&held).await.expect("acknowledged");
    assert_eq!(kept(&bus), vec![0; PARTITIONS as usize]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_bus_with_no_reader_keeps_nothing_once_none_can_come() {
    let bus = InProcessBus::new(PARTITIONS, 100_000);
    bus.all_readers_subscribed();
    bus.publish(&[message("a", 1, json!({}))])
        .await
        .expect("published");
    assert_eq!(kept(&bus), vec![0; PARTITIONS as usize]);
}
