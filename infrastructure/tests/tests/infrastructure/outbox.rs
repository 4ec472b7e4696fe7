//! The outbox relay on SQLite, PostgreSQL and MySQL: FAULTS.md 16–18, ordering per
//! aggregate, dead letters, retention, waking on commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use strata_app_api::application::AppError;
use strata_domain::ports::{
    DeadLetters, EventEnvelope, EventPublisher, Message, MessageState, Outbox, Propagation,
    PublishError, TransactionalMessages, in_unit_of_work,
};
use strata_infrastructure::outbox::{InProcessBus, InProcessReplay, OutboxRelay, RelaySettings};
use strata_infrastructure::{
    Database, SeaOrmOutbox, SeaOrmTransactionalMessages, SeaOrmUnitOfWork, migrate_up,
};
use strata_tests::database::TestDatabase;
use uuid::Uuid;

strata_tests::on_each_engine!(mysql:
    committed_events_are_published_once_in_order_per_aggregate,
    busy_aggregates_share_a_pass_in_turns,
    a_backlog_deeper_than_a_pass_looks_is_published_whole_and_in_order,
    relays_claiming_at_the_same_moment_never_take_one_event_twice,
    a_broker_outage_loses_nothing_and_delivers_in_order_after_it,
    a_relay_that_dies_before_marking_leaves_its_events_to_another_with_the_same_ids,
    two_relays_take_disjoint_batches_and_keep_each_aggregates_order,
    a_refused_event_is_dead_lettered_and_holds_back_only_its_aggregate_until_retried,
    a_dead_letter_with_a_long_tail_holds_back_only_its_own_aggregate,
    published_events_are_purged_after_the_retention_and_pending_ones_kept,
    a_commit_wakes_the_relay_without_waiting_for_the_poll,
    a_commit_on_another_instance_reaches_the_relay,
    an_event_keeps_the_trace_of_the_work_that_recorded_it,
    a_two_phase_message_committed_locally_is_delivered_though_its_submit_never_came,
    a_check_back_before_the_local_commit_fails_the_message_and_refuses_the_late_transaction,
    a_check_back_during_the_local_transaction_waits_and_leaves_the_message_committed,
    what_an_in_process_bus_had_not_delivered_is_published_again_by_the_next_process_in_order,
    what_every_reader_had_applied_is_not_published_again,
);

struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

struct Outboxes {
    database: Database,
    unit_of_work: SeaOrmUnitOfWork,
    outbox: SeaOrmOutbox,
}

async fn start(database: &TestDatabase) -> Outboxes {
    let connected = Database::connect(database.url()).await.expect("connected");
    migrate_up::<NoMigrations>(&connected)
        .await
        .expect("migrated");
    Outboxes {
        unit_of_work: SeaOrmUnitOfWork::new(connected.clone()),
        outbox: SeaOrmOutbox::new(connected.clone()),
        database: connected,
    }
}

fn quick() -> RelaySettings {
    RelaySettings {
        backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RelaySettings::default()
    }
}

impl Outboxes {
    /// Commits events `versions` of aggregate `aggregate`, one unit of work
    /// each, as repositories would.
    async fn record(&self, aggregate: &str, versions: std::ops::RangeInclusive<u64>) {
        for version in versions {
            self.record_one(aggregate, version, json!({ "n": version }))
                .await;
        }
    }

    async fn record_one(&self, aggregate: &str, version: u64, payload: serde_json::Value) {
        let outbox = &self.outbox;
        let event = EventEnvelope {
            id: Uuid::now_v7(),
            aggregate_kind: "note".into(),
            aggregate_id: aggregate.into(),
            aggregate_version: version,
            event_type: "notes.note_written".into(),
            payload,
            traceparent: None,
        };
        in_unit_of_work(&self.unit_of_work, Propagation::Required, async move {
            outbox.append(vec![event]).await?;
            Ok::<_, AppError>(())
        })
        .await
        .expect("committed");
    }

    fn relay(&self, publisher: Arc<dyn EventPublisher>, settings: RelaySettings) -> OutboxRelay {
        OutboxRelay::new(self.database.clone(), publisher, settings)
    }
}

/// Every message on the bus, partition by partition.
fn delivered(bus: &InProcessBus) -> Vec<Message> {
    (0..bus.partitions())
        .flat_map(|partition| bus.read(partition, 0, usize::MAX).0)
        .map(|(_, message)| message)
        .collect()
}

/// Each aggregate's versions in the order the bus holds them.
fn versions_by_aggregate(messages: &[Message]) -> BTreeMap<String, Vec<u64>> {
    let mut versions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for message in messages {
        versions
            .entry(message.key.clone())
            .or_default()
            .push(message.version);
    }
    versions
}

