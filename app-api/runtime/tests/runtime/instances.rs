//! Three instances of a service on one PostgreSQL and Redis, each a process
//! of its own running the outbox relay and an ordered consumer: 10,000 events
//! over 200 aggregates, one instance killed (`SIGKILL`) while they work —
//! every event is applied exactly once, in order per aggregate.
//!
//! The test runs this test binary again as each instance (with
//! `STRATA_INSTANCE_DATABASE_URL` set), so the instances are real processes
//! that can die without a word.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, Statement};
use serde::{Deserialize, Serialize};
use serde_json::json;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::config::{Config, Environment};
use strata_app_api::messaging::MessageHandler;
use strata_domain::ports::{EventEnvelope, Message, Outbox, Propagation, in_unit_of_work};
use strata_infrastructure::{Database, SeaOrmOutbox, SeaOrmUnitOfWork, migrate_up};
use strata_runtime::{BoxError, Service, Startup, load_settings, start};
use uuid::Uuid;

use crate::consumer::NoMigrations;

const DATABASE: &str = "STRATA_INSTANCE_DATABASE_URL";
const REDIS: &str = "STRATA_INSTANCE_REDIS_URL";
const PREFIX: &str = "STRATA_INSTANCE_PREFIX";

const AGGREGATES: usize = 200;
const VERSIONS: u64 = 50;

/// One instance: the runtime's relay and an ordered consumer that writes
/// each event it applies, and who applied it, into `applied`.
struct Instance;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct InstanceSettings {}

impl Config for InstanceSettings {}

const CONFIG: &str = "\
database_url = \"sqlite::memory:\"
api_addr = \"127.0.0.1:0\"
seed = false
migrate_on_start = false

[outbox]
lease = \"2s\"
poll_interval = \"200ms\"
";

#[async_trait]
impl Service for Instance {
    type Settings = InstanceSettings;
    type Migrator = NoMigrations;

    fn name() -> &'static str {
        "instance"
    }

    fn version() -> &'static str {
        "1.0.0"
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &[(Environment::Test, CONFIG)]
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        let database = startup.database().clone();
        startup.consume("recorder", Applier { database })?;
        Ok(())
    }
}

struct Applier {
    database: Database,
}

#[async_trait]
impl MessageHandler for Applier {
    fn wants(&self, topic: &str) -> bool {
        topic == "counter"
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        let session = self.database.writer().await?;
        session
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "INSERT INTO applied (message_id, aggregate, version, applied_by) VALUES ($1, $2, $3, $4)",
                [
                    message.id.to_string().into(),
                    message.key.clone().into(),
                    i64::try_from(message.version).unwrap_or(i64::MAX).into(),
                    i64::from(std::process::id()).into(),
                ],
            ))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        Ok(())
    }
}

/// Runs as one instance until killed.
async fn run_instance(database_url: String) {
    let mut settings = load_settings::<Instance>(Environment::Test, None, Some(Vec::new()))
        .expect("the configuration loads")
        .into_value();
    settings.service.database_url = database_url.as_str().into();
    settings.service.redis_url = Some(
        std::env::var(REDIS)
            .expect("the Redis server")
            .as_str()
            .into(),
    );
    settings.service.cache_key_prefix = std::env::var(PREFIX).expect("the key prefix");
    let _running = start::<Instance>(Environment::Test, settings)
        .await
        .expect("the instance starts");
    std::future::pending::<()>().await;
}

fn spawn_instance(database_url: &str, redis_url: &str, prefix: &str) -> Child {
    Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "instances::three_instances_apply_every_event_once_in_order_though_one_is_killed",
            "--nocapture",
        ])
        .env(DATABASE, database_url)
        .env(REDIS, redis_url)
        .env(PREFIX, prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("an instance")
}

