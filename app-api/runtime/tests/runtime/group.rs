//! Group consumers on SQLite and PostgreSQL, over the in-process group and
//! Redis Streams (each server when its URL is set; otherwise those runs say
//! they were skipped): FAULTS.md 19 and 21 and 35–36 — an ack lost after the
//! commit is absorbed by the inbox, a stalled member's messages go to another
//! after the idle threshold and past the delivery limit to the dead-letter
//! stream, a poison message is dead-lettered with its reason and the rest of
//! its batch applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use strata_domain::ports::{EventPublisher, Message};
use strata_infrastructure::consumer::{
    ConsumerStore, Delivery, GroupSettings, GroupStatus, GroupSubscription, InProcessGroup,
    ReadError, RedisStreamsGroup,
};
use strata_infrastructure::outbox::{RedisStreamsConfig, RedisStreamsPublisher};
use strata_runtime::{GroupConsumer, GroupConsumerSettings};
use uuid::Uuid;

use crate::consumer::{Fixture, Recorder, TestDatabase, applied, message, start};

/// A broker the group lives on.
enum Broker {
    InProcess(InProcessGroup),
    Redis {
        config: RedisStreamsConfig,
        publisher: RedisStreamsPublisher,
    },
}

struct GroupFixture {
    f: Fixture,
    broker: Broker,
    settings: GroupSettings,
}

impl GroupFixture {
    async fn publish(&self, messages: &[Message]) {
        match &self.broker {
            Broker::InProcess(_) => self.f.bus.publish(messages).await,
            Broker::Redis { publisher, .. } => publisher.publish(messages).await,
        }
        .expect("published");
    }

    /// A member of the group, named `member`.
    fn member(&self, member: &str) -> Arc<dyn GroupSubscription> {
        match &self.broker {
            Broker::InProcess(group) => Arc::new(group.member(member)),
            Broker::Redis { config, .. } => Arc::new(
                RedisStreamsGroup::new(config.clone(), "recorder", member, self.settings)
                    .expect("a member"),
            ),
        }
    }

    fn consumer(&self, subscription: Arc<dyn GroupSubscription>) -> GroupConsumer {
        GroupConsumer::new(
            "recorder",
            subscription,
            ConsumerStore::new(self.f.database.clone()),
            Arc::clone(&self.f.unit_of_work),
            Arc::new(Recorder::new(&self.f.database)),
            GroupConsumerSettings {
                batch: 10,
                idle_wait: Duration::from_millis(50),
            },
        )
    }

    /// The ids of the messages the broker dead-lettered, with why.
    async fn broker_dead_letters(&self) -> Vec<(Uuid, String)> {
        match &self.broker {
            Broker::InProcess(group) => group
                .dead_letters()
                .into_iter()
                .map(|(message, reason)| (message.id, reason))
                .collect(),
            Broker::Redis { config, .. } => {
                let member =
                    RedisStreamsGroup::new(config.clone(), "recorder", "reader", self.settings)
                        .expect("a member");
                let client = redis::Client::open(config.url.as_str()).expect("a client");
                let mut connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connected");
                let mut dead = Vec::new();
                for partition in 0..config.partitions {
                    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                        .arg(member.dead_letter_key(partition))
                        .arg("-")
                        .arg("+")
                        .query_async(&mut connection)
                        .await
                        .expect("read");
                    for entry in entries.ids {
                        let id: String = entry.get("id").expect("the message id");
                        let reason: String = entry.get("dead_reason").expect("a reason");
                        dead.push((id.parse().expect("a uuid"), reason));
                    }
                }
                dead
            }
        }
    }
}

/// Runs `case` on each database engine over each broker there is.
async fn on_each_backend<F, Fut>(case: F)
where
    F: Fn(TestDatabase, bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let postgres = std::env::var("STRATA_TEST_POSTGRES_URL").ok();
    let redis = std::env::var("STRATA_TEST_REDIS_URL").is_ok();
    if postgres.is_none() {
        eprintln!("skipped on PostgreSQL: set STRATA_TEST_POSTGRES_URL to run it");
    }
    if !redis {
        eprintln!("skipped on Redis Streams: set STRATA_TEST_REDIS_URL to run it");
    }
    for on_redis in [false, true] {
        if on_redis && !redis {
            continue;
        }
        case(TestDatabase::sqlite(), on_redis).await;
        if let Some(server) = &postgres {
            case(TestDatabase::postgres(server).await, on_redis).await;
        }
    }
}