/// A broker that can be taken down, refuse poison, or die after storing.
struct Broker {
    bus: InProcessBus,
    down: AtomicBool,
    refuse_poison: AtomicBool,
    die_after_storing: AtomicBool,
    batches: std::sync::Mutex<Vec<Vec<Uuid>>>,
    calls: AtomicUsize,
}

impl Broker {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            bus: InProcessBus::new(4, 100_000),
            down: AtomicBool::new(false),
            refuse_poison: AtomicBool::new(true),
            die_after_storing: AtomicBool::new(false),
            batches: std::sync::Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl EventPublisher for Broker {
    fn name(&self) -> &'static str {
        "test-broker"
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), PublishError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError::Unavailable("connection refused".into()));
        }
        if self.refuse_poison.load(Ordering::SeqCst)
            && messages
                .iter()
                .any(|message| message.payload["poison"] == true)
        {
            return Err(PublishError::Refused("message too large".into()));
        }
        self.bus.publish(messages).await?;
        self.batches
            .lock()
            .expect("batches")
            .push(messages.iter().map(|message| message.id).collect());
        if self.die_after_storing.load(Ordering::SeqCst) {
            panic!("the relay's process died after the broker stored the batch");
        }
        Ok(())
    }
}

/// A relay running on a task of its own until stopped.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), strata_domain::RepositoryError>>,
}

impl Running {
    fn start(relay: OutboxRelay) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay
                .run(
                    async {
                        let _ = stopped.await;
                    },
                    |_| {},
                )
                .await
        });
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("ran").expect("stopped cleanly");
    }
}

/// Runs `commit`, then waits (up to 30 s) until `broker` has one message.
async fn published_after(
    broker: &Broker,
    commit: impl std::future::Future<Output = ()>,
) -> Result<(), tokio::time::error::Elapsed> {
    let published = broker.bus.published();
    tokio::pin!(published);
    published.as_mut().enable();
    commit.await;
    tokio::time::timeout(Duration::from_secs(30), published).await?;
    assert_eq!(delivered(&broker.bus).len(), 1);
    Ok(())
}

async fn drain(relay: &OutboxRelay) {
    for _ in 0..1_000 {
        if relay.relay_once().await.expect("a pass").claimed == 0 {
            return;
        }
    }
    panic!("the outbox never drained");
}

async fn a_backlog_deeper_than_a_pass_looks_is_published_whole_and_in_order(
    database: TestDatabase,
) {
    // A pass of 2 looks for heads among the 20 oldest due events: one busy
    // aggregate fills that window many times over, the quiet ones after it.
    let f = start(&database).await;
    let outbox = &f.outbox;
    let busy: Vec<EventEnvelope> = (1..=60)
        .map(|version| EventEnvelope {
            id: Uuid::now_v7(),
            aggregate_kind: "note".into(),
            aggregate_id: "busy".into(),
            aggregate_version: version,
            event_type: "notes.note_written".into(),
            payload: json!({ "n": version }),
            traceparent: None,
        })
        .collect();
    in_unit_of_work(&f.unit_of_work, Propagation::Required, async move {
        outbox.append(busy).await?;
        Ok::<_, AppError>(())
    })
    .await
    .expect("committed");
    for aggregate in ["q1", "q2", "q3"] {
        f.record(aggregate, 1..=3).await;
    }
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            batch: 2,
            ..quick()
        },
    );
    drain(&relay).await;
    let messages = delivered(&broker.bus);
    assert_eq!(messages.len(), 69);
    let versions = versions_by_aggregate(&messages);
    assert_eq!(versions["busy"], (1..=60).collect::<Vec<_>>());
    for quiet in ["q1", "q2", "q3"] {
        assert_eq!(versions[quiet], [1, 2, 3], "{quiet}");
    }
}

/// A pass takes each head, then the events after them in turns — the second
/// of every aggregate, then the third of every one — so one aggregate with a
/// backlog cannot fill the passes while the others' wait.
async fn busy_aggregates_share_a_pass_in_turns(database: TestDatabase) {
    let f = start(&database).await;
    f.record("first", 1..=20).await;
    f.record("second", 1..=20).await;
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            batch: 10,
            ..quick()
        },
    );
    let pass = relay.relay_once().await.expect("a pass");
    assert_eq!((pass.claimed, pass.published), (10, 10));
    let versions = versions_by_aggregate(&delivered(&broker.bus));
    assert_eq!(versions["first"], [1, 2, 3, 4, 5]);
    assert_eq!(versions["second"], [1, 2, 3, 4, 5]);
    drain(&relay).await;
    let versions = versions_by_aggregate(&delivered(&broker.bus));
    assert_eq!(versions["first"], (1..=20).collect::<Vec<_>>());
    assert_eq!(versions["second"], (1..=20).collect::<Vec<_>>());
}

