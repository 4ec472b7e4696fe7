//! A service on the in-process bus stopped while its consumer had not applied
//! its events yet: started again on the same database, it applies each of
//! them once, in order per aggregate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, Statement};
use serde::{Deserialize, Serialize};
use serde_json::json;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::config::{Config, Environment};
use strata_app_api::messaging::MessageHandler;
use strata_domain::ports::{EventEnvelope, Message, Outbox, Propagation, in_unit_of_work};
use strata_infrastructure::{Database, SeaOrmOutbox, SeaOrmUnitOfWork};
use strata_runtime::{BoxError, Service, Startup, load_settings, start};
use uuid::Uuid;

use crate::consumer::NoMigrations;

struct Recording;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RecordingSettings {
    /// The consumer takes its messages and cannot apply them (a dependency
    /// of its is down), so it tries again later.
    stuck: bool,
}

impl Config for RecordingSettings {}

const CONFIG: &str = "\
database_url = \"sqlite::memory:\"
api_addr = \"127.0.0.1:0\"
seed = false

[outbox]
poll_interval = \"200ms\"

[http]
shutdown_grace = \"1s\"
";

#[async_trait]
impl Service for Recording {
    type Settings = RecordingSettings;
    type Migrator = NoMigrations;

    fn name() -> &'static str {
        "recording"
    }

    fn version() -> &'static str {
        "1.0.0"
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &[(Environment::Test, CONFIG)]
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        let database = startup.database().clone();
        let stuck = startup.settings().stuck;
        startup.consume("recorder", Recorder { database, stuck })?;
        Ok(())
    }
}

struct Recorder {
    database: Database,
    stuck: bool,
}

#[async_trait]
impl MessageHandler for Recorder {
    fn wants(&self, topic: &str) -> bool {
        topic == "counter"
    }

    async fn handle(&self, _request: &RequestContext, message: &Message) -> Result<(), AppError> {
        if self.stuck {
            return Err(AppError::Unavailable {
                code: "dependency_down",
                retry_after_secs: 1,
                cause: "what the handler needs is down".into(),
            });
        }
        let session = self.database.writer().await?;
        session
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "INSERT INTO applied (message_id, aggregate, version) VALUES (?, ?, ?)",
                [
                    message.id.to_string().into(),
                    message.key.clone().into(),
                    i64::try_from(message.version).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await
            .map_err(strata_infrastructure::storage_error)?;
        session.finish().await?;
        Ok(())
    }
}

async fn run(url: &str, stuck: bool) -> strata_runtime::Running<Recording> {
    let mut settings = load_settings::<Recording>(Environment::Test, None, Some(Vec::new()))
        .expect("the configuration loads")
        .into_value();
    settings.service.database_url = url.into();
    settings.app.stuck = stuck;
    start::<Recording>(Environment::Test, settings)
        .await
        .expect("the service starts")
}

async fn applied(database: &Database) -> Vec<(String, String, i64)> {
    database
        .connection()
        .expect("the pool")
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT message_id, aggregate, version FROM applied ORDER BY seq",
        ))
        .await
        .expect("read")
        .iter()
        .map(|row| {
            (
                row.try_get("", "message_id").expect("an id"),
                row.try_get("", "aggregate").expect("an aggregate"),
                row.try_get("", "version").expect("a version"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_in_process_bus_had_not_delivered_when_the_service_stopped_are_applied_once_after_its_restart()
 {
    let directory = tempfile::tempdir().expect("a directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("service.db").display()
    );
    let first = run(&url, true).await;
    let database = Database::connect(&url).await.expect("connected");
    database
        .connection()
        .expect("the pool")
        .execute_unprepared(
            "CREATE TABLE applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
             message_id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL, version INTEGER NOT NULL)",
        )
        .await
        .expect("table made");
    let unit_of_work = SeaOrmUnitOfWork::new(database.clone());
    let outbox = Arc::new(SeaOrmOutbox::new(database.clone()));
    for version in 1..=5 {
        let events: Vec<EventEnvelope> = ["a", "b", "c"]
            .iter()
            .map(|aggregate| EventEnvelope {
                id: Uuid::now_v7(),
                aggregate_kind: "counter".into(),
                aggregate_id: (*aggregate).into(),
                aggregate_version: version,
                event_type: "counters.incremented".into(),
                payload: json!({ "to": version }),
                traceparent: None,
            })
            .collect();
        let outbox = Arc::clone(&outbox);
        in_unit_of_work(&unit_of_work, Propagation::Required, async move {
            outbox.append(events).await?;
            Ok::<_, AppError>(())
        })
        .await
        .expect("committed");
    }
    // The relay has handed every event to the bus and marked it published,
    // and the bus has recorded how far its (stuck) consumer got.
    let deadline = Instant::now() + Duration::from_secs(30);
    while SeaOrmOutbox::new(database.clone())
        .status()
        .await
        .expect("status")
        .pending
        > 0
    {
        assert!(Instant::now() < deadline, "the relay published them");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    first.shutdown().await;
    assert!(applied(&database).await.is_empty());

    let second = run(&url, false).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied(&database).await.len() < 15 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing more comes after the last.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let rows = applied(&database).await;
    second.shutdown().await;
    assert_eq!(rows.len(), 15, "each event applied once: {rows:?}");
    for aggregate in ["a", "b", "c"] {
        let versions: Vec<i64> = rows
            .iter()
            .filter(|(_, of, _)| of == aggregate)
            .map(|(_, _, version)| *version)
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5], "{aggregate}");
    }
}
