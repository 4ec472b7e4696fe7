//! Messaging throughput against raw Redis, in one run (see `bench/RESULTS.md`):
//!
//! * relay: outbox rows on PostgreSQL published into Redis Streams in passes of
//!   100 (claim, pipelined `XADD`, mark), and again in passes of 500, against a
//!   raw pipelined `XADD` loop of the same messages in batches of 100;
//! * ordered consumer: the same streams applied 100 at a time, each batch's
//!   results, inbox rows and position in one PostgreSQL transaction, against a
//!   raw `XREAD COUNT 100` loop over them — once with a handler writing one row
//!   per message, once with one writing the batch's rows in one statement
//!   (`MessageHandler::handle_batch`);
//! * commit-to-applied latency: events committed one at a time (200 a second,
//!   then 4 a second) while the relay (woken by the commit) and the ordered
//!   consumer run as the runtime runs them; from each event's commit to the
//!   commit of the consumer's transaction that applied it, p50 and p99.
//!
//! Needs `STRATA_TEST_POSTGRES_URL` and `STRATA_TEST_REDIS_URL`;
//! `MESSAGING_BENCH_EVENTS` sets how many events (10,000 by default) and
//! `MESSAGING_BENCH_ROUNDS` how many alternating rounds (3).
//!
//! ```sh
//! cargo bench -p strata-runtime --bench messaging
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::messaging::{Incoming, MessageHandler};
use strata_app_api::workers::{RestartPolicy, Workers};
use strata_domain::ports::{
    EventEnvelope, Message, Outbox, Propagation, UnitOfWork, in_unit_of_work,
};
use strata_infrastructure::consumer::{ConsumerStore, RedisStreamsLog};
use strata_infrastructure::outbox::{
    OutboxRelay, RedisStreamsConfig, RedisStreamsPublisher, RelaySettings,
};
use strata_infrastructure::{Database, SeaOrmOutbox, SeaOrmUnitOfWork, migrate_up};
use strata_runtime::{ConsumerSettings, OrderedConsumer};
use uuid::Uuid;

#[path = "../tests/support/fresh_postgres.rs"]
mod fresh_postgres;
use fresh_postgres::FreshPostgres;

struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

const PARTITIONS: u32 = 8;
const AGGREGATES: usize = 200;
/// The larger relay pass measured beside the default one.
const LARGE_PASS: u32 = 500;

fn main() {
    let (Ok(postgres), Ok(redis_url)) = (
        std::env::var("STRATA_TEST_POSTGRES_URL"),
        std::env::var("STRATA_TEST_REDIS_URL"),
    ) else {
        eprintln!(
            "messaging bench skipped: set STRATA_TEST_POSTGRES_URL and STRATA_TEST_REDIS_URL"
        );
        return;
    };
    let events: usize = std::env::var("MESSAGING_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("MESSAGING_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(&postgres, &redis_url, events, rounds));
}