async fn committed_events_are_published_once_in_order_per_aggregate(database: TestDatabase) {
    let f = start(&database).await;
    for aggregate in ["a", "b", "c"] {
        f.record(aggregate, 1..=5).await;
    }
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            batch: 4,
            ..quick()
        },
    );
    drain(&relay).await;

    let messages = delivered(&broker.bus);
    assert_eq!(messages.len(), 15);
    for (aggregate, versions) in versions_by_aggregate(&messages) {
        assert_eq!(versions, [1, 2, 3, 4, 5], "{aggregate}");
    }
    let status = f.outbox.status().await.expect("status");
    assert_eq!((status.pending, status.dead), (0, 0));
    assert_eq!(relay.relay_once().await.expect("a pass").claimed, 0);
}

async fn a_broker_outage_loses_nothing_and_delivers_in_order_after_it(database: TestDatabase) {
    let f = start(&database).await;
    for aggregate in ["a", "b"] {
        f.record(aggregate, 1..=3).await;
    }
    let broker = Broker::new();
    broker.down.store(true, Ordering::SeqCst);
    // However long the outage, past any number of attempts.
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            max_attempts: 2,
            ..quick()
        },
    );
    for _ in 0..5 {
        let pass = relay.relay_once().await.expect("a pass");
        assert_eq!((pass.published, pass.dead), (0, 0), "{pass:?}");
        assert!(pass.failed > 0, "{pass:?}");
    }
    let status = f.outbox.status().await.expect("status");
    assert_eq!(status.pending, 6, "nothing lost while the broker is down");
    assert_eq!(status.dead, 0, "nothing dead-lettered for an outage");
    assert!(status.most_attempts >= 5, "{status:?}");

    broker.down.store(false, Ordering::SeqCst);
    drain(&relay).await;
    let messages = delivered(&broker.bus);
    assert_eq!(messages.len(), 6);
    for versions in versions_by_aggregate(&messages).values() {
        assert_eq!(versions, &[1, 2, 3]);
    }
    assert_eq!(f.outbox.status().await.expect("status").pending, 0);
}

async fn a_relay_that_dies_before_marking_leaves_its_events_to_another_with_the_same_ids(
    database: TestDatabase,
) {
    let f = start(&database).await;
    let broker = a_relay_dies_once_the_broker_has_three(&f, Duration::from_millis(1)).await;
    assert_eq!(
        f.outbox.status().await.expect("status").pending,
        3,
        "never marked"
    );

    broker.die_after_storing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let survivor = f.relay(broker.clone(), quick());
    drain(&survivor).await;
    assert_eq!(
        delivered(&broker.bus).len(),
        6,
        "published again after the lease"
    );
    published_again_with_the_same_ids(&f, &broker).await;
}

/// Records three events of one aggregate and lets a relay holding them
/// under `lease` die once the broker has stored them: the broker, not
/// dying any more.
async fn a_relay_dies_once_the_broker_has_three(f: &Outboxes, lease: Duration) -> Arc<Broker> {
    f.record("a", 1..=3).await;
    let broker = Broker::new();
    broker.die_after_storing.store(true, Ordering::SeqCst);
    let dying = f.relay(broker.clone(), RelaySettings { lease, ..quick() });
    let died = tokio::spawn(async move { dying.relay_once().await }).await;
    assert!(died.is_err(), "the relay died");
    assert_eq!(delivered(&broker.bus).len(), 3, "the broker had them");
    broker.die_after_storing.store(false, Ordering::SeqCst);
    broker
}

/// The broker got the three events twice, in the same order with the same
/// ids, and none waits any more.
async fn published_again_with_the_same_ids(f: &Outboxes, broker: &Broker) {
    let messages = delivered(&broker.bus);
    let first: Vec<Uuid> = messages[..3].iter().map(|message| message.id).collect();
    let again: Vec<Uuid> = messages[3..].iter().map(|message| message.id).collect();
    assert_eq!(first, again, "with the same message ids, in the same order");
    assert_eq!(f.outbox.status().await.expect("status").pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(strata_postgres),
    ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
)]
async fn on_postgres_a_relay_that_dies_mid_pass_leaves_its_events_to_another_at_once() {
    let database = TestDatabase::postgres().await;
    let f = start(&database).await;
    // A lease no test outlives: what the survivor publishes, it did not wait for.
    let broker = a_relay_dies_once_the_broker_has_three(&f, Duration::from_secs(3_600)).await;
    let survivor = f.relay(broker.clone(), quick());
    let pass = survivor.relay_once().await.expect("a pass");
    assert_eq!(pass.published, 3, "nothing was left claimed: {pass:?}");
    published_again_with_the_same_ids(&f, &broker).await;
}