async fn applied_count(database: &Database) -> i64 {
    let row = database
        .connection()
        .expect("the pool")
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM applied",
        ))
        .await
        .expect("counted")
        .expect("a row");
    row.try_get("", "n").expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_apply_every_event_once_in_order_though_one_is_killed() {
    if let Ok(database_url) = std::env::var(DATABASE) {
        run_instance(database_url).await;
        return;
    }
    let (Ok(server), Ok(redis_url)) = (
        std::env::var("STRATA_TEST_POSTGRES_URL"),
        std::env::var("STRATA_TEST_REDIS_URL"),
    ) else {
        eprintln!(
            "skipped: set STRATA_TEST_POSTGRES_URL and STRATA_TEST_REDIS_URL to run three instances on them"
        );
        return;
    };
    let postgres = crate::consumer::FreshPostgres::create(&server).await;
    let database_url = postgres.url().to_owned();
    let database = Database::connect(&database_url).await.expect("connected");
    migrate_up::<NoMigrations>(&database)
        .await
        .expect("migrated");
    database
        .connection()
        .expect("the pool")
        .execute_unprepared(
            "CREATE TABLE applied (seq BIGSERIAL PRIMARY KEY, message_id TEXT NOT NULL, \
             aggregate TEXT NOT NULL, version BIGINT NOT NULL, applied_by BIGINT NOT NULL)",
        )
        .await
        .expect("table made");
    let prefix = format!("strata-test-instances-{}", Uuid::now_v7().simple());
    let mut instances: Vec<Child> = (0..3)
        .map(|_| spawn_instance(&database_url, &redis_url, &prefix))
        .collect();

    // One instance dies without a word once the work is well under way,
    // while events are still being committed.
    let total = i64::try_from(AGGREGATES * VERSIONS as usize).expect("a count");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut victim = instances.remove(0);
    let killer = {
        let database = database.clone();
        tokio::spawn(async move {
            while applied_count(&database).await < total * 3 / 10 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            victim.kill().expect("killed");
            victim.wait().expect("reaped");
            applied_count(&database).await
        })
    };

    // The events, committed as a service commits them: each version of
    // every aggregate in one unit of work.
    let unit_of_work = SeaOrmUnitOfWork::new(database.clone());
    let outbox = SeaOrmOutbox::new(database.clone());
    let aggregates: Vec<String> = (0..AGGREGATES).map(|n| format!("counter-{n}")).collect();
    let mut sent = HashSet::new();
    for version in 1..=VERSIONS {
        let events: Vec<EventEnvelope> = aggregates
            .iter()
            .map(|aggregate| EventEnvelope {
                id: Uuid::now_v7(),
                aggregate_kind: "counter".into(),
                aggregate_id: aggregate.clone(),
                aggregate_version: version,
                event_type: "counters.incremented".into(),
                payload: json!({ "to": version }),
                traceparent: None,
            })
            .collect();
        sent.extend(events.iter().map(|event| event.id));
        in_unit_of_work(&unit_of_work, Propagation::Required, async {
            outbox.append(events).await?;
            Ok::<_, AppError>(())
        })
        .await
        .expect("committed");
    }
    let at_kill = killer.await.expect("the killer ran");
    assert!(at_kill < total, "killed while work remained ({at_kill})");

    while applied_count(&database).await < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing more arrives after the last one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for instance in &mut instances {
        let _ = instance.kill();
        let _ = instance.wait();
    }

    let rows = database
        .connection()
        .expect("the pool")
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT message_id, aggregate, version, applied_by FROM applied ORDER BY seq",
        ))
        .await
        .expect("read");
    let mut times: HashMap<String, usize> = HashMap::new();
    let mut order: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut appliers = HashSet::new();
    for row in &rows {
        let id: String = row.try_get("", "message_id").expect("an id");
        let aggregate: String = row.try_get("", "aggregate").expect("an aggregate");
        let version: i64 = row.try_get("", "version").expect("a version");
        let applier: i64 = row.try_get("", "applied_by").expect("an applier");
        *times.entry(id).or_default() += 1;
        order.entry(aggregate).or_default().push(version);
        appliers.insert(applier);
    }
    let doubled: Vec<&String> = times
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(doubled.is_empty(), "applied twice: {doubled:?}");
    let applied: HashSet<Uuid> = times.keys().map(|id| id.parse().expect("a uuid")).collect();
    assert_eq!(applied, sent, "every event applied");
    assert_eq!(order.len(), AGGREGATES);
    let expected: Vec<i64> = (1..=i64::try_from(VERSIONS).expect("versions")).collect();
    for (aggregate, versions) in &order {
        assert_eq!(versions, &expected, "in order for {aggregate}");
    }
    eprintln!(
        "one of three instances killed at {at_kill} of {total} events applied; {} instances applied them",
        appliers.len()
    );
    assert!(
        appliers.len() >= 2,
        "the instances shared the work: {appliers:?}"
    );
}