async fn run(postgres: &str, redis_url: &str, events: usize, rounds: usize) {
    let mut raw_xadd = Vec::new();
    let mut relay = Vec::new();
    let mut relay_large = Vec::new();
    let mut raw_xread = Vec::new();
    let mut consumer = Vec::new();
    let mut batch_consumer = Vec::new();
    for round in 1..=rounds {
        let prefix = format!("strata-bench-{}", Uuid::now_v7().simple());
        let config = RedisStreamsConfig {
            partitions: PARTITIONS,
            max_len: None,
            ..RedisStreamsConfig::new(redis_url, prefix.clone())
        };
        let messages = messages(events);
        raw_xadd.push(raw_xadd_rate(redis_url, &format!("{prefix}-raw"), &messages).await);
        let (database, _dropped_after) = fresh_database(postgres).await;
        relay.push(relay_rate(&database, &config, events, 100).await);
        let large_config = RedisStreamsConfig {
            key_prefix: format!("{prefix}-large"),
            ..config.clone()
        };
        relay_large.push(
            relay_rate(
                &fresh_database(postgres).await.0,
                &large_config,
                events,
                LARGE_PASS,
            )
            .await,
        );
        raw_xread.push(raw_xread_rate(redis_url, &config, events).await);
        let apply = Arc::new(Apply {
            database: database.clone(),
        });
        consumer.push(consumer_rate(&database, &config, events, "bench", apply).await);
        let batched = Arc::new(ApplyBatch {
            database: database.clone(),
        });
        batch_consumer
            .push(consumer_rate(&database, &config, events, "bench-batch", batched).await);
        eprintln!(
            "round {round}: raw XADD {:.0}/s, relay {:.0}/s, relay (passes of {LARGE_PASS}) {:.0}/s, raw XREAD {:.0}/s, consumer {:.0}/s, batch consumer {:.0}/s",
            raw_xadd[round - 1],
            relay[round - 1],
            relay_large[round - 1],
            raw_xread[round - 1],
            consumer[round - 1],
            batch_consumer[round - 1]
        );
        let client = redis::Client::open(redis_url).expect("a client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connected");
        let mut keys: Vec<String> = (0..PARTITIONS).map(|p| config.stream_key(p)).collect();
        keys.extend((0..PARTITIONS).map(|p| large_config.stream_key(p)));
        keys.push(format!("{prefix}-raw"));
        let _: () = connection.del(keys).await.expect("cleaned up");
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (raw_xadd, relay, relay_large, raw_xread, consumer, batch_consumer) = (
        median(&mut raw_xadd),
        median(&mut relay),
        median(&mut relay_large),
        median(&mut raw_xread),
        median(&mut consumer),
        median(&mut batch_consumer),
    );
    let (database, _dropped_after) = fresh_database(postgres).await;
    let config = RedisStreamsConfig {
        partitions: PARTITIONS,
        max_len: None,
        ..RedisStreamsConfig::new(
            redis_url,
            format!("strata-bench-{}", Uuid::now_v7().simple()),
        )
    };
    let steady = latency(
        &database,
        &config,
        (events / 10).clamp(50, 2_000),
        Duration::from_millis(5),
    )
    .await;
    let sparse_config = RedisStreamsConfig {
        key_prefix: format!("{}-sparse", config.key_prefix),
        ..config.clone()
    };
    let sparse = latency(
        &fresh_database(postgres).await.0,
        &sparse_config,
        (events / 250).clamp(10, 40),
        Duration::from_millis(250),
    )
    .await;
    println!("| measurement | events/s (median of {rounds}) | baseline | ratio |");
    println!("|---|---|---|---|");
    println!("| raw pipelined `XADD`, batches of 100 (baseline) | {raw_xadd:.0} | — | — |");
    println!(
        "| outbox relay on PostgreSQL into Redis Streams, passes of 100 | {relay:.0} | raw `XADD` | **{:.2}** |",
        relay / raw_xadd
    );
    println!(
        "| outbox relay on PostgreSQL into Redis Streams, passes of {LARGE_PASS} | {relay_large:.0} | raw `XADD` | **{:.2}** |",
        relay_large / raw_xadd
    );
    println!("| raw `XREAD COUNT 100` (baseline) | {raw_xread:.0} | — | — |");
    println!(
        "| ordered consumer, batches of 100, results (one insert per message) + inbox + position in one PostgreSQL transaction | {consumer:.0} | raw `XREAD` | **{:.2}** |",
        consumer / raw_xread
    );
    println!(
        "| ordered consumer, batches of 100, results (one insert per batch, `handle_batch`) + inbox + position in one PostgreSQL transaction | {batch_consumer:.0} | raw `XREAD` | **{:.2}** |",
        batch_consumer / raw_xread
    );
    println!();
    for (what, latencies) in [("200 a second", &steady), ("4 a second", &sparse)] {
        println!(
            "commit-to-applied latency, {} events committed {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            percentile(latencies, 0.50),
            percentile(latencies, 0.99),
            percentile(latencies, 1.0)
        );
    }
}

/// The `share` quantile of `sorted` milliseconds.
fn percentile(sorted: &[f64], share: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((last as f64) * share).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or(f64::NAN)
}

/// Marks each message applied once the consumer's transaction commits.
struct Stamp {
    unit_of_work: Arc<dyn UnitOfWork>,
    applied: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>>,
}

#[async_trait]
impl MessageHandler for Stamp {
    fn wants(&self, _topic: &str) -> bool {
        true
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        let applied = Arc::clone(&self.applied);
        let id = message.id;
        self.unit_of_work
            .after_commit(Box::new(move || {
                Box::pin(async move {
                    applied
                        .lock()
                        .expect("the stamps")
                        .insert(id, Instant::now());
                })
            }))
            .map_err(AppError::internal)?;
        Ok(())
    }
}

/// Commits `events` one at a time, `apart`, with the relay and the ordered
/// consumer running as the runtime runs them; each event's latency from its
/// commit to the commit that applied it, in milliseconds, sorted.
async fn latency(
    database: &Database,
    config: &RedisStreamsConfig,
    events: usize,
    apart: Duration,
) -> Vec<f64> {
    let unit_of_work: Arc<dyn UnitOfWork> = Arc::new(SeaOrmUnitOfWork::new(database.clone()));
    let applied = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let publisher = Arc::new(RedisStreamsPublisher::new(config.clone()).expect("a publisher"));
    let relay = OutboxRelay::new(database.clone(), publisher, RelaySettings::default());
    let log = RedisStreamsLog::new(config.clone(), Duration::from_secs(1)).expect("a log");
    let mut workers = Workers::new(RestartPolicy::default());
    workers.add(OrderedConsumer::new(
        "latency",
        Arc::new(log),
        ConsumerStore::new(database.clone()),
        Arc::clone(&unit_of_work),
        Arc::new(Stamp {
            unit_of_work: Arc::clone(&unit_of_work),
            applied: Arc::clone(&applied),
        }),
        ConsumerSettings {
            idle_wait: Duration::from_millis(50),
            ..ConsumerSettings::default()
        },
    ));
    let running = workers.start();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relaying = tokio::spawn(async move {
        relay
            .run(
                async {
                    let _ = stopped.await;
                },
                |_| {},
            )
            .await
    });
    // Let the consumer take its partitions first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outbox = SeaOrmOutbox::new(database.clone());
    let mut committed = HashMap::new();
    for message in messages(events) {
        let envelope = EventEnvelope {
            id: message.id,
            aggregate_kind: message.topic.clone(),
            aggregate_id: message.key.clone(),
            aggregate_version: message.version,
            event_type: message.event_type.clone(),
            payload: message.payload.clone(),
            traceparent: None,
        };
        let outbox = &outbox;
        in_unit_of_work(unit_of_work.as_ref(), Propagation::Required, async move {
            outbox.append(vec![envelope]).await?;
            Ok::<_, AppError>(())
        })
        .await
        .expect("recorded");
        committed.insert(message.id, Instant::now());
        tokio::time::sleep(apart).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied.lock().expect("the stamps").len() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    relaying.await.expect("ran").expect("the relay stopped");
    running.shutdown(Duration::from_secs(5)).await;
    let applied = applied.lock().expect("the stamps");
    assert_eq!(applied.len(), events, "every event applied");
    let mut latencies: Vec<f64> = committed
        .iter()
        .filter_map(|(id, at)| {
            applied
                .get(id)
                .map(|done| done.saturating_duration_since(*at).as_secs_f64() * 1_000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn messages(events: usize) -> Vec<Message> {
    (0..events)
        .map(|n| Message {
            id: Uuid::now_v7(),
            topic: "note".into(),
            key: format!("aggregate-{}", n % AGGREGATES),
            version: (n / AGGREGATES + 1) as u64,
            event_type: "notes.note_written".into(),
            payload: json!({ "n": n }),
            traceparent: None,
            recorded_at_ms: 0,
        })
        .collect()
}

async fn raw_xadd_rate(redis_url: &str, key: &str, messages: &[Message]) -> f64 {
    let client = redis::Client::open(redis_url).expect("a client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected");
    let started = Instant::now();
    for batch in messages.chunks(100) {
        let mut pipe = redis::pipe();
        for message in batch {
            pipe.xadd(
                key,
                "*",
                &[
                    ("id", message.id.to_string()),
                    ("topic", message.topic.clone()),
                    ("key", message.key.clone()),
                    ("version", message.version.to_string()),
                    ("type", message.event_type.clone()),
                    ("payload", message.payload.to_string()),
                    ("recorded_at", message.recorded_at_ms.to_string()),
                ],
            )
            .ignore();
        }
        let () = pipe.query_async(&mut connection).await.expect("added");
    }
    messages.len() as f64 / started.elapsed().as_secs_f64()
}

async fn relay_rate(
    database: &Database,
    config: &RedisStreamsConfig,
    events: usize,
    batch: u32,
) -> f64 {
    let unit_of_work = SeaOrmUnitOfWork::new(database.clone());
    let outbox = SeaOrmOutbox::new(database.clone());
    for chunk in messages(events).chunks(500) {
        let envelopes: Vec<EventEnvelope> = chunk
            .iter()
            .map(|message| EventEnvelope {
                id: message.id,
                aggregate_kind: message.topic.clone(),
                aggregate_id: message.key.clone(),
                aggregate_version: message.version,
                event_type: message.event_type.clone(),
                payload: message.payload.clone(),
                traceparent: None,
            })
            .collect();
        let outbox = &outbox;
        in_unit_of_work(&unit_of_work, Propagation::Required, async move {
            outbox.append(envelopes).await?;
            Ok::<_, AppError>(())
        })
        .await
        .expect("recorded");
    }
    let publisher = Arc::new(RedisStreamsPublisher::new(config.clone()).expect("a publisher"));
    let settings = RelaySettings {
        batch,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(database.clone(), publisher, settings);
    let started = Instant::now();
    let mut published = 0;
    while published < events {
        let pass = relay.relay_once().await.expect("a pass");
        assert_eq!(pass.failed, 0, "{pass:?}");
        published += pass.published;
    }
    events as f64 / started.elapsed().as_secs_f64()
}

async fn raw_xread_rate(redis_url: &str, config: &RedisStreamsConfig, events: usize) -> f64 {
    let client = redis::Client::open(redis_url).expect("a client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected");
    let started = Instant::now();
    let mut read = 0;
    for partition in 0..PARTITIONS {
        let key = config.stream_key(partition);
        let mut after = "0".to_owned();
        loop {
            let reply: Option<StreamReadReply> = connection
                .xread_options(&[&key], &[&after], &StreamReadOptions::default().count(100))
                .await
                .expect("read");
            let Some(last) = reply
                .as_ref()
                .and_then(|reply| reply.keys.first())
                .and_then(|stream| stream.ids.last())
            else {
                break;
            };
            after.clone_from(&last.id);
            read += reply.as_ref().map_or(0, |reply| {
                reply.keys.iter().map(|k| k.ids.len()).sum::<usize>()
            });
        }
    }
    assert_eq!(read, events);
    events as f64 / started.elapsed().as_secs_f64()
}

/// Writes each message's id into `applied`, in the consumer's transaction.
struct Apply {
    database: Database,
}

#[async_trait]
impl MessageHandler for Apply {
    fn wants(&self, _topic: &str) -> bool {
        true
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        let session = self.database.writer().await?;
        session
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "INSERT INTO applied (message_id) VALUES ($1)",
                [message.id.to_string().into()],
            ))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        Ok(())
    }
}

/// Writes a batch's message ids into `applied_batch` with one statement, in
/// the consumer's transaction.
struct ApplyBatch {
    database: Database,
}

#[async_trait]
impl MessageHandler for ApplyBatch {
    fn wants(&self, _topic: &str) -> bool {
        true
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        self.write(&[message]).await
    }

    async fn handle_batch(&self, batch: &[Incoming<'_>]) -> Result<(), AppError> {
        let messages: Vec<&Message> = batch.iter().map(|incoming| incoming.message).collect();
        self.write(&messages).await
    }
}

impl ApplyBatch {
    async fn write(&self, messages: &[&Message]) -> Result<(), AppError> {
        let placeholders: Vec<String> = (1..=messages.len()).map(|n| format!("(${n})")).collect();
        let sql = format!(
            "INSERT INTO applied_batch (message_id) VALUES {}",
            placeholders.join(",")
        );
        let values: Vec<sea_orm::Value> = messages
            .iter()
            .map(|message| message.id.to_string().into())
            .collect();
        let session = self.database.writer().await?;
        session
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                sql,
                values,
            ))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        Ok(())
    }
}

async fn consumer_rate(
    database: &Database,
    config: &RedisStreamsConfig,
    events: usize,
    name: &str,
    handler: Arc<dyn MessageHandler>,
) -> f64 {
    let log = RedisStreamsLog::new(config.clone(), Duration::from_millis(10)).expect("a log");
    let consumer = OrderedConsumer::new(
        name,
        Arc::new(log),
        ConsumerStore::new(database.clone()),
        Arc::new(SeaOrmUnitOfWork::new(database.clone())),
        handler,
        ConsumerSettings::default(),
    );
    let started = Instant::now();
    let mut applied = 0;
    while applied < events {
        applied += consumer.round().await.expect("a round");
    }
    events as f64 / started.elapsed().as_secs_f64()
}

/// A migrated database of its own, with the guard that drops it.
async fn fresh_database(server: &str) -> (Database, FreshPostgres) {
    let postgres = FreshPostgres::create(server).await;
    let database = Database::connect(postgres.url()).await.expect("connected");
    migrate_up::<NoMigrations>(&database)
        .await
        .expect("migrated");
    database
        .connection()
        .expect("the pool")
        .execute_unprepared("CREATE TABLE applied (message_id TEXT PRIMARY KEY)")
        .await
        .expect("table made");
    database
        .connection()
        .expect("the pool")
        .execute_unprepared("CREATE TABLE applied_batch (message_id TEXT PRIMARY KEY)")
        .await
        .expect("table made");
    (database, postgres)
}