async fn two_relays_take_disjoint_batches_and_keep_each_aggregates_order(database: TestDatabase) {
    let f = start(&database).await;
    for aggregate in 0..20 {
        f.record(&format!("agg-{aggregate}"), 1..=10).await;
    }
    let broker = Broker::new();
    let settings = RelaySettings {
        batch: 7,
        ..quick()
    };
    let first = f.relay(broker.clone(), settings.clone());
    let second = f.relay(broker.clone(), settings);
    tokio::join!(drain(&first), drain(&second));

    let batches = broker.batches.lock().expect("batches").clone();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    for id in batches.iter().flatten() {
        *seen.entry(*id).or_default() += 1;
    }
    assert_eq!(seen.len(), 200);
    assert!(
        seen.values().all(|times| *times == 1),
        "no event in two batches"
    );
    for (aggregate, versions) in versions_by_aggregate(&delivered(&broker.bus)) {
        assert_eq!(versions, (1..=10).collect::<Vec<_>>(), "{aggregate}");
    }
}

async fn a_refused_event_is_dead_lettered_and_holds_back_only_its_aggregate_until_retried(
    database: TestDatabase,
) {
    let f = start(&database).await;
    f.record("healthy", 1..=2).await;
    f.record_one("sick", 1, json!({ "poison": true })).await;
    f.record_one("sick", 2, json!({ "n": 2 })).await;
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            max_attempts: 2,
            ..quick()
        },
    );
    drain(&relay).await;

    let keys: Vec<String> = delivered(&broker.bus)
        .iter()
        .map(|message| message.key.clone())
        .collect();
    assert_eq!(keys, ["healthy", "healthy"], "the sick aggregate waits");
    let status = f.outbox.status().await.expect("status");
    assert_eq!((status.pending, status.dead), (1, 1), "{status:?}");
    let page = f
        .outbox
        .dead_letters(strata_domain::PageRequest::first())
        .await
        .expect("dead letters");
    assert_eq!(page.total, 1);
    let dead = page.items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].aggregate_id, "sick");
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].last_error.contains("message too large"),
        "{:?}",
        dead[0].last_error
    );

    // The operator fixes the cause (the broker takes larger messages now)
    // and retries.
    broker.refuse_poison.store(false, Ordering::SeqCst);
    drain(&relay).await;
    assert_eq!(
        delivered(&broker.bus).len(),
        2,
        "a dead letter stays dead until retried"
    );
    let retry = |id: Uuid| {
        let outbox = &f.outbox;
        in_unit_of_work(&f.unit_of_work, Propagation::Required, async move {
            Ok::<_, AppError>(outbox.retry(id).await?)
        })
    };
    assert!(retry(dead[0].id).await.expect("retried"));
    assert!(!retry(Uuid::now_v7()).await.expect("answered"));
    drain(&relay).await;
    let sick: Vec<u64> = delivered(&broker.bus)
        .iter()
        .filter(|message| message.key == "sick")
        .map(|message| message.version)
        .collect();
    assert_eq!(sick, [1, 2], "released in order");
}

/// A dead event whose aggregate has more events waiting behind it than a
/// pass looks among (a pass of 2 looks among the 20 oldest due events) holds
/// back that aggregate only: the events of the others, recorded after the
/// whole tail, are still published.
async fn a_dead_letter_with_a_long_tail_holds_back_only_its_own_aggregate(database: TestDatabase) {
    let f = start(&database).await;
    f.record_one("sick", 1, json!({ "poison": true })).await;
    f.record("sick", 2..=30).await;
    f.record("healthy", 1..=3).await;
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            batch: 2,
            max_attempts: 1,
            ..quick()
        },
    );
    drain(&relay).await;

    let versions = versions_by_aggregate(&delivered(&broker.bus));
    assert_eq!(
        versions.get("healthy").cloned().unwrap_or_default(),
        [1, 2, 3]
    );
    assert!(!versions.contains_key("sick"), "{versions:?}");
    let status = f.outbox.status().await.expect("status");
    assert_eq!((status.pending, status.dead), (29, 1), "{status:?}");
}

