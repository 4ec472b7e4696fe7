//! The runtime with a service of the tests' own: what every service gets
//! without writing it — workers restarted and reported in readiness and
//! metrics, bounded shutdown, the command line's exit statuses.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use serde::{Deserialize, Serialize};
use strata_app_api::config::{Config, Environment};
use strata_app_api::http::{health, metrics};
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_runtime::{BoxError, Service, Startup, load_settings, main_with, start};

#[path = "runtime/consumer.rs"]
mod consumer;
#[path = "runtime/group.rs"]
mod group;
#[path = "runtime/instances.rs"]
mod instances;
#[path = "runtime/replay.rs"]
mod replay;

/// A service with no tables, an API of only the operational routes, and the
/// workers its settings ask for.
struct Probe;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ProbeSettings {
    /// Adds a worker that panics on every run.
    crashing_worker: bool,
    /// Adds a worker that ignores the stop signal.
    stubborn_worker: bool,
    /// Coordinates distributed transactions and is a TCC participant.
    coordinating: bool,
}

impl Config for ProbeSettings {}

struct NoTables;

impl MigratorTrait for NoTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

static CRASHES: AtomicUsize = AtomicUsize::new(0);

struct Crashing;

#[async_trait]
impl Worker for Crashing {
    fn name(&self) -> &str {
        "crashing"
    }

    async fn run(&self, _context: WorkerContext) -> Result<(), WorkerError> {
        CRASHES.fetch_add(1, Ordering::SeqCst);
        panic!("the worker blew up");
    }
}

struct Stubborn;

#[async_trait]
impl Worker for Stubborn {
    fn name(&self) -> &str {
        "stubborn"
    }

    async fn run(&self, context: WorkerContext) -> Result<(), WorkerError> {
        context.beat();
        std::future::pending::<()>().await;
        Ok(())
    }
}

const TEST_CONFIG: &str = "\
database_url = \"sqlite::memory:\"
api_addr = \"127.0.0.1:0\"
seed = false

[http]
shutdown_grace = \"1s\"
";

#[async_trait]
impl Service for Probe {
    type Settings = ProbeSettings;
    type Migrator = NoTables;

    fn name() -> &'static str {
        "probe"
    }

    fn version() -> &'static str {
        "1.0.0"
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &[(Environment::Test, TEST_CONFIG)]
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        if startup.settings().crashing_worker {
            startup.worker(Crashing);
        }
        if startup.settings().stubborn_worker {
            startup.worker(Stubborn);
        }
        if startup.settings().coordinating {
            let coordinator = startup.coordinator(None);
            // Asked twice, the workers start once.
            let _ = startup.coordinator(None);
            let _ = startup.tcc_barrier();
            let _ = startup.tcc_barrier();
            let outcome = coordinator
                .tcc("probe-nothing", Vec::new(), None)
                .await
                .map_err(|error| Box::new(error) as BoxError)?;
            if outcome != strata_infrastructure::tcc::Outcome::Succeeded {
                return Err(format!("a transaction of no branches ended {outcome:?}").into());
            }
        }
        let operations = startup.operations();
        let router = axum::Router::new()
            .merge(health::routes(operations.readiness))
            .merge(metrics::routes(operations.metrics));
        let api = startup
            .bind("api", startup.service_settings().api_addr)
            .await?;
        startup.serve(api, router);
        Ok(())
    }
}

async fn probe(customize: impl FnOnce(&mut ProbeSettings)) -> strata_runtime::Running<Probe> {
    let mut settings = load_settings::<Probe>(Environment::Test, None, Some(Vec::new()))
        .expect("the test configuration loads")
        .into_value();
    customize(&mut settings.app);
    start::<Probe>(Environment::Test, settings)
        .await
        .expect("the probe starts")
}

