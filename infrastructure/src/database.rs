use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use strata_domain::ports::EventEnvelope;

use crate::outbox;
use crate::unit_of_work::{Scope, current_scope};

/// A connection pool to SQLite or PostgreSQL, chosen by the URL's scheme.
#[derive(Debug, Clone)]
pub struct Database {
    connection: DatabaseConnection,
}

impl Database {
    /// Connects to `url`: `sqlite://path/to/file.db?mode=rwc` (created when
    /// missing), `sqlite::memory:`, or `postgres://user@host/db`.
    ///
    /// SQLite connections use write-ahead logging and wait up to five seconds for
    /// a lock instead of failing at once, so concurrent requests queue rather than
    /// error.
    ///
    /// # Errors
    /// When the URL is malformed or the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        if url.starts_with("sqlite::memory:") {
            // Each connection to `:memory:` is its own database; one connection keeps
            // every caller looking at the same one.
            options.max_connections(1).min_connections(1);
        }
        let connection = sea_orm::Database::connect(options).await?;
        Ok(Self { connection })
    }

    /// The pool itself, for migrations and start-up tasks. Repositories use
    /// [`Database::session`] instead.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Runs `SELECT 1`: whether the database answers now, for readiness checks.
    ///
    /// # Errors
    /// When no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), DbErr> {
        use sea_orm::ConnectionTrait;
        self.connection
            .execute_unprepared("SELECT 1")
            .await
            .map(drop)
    }

    /// The pool's connections at this moment, for metrics.
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        use sea_orm::DbBackend;
        fn status<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStatus {
            PoolStatus {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match self.connection.get_database_backend() {
            DbBackend::Sqlite => status(self.connection.get_sqlite_connection_pool()),
            DbBackend::Postgres => status(self.connection.get_postgres_connection_pool()),
            _ => PoolStatus::default(),
        }
    }

    /// Where a repository call should run: the unit of work running on the current
    /// task when there is one, otherwise a transaction of the call's own that
    /// [`Session::finish`] commits.
    ///
    /// # Errors
    /// When a transaction of its own cannot be begun.
    pub async fn session(&self) -> Result<Session, DbErr> {
        match current_scope() {
            Some(scope) => Ok(Session(Kind::Joined(scope))),
            None => Ok(Session(Kind::Own {
                transaction: self.connection.begin().await?,
                events: Vec::new(),
            })),
        }
    }
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// A transaction a repository call runs in; dereferences to sea-orm's
/// [`DatabaseTransaction`], which implements `ConnectionTrait`.
#[derive(Debug)]
pub struct Session(Kind);

#[derive(Debug)]
enum Kind {
    Joined(Arc<Scope>),
    Own {
        transaction: DatabaseTransaction,
        events: Vec<EventEnvelope>,
    },
}

impl Session {
    /// Records events produced by the write this session carries. In a unit of
    /// work they reach the outbox when it commits; otherwise [`Session::finish`]
    /// stores them with the write.
    pub fn record(&mut self, new_events: Vec<EventEnvelope>) {
        match &mut self.0 {
            Kind::Joined(scope) => scope.record(new_events),
            Kind::Own { events, .. } => events.extend(new_events),
        }
    }

    /// Ends the call: a transaction of its own stores its recorded events in the
    /// outbox table and commits; a joined one is left to its unit of work.
    /// Dropping a session without finishing rolls its own transaction back.
    ///
    /// # Errors
    /// When the events cannot be stored or the commit fails.
    pub async fn finish(self) -> Result<(), DbErr> {
        match self.0 {
            Kind::Joined(_) => Ok(()),
            Kind::Own {
                transaction,
                events,
            } => {
                outbox::insert(&transaction, events).await?;
                transaction.commit().await
            }
        }
    }
}

impl Deref for Session {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        match &self.0 {
            Kind::Joined(scope) => &scope.transaction,
            Kind::Own { transaction, .. } => transaction,
        }
    }
}