async fn published_events_are_purged_after_the_retention_and_pending_ones_kept(
    database: TestDatabase,
) {
    let f = start(&database).await;
    f.record("a", 1..=3).await;
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            retention: Duration::ZERO,
            ..quick()
        },
    );
    drain(&relay).await;
    f.record("a", 4..=4).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(relay.purge_published().await.expect("purged"), 3);
    let status = f.outbox.status().await.expect("status");
    assert_eq!(status.pending, 1, "the unpublished event stays");
}

async fn a_commit_wakes_the_relay_without_waiting_for_the_poll(database: TestDatabase) {
    let f = start(&database).await;
    let broker = Broker::new();
    let relay = f.relay(
        broker.clone(),
        RelaySettings {
            poll_interval: Duration::from_secs(3_600),
            ..quick()
        },
    );
    let running = Running::start(relay);
    // Let the relay make its first pass and settle into its hour-long wait.
    tokio::time::sleep(Duration::from_millis(50)).await;
    published_after(&broker, f.record("a", 1..=1))
        .await
        .expect("woken by the commit, not the poll");
    running.stop().await;
}

async fn a_commit_on_another_instance_reaches_the_relay(database: TestDatabase) {
    let f = start(&database).await;
    // Another instance: its own pools, its own process-local signal.
    let elsewhere = Database::connect(database.url()).await.expect("connected");
    let broker = Broker::new();
    let listens = database.engine() == strata_tests::database::Engine::Postgres;
    let relay = OutboxRelay::new(
        elsewhere,
        broker.clone(),
        RelaySettings {
            // PostgreSQL tells the other instance at once; SQLite has no way
            // to, and the poll finds it.
            poll_interval: if listens {
                Duration::from_secs(3_600)
            } else {
                Duration::from_millis(100)
            },
            ..quick()
        },
    );
    let running = Running::start(relay);
    tokio::time::sleep(Duration::from_millis(200)).await;
    published_after(&broker, f.record("a", 1..=1))
        .await
        .expect("the other instance's relay published it");
    running.stop().await;
}

mod redis_streams {
    use redis::AsyncCommands;
    use redis::streams::StreamRangeReply;
    use strata_infrastructure::outbox::{RedisStreamsConfig, RedisStreamsPublisher};
    use strata_tests::servers::{fresh_prefix, redis_url};

    use super::*;

    fn message(key: &str, version: u64) -> Message {
        Message {
            id: Uuid::now_v7(),
            topic: "note".into(),
            key: key.into(),
            version,
            event_type: "notes.note_written".into(),
            payload: json!({ "n": version }),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            recorded_at_ms: 1_800_000_000_000,
        }
    }

    #[tokio::test]
    #[cfg_attr(not(strata_redis), ignore = "needs Redis: set STRATA_TEST_REDIS_URL")]
    async fn each_message_lands_on_its_keys_partition_in_order_with_its_id() {
        let config = RedisStreamsConfig {
            partitions: 4,
            ..RedisStreamsConfig::new(redis_url(), fresh_prefix("streams"))
        };
        let publisher = RedisStreamsPublisher::new(config.clone()).expect("a publisher");
        let sent: Vec<Message> = (1..=5)
            .flat_map(|version| [message("a", version), message("b", version)])
            .collect();
        publisher.publish(&sent).await.expect("confirmed");

        let client = redis::Client::open(redis_url()).expect("a client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connected");
        for key in ["a", "b"] {
            let partition = sent
                .iter()
                .find(|message| message.key == key)
                .expect("sent")
                .partition(4);
            let stream = config.stream_key(partition);
            assert!(
                stream.ends_with(&format!("events:{{{partition}}}")),
                "{stream}"
            );
            let reply: StreamRangeReply = connection.xrange_all(&stream).await.expect("read back");
            let entries: Vec<(String, u64, String)> = reply
                .ids
                .iter()
                .filter(|entry| entry.get::<String>("key").as_deref() == Some(key))
                .map(|entry| {
                    (
                        entry.get::<String>("id").expect("an id"),
                        entry
                            .get::<String>("version")
                            .and_then(|version| version.parse().ok())
                            .expect("a version"),
                        entry.get::<String>("traceparent").expect("a trace"),
                    )
                })
                .collect();
            let expected: Vec<(String, u64)> = sent
                .iter()
                .filter(|message| message.key == key)
                .map(|message| (message.id.to_string(), message.version))
                .collect();
            let got: Vec<(String, u64)> = entries
                .iter()
                .map(|(id, version, _)| (id.clone(), *version))
                .collect();
            assert_eq!(got, expected, "{key}");
            assert!(
                entries
                    .iter()
                    .all(|(_, _, trace)| trace.starts_with("00-4bf92f"))
            );
        }
    }

