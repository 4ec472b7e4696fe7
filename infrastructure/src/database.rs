use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use crate::unit_of_work::current_transaction;

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

    /// Where a repository call should run: the transaction of the unit of work on
    /// the current task when there is one, otherwise a transaction of its own that
    /// [`Session::finish`] commits.
    ///
    /// # Errors
    /// When a transaction of its own cannot be begun.
    pub async fn session(&self) -> Result<Session, DbErr> {
        match current_transaction() {
            Some(shared) => Ok(Session::Joined(shared)),
            None => Ok(Session::Own(self.connection.begin().await?)),
        }
    }
}

/// A transaction a repository call runs in; dereferences to sea-orm's
/// [`DatabaseTransaction`], which implements `ConnectionTrait`.
#[derive(Debug)]
pub enum Session {
    /// The current unit of work's transaction; it commits when the unit of work does.
    Joined(Arc<DatabaseTransaction>),
    /// A transaction for this call alone.
    Own(DatabaseTransaction),
}

impl Session {
    /// Ends the call: commits a transaction of its own, leaves a joined one to its
    /// unit of work. Dropping a session without finishing rolls its own back.
    ///
    /// # Errors
    /// When the commit fails.
    pub async fn finish(self) -> Result<(), DbErr> {
        match self {
            Self::Joined(_) => Ok(()),
            Self::Own(transaction) => transaction.commit().await,
        }
    }
}

impl Deref for Session {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        match self {
            Self::Joined(shared) => shared,
            Self::Own(transaction) => transaction,
        }
    }
}