async fn get(running: &strata_runtime::Running<Probe>, path: &str) -> (u16, String) {
    let addr = running.addr("api").expect("an API");
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("the probe answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// How the service's ordered consumers read (`[consumers]`): the lease after
/// which a dead instance's partitions are taken over, the batch, the pause
/// when idle and the partitions applied at once; nonsense is refused by name.
#[test]
fn the_ordered_consumers_are_tuned_by_settings() {
    let load = |variables: &[(&str, &str)]| {
        load_settings::<Probe>(
            Environment::Test,
            None,
            Some(
                variables
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
        )
    };
    let settings = load(&[
        ("PROBE_CONSUMERS__LEASE", "3s"),
        ("PROBE_CONSUMERS__BATCH", "20"),
        ("PROBE_CONSUMERS__IDLE_WAIT", "50ms"),
        ("PROBE_CONSUMERS__PARALLEL", "2"),
    ])
    .expect("loads")
    .into_value();
    let consumers = &settings.service.consumers;
    assert_eq!(consumers.lease, Duration::from_secs(3));
    assert_eq!(consumers.batch, 20);
    assert_eq!(consumers.idle_wait, Duration::from_millis(50));
    assert_eq!(consumers.parallel, 2);
    let defaults = load(&[]).expect("loads").into_value();
    assert_eq!(
        defaults.service.consumers.lease,
        strata_runtime::ConsumerSettings::default().lease
    );
    for (name, value, key) in [
        ("PROBE_CONSUMERS__LEASE", "0s", "consumers.lease"),
        ("PROBE_CONSUMERS__BATCH", "0", "consumers.batch"),
        ("PROBE_CONSUMERS__PARALLEL", "0", "consumers.parallel"),
    ] {
        let error = load(&[(name, value)]).expect_err("refused");
        assert!(error.to_string().contains(key), "{error}");
    }
}

#[tokio::test]
async fn a_worker_that_keeps_panicking_is_restarted_and_reported_in_readiness_and_metrics() {
    let running = probe(|settings| settings.crashing_worker = true).await;
    let (status, ready) = get(&running, "/health/ready").await;
    assert_eq!(
        status, 200,
        "the purge worker is up and the crashing one has failed once: {ready}"
    );
    assert!(
        ready.contains("\"worker.idempotency_key_purge\":{\"status\":\"up\""),
        "{ready}"
    );

    // Failures at once, after 1 s and after 3 s: down after the third.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, ready) = get(&running, "/health/ready").await;
        if status == 503 {
            let problem: serde_json::Value = serde_json::from_str(&ready).expect("a problem");
            assert_eq!(problem["code"], "not_ready", "{ready}");
            assert_eq!(
                problem["checks"]["worker.crashing"]["status"], "down",
                "{ready}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reported: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        CRASHES.load(Ordering::SeqCst) >= 3,
        "restarted after each panic"
    );
    let (_, metrics) = get(&running, "/metrics").await;
    assert!(
        metrics.contains("worker_up{worker=\"crashing\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("worker_failures_total{worker=\"crashing\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("worker_up{worker=\"idempotency_key_purge\"} 1"),
        "{metrics}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_coordinating_service_runs_the_recovery_and_barrier_purge_workers_once() {
    let running = probe(|settings| settings.coordinating = true).await;
    let mut metrics = String::new();
    for _ in 0..100 {
        let (status, text) = get(&running, "/metrics").await;
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("tcc_transactions{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("tcc_transactions{state=\"succeeded\"} 1"),
        "the transaction it ran is counted:\n{metrics}"
    );
    assert!(metrics.contains("tcc_flagged 0"), "{metrics}");
    for worker in ["tcc_recovery", "tcc_barrier_purge"] {
        assert_eq!(
            metrics
                .matches(&format!("worker_up{{worker=\"{worker}\"}} 1"))
                .count(),
            1,
            "{worker} runs once:\n{metrics}"
        );
    }
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_period_even_with_a_worker_that_will_not_stop() {
    let running = probe(|settings| settings.stubborn_worker = true).await;
    let (status, ready) = get(&running, "/health/ready").await;
    assert_eq!(status, 200, "the stubborn worker is running: {ready}");
    let started = tokio::time::Instant::now();
    // One grace period of 1 s for the servers and the workers together.
    running.shutdown().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the stubborn worker was given its grace: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "nothing waited past the grace period: {took:?}"
    );
}

#[tokio::test]
async fn a_database_url_the_driver_cannot_use_is_reported_without_its_password() {
    let mut settings = load_settings::<Probe>(Environment::Test, None, Some(Vec::new()))
        .expect("the test configuration loads")
        .into_value();
    settings.service.database_url = "postgres://shop:hunter2@127.0.0.1:notaport/shop".into();
    let error = strata_runtime::open_database::<Probe>(&settings)
        .await
        .expect_err("no such port");
    let text = strata_app_api::application::error_chain(&error);
    assert!(!text.contains("hunter2"), "{text}");
}

fn run(args: &[&str]) -> ExitCode {
    let args: Vec<OsString> = std::iter::once("probe")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    main_with::<Probe>(args)
}

#[test]
fn the_command_line_answers_with_the_documented_exit_statuses() {
    assert_eq!(run(&["--version"]), ExitCode::SUCCESS);
    assert_eq!(run(&["serv"]), ExitCode::from(2), "a mistyped command");
    assert_eq!(
        run(&["--env", "staging", "config"]),
        ExitCode::from(2),
        "a bad flag"
    );
    assert_eq!(run(&["--env", "test", "config"]), ExitCode::SUCCESS);
    assert_eq!(
        run(&["--env", "test", "migrate", "status"]),
        ExitCode::SUCCESS
    );
}