    #[tokio::test]
    async fn a_broker_that_cannot_be_reached_is_unavailable_never_confirmed() {
        // Nothing listens on port 1.
        let config = RedisStreamsConfig {
            timeout: Duration::from_millis(500),
            ..RedisStreamsConfig::new("redis://127.0.0.1:1", "strata-test")
        };
        let publisher = RedisStreamsPublisher::new(config).expect("a publisher");
        let refused = publisher.publish(&[message("a", 1)]).await;
        assert!(
            matches!(refused, Err(PublishError::Unavailable(_))),
            "{refused:?}"
        );
    }
}

async fn an_event_keeps_the_trace_of_the_work_that_recorded_it(database: TestDatabase) {
    let f = start(&database).await;
    let outbox = &f.outbox;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let unit_of_work = &f.unit_of_work;
    // A root with no trace (a consumer's batch) around work of a request's.
    strata_domain::ports::in_unit_of_work(unit_of_work, Propagation::Required, async move {
        strata_domain::ports::in_unit_of_work_traced(
            unit_of_work,
            Propagation::Required,
            Some(trace.to_owned()),
            async move {
                outbox
                    .append(vec![EventEnvelope {
                        id: Uuid::now_v7(),
                        aggregate_kind: "note".into(),
                        aggregate_id: "traced".into(),
                        aggregate_version: 1,
                        event_type: "notes.note_written".into(),
                        payload: json!({}),
                        traceparent: None,
                    }])
                    .await?;
                Ok::<_, AppError>(())
            },
        )
        .await
    })
    .await
    .expect("committed");
    let stored = f.outbox.oldest(10).await.expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].traceparent.as_deref(), Some(trace));
}

/// A message about no aggregate: a payout to be announced once it is booked.
fn payout(amount: u64) -> EventEnvelope {
    EventEnvelope {
        id: Uuid::now_v7(),
        aggregate_kind: "payout".into(),
        aggregate_id: "batch-7".into(),
        aggregate_version: 0,
        event_type: "payments.payout_booked".into(),
        payload: json!({ "amount": amount }),
        traceparent: None,
    }
}

impl Outboxes {
    /// The local transaction of a two-phase message: a business change (an
    /// event of the ledger) and the message's commit, together or not at all.
    async fn book(&self, messages: &SeaOrmTransactionalMessages, id: Uuid) -> Result<(), AppError> {
        let outbox = &self.outbox;
        in_unit_of_work(&self.unit_of_work, Propagation::Required, async move {
            outbox
                .append(vec![EventEnvelope {
                    id: Uuid::now_v7(),
                    aggregate_kind: "ledger".into(),
                    aggregate_id: "main".into(),
                    aggregate_version: 1,
                    event_type: "ledger.entry_booked".into(),
                    payload: json!({ "message": id }),
                    traceparent: None,
                }])
                .await?;
            messages.commit(id).await?;
            Ok::<_, AppError>(())
        })
        .await
    }
}

async fn a_two_phase_message_committed_locally_is_delivered_though_its_submit_never_came(
    database: TestDatabase,
) {
    let o = start(&database).await;
    let messages = SeaOrmTransactionalMessages::new(o.database.clone(), Duration::from_millis(50));
    let message = payout(100);
    messages.prepare(message.clone()).await.expect("prepared");
    o.book(&messages, message.id).await.expect("booked");
    // The process dies here, before anything else happens. Later, the
    // check-back finds the local transaction committed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(messages.check_back(100).await.expect("checked").failed, 0);
    assert_eq!(
        messages.state(message.id).await.expect("read"),
        Some(MessageState::Committed)
    );
    let broker = Broker::new();
    drain(&o.relay(broker.clone(), quick())).await;
    let delivered = delivered(&broker.bus);
    let payouts: Vec<&Message> = delivered
        .iter()
        .filter(|delivered| delivered.topic == "payout")
        .collect();
    assert_eq!(payouts.len(), 1, "{delivered:?}");
    assert_eq!(payouts[0].id, message.id, "delivered with its own id");
    assert_eq!(payouts[0].payload, json!({ "amount": 100 }));
    assert_eq!(delivered.len(), 2, "and the business change's event");
}

