//! Ordered consumers on SQLite and PostgreSQL (when `STRATA_TEST_POSTGRES_URL`
//! is set; otherwise those runs say they were skipped): FAULTS.md 20 and
//! 34–36 — a batch and its position commit together, a dead owner's
//! partition is taken over at the committed position, a poison message is
//! dead-lettered and the rest applied once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::messaging::{Incoming, MessageHandler};
use strata_domain::ports::{EventPublisher, Message, UnitOfWork, partition_of};
use strata_infrastructure::consumer::{ConsumerStore, PartitionLog};
use strata_infrastructure::outbox::InProcessBus;
use strata_infrastructure::{Database, SeaOrmUnitOfWork, migrate_up};
use strata_runtime::{ConsumerSettings, OrderedConsumer};
use tokio::sync::Semaphore;
use uuid::Uuid;

#[path = "../support/fresh_postgres.rs"]
mod fresh_postgres;
pub(crate) use fresh_postgres::FreshPostgres;

pub(crate) struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh database of its own for one test (strata-tests' kit depends on
/// this crate, so these tests make theirs by hand).
pub(crate) struct TestDatabase {
    url: String,
    engine: Engine,
    _directory: Option<tempfile::TempDir>,
    _postgres: Option<FreshPostgres>,
}

impl TestDatabase {
    pub(crate) fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("test.db").display()
        );
        Self {
            url,
            engine: Engine::Sqlite,
            _directory: Some(directory),
            _postgres: None,
        }
    }

    pub(crate) async fn postgres(server: &str) -> Self {
        let postgres = FreshPostgres::create(server).await;
        Self {
            url: postgres.url().to_owned(),
            engine: Engine::Postgres,
            _directory: None,
            _postgres: Some(postgres),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }
}

/// Runs `case` on SQLite, and on PostgreSQL when a server is named.
pub(crate) async fn on_each_engine<F, Fut>(case: F)
where
    F: Fn(TestDatabase) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    case(TestDatabase::sqlite()).await;
    match std::env::var("STRATA_TEST_POSTGRES_URL") {
        Ok(server) => case(TestDatabase::postgres(&server).await).await,
        Err(_) => eprintln!("skipped on PostgreSQL: set STRATA_TEST_POSTGRES_URL to run it"),
    }
}

/// What the handler applied, in the order it was committed.
pub(crate) const APPLIED: &str = "CREATE TABLE applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, aggregate TEXT NOT NULL, version BIGINT NOT NULL, applied_by TEXT NOT NULL)";
pub(crate) const APPLIED_PG: &str = "CREATE TABLE applied (seq BIGSERIAL PRIMARY KEY, message_id TEXT NOT NULL, aggregate TEXT NOT NULL, version BIGINT NOT NULL, applied_by TEXT NOT NULL)";

pub(crate) struct Fixture {
    pub(crate) database: Database,
    pub(crate) unit_of_work: Arc<dyn UnitOfWork>,
    pub(crate) bus: Arc<InProcessBus>,
}

pub(crate) async fn start(database: &TestDatabase) -> Fixture {
    let connected = Database::connect(database.url()).await.expect("connected");
    migrate_up::<NoMigrations>(&connected)
        .await
        .expect("migrated");
    let create = match database.engine() {
        Engine::Sqlite => APPLIED,
        Engine::Postgres => APPLIED_PG,
    };
    connected
        .connection()
        .expect("the pool")
        .execute_unprepared(create)
        .await
        .expect("table made");
    Fixture {
        unit_of_work: Arc::new(SeaOrmUnitOfWork::new(connected.clone())),
        database: connected,
        bus: Arc::new(InProcessBus::new(2, 10_000)),
    }
}

/// Writes what it is given into `applied`, in the consumer's unit of work;
/// refuses poison; can stop at a gate, or crash once.
pub(crate) struct Recorder {
    pub(crate) database: Database,
    pub(crate) name: &'static str,
    pub(crate) gate: Option<Arc<Semaphore>>,
    pub(crate) crash_once_at: Option<u64>,
    pub(crate) crashed: AtomicBool,
}

