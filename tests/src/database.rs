//! A database that exists for one test only, on SQLite, PostgreSQL or (feature
//! `mysql`) MySQL / MariaDB.

use sea_orm::{ConnectionTrait, Database as SeaDatabase};
use tempfile::TempDir;

use crate::servers::server_url;

/// The environment variable holding an administrative PostgreSQL URL, such as
/// `postgres://postgres@127.0.0.1:5432/postgres`; each test creates a database
/// of its own on that server and drops it afterwards.
pub const POSTGRES_URL_VARIABLE: &str = "STRATA_TEST_POSTGRES_URL";

/// The environment variable holding an administrative MySQL or MariaDB URL,
/// such as `mysql://root@127.0.0.1:3306/test`; each test creates a database of
/// its own on that server and drops it afterwards.
pub const MYSQL_URL_VARIABLE: &str = "STRATA_TEST_MYSQL_URL";

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by [`POSTGRES_URL_VARIABLE`].
    Postgres,
    /// A fresh database on the MySQL or MariaDB server named by
    /// [`MYSQL_URL_VARIABLE`] (feature `mysql`).
    MySql,
}

/// A database that exists for one test only: a SQLite file in a temporary
/// directory, or a PostgreSQL database created for the test and dropped after it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    engine: Engine,
    _directory: Option<TempDir>,
    server: Option<ServerCleanup>,
}

/// A server database to drop once the test is over.
#[derive(Debug)]
struct ServerCleanup {
    admin_url: String,
    name: String,
    /// `DROP DATABASE` in the server's dialect.
    drop: String,
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
            server: None,
        }
    }

    /// A fresh, empty PostgreSQL database on the server [`POSTGRES_URL_VARIABLE`]
    /// names. Call it from a test marked ignored without that server (see
    /// [`crate::servers`]).
    ///
    /// # Panics
    /// When the variable is unset or the server cannot create a database.
    pub async fn postgres() -> Self {
        Self::on_server(
            Engine::Postgres,
            POSTGRES_URL_VARIABLE,
            |name| format!("CREATE DATABASE \"{name}\""),
            |name| format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await
    }

    /// A fresh, empty database on the MySQL or MariaDB server
    /// [`MYSQL_URL_VARIABLE`] names. Call it from a test marked ignored
    /// without that server (see [`crate::servers`]).
    ///
    /// # Panics
    /// When the variable is unset or the server cannot create a database.
    #[cfg(feature = "mysql")]
    pub async fn mysql() -> Self {
        Self::on_server(
            Engine::MySql,
            MYSQL_URL_VARIABLE,
            |name| format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
            |name| format!("DROP DATABASE IF EXISTS `{name}`"),
        )
        .await
    }

    /// A database of its own, made by `create` on the server `variable`
    /// names, and dropped by `drop` when the test is over.
    async fn on_server(
        engine: Engine,
        variable: &str,
        create: impl Fn(&str) -> String,
        drop: impl Fn(&str) -> String,
    ) -> Self {
        let admin_url = server_url(variable);
        let name = format!("strata_test_{}", uuid::Uuid::now_v7().simple());
        let admin = SeaDatabase::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|error| panic!("connect to the server named by {variable}: {error}"));
        admin
            .execute_unprepared(&create(&name))
            .await
            .expect("create a database for the test");
        let _ = admin.close().await;
        Self {
            url: with_database(&admin_url, &name),
            engine,
            _directory: None,
            server: Some(ServerCleanup {
                drop: drop(&name),
                admin_url,
                name,
            }),
        }
    }

    /// A fresh database on `engine`.
    ///
    /// # Panics
    /// As [`TestDatabase::postgres`] does.
    pub async fn on(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => Self::sqlite(),
            Engine::Postgres => Self::postgres().await,
            #[cfg(feature = "mysql")]
            Engine::MySql => Self::mysql().await,
            #[cfg(not(feature = "mysql"))]
            Engine::MySql => panic!("MySQL needs strata-tests' `mysql` feature"),
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
    /// open) or accept them again: an outage the service sees as a server that
    /// went away. Does nothing on SQLite.
    ///
    /// # Panics
    /// When the server cannot be told.
    pub async fn set_reachable(&self, reachable: bool) {
        let Some(server) = &self.server else {
            return;
        };
        assert_eq!(
            self.engine,
            Engine::Postgres,
            "only a PostgreSQL database can be made unreachable"
        );
        let admin = SeaDatabase::connect(server.admin_url.as_str())
            .await
            .expect("connect to the PostgreSQL server");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {reachable}",
                server.name
            ))
            .await
            .expect("change whether the database accepts connections");
        if !reachable {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{}' AND pid <> pg_backend_pid()",
                    server.name
                ))
                .await
                .expect("end the database's connections");
        }
        let _ = admin.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(cleanup) = self.server.take() else {
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
                    let _ = admin.execute_unprepared(&cleanup.drop).await;
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

/// Runs each named `async fn case(database: TestDatabase)` as two tests in a
/// module of its name: `sqlite`, always, and `postgres`, ignored (with the
/// variable to set) unless the crate was built with [`POSTGRES_URL_VARIABLE`]
/// set — the crate's build script calls
/// [`crate::servers::declare_test_servers`].
///
/// ```ignore
/// strata_tests::on_each_engine!(a_stale_write_is_refused, events_reach_the_outbox);
/// ```
///
/// With `mysql:` first (feature `mysql`), each case runs a third time, as
/// `mysql`, ignored unless the crate was built with [`MYSQL_URL_VARIABLE`] set.
#[macro_export]
macro_rules! on_each_engine {
    (mysql: $($case:ident),* $(,)?) => {$(
        mod $case {
            $crate::on_each_engine!(@sqlite_postgres $case);

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(strata_mysql),
                ignore = "needs MySQL or MariaDB: set STRATA_TEST_MYSQL_URL"
            )]
            async fn mysql() {
                super::$case($crate::database::TestDatabase::mysql().await).await;
            }
        }
    )*};
    (@sqlite_postgres $case:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite() {
            super::$case($crate::database::TestDatabase::sqlite()).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(strata_postgres),
            ignore = "needs PostgreSQL: set STRATA_TEST_POSTGRES_URL"
        )]
        async fn postgres() {
            super::$case($crate::database::TestDatabase::postgres().await).await;
        }
    };
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            $crate::on_each_engine!(@sqlite_postgres $case);
        }
    )*};
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