async fn a_check_back_before_the_local_commit_fails_the_message_and_refuses_the_late_transaction(
    database: TestDatabase,
) {
    let o = start(&database).await;
    let messages = SeaOrmTransactionalMessages::new(o.database.clone(), Duration::from_millis(20));
    let message = payout(200);
    messages.prepare(message.clone()).await.expect("prepared");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(messages.check_back(100).await.expect("checked").failed, 1);
    assert_eq!(
        messages.state(message.id).await.expect("read"),
        Some(MessageState::Failed)
    );
    // The local transaction arrives late: refused whole.
    let late = o.book(&messages, message.id).await;
    assert!(
        matches!(late, Err(AppError::Conflict { .. })),
        "the late local transaction is refused: {late:?}"
    );
    let broker = Broker::new();
    drain(&o.relay(broker.clone(), quick())).await;
    assert!(
        delivered(&broker.bus).is_empty(),
        "nothing delivered, not even the business change's event"
    );
    let never_prepared = o.book(&messages, Uuid::now_v7()).await;
    assert!(
        matches!(never_prepared, Err(AppError::NotFound { .. })),
        "{never_prepared:?}"
    );
}

async fn a_check_back_during_the_local_transaction_waits_and_leaves_the_message_committed(
    database: TestDatabase,
) {
    let o = Arc::new(start(&database).await);
    let messages = SeaOrmTransactionalMessages::new(o.database.clone(), Duration::from_millis(20));
    let message = payout(300);
    messages.prepare(message.clone()).await.expect("prepared");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (marked, go_on) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let local = {
        let (o, messages, marked, go_on) = (
            Arc::clone(&o),
            messages.clone(),
            Arc::clone(&marked),
            Arc::clone(&go_on),
        );
        tokio::spawn(async move {
            in_unit_of_work(&o.unit_of_work, Propagation::Required, async {
                messages.commit(message.id).await?;
                marked.notify_one();
                go_on.notified().await;
                Ok::<_, AppError>(())
            })
            .await
        })
    };
    marked.notified().await;
    let checking = {
        let messages = messages.clone();
        tokio::spawn(async move { messages.check_back(100).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    go_on.notify_one();
    local
        .await
        .expect("ran")
        .expect("the local transaction commits");
    let checked = checking.await.expect("ran").expect("checked");
    assert_eq!(checked.failed, 0, "the check-back saw the commit");
    assert_eq!(
        messages.state(message.id).await.expect("read"),
        Some(MessageState::Committed)
    );
    let broker = Broker::new();
    drain(&o.relay(broker.clone(), quick())).await;
    assert_eq!(delivered(&broker.bus).len(), 1);
}

async fn relays_claiming_at_the_same_moment_never_take_one_event_twice(database: TestDatabase) {
    let f = start(&database).await;
    let aggregates: Vec<String> = (0..20).map(|n| format!("agg-{n}")).collect();
    for version in 1..=10 {
        for aggregate in &aggregates {
            f.record(aggregate, version..=version).await;
        }
    }
    let broker = Broker::new();
    let settings = RelaySettings {
        batch: 3,
        ..quick()
    };
    let relays: Vec<OutboxRelay> = (0..4)
        .map(|_| f.relay(broker.clone(), settings.clone()))
        .collect();
    // Four relays claim at once, round after round, until nothing is left.
    for round in 0.. {
        assert!(round < 1_000, "the outbox never drained");
        let passes =
            futures_util::future::join_all(relays.iter().map(OutboxRelay::relay_once)).await;
        let claimed: usize = passes
            .into_iter()
            .map(|pass| pass.expect("a pass").claimed)
            .sum();
        if claimed == 0 {
            break;
        }
    }
    let messages = delivered(&broker.bus);
    assert_eq!(messages.len(), 200, "each event once");
    let versions = versions_by_aggregate(&messages);
    for aggregate in &aggregates {
        assert_eq!(
            versions[aggregate],
            (1..=10).collect::<Vec<_>>(),
            "{aggregate}"
        );
    }
}

/// A process's bus, its relay and one reader, as the runtime wires them.
fn process_bus(f: &Outboxes) -> (Arc<InProcessBus>, OutboxRelay) {
    let bus = Arc::new(InProcessBus::new(4, 1_000));
    bus.subscribe("report");
    bus.all_readers_subscribed();
    let relay = f.relay(bus.clone(), quick());
    (bus, relay)
}

/// An in-process bus takes a batch without waiting on anything, so on SQLite
/// a pass claims, publishes and marks it in one transaction — one commit of
/// the only writer where a lease would take two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_pass_into_an_in_process_bus_commits_once() {
    let database = TestDatabase::sqlite();
    let f = start(&database).await;
    f.record("a", 1..=3).await;
    f.record("b", 1..=2).await;
    let commits = Arc::new(AtomicUsize::new(0));
    {
        // The file's one writing connection, kept by its pool.
        let pool = f
            .database
            .connection()
            .expect("the pool")
            .get_sqlite_connection_pool();
        let mut connection = pool.acquire().await.expect("the writing connection");
        let mut handle = connection.lock_handle().await.expect("its handle");
        let counted = Arc::clone(&commits);
        handle.set_commit_hook(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            true
        });
    }
    let (bus, relay) = process_bus(&f);
    let pass = relay.relay_once().await.expect("a pass");
    assert_eq!((pass.claimed, pass.published), (5, 5));
    let versions = versions_by_aggregate(&delivered(&bus));
    assert_eq!(versions["a"], [1, 2, 3]);
    assert_eq!(versions["b"], [1, 2]);
    assert_eq!(f.outbox.status().await.expect("status").pending, 0);
    assert_eq!(commits.load(Ordering::SeqCst), 1);
    assert_eq!(relay.relay_once().await.expect("a pass").claimed, 0);
}

async fn what_an_in_process_bus_had_not_delivered_is_published_again_by_the_next_process_in_order(
    database: TestDatabase,
) {
    let f = start(&database).await;
    let replay = InProcessReplay::new(f.database.clone());
    f.record("a", 1..=3).await;
    f.record("b", 1..=2).await;
    let (first, relay) = process_bus(&f);
    drain(&relay).await;
    // The reader has applied nothing when the watermark is recorded; one
    // more event is published after it; then the process ends.
    replay.record(&first).await.expect("recorded");
    f.record("a", 4..=4).await;
    drain(&relay).await;
    assert_eq!(f.outbox.status().await.expect("status").pending, 0);
    drop((first, relay));

    let (second, _relay) = process_bus(&f);
    let replayed = replay
        .replay_into(&second, Duration::from_secs(3_600))
        .await
        .expect("replayed");
    assert_eq!(replayed, 6);
    let versions = versions_by_aggregate(&delivered(&second));
    assert_eq!(versions["a"], [1, 2, 3, 4]);
    assert_eq!(versions["b"], [1, 2]);
}

async fn what_every_reader_had_applied_is_not_published_again(database: TestDatabase) {
    let f = start(&database).await;
    let replay = InProcessReplay::new(f.database.clone());
    f.record("a", 1..=3).await;
    let (first, relay) = process_bus(&f);
    drain(&relay).await;
    for partition in 0..first.partitions() {
        first.passed("report", partition, first.end(partition));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay.record(&first).await.expect("recorded");
    tokio::time::sleep(Duration::from_millis(5)).await;
    f.record("a", 4..=4).await;
    drain(&relay).await;
    drop((first, relay));

    let (second, _relay) = process_bus(&f);
    replay
        .replay_into(&second, Duration::from_secs(3_600))
        .await
        .expect("replayed");
    assert_eq!(versions_by_aggregate(&delivered(&second))["a"], [4]);
    let applied_all = |bus: &InProcessBus| {
        for partition in 0..bus.partitions() {
            bus.passed("report", partition, bus.end(partition));
        }
    };
    applied_all(&second);
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay.record(&second).await.expect("recorded");

    // The first bus's watermark still counts, so its last event comes
    // again; the replay then forgets the watermarks not renewed since it
    // began.
    let (third, _relay) = process_bus(&f);
    let replayed = replay.replay_into(&third, Duration::ZERO).await;
    assert_eq!(replayed.expect("replayed"), 1);
    applied_all(&third);
    tokio::time::sleep(Duration::from_millis(5)).await;
    replay.record(&third).await.expect("recorded");
    let (fourth, _relay) = process_bus(&f);
    let replayed = replay.replay_into(&fourth, Duration::ZERO).await;
    assert_eq!(replayed.expect("replayed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(strata_postgres),
    ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
)]
async fn instances_starting_at_once_on_postgres_migrate_one_after_another() {
    instances_starting_at_once_migrate_one_after_another(TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(strata_mysql),
    ignore = "needs MySQL or MariaDB: set STRATA_TEST_MYSQL_URL"
)]
async fn instances_starting_at_once_on_mysql_migrate_one_after_another() {
    instances_starting_at_once_migrate_one_after_another(TestDatabase::mysql().await).await;
}

async fn instances_starting_at_once_migrate_one_after_another(database: TestDatabase) {
    let mut starting = Vec::new();
    for _ in 0..4 {
        let url = database.url().to_owned();
        starting.push(tokio::spawn(async move {
            let connected = Database::connect(&url).await.expect("connected");
            migrate_up::<NoMigrations>(&connected).await
        }));
    }
    for instance in starting {
        instance
            .await
            .expect("ran")
            .expect("every instance migrates or finds it done");
    }
    let f = start(&database).await;
    f.record("a", 1..=1).await;
    assert_eq!(f.outbox.status().await.expect("status").pending, 1);
}