async fn fixture(database: &TestDatabase, on_redis: bool, settings: GroupSettings) -> GroupFixture {
    let f = start(database).await;
    let broker = if on_redis {
        let url = std::env::var("STRATA_TEST_REDIS_URL").expect("a Redis server");
        let config = RedisStreamsConfig {
            partitions: 2,
            ..RedisStreamsConfig::new(
                url,
                format!("strata-test-group-{}", Uuid::now_v7().simple()),
            )
        };
        Broker::Redis {
            publisher: RedisStreamsPublisher::new(config.clone()).expect("a publisher"),
            config,
        }
    } else {
        Broker::InProcess(InProcessGroup::new(
            Arc::clone(&f.bus),
            "recorder",
            settings,
        ))
    };
    GroupFixture {
        f,
        broker,
        settings,
    }
}

async fn until_idle(consumer: &GroupConsumer) {
    for _ in 0..1_000 {
        if consumer.round().await.expect("a round") == 0 {
            return;
        }
    }
    panic!("the consumer never caught up");
}

/// A member that dies right after its commit, before its ack reaches the
/// broker.
struct DiesBeforeAck {
    inner: Arc<dyn GroupSubscription>,
    died: AtomicBool,
}

#[async_trait]
impl GroupSubscription for DiesBeforeAck {
    fn group(&self) -> &str {
        self.inner.group()
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, ReadError> {
        self.inner.receive(max, wait).await
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<(), ReadError> {
        if !self.died.swap(true, Ordering::SeqCst) {
            panic!("the member died after its commit, before its ack");
        }
        self.inner.ack(deliveries).await
    }

    async fn status(&self) -> Result<GroupStatus, ReadError> {
        self.inner.status().await
    }
}

fn quick_claims() -> GroupSettings {
    GroupSettings {
        claim_idle: Duration::from_millis(400),
        max_deliveries: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_lost_after_the_commit_is_redelivered_recognised_and_acknowledged() {
    on_each_backend(|database, on_redis| async move {
        let g = fixture(&database, on_redis, quick_claims()).await;
        let sent: Vec<Message> = (1..=6)
            .map(|version| message("a", version, json!({ "n": version })))
            .collect();
        g.publish(&sent).await;
        let dying = Arc::new(g.consumer(Arc::new(DiesBeforeAck {
            inner: g.member("dying"),
            died: AtomicBool::new(false),
        })));
        let round = Arc::clone(&dying);
        let died = tokio::spawn(async move { round.round().await }).await;
        assert!(died.is_err(), "the member died before its ack");
        let (_, times) = applied(&g.f).await;
        assert!(!times.is_empty(), "its batch committed");

        let survivor = g.consumer(g.member("survivor"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        until_idle(&survivor).await;
        let (order, times) = applied(&g.f).await;
        assert_eq!(times.len(), 6);
        assert!(times.values().all(|n| *n == 1), "effect once: {times:?}");
        assert_eq!(order.get("a"), Some(&(1..=6).collect::<Vec<_>>()));
        let status = g.member("survivor").status().await.expect("a status");
        assert_eq!(status.pending, Some(0), "the pending list ends empty");
        assert_eq!(status.lag, Some(0));
        assert!(g.broker_dead_letters().await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_twice_into_one_batch_is_applied_once_by_a_group() {
    on_each_backend(|database, on_redis| async move {
        let g = fixture(&database, on_redis, quick_claims()).await;
        let once = message("a", 1, json!({ "n": 1 }));
        g.publish(&[once.clone(), once.clone()]).await;
        let consumer = g.consumer(g.member("only"));
        until_idle(&consumer).await;
        let (_, times) = applied(&g.f).await;
        assert_eq!(times.get(&once.id.to_string()), Some(&1), "{times:?}");
        let status = g.member("only").status().await.expect("a status");
        assert_eq!(status.pending, Some(0), "both copies acknowledged");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_members_messages_go_to_another_after_the_idle_threshold() {
    on_each_backend(|database, on_redis| async move {
        // A threshold the next steps cannot outlast on a busy machine.
        let settings = GroupSettings {
            claim_idle: Duration::from_secs(3),
            ..quick_claims()
        };
        let g = fixture(&database, on_redis, settings).await;
        let sent: Vec<Message> = ["a", "b", "c"]
            .iter()
            .map(|key| message(key, 1, json!({ "n": 1 })))
            .collect();
        g.publish(&sent).await;
        // It takes them and stalls: never applies, never acknowledges.
        let stalled = g.member("stalled");
        let taken = stalled.receive(10, Duration::ZERO).await.expect("received");
        assert_eq!(taken.len(), 3);

        let other = g.consumer(g.member("other"));
        assert_eq!(
            other.round().await.expect("a round"),
            0,
            "before the threshold they are the stalled member's"
        );
        tokio::time::sleep(Duration::from_millis(3_100)).await;
        until_idle(&other).await;
        let (_, times) = applied(&g.f).await;
        assert_eq!(times.len(), 3);
        assert!(times.values().all(|n| *n == 1));
        let status = stalled.status().await.expect("a status");
        assert_eq!(status.pending, Some(0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_past_its_delivery_limit_goes_to_the_dead_letter_stream_and_is_acked() {
    on_each_backend(|database, on_redis| async move {
        let g = fixture(&database, on_redis, quick_claims()).await;
        let flaky = message("a", 1, json!({ "flaky": true }));
        let fine = message("b", 1, json!({ "n": 1 }));
        g.publish(&[flaky.clone(), fine.clone()]).await;
        let consumer = g.consumer(g.member("only"));
        // Each delivery fails for a reason that may pass: left unacknowledged,
        // delivered again after the idle threshold, until the limit.
        for _ in 0..12 {
            consumer.round().await.expect("a round");
            if !g.broker_dead_letters().await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(450)).await;
        }
        let dead = g.broker_dead_letters().await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].0, flaky.id);
        assert!(dead[0].1.contains("delivered 4 times"), "{}", dead[0].1);
        let (order, times) = applied(&g.f).await;
        assert_eq!(order.get("b"), Some(&vec![1]), "the rest applied");
        assert!(!order.contains_key("a"));
        assert!(times.values().all(|n| *n == 1));
        let status = g.member("only").status().await.expect("a status");
        assert_eq!(
            status.pending,
            Some(0),
            "acknowledged where it was dead-lettered"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_in_a_group_is_dead_lettered_with_its_reason_and_the_rest_applied() {
    on_each_backend(|database, on_redis| async move {
        let g = fixture(&database, on_redis, quick_claims()).await;
        let sent = vec![
            message("a", 1, json!({ "n": 1 })),
            message("a", 2, json!({ "poison": true })),
            message("a", 3, json!({ "n": 3 })),
            message("b", 1, json!({ "n": 1 })),
        ];
        g.publish(&sent).await;
        let consumer = g.consumer(g.member("only"));
        until_idle(&consumer).await;
        let (order, times) = applied(&g.f).await;
        assert_eq!(times.len(), 3);
        assert!(times.values().all(|n| *n == 1));
        assert!(!times.contains_key(&sent[1].id.to_string()));
        assert_eq!(order.get("b"), Some(&vec![1]));
        let dead = ConsumerStore::new(g.f.database.clone())
            .dead_letters("recorder", strata_domain::PageRequest::first())
            .await
            .expect("dead letters")
            .items;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(
            dead[0].message_id.as_deref(),
            Some(sent[1].id.to_string().as_str())
        );
        assert!(
            dead[0].reason.contains("never be applied"),
            "{}",
            dead[0].reason
        );
        let status = g.member("only").status().await.expect("a status");
        assert_eq!(
            status.pending,
            Some(0),
            "the poison message was acknowledged"
        );
        assert_eq!(consumer.round().await.expect("a round"), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_entry_in_a_group_is_dead_lettered_and_the_group_goes_on() {
    let Ok(redis_url) = std::env::var("STRATA_TEST_REDIS_URL") else {
        eprintln!("skipped: set STRATA_TEST_REDIS_URL to run it");
        return;
    };
    let database = TestDatabase::sqlite();
    let g = fixture(&database, true, quick_claims()).await;
    let Broker::Redis { config, .. } = &g.broker else {
        unreachable!("made on Redis");
    };
    g.publish(&[message("a", 1, json!({ "n": 1 }))]).await;
    let client = redis::Client::open(redis_url.as_str()).expect("a client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected");
    let _: String = redis::cmd("XADD")
        .arg(config.stream_key(0))
        .arg("*")
        .arg("garbage")
        .arg("not a message")
        .query_async(&mut connection)
        .await
        .expect("garbage added");
    g.publish(&[message("a", 2, json!({ "n": 2 }))]).await;
    let consumer = g.consumer(g.member("only"));
    until_idle(&consumer).await;
    let (order, _) = applied(&g.f).await;
    assert_eq!(order.get("a").map(Vec::len), Some(2));
    let dead = ConsumerStore::new(g.f.database.clone())
        .dead_letters("recorder", strata_domain::PageRequest::first())
        .await
        .expect("dead letters")
        .items;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].reason.contains("cannot be read"),
        "{}",
        dead[0].reason
    );
    let status = g.member("only").status().await.expect("a status");
    assert_eq!(status.pending, Some(0));
}