impl Recorder {
    pub(crate) fn new(database: &Database) -> Self {
        Self {
            database: database.clone(),
            name: "recorder",
            gate: None,
            crash_once_at: None,
            crashed: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl MessageHandler for Recorder {
    fn wants(&self, topic: &str) -> bool {
        topic == "note"
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.map_err(AppError::internal)?.forget();
        }
        if message.payload["flaky"] == true {
            return Err(AppError::Conflict {
                code: "flaky",
                message: "this message fails every time, for a reason that may pass".into(),
            });
        }
        if message.payload["poison"] == true {
            return Err(AppError::RuleViolated {
                code: "poison",
                message: "this message can never be applied".into(),
            });
        }
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        session
            .execute_raw(Statement::from_sql_and_values(
                backend,
                match backend {
                    sea_orm::DbBackend::Postgres => {
                        "INSERT INTO applied (message_id, aggregate, version, applied_by) VALUES ($1, $2, $3, $4)"
                    }
                    _ => "INSERT INTO applied (message_id, aggregate, version, applied_by) VALUES (?, ?, ?, ?)",
                },
                [
                    message.id.to_string().into(),
                    message.key.clone().into(),
                    i64::try_from(message.version).unwrap_or(i64::MAX).into(),
                    self.name.into(),
                ],
            ))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        if self.crash_once_at == Some(message.version) && !self.crashed.swap(true, Ordering::SeqCst)
        {
            panic!("the consumer's process died mid-batch");
        }
        Ok(())
    }
}

pub(crate) fn message(key: &str, version: u64, payload: serde_json::Value) -> Message {
    Message {
        id: Uuid::now_v7(),
        topic: "note".into(),
        key: key.into(),
        version,
        event_type: "notes.note_written".into(),
        payload,
        traceparent: None,
        recorded_at_ms: 0,
    }
}

async fn publish(
    f: &Fixture,
    keys: &[&str],
    versions: std::ops::RangeInclusive<u64>,
) -> Vec<Message> {
    let mut sent = Vec::new();
    for version in versions {
        for key in keys {
            sent.push(message(key, version, json!({ "n": version })));
        }
    }
    f.bus.publish(&sent).await.expect("published");
    sent
}

fn consumer(f: &Fixture, handler: Recorder, lease: Duration) -> OrderedConsumer {
    OrderedConsumer::new(
        "recorder",
        Arc::clone(&f.bus) as Arc<dyn PartitionLog>,
        ConsumerStore::new(f.database.clone()),
        Arc::clone(&f.unit_of_work),
        Arc::new(handler),
        ConsumerSettings {
            batch: 10,
            lease,
            ..ConsumerSettings::default()
        },
    )
}

/// Each aggregate's versions in the order they were applied, and how many
/// times each message was.
pub(crate) async fn applied(
    f: &Fixture,
) -> (
    std::collections::BTreeMap<String, Vec<i64>>,
    std::collections::HashMap<String, usize>,
) {
    let rows = f
        .database
        .connection()
        .expect("the pool")
        .query_all_raw(Statement::from_string(
            f.database.backend(),
            "SELECT message_id, aggregate, version FROM applied ORDER BY seq",
        ))
        .await
        .expect("read");
    let mut order: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    let mut times: std::collections::HashMap<String, usize> = Default::default();
    for row in rows {
        let id: String = row.try_get("", "message_id").expect("id");
        let aggregate: String = row.try_get("", "aggregate").expect("aggregate");
        let version: i64 = row.try_get("", "version").expect("version");
        order.entry(aggregate).or_default().push(version);
        *times.entry(id).or_default() += 1;
    }
    (order, times)
}

/// Who applied what was applied.
async fn appliers(f: &Fixture) -> Vec<String> {
    let rows = f
        .database
        .connection()
        .expect("the pool")
        .query_all_raw(Statement::from_string(
            f.database.backend(),
            "SELECT DISTINCT applied_by FROM applied",
        ))
        .await
        .expect("read");
    rows.iter()
        .map(|row| row.try_get("", "applied_by").expect("who"))
        .collect()
}

/// The consumer's dead letters, first page.
async fn dead_letters(f: &Fixture) -> Vec<strata_infrastructure::consumer::ConsumerDeadLetter> {
    ConsumerStore::new(f.database.clone())
        .dead_letters("recorder", strata_domain::PageRequest::first())
        .await
        .expect("dead letters")
        .items
}

async fn until_idle(consumer: &OrderedConsumer) {
    for _ in 0..1_000 {
        if consumer.round().await.expect("a round") == 0 {
            return;
        }
    }
    panic!("the consumer never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_applied_once_in_order_per_aggregate() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let sent = publish(&f, &["a", "b", "c"], 1..=12).await;
        let consumer = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        until_idle(&consumer).await;
        // Published again (a relay that died before marking): recognised.
        f.bus.publish(&sent[..6]).await.expect("published again");
        until_idle(&consumer).await;

        let (order, times) = applied(&f).await;
        assert_eq!(times.len(), 36);
        assert!(times.values().all(|n| *n == 1), "{times:?}");
        for versions in order.values() {
            assert_eq!(versions, &(1..=12).collect::<Vec<_>>());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_bus_drops_what_the_consumer_has_applied() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let consumer = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        publish(&f, &["a", "b", "c"], 1..=12).await;
        let kept = |f: &Fixture| {
            (0..f.bus.partitions())
                .map(|partition| f.bus.read(partition, 0, usize::MAX).0.len())
                .sum::<usize>()
        };
        assert_eq!(kept(&f), 36);
        until_idle(&consumer).await;
        assert_eq!(applied(&f).await.1.len(), 36);
        assert_eq!(kept(&f), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_twice_into_one_batch_is_applied_once() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let once = message("a", 1, json!({ "n": 1 }));
        let after = message("a", 2, json!({ "n": 2 }));
        f.bus
            .publish(&[once.clone(), once.clone(), after])
            .await
            .expect("published");
        let consumer = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        until_idle(&consumer).await;
        let (order, times) = applied(&f).await;
        assert_eq!(times.get(&once.id.to_string()), Some(&1), "{times:?}");
        assert_eq!(order.get("a"), Some(&vec![1, 2]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_dying_mid_batch_leaves_nothing_and_another_resumes_after_its_lease() {
    on_each_engine(|database| async move {
        let f = Arc::new(start(&database).await);
        publish(&f, &["a", "b"], 1..=8).await;
        let dying = Recorder {
            crash_once_at: Some(3),
            ..Recorder::new(&f.database)
        };
        // A lease long enough that the survivor's first round comes before
        // it ends however busy the machine is.
        let dying = Arc::new(consumer(&f, dying, Duration::from_secs(2)));
        let round = Arc::clone(&dying);
        let died = tokio::spawn(async move { round.round().await }).await;
        assert!(died.is_err(), "the owner died mid-batch");
        let (order, _) = applied(&f).await;
        assert!(order.is_empty(), "nothing of the batch is kept: {order:?}");
        // The partitions it died holding: it applies several at once, so the
        // one it crashed in, and any other it had taken by then.
        // Partitions of a bus local to this process are kept under the
        // consumer's name and the bus's id.
        let partitions_key = match f.bus.local_to() {
            Some(bus) => format!("recorder@{bus}"),
            None => "recorder".to_owned(),
        };
        let dead_owners: Vec<u32> = ConsumerStore::new(f.database.clone())
            .holders(&partitions_key)
            .await
            .expect("holders")
            .into_iter()
            .map(|(partition, _)| partition)
            .collect();
        assert!(!dead_owners.is_empty(), "it died holding a partition");

        // Another instance, while the lease holds: the partition is not its.
        let survivor = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        survivor.round().await.expect("a round");
        let (order, _) = applied(&f).await;
        let held: Vec<&String> = order
            .keys()
            .filter(|aggregate| dead_owners.contains(&partition_of("note", aggregate, 2)))
            .collect();
        assert!(
            held.is_empty(),
            "the dead owner's partition waits for its lease: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        until_idle(&survivor).await;
        let (order, times) = applied(&f).await;
        assert!(times.values().all(|n| *n == 1), "{times:?}");
        assert_eq!(times.len(), 16);
        for versions in order.values() {
            assert_eq!(versions, &(1..=8).collect::<Vec<_>>());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_only_while_its_owner_holds_the_partition() {
    on_each_engine(|database| async move {
        let f = Arc::new(start(&database).await);
        publish(&f, &["a"], 1..=4).await;
        let gate = Arc::new(Semaphore::new(0));
        let slow = Recorder {
            name: "stalled",
            gate: Some(Arc::clone(&gate)),
            ..Recorder::new(&f.database)
        };
        let slow = Arc::new(consumer(&f, slow, Duration::from_millis(100)));
        let round = Arc::clone(&slow);
        let stalled = tokio::spawn(async move { round.round().await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let store = ConsumerStore::new(f.database.clone());
        let key = format!("recorder@{}", f.bus.id());
        let held_by_stalled = store.holders(&key).await.expect("holders");
        // On SQLite the stalled owner's transaction holds the only writer, so
        // the other instance waits for it; on PostgreSQL it takes over now.
        let survivor = Recorder {
            name: "survivor",
            ..Recorder::new(&f.database)
        };
        let survivor = Arc::new(consumer(&f, survivor, Duration::from_secs(30)));
        let taking_over = {
            let survivor = Arc::clone(&survivor);
            tokio::spawn(async move { survivor.round().await })
        };
        match database.engine() {
            Engine::Postgres => {
                // Released only once every partition it held is another's.
                let waited = std::time::Instant::now();
                loop {
                    let holders = store.holders(&key).await.expect("holders");
                    let taken = holders.iter().all(|held| !held_by_stalled.contains(held));
                    if taken && !holders.is_empty() {
                        break;
                    }
                    assert!(
                        waited.elapsed() < Duration::from_secs(30),
                        "the survivor never took over: {holders:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Engine::Sqlite => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        gate.add_permits(100);
        stalled.await.expect("ran").expect("a round");
        taking_over.await.expect("ran").expect("a round");
        until_idle(&survivor).await;
        let (order, times) = applied(&f).await;
        assert!(times.values().all(|n| *n == 1), "applied once: {times:?}");
        assert_eq!(order.get("a"), Some(&vec![1, 2, 3, 4]));
        let appliers = appliers(&f).await;
        match database.engine() {
            // The stalled owner's commit found its partition taken: rolled
            // back whole, the new owner applied it all.
            Engine::Postgres => assert_eq!(appliers, ["survivor"]),
            // SQLite's one writer was the stalled owner's until it committed,
            // so nobody could take the partition meanwhile.
            Engine::Sqlite => assert_eq!(appliers, ["stalled"]),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_the_rest_of_its_batch_applied() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let mut sent = vec![
            message("a", 1, json!({ "n": 1 })),
            message("a", 2, json!({ "poison": true })),
            message("a", 3, json!({ "n": 3 })),
            message("b", 1, json!({ "n": 1 })),
        ];
        sent.push(Message {
            topic: "invoice".into(),
            ..message("c", 1, json!({ "not": "wanted" }))
        });
        f.bus.publish(&sent).await.expect("published");
        let consumer = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        until_idle(&consumer).await;

        let (order, times) = applied(&f).await;
        assert_eq!(order.get("a"), Some(&vec![1, 3]));
        assert_eq!(order.get("b"), Some(&vec![1]));
        assert!(
            !order.contains_key("c"),
            "a topic it does not want is passed over"
        );
        assert!(times.values().all(|n| *n == 1));
        let dead = dead_letters(&f).await;
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
        assert!(dead[0].message.contains("poison"), "{}", dead[0].message);
        assert_eq!(
            consumer.round().await.expect("a round"),
            0,
            "and it is not retried"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_partitions_and_a_newcomer_gets_its_part() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let bus = Arc::new(InProcessBus::new(4, 10_000));
        let f = Fixture { bus, ..f };
        let first = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        first.round().await.expect("a round");
        let store = ConsumerStore::new(f.database.clone());
        let key = format!("recorder@{}", f.bus.id());
        assert_eq!(
            store.holders(&key).await.expect("holders").len(),
            4,
            "alone, it takes all"
        );

        let second = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        second.round().await.expect("a round");
        first.round().await.expect("a round");
        second.round().await.expect("a round");
        let holders = store.holders(&key).await.expect("holders");
        let owners: std::collections::HashMap<&str, usize> =
            holders
                .iter()
                .fold(Default::default(), |mut counts, (_, owner)| {
                    *counts.entry(owner.as_str()).or_default() += 1;
                    counts
                });
        assert_eq!(owners.len(), 2, "{holders:?}");
        assert!(
            owners.values().all(|held| *held == 2),
            "an even share: {holders:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_reads_its_new_bus_from_the_start() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        publish(&f, &["a"], 1..=3).await;
        let before = consumer(&f, Recorder::new(&f.database), Duration::from_secs(30));
        until_idle(&before).await;
        drop(before);

        // The process restarts: a new bus, whose offsets begin at 0 again.
        let restarted = Fixture {
            bus: Arc::new(InProcessBus::new(2, 10_000)),
            database: f.database.clone(),
            unit_of_work: Arc::clone(&f.unit_of_work),
        };
        publish(&restarted, &["a"], 4..=5).await;
        let after = consumer(
            &restarted,
            Recorder::new(&f.database),
            Duration::from_secs(30),
        );
        until_idle(&after).await;
        let (order, times) = applied(&f).await;
        assert_eq!(order.get("a"), Some(&vec![1, 2, 3, 4, 5]), "none skipped");
        assert!(times.values().all(|n| *n == 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_is_not_a_message_is_dead_lettered_and_the_consumer_goes_on() {
    use strata_infrastructure::consumer::RedisStreamsLog;
    use strata_infrastructure::outbox::{RedisStreamsConfig, RedisStreamsPublisher};

    let Ok(redis_url) = std::env::var("STRATA_TEST_REDIS_URL") else {
        eprintln!("skipped: set STRATA_TEST_REDIS_URL to run it");
        return;
    };
    let database = TestDatabase::sqlite();
    let f = start(&database).await;
    let config = RedisStreamsConfig {
        partitions: 1,
        ..RedisStreamsConfig::new(
            redis_url.clone(),
            format!("strata-test-consumer-{}", Uuid::now_v7().simple()),
        )
    };
    let publisher = RedisStreamsPublisher::new(config.clone()).expect("a publisher");
    publisher
        .publish(&[message("a", 1, json!({ "n": 1 }))])
        .await
        .expect("published");
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
    publisher
        .publish(&[message("a", 2, json!({ "n": 2 }))])
        .await
        .expect("published");

    let log = RedisStreamsLog::new(config, Duration::from_millis(100)).expect("a log");
    let consumer = OrderedConsumer::new(
        "recorder",
        Arc::new(log),
        ConsumerStore::new(f.database.clone()),
        Arc::clone(&f.unit_of_work),
        Arc::new(Recorder::new(&f.database)),
        ConsumerSettings::default(),
    );
    until_idle(&consumer).await;
    let (order, _) = applied(&f).await;
    assert_eq!(order.get("a"), Some(&vec![1, 2]));
    let dead = dead_letters(&f).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].reason.contains("cannot be read"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[0].message.contains("not a message"),
        "{}",
        dead[0].message
    );
    assert_eq!(dead[0].message_id, None);
}

/// Writes a whole batch's rows in one statement, and notes each batch's size.
struct BatchWriter {
    database: Database,
    sizes: Arc<std::sync::Mutex<Vec<usize>>>,
}

#[async_trait]
impl MessageHandler for BatchWriter {
    fn wants(&self, topic: &str) -> bool {
        topic == "note"
    }

    async fn handle(&self, _request: &RequestContext, _message: &Message) -> Result<(), AppError> {
        Err(AppError::internal(std::io::Error::other(
            "a batch writer is handed batches",
        )))
    }

    async fn handle_batch(&self, batch: &[Incoming<'_>]) -> Result<(), AppError> {
        self.sizes.lock().expect("sizes").push(batch.len());
        if batch
            .iter()
            .any(|incoming| incoming.message.payload["poison"] == true)
        {
            return Err(AppError::RuleViolated {
                code: "poison",
                message: "this message can never be applied".into(),
            });
        }
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        let mut sql = String::from(
            "INSERT INTO applied (message_id, aggregate, version, applied_by) VALUES ",
        );
        let mut values: Vec<sea_orm::Value> = Vec::new();
        for (n, incoming) in batch.iter().enumerate() {
            if n > 0 {
                sql.push(',');
            }
            sql.push_str(&match backend {
                sea_orm::DbBackend::Postgres => {
                    format!(
                        "(${}, ${}, ${}, ${})",
                        4 * n + 1,
                        4 * n + 2,
                        4 * n + 3,
                        4 * n + 4
                    )
                }
                _ => "(?, ?, ?, ?)".to_owned(),
            });
            values.push(incoming.message.id.to_string().into());
            values.push(incoming.message.key.clone().into());
            values.push(
                i64::try_from(incoming.message.version)
                    .unwrap_or(i64::MAX)
                    .into(),
            );
            values.push("batch".into());
        }
        session
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        Ok(())
    }
}

/// A consumer of batches of 10 into a [`BatchWriter`], and the sizes of the
/// batches it was handed.
fn batch_consumer(f: &Fixture) -> (OrderedConsumer, Arc<std::sync::Mutex<Vec<usize>>>) {
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer = OrderedConsumer::new(
        "recorder",
        Arc::clone(&f.bus) as Arc<dyn PartitionLog>,
        ConsumerStore::new(f.database.clone()),
        Arc::clone(&f.unit_of_work),
        Arc::new(BatchWriter {
            database: f.database.clone(),
            sizes: Arc::clone(&sizes),
        }),
        ConsumerSettings {
            batch: 10,
            lease: Duration::from_secs(30),
            ..ConsumerSettings::default()
        },
    );
    (consumer, sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_writes_whole_batches_and_a_poison_message_is_still_isolated() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let mut sent = Vec::new();
        for version in 1..=12 {
            let payload = if version == 7 {
                json!({ "poison": true })
            } else {
                json!({ "n": version })
            };
            sent.push(message("a", version, payload));
        }
        f.bus.publish(&sent).await.expect("published");
        let (consumer, sizes) = batch_consumer(&f);
        until_idle(&consumer).await;

        let (order, times) = applied(&f).await;
        let expected: Vec<i64> = (1..=12).filter(|v| *v != 7).collect();
        assert_eq!(order.get("a"), Some(&expected));
        assert!(times.values().all(|n| *n == 1));
        let sizes = sizes.lock().expect("sizes").clone();
        // The first ten in one call, refused for the poison one; then each
        // of the ten alone; then the last two together.
        assert_eq!(sizes[0], 10, "{sizes:?}");
        assert_eq!(&sizes[1..11], &[1; 10], "{sizes:?}");
        assert_eq!(sizes[11..], [2], "{sizes:?}");
        let dead = dead_letters(&f).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
    })
    .await;
}

/// Few messages in each of several partitions are applied in one
/// transaction: one commit for the round instead of one per partition.
/// A backlog larger than a batch is still applied partition by partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_of_several_partitions_commit_together() {
    on_each_engine(|database| async move {
        let f = start(&database).await;
        let keys = ["a", "b", "c", "d", "e", "f"];
        let partitions: std::collections::BTreeSet<u32> = keys
            .iter()
            .map(|key| partition_of("note", key, 2))
            .collect();
        assert_eq!(partitions.len(), 2, "the keys fall in both partitions");
        publish(&f, &keys, 1..=1).await;
        let (consumer, sizes) = batch_consumer(&f);
        assert_eq!(consumer.round().await.expect("a round"), 6);
        assert_eq!(sizes.lock().expect("sizes").clone(), [6]);
        assert_eq!(consumer.round().await.expect("a round"), 0);

        // Twelve more: more than a batch, so each partition on its own.
        publish(&f, &keys, 2..=3).await;
        until_idle(&consumer).await;
        let later = sizes.lock().expect("sizes")[1..].to_vec();
        assert_eq!(later.len(), 2, "{later:?}");
        assert_eq!(later.iter().sum::<usize>(), 12, "{later:?}");

        // A poison message among small batches: the combined transaction
        // fails whole, then each partition goes on its own — the other
        // partition's batch is applied, the poison one dead-lettered and the
        // rest of its batch applied.
        let mut sent = Vec::new();
        for key in keys {
            let payload = if key == "a" {
                json!({ "poison": true })
            } else {
                json!({ "n": 4 })
            };
            sent.push(message(key, 4, payload));
        }
        f.bus.publish(&sent).await.expect("published");
        until_idle(&consumer).await;

        let (order, times) = applied(&f).await;
        for key in keys {
            let expected: Vec<i64> = if key == "a" {
                vec![1, 2, 3]
            } else {
                vec![1, 2, 3, 4]
            };
            assert_eq!(order.get(key), Some(&expected), "{key}");
        }
        assert_eq!(times.len(), 23);
        assert!(times.values().all(|n| *n == 1));
        let dead = dead_letters(&f).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
    })
    .await;
}
