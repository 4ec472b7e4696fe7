//! Global TCC transactions per second on PostgreSQL (see `bench/RESULTS.md`):
//! two branches (stock and money), each participant an HTTP service on this
//! machine with its own database and the barrier, the coordinator's tables in
//! a third; at concurrency 16 and 64, next to `pgbench` single-row inserts at
//! the same concurrency in the same run — the database's commit limit — and
//! the database transactions one global transaction costs (`xact_commit` of
//! `pg_stat_database` over the three databases, read-only ones included).
//!
//! Needs `STRATA_TEST_POSTGRES_URL` and `pgbench`; `TCC_BENCH_TRANSACTIONS`
//! sets how many global transactions each run makes (2,000 by default),
//! `TCC_BENCH_PGBENCH_SECONDS` how long each `pgbench` runs (10).
//!
//! ```sh
//! cargo bench -p strata-infrastructure-tests --bench tcc
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use strata_infrastructure::tcc::{Coordinator, HttpBranchTransport, Outcome, TccSettings};
use strata_infrastructure::{Database, migrate_up};
use strata_infrastructure_tests::tcc::Participant;

#[path = "../../../app-api/runtime/tests/support/fresh_postgres.rs"]
mod fresh_postgres;
use fresh_postgres::FreshPostgres;

struct NoMigrations;

impl sea_orm_migration::MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

fn main() {
    let Ok(server) = std::env::var("STRATA_TEST_POSTGRES_URL") else {
        eprintln!("tcc bench skipped: set STRATA_TEST_POSTGRES_URL");
        return;
    };
    let transactions: usize = std::env::var("TCC_BENCH_TRANSACTIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(&server, transactions));
}

fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Commits so far in the databases named `names`.
async fn commits(server: &str, names: &[String]) -> i64 {
    let admin = sea_orm::Database::connect(server).await.expect("connected");
    let list = names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT COALESCE(SUM(xact_commit), 0)::BIGINT AS commits FROM pg_stat_database WHERE datname IN ({list})"
            ),
        ))
        .await
        .expect("read")
        .expect("a row");
    let commits: i64 = row.try_get("", "commits").expect("a count");
    let _ = admin.close().await;
    commits
}

/// `pgbench` inserting one row per transaction from `clients` clients for
/// `seconds` into a fresh database: its transactions per second.
async fn commit_limit(server: &str, clients: usize, seconds: u64) -> f64 {
    let fresh = FreshPostgres::create(server).await;
    let url = fresh.url().to_owned();
    let database = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connected");
    database
        .execute_unprepared("CREATE TABLE t (x INT)")
        .await
        .expect("table made");
    let _ = database.close().await;
    let script = std::env::temp_dir().join(format!("strata-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, "INSERT INTO t VALUES (1);\n").expect("script written");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("pgbench")
            .args(["-n", "-j", "2", "-T"])
            .arg(seconds.to_string())
            .arg("-c")
            .arg(clients.to_string())
            .arg("-f")
            .arg(&script)
            .arg(&url)
            .output()
    })
    .await
    .expect("ran")
    .expect("pgbench runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no tps in pgbench's output: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

struct Run {
    per_second: f64,
    commits_per_transaction: f64,
}

async fn global_transactions(server: &str, concurrency: usize, total: usize) -> Run {
    let fresh = [
        FreshPostgres::create(server).await,
        FreshPostgres::create(server).await,
        FreshPostgres::create(server).await,
    ];
    let [coordinator_url, inventory_url, wallet_url] =
        [0, 1, 2].map(|at| fresh[at].url().to_owned());
    let database = Database::connect(&coordinator_url)
        .await
        .expect("connected");
    migrate_up::<NoMigrations>(&database)
        .await
        .expect("migrated");
    let inventory = Participant::start(&inventory_url, 1_000_000_000).await;
    let wallet = Participant::start(&wallet_url, 1_000_000_000_000).await;
    let coordinator = Coordinator::new(
        database,
        Arc::new(HttpBranchTransport::new(Duration::from_secs(10))),
        TccSettings::default(),
    );
    let names: Vec<String> = [&coordinator_url, &inventory_url, &wallet_url]
        .iter()
        .map(|url| database_name(url))
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = commits(server, &names).await;
    let next = Arc::new(AtomicUsize::new(0));
    let branches = Arc::new(vec![inventory.branch(1), wallet.branch(10)]);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (coordinator, next, branches) = (
            coordinator.clone(),
            Arc::clone(&next),
            Arc::clone(&branches),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= total {
                    return;
                }
                let outcome = coordinator
                    .tcc(&format!("order-{n}"), branches.as_ref().clone(), None)
                    .await
                    .expect("ran");
                assert_eq!(outcome, Outcome::Succeeded);
            }
        }));
    }
    for worker in workers {
        worker.await.expect("ran");
    }
    let elapsed = started.elapsed();
    // A server process publishes its counters when it goes idle, at the
    // latest ten seconds after its last commit.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = commits(server, &names).await;
    assert_eq!(
        inventory.holding().await.2,
        i64::try_from(total).expect("a count")
    );
    #[allow(clippy::cast_precision_loss)]
    Run {
        per_second: total as f64 / elapsed.as_secs_f64(),
        commits_per_transaction: (after - before) as f64 / total as f64,
    }
}

async fn run(server: &str, total: usize) {
    let pgbench_seconds: u64 = std::env::var("TCC_BENCH_PGBENCH_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10);
    println!(
        "| concurrency | global transactions/s (2 branches) | database transactions per global transaction (reads included) | pgbench single-row inserts/s | commit limit per global transaction | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    // The commit limits first, while no pool of this run holds connections.
    let mut limits = Vec::new();
    for concurrency in [16, 64] {
        limits.push((
            concurrency,
            commit_limit(server, concurrency, pgbench_seconds).await,
        ));
    }
    for (concurrency, limit) in limits {
        let run = global_transactions(server, concurrency, total).await;
        let per_transaction = limit / run.commits_per_transaction;
        println!(
            "| {concurrency} | {:.0} | {:.1} | {limit:.0} | {per_transaction:.0} | **{:.2}** |",
            run.per_second,
            run.commits_per_transaction,
            run.per_second / per_transaction
        );
    }
}
