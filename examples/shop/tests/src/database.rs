use std::io::Write as _;
use std::sync::Once;

use sea_orm::{ConnectionTrait, Database as SeaDatabase};
use strata_infrastructure::Database;
use tempfile::TempDir;

/// The environment variable holding an administrative PostgreSQL URL, such as
/// `postgres://postgres@127.0.0.1:5432/postgres`. When it is unset, PostgreSQL
/// tests report that they were skipped and pass.
pub const POSTGRES_URL_VARIABLE: &str = "STRATA_TEST_POSTGRES_URL";

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by [`POSTGRES_URL_VARIABLE`].
    Postgres,
}

/// A database that exists for one test only: a SQLite file in a temporary
/// directory, or a PostgreSQL database created for the test and dropped after it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    engine: Engine,
    _directory: Option<TempDir>,
    postgres: Option<PostgresCleanup>,
}

#[derive(Debug)]
struct PostgresCleanup {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh, empty SQLite database file.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    #[must_use]
    pub fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory for the test database");
        let path = directory.path().join("test.db");
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            engine: Engine::Sqlite,
            _directory: Some(directory),
            postgres: None,
        }
    }

    /// A fresh, empty PostgreSQL database, or `None` (after saying so on the
    /// terminal, once per test binary) when [`POSTGRES_URL_VARIABLE`] is unset.
    ///
    /// # Panics
    /// When the variable is set but the server cannot create a database.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VARIABLE) else {
            announce_skip();
            return None;
        };
        let name = format!("strata_test_{}", uuid::Uuid::now_v7().simple());
        let admin = SeaDatabase::connect(admin_url.as_str())
            .await
            .expect("connect to the PostgreSQL server named by STRATA_TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a database for the test");
        let _ = admin.close().await;
        Some(Self {
            url: with_database(&admin_url, &name),
            engine: Engine::Postgres,
            _directory: None,
            postgres: Some(PostgresCleanup { admin_url, name }),
        })
    }

    /// A fresh database on `engine`, or `None` when that engine is not configured.
    pub async fn on(engine: Engine) -> Option<Self> {
        match engine {
            Engine::Sqlite => Some(Self::sqlite()),
            Engine::Postgres => Self::postgres().await,
        }
    }

    /// The database's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The engine it runs on.
    #[must_use]
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// For PostgreSQL, makes the database refuse every connection (ending those
    /// open) or accept them again: an outage the service sees as a server
    /// that went away. Does nothing on SQLite.
    ///
    /// # Panics
    /// When the server cannot be told.
    pub async fn set_reachable(&self, reachable: bool) {
        let Some(postgres) = &self.postgres else {
            return;
        };
        let admin = SeaDatabase::connect(postgres.admin_url.as_str())
            .await
            .expect("connect to the PostgreSQL server");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {reachable}",
                postgres.name
            ))
            .await
            .expect("change whether the database accepts connections");
        if !reachable {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{}' AND pid <> pg_backend_pid()",
                    postgres.name
                ))
                .await
                .expect("end the database's connections");
        }
        let _ = admin.close().await;
    }

    /// A connection pool to it, with the shop's schema applied.
    ///
    /// # Panics
    /// When the database cannot be opened or migrated.
    pub async fn migrated(&self) -> Database {
        let database = Database::connect(&self.url)
            .await
            .expect("open the test database");
        shop_infrastructure::migrate(&database)
            .await
            .expect("migrate the test database");
        database
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(cleanup) = self.postgres.take() else {
            return;
        };
        // Drop cannot await, and the test's runtime may be shutting down: drop the
        // database from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = SeaDatabase::connect(cleanup.admin_url.as_str()).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", cleanup.name);
                    let _ = admin.execute_unprepared(&sql).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn announce_skip() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Written straight to stderr rather than with `eprintln!`, which the test
        // harness captures and hides for passing tests.
        let _ = writeln!(
            std::io::stderr().lock(),
            "note: PostgreSQL tests skipped: set {POSTGRES_URL_VARIABLE} \
             (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run them"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name_keeping_host_and_options() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t2"), "postgres://u@h/t2");
    }
}
