use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use strata_domain::RepositoryError;
use strata_domain::ports::EventEnvelope;
use tokio::sync::OwnedRwLockReadGuard;
use tokio_util::task::TaskTracker;

use crate::db_error::storage_error;
use crate::outbox;
use crate::sqlite_limit::literal_limits;
use crate::unit_of_work::{AggregateChange, Scope, current_scope, writer_held};

/// Every [`Database`] gets its own number, so a unit of work knows which
/// database it belongs to.
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(1);

/// How a [`Database`] manages its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// The most connections each pool opens (writes and reads have a pool each).
    /// A SQLite file's write pool opens one whatever this says, as SQLite lets
    /// one transaction write at a time: writers queue for it in order.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the request is
    /// answered "busy" (503 with `Retry-After`) instead of hanging.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock another transaction holds before it
    /// fails "busy": PostgreSQL's `lock_timeout`, SQLite's busy timeout.
    pub lock_timeout: Duration,
    /// How long connecting to the server may take.
    pub connect_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A database: SQLite or PostgreSQL, chosen by the URL's scheme, with one pool
/// for writes and one, read-only, for reads outside a unit of work.
///
/// Cheap to clone; clones are the same database. Connect once per database and
/// share the clones: a unit of work belongs to the `Database` it was begun on,
/// and a second `connect` to the same URL is, to Strata, another database.
#[derive(Debug, Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    writer: DatabaseConnection,
    /// Reads outside a unit of work; the writer for an in-memory SQLite
    /// database, which a second pool could not see.
    reader: Option<DatabaseConnection>,
    /// Commits (and their after-commit hooks) finishing on tasks of their own,
    /// so shutdown can wait for them.
    commits: TaskTracker,
    /// Notified after each commit that stored events in the outbox, so a relay
    /// in this process publishes them at once.
    outbox_signal: Arc<tokio::sync::Notify>,
}

impl Database {
    /// Connects to `url` with [`DatabaseOptions::default`]: see
    /// [`Database::connect_with`].
    ///
    /// # Errors
    /// When the URL is malformed or the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        Self::connect_with(url, &DatabaseOptions::default()).await
    }

    /// Connects to `url`: `sqlite://path/to/file.db?mode=rwc` (created when
    /// missing), `sqlite::memory:`, `postgres://user@host/db`, or (feature
    /// `mysql`) `mysql://user@host/db` for MySQL or MariaDB.
    ///
    /// SQLite files use write-ahead logging, so readers never wait for the
    /// writer. Their write pool has one connection: writers of this process
    /// wait for it in turn (up to `acquire_timeout`), and one waits up to
    /// `lock_timeout` for another process's writer instead of failing at once.
    /// On PostgreSQL every connection has `lock_timeout` set, so a transaction
    /// blocked on another — even one of the same request, as a
    /// `RequiresNew` unit of work updating a row its caller holds — fails in
    /// bounded time rather than hanging.
    ///
    /// Reads outside a unit of work run on a second pool whose connections
    /// cannot write (SQLite opened read-only, PostgreSQL with
    /// `default_transaction_read_only`), so a write can only happen inside a
    /// unit of work or through [`Database::autonomous`] or
    /// [`Database::autocommit`].
    ///
    /// # Errors
    /// When the URL is malformed or the database cannot be reached.
    pub async fn connect_with(url: &str, options: &DatabaseOptions) -> Result<Self, DbErr> {
        let memory = url.starts_with("sqlite::memory:");
        let writer =
            sea_orm::Database::connect(connect_options(url, options, false, memory)).await?;
        let reader = if memory {
            None
        } else {
            Some(sea_orm::Database::connect(connect_options(url, options, true, memory)).await?)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
                writer,
                reader,
                commits: TaskTracker::new(),
                outbox_signal: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// The engine behind it.
    #[must_use]
    pub fn backend(&self) -> DbBackend {
        self.inner.writer.get_database_backend()
    }

    pub(crate) fn writer_pool(&self) -> &DatabaseConnection {
        &self.inner.writer
    }

    pub(crate) fn commits(&self) -> &TaskTracker {
        &self.inner.commits
    }

    /// Notified (one permit) after each commit in this process that stored
    /// events in the outbox: what the relay waits on between passes.
    pub(crate) fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.outbox_signal)
    }

    /// Waits until every commit already under way, and the after-commit hooks
    /// after it, has finished: the last step of a graceful shutdown, so work
    /// whose caller went away is neither half-committed nor missing its hooks.
    pub async fn settle(&self) {
        self.inner.commits.close();
        self.inner.commits.wait().await;
        self.inner.commits.reopen();
    }

    fn reader_pool(&self) -> &DatabaseConnection {
        self.inner.reader.as_ref().unwrap_or(&self.inner.writer)
    }

    /// The write pool itself, for start-up and maintenance work outside any unit
    /// of work: each statement run on it commits on its own. Repositories never
    /// use it.
    ///
    /// # Errors
    /// Refused while a unit of work of this database runs on the calling task:
    /// a write through the pool would commit behind the unit of work's back (or,
    /// on SQLite, wait for the lock the unit of work itself holds). On SQLite,
    /// also refused in work that suspended a unit of work
    /// ([`Propagation::NotSupported`](strata_domain::ports::Propagation)), which
    /// still holds that lock. A clone of the
    /// pool taken earlier escapes this check; do not keep one.
    pub fn connection(&self) -> Result<&DatabaseConnection, RepositoryError> {
        if current_scope(self.id()).is_some() {
            return Err(RepositoryError::storage(MisplacedWork(
                "the connection pool was asked for inside a unit of work; repositories \
                 reach the database through `Database::writer` or `Database::reader`",
            )));
        }
        if self.sqlite_writer_held() {
            return Err(RepositoryError::storage(MisplacedWork(
                "SQLite allows one writer at a time and the unit of work this work \
                 suspended holds it: a write through the pool would wait for its own caller",
            )));
        }
        Ok(&self.inner.writer)
    }

    /// Runs `SELECT 1`: whether the database answers now, for readiness checks.
    ///
    /// # Errors
    /// When no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), DbErr> {
        // On the read pool: a SQLite file's one writing connection may be
        // taken by a long queue of writers, and the answer would wait for
        // them all.
        self.reader_pool()
            .execute_unprepared("SELECT 1")
            .await
            .map(drop)
    }

    /// The write pool's connections at this moment, for metrics.
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        pool_status(&self.inner.writer)
    }

    /// The read pool's connections at this moment, for metrics.
    #[must_use]
    pub fn read_pool_status(&self) -> PoolStatus {
        pool_status(self.reader_pool())
    }

    /// Where a repository reads: the unit of work of this database running on the
    /// current task, so a command sees its own writes (waiting, like a writer,
    /// while a nested use case's savepoint is open, so it never reads what that
    /// one may yet undo); otherwise the read-only pool, each statement on its
    /// own and seeing what was committed when it ran — as every statement of a
    /// read-committed transaction does on PostgreSQL and MySQL — with no
    /// `BEGIN` and `COMMIT` around it.
    ///
    /// # Errors
    /// [`RepositoryError::Busy`] when no connection is free in time.
    pub async fn reader(&self) -> Result<Session<'_>, RepositoryError> {
        if let Some(scope) = current_scope(self.id()) {
            let turn = scope.shared_turn().await;
            return Ok(Session::new(Kind::Joined { scope, _turn: turn }));
        }
        // The read pool refuses writes on every connection.
        if let Some(pool) = &self.inner.reader {
            return Ok(Session::new(Kind::Pool {
                pool,
                writes: false,
                recorded: false,
            }));
        }
        // An in-memory SQLite database has no second pool: there a transaction
        // counts the database's changes, and one that wrote is refused when it
        // finishes.
        let transaction = self.reader_pool().begin().await.map_err(storage_error)?;
        let changes_before = Some(total_changes(&transaction).await?);
        Ok(Session::new(Kind::Own {
            transaction,
            events: Vec::new(),
            changes_before,
            stored_events: false,
            outbox_signal: self.outbox_signal(),
        }))
    }

    /// Where a repository writes: the unit of work of this database running on
    /// the current task. Writes never run outside one: a task spawned from a
    /// handler does not inherit its caller's unit of work (task-locals are per
    /// task) and is refused here rather than left to commit on its own.
    ///
    /// While a nested unit of work (a savepoint) is open on this scope, the
    /// writer waits for it to end, so a sibling's rollback never undoes it.
    /// Writers do not wait for each other: a repository may write through
    /// another while it holds a session.
    ///
    /// # Errors
    /// When no unit of work of this database runs on the current task.
    pub async fn writer(&self) -> Result<Session<'_>, RepositoryError> {
        let Some(scope) = current_scope(self.id()) else {
            return Err(RepositoryError::storage(MisplacedWork(
                "a write ran outside any unit of work of its database; run it in a command, \
                 or open one with `in_unit_of_work` (a spawned task does not inherit its \
                 caller's), or use `Database::autonomous` for work that commits on its own",
            )));
        };
        let turn = scope.shared_turn().await;
        Ok(Session::new(Kind::Joined { scope, _turn: turn }))
    }

    /// Whether this is a SQLite database whose only write lock a unit of work
    /// running on this task, or suspended by the work running now, holds.
    fn sqlite_writer_held(&self) -> bool {
        self.backend() == DbBackend::Sqlite && writer_held(self.id())
    }

    /// A transaction of its own that commits when [`Session::finish`] is called,
    /// whatever unit of work runs: for work that must outlive or precede the
    /// caller's unit of work by design, such as an outbox relay's pass or a
    /// purge job. Events recorded on it are stored in its outbox when it commits.
    ///
    /// # Errors
    /// On SQLite, refused while a unit of work of this database runs on the
    /// calling task, or is suspended by the work running now: that unit of
    /// work holds the only write lock, so the autonomous transaction would wait
    /// for its own caller. Busy when no
    /// connection or lock is had in time.
    pub async fn autonomous(&self) -> Result<Session<'_>, RepositoryError> {
        let backend = self.backend();
        if self.sqlite_writer_held() {
            return Err(RepositoryError::storage(MisplacedWork(
                "SQLite allows one writer at a time and a unit of work running (or \
                 suspended) on this task holds it: an autonomous transaction here would \
                 wait for its own caller",
            )));
        }
        let transaction = self
            .inner
            .writer
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: (backend == DbBackend::Sqlite)
                    .then_some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(storage_error)?;
        Ok(Session::new(Kind::Own {
            transaction,
            events: Vec::new(),
            changes_before: None,
            stored_events: false,
            outbox_signal: self.outbox_signal(),
        }))
    }

    /// A session whose every statement runs and commits on its own on the
    /// writing pool, with no `BEGIN` and `COMMIT` around it, whatever unit of
    /// work runs: for a write of one statement that must not wait for the
    /// caller's unit of work, such as claiming an idempotency key. A statement
    /// costs one round trip, and SQLite's write lock is held only while it
    /// runs. Events cannot be recorded on it.
    ///
    /// # Errors
    /// On SQLite, refused while a unit of work of this database runs on the
    /// calling task, or is suspended by the work running now, as
    /// [`Database::autonomous`] is.
    pub fn autocommit(&self) -> Result<Session<'_>, RepositoryError> {
        if self.sqlite_writer_held() {
            return Err(RepositoryError::storage(MisplacedWork(
                "SQLite allows one writer at a time and a unit of work running (or \
                 suspended) on this task holds it: a statement committed on its own \
                 here would wait for its own caller",
            )));
        }
        Ok(Session::new(Kind::Pool {
            pool: &self.inner.writer,
            writes: true,
            recorded: false,
        }))
    }
}

/// SQLite's count of rows changed through this connection so far.
async fn total_changes(transaction: &DatabaseTransaction) -> Result<i64, RepositoryError> {
    let row = transaction
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT total_changes() AS changes",
        ))
        .await
        .map_err(storage_error)?;
    row.map_or(Ok(0), |row| {
        row.try_get::<i64>("", "changes").map_err(storage_error)
    })
}

fn connect_options(
    url: &str,
    settings: &DatabaseOptions,
    read_only: bool,
    memory: bool,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    let lock_timeout = settings.lock_timeout;
    let lock_timeout_ms = lock_timeout.as_millis().max(1).to_string();
    options
        .sqlx_logging(false)
        .max_connections(settings.max_connections)
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.acquire_timeout)
        .map_sqlx_sqlite_opts(move |sqlite| {
            let sqlite = sqlite
                .busy_timeout(lock_timeout)
                .foreign_keys(true)
                .read_only(read_only);
            // The journal mode is the file's, set once by a connection that may
            // write; a read-only one could not change it.
            if read_only {
                sqlite
            } else {
                sqlite.journal_mode(SqliteJournalMode::Wal)
            }
        })
        .map_sqlx_postgres_opts(move |postgres| {
            let postgres = postgres.options([("lock_timeout", lock_timeout_ms.as_str())]);
            if read_only {
                postgres.options([("default_transaction_read_only", "on")])
            } else {
                postgres
            }
        });
    #[cfg(feature = "mysql")]
    mysql_session(&mut options, lock_timeout, read_only);
    if memory {
        // Each connection to `:memory:` is its own database; one connection keeps
        // every caller looking at the same one.
        options.max_connections(1).min_connections(1);
    } else if !read_only && url.starts_with("sqlite:") {
        // SQLite lets one transaction write at a time. With one connection
        // for writes, writers wait their turn in the pool's queue, first come
        // first served, and each starts the moment the one before commits.
        // With more, all but one would sleep in SQLite's busy handler, which
        // polls at growing intervals: a commit would leave the lock free while
        // every waiter slept, and the unluckiest waiter would wait longest.
        options.max_connections(1);
    }
    options
}

/// Every MySQL connection reads committed data, as PostgreSQL's do (InnoDB's
/// default, repeatable read, would keep a transaction's first snapshot for
/// its plain reads); waits at most `lock_timeout` (rounded up to whole
/// seconds, InnoDB's unit) for a row lock; and, in the reading pool, cannot
/// write.
#[cfg(feature = "mysql")]
fn mysql_session(options: &mut ConnectOptions, lock_timeout: std::time::Duration, read_only: bool) {
    use sea_orm::sqlx::Executor as _;
    let lock_wait_secs = lock_timeout.as_millis().div_ceil(1_000).max(1);
    let session = format!(
        "SET SESSION innodb_lock_wait_timeout = {lock_wait_secs}; \
         SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, {}",
        if read_only { "READ ONLY" } else { "READ WRITE" }
    );
    let session: Arc<str> = session.into();
    options.map_sqlx_mysql_pool_opts(move |pool| {
        let session = Arc::clone(&session);
        pool.after_connect(move |connection, _| {
            let session = Arc::clone(&session);
            Box::pin(async move {
                connection
                    .execute(sea_orm::sqlx::raw_sql(sea_orm::sqlx::AssertSqlSafe(
                        session,
                    )))
                    .await?;
                Ok(())
            })
        })
    });
}

fn pool_status(connection: &DatabaseConnection) -> PoolStatus {
    fn status<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStatus {
        PoolStatus {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
    match connection.get_database_backend() {
        DbBackend::Sqlite => status(connection.get_sqlite_connection_pool()),
        DbBackend::Postgres => status(connection.get_postgres_connection_pool()),
        #[cfg(feature = "mysql")]
        DbBackend::MySql => status(connection.get_mysql_connection_pool()),
        _ => PoolStatus::default(),
    }
}

/// Work asked for where it cannot run: a write outside any unit of work, the
/// raw pool inside one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MisplacedWork(&'static str);

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

/// Where a repository call runs its statements: the unit of work it joined,
/// a transaction of its own, or (a read outside any unit of work) the
/// read-only pool. It implements sea-orm's [`ConnectionTrait`], so queries run
/// on it as on a connection: `Products::find_by_id(id).one(&session)`.
///
/// It borrows its [`Database`], so it lives within the repository call that
/// asked for it and cannot be moved to a spawned task: a unit of work is never
/// left with a session still open after its work ended.
#[derive(Debug)]
pub struct Session<'a> {
    kind: Kind<'a>,
}

#[derive(Debug)]
enum Kind<'a> {
    Joined {
        scope: Arc<Scope>,
        /// Held while the session lives, so no savepoint of a nested use case
        /// opens and closes around its statements.
        _turn: OwnedRwLockReadGuard<()>,
    },
    Own {
        transaction: DatabaseTransaction,
        events: Vec<EventEnvelope>,
        /// For a read session on a database with no read-only pool: the changes
        /// counted when it began.
        changes_before: Option<i64>,
        /// Whether it stored events in the outbox, and whom to tell once it
        /// committed.
        stored_events: bool,
        outbox_signal: Arc<tokio::sync::Notify>,
    },
    /// Statements outside any unit of work, each on a connection of a pool
    /// and committed on its own: reads on the read-only pool, or the writes
    /// of [`Database::autocommit`] on the writing one.
    Pool {
        pool: &'a DatabaseConnection,
        /// Whether it is the writing pool ([`Database::autocommit`]).
        writes: bool,
        /// Whether events were recorded on it, which a read cannot store.
        recorded: bool,
    },
}

impl<'a> Session<'a> {
    fn new(kind: Kind<'a>) -> Self {
        Self { kind }
    }

    /// Records events produced by the write this session carries. In a unit of
    /// work they reach the outbox when it commits; in an autonomous transaction,
    /// [`Session::finish`] stores them with the write.
    pub fn record(&mut self, new_events: Vec<EventEnvelope>) {
        match &mut self.kind {
            Kind::Joined { scope, .. } => scope.record(new_events),
            Kind::Own { events, .. } => events.extend(new_events),
            Kind::Pool { recorded, .. } => *recorded |= !new_events.is_empty(),
        }
    }

    /// The trace of the unit of work this session joined, if it has one.
    pub(crate) fn trace(&self) -> Option<String> {
        match &self.kind {
            Kind::Joined { scope, .. } => scope.trace(),
            Kind::Own { .. } | Kind::Pool { .. } => None,
        }
    }

    /// Notes that events were stored in the outbox through this session, so the
    /// relay is woken once they are committed.
    pub(crate) fn mark_events_stored(&mut self) {
        match &mut self.kind {
            Kind::Joined { scope, .. } => scope.mark_events_stored(),
            Kind::Own { stored_events, .. } => *stored_events = true,
            Kind::Pool { recorded, .. } => *recorded = true,
        }
    }

    /// Records that the write this session carries changed an aggregate, for the
    /// audit trail.
    pub fn record_change(&mut self, change: AggregateChange) {
        if let Kind::Joined { scope, .. } = &self.kind {
            scope.record_change(change);
        }
    }

    /// Ends the call: a transaction of its own stores its recorded events in the
    /// outbox table and commits; a joined one is left to its unit of work.
    /// Dropping a session without finishing rolls its own transaction back.
    ///
    /// # Errors
    /// When the events cannot be stored, the commit fails, or a read session
    /// wrote or recorded events.
    pub async fn finish(self) -> Result<(), RepositoryError> {
        match self.kind {
            Kind::Joined { .. }
            | Kind::Pool {
                recorded: false, ..
            } => Ok(()),
            Kind::Pool {
                recorded: true,
                writes,
                ..
            } => Err(RepositoryError::storage(MisplacedWork(if writes {
                "events were recorded on a session that commits each statement on its \
                 own; events are stored with the writes they describe, through \
                 `Database::writer` in a unit of work or `Database::autonomous`"
            } else {
                "events were recorded on a read session; writes and their events run \
                 through `Database::writer` in a unit of work"
            }))),
            Kind::Own {
                transaction,
                events,
                changes_before,
                stored_events,
                outbox_signal,
            } => {
                if let Some(before) = changes_before
                    && total_changes(&transaction).await? != before
                {
                    transaction.rollback().await.map_err(storage_error)?;
                    return Err(RepositoryError::storage(MisplacedWork(
                        "a read session wrote; writes run through `Database::writer` in a \
                         unit of work",
                    )));
                }
                let wake = stored_events || !events.is_empty();
                outbox::insert(&transaction, events)
                    .await
                    .map_err(storage_error)?;
                transaction.commit().await.map_err(storage_error)?;
                if wake {
                    outbox_signal.notify_one();
                }
                Ok(())
            }
        }
    }
}

impl Session<'_> {
    /// What the statements run on.
    fn target(&self) -> Target<'_> {
        match &self.kind {
            Kind::Joined { scope, .. } => Target::Transaction(&scope.transaction),
            Kind::Own { transaction, .. } => Target::Transaction(transaction),
            Kind::Pool { pool, .. } => Target::Pool(pool),
        }
    }
}

/// A session's transaction or pool, called directly rather than through
/// sea-orm's `DatabaseExecutor`, whose every call would box and copy the
/// callee's future once more.
enum Target<'a> {
    Transaction(&'a DatabaseTransaction),
    Pool(&'a DatabaseConnection),
}

/// Statements run as they came, except that on SQLite a bound `LIMIT` is
/// written into the text, so the prepared statement is reused rather than
/// prepared again each time it runs.
#[async_trait::async_trait]
impl ConnectionTrait for Session<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self.target() {
            Target::Transaction(transaction) => transaction.get_database_backend(),
            Target::Pool(pool) => pool.get_database_backend(),
        }
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        let statement = literal_limits(statement);
        match self.target() {
            Target::Transaction(transaction) => transaction.execute_raw(statement).await,
            Target::Pool(pool) => pool.execute_raw(statement).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self.target() {
            Target::Transaction(transaction) => transaction.execute_unprepared(sql).await,
            Target::Pool(pool) => pool.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let statement = literal_limits(statement);
        match self.target() {
            Target::Transaction(transaction) => transaction.query_one_raw(statement).await,
            Target::Pool(pool) => pool.query_one_raw(statement).await,
        }
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let statement = literal_limits(statement);
        match self.target() {
            Target::Transaction(transaction) => transaction.query_all_raw(statement).await,
            Target::Pool(pool) => pool.query_all_raw(statement).await,
        }
    }
}

/// Inserts the one row of `insert` unless a row with the same `key` (the
/// columns of a unique index) is there already: whether it inserted it.
///
/// SQLite and PostgreSQL skip the row with `ON CONFLICT (key) DO NOTHING`.
/// MySQL has no such clause that tells a skipped row apart — its
/// `ON DUPLICATE KEY UPDATE key = key` counts a found row as changed, and
/// `INSERT IGNORE` also swallows truncation and other errors — so there the
/// plain insert runs and its duplicate-key error is the answer "there
/// already"; a failed statement leaves MySQL's transaction as it was.
///
/// # Errors
/// When the row cannot be written for another reason.
pub async fn insert_absent<C>(
    session: &Session<'_>,
    mut insert: sea_orm::sea_query::InsertStatement,
    key: impl IntoIterator<Item = C>,
) -> Result<bool, RepositoryError>
where
    C: sea_orm::sea_query::IntoIden,
{
    let backend = session.get_database_backend();
    if backend != DbBackend::MySql {
        insert.on_conflict(
            sea_orm::sea_query::OnConflict::columns(key)
                .do_nothing()
                .to_owned(),
        );
    }
    match session
        .execute_raw(sea_orm::StatementBuilder::build(&insert, &backend))
        .await
    {
        Ok(result) => Ok(result.rows_affected() == 1),
        Err(error)
            if backend == DbBackend::MySql
                && matches!(
                    error.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
        {
            Ok(false)
        }
        Err(error) => Err(storage_error(error)),
    }
}

/// Runs `statement` in `session`: how many rows it changed.
pub(crate) async fn execute(
    session: &Session<'_>,
    statement: &impl sea_orm::StatementBuilder,
) -> Result<u64, RepositoryError> {
    let backend = session.get_database_backend();
    Ok(session
        .execute_raw(sea_orm::StatementBuilder::build(statement, &backend))
        .await
        .map_err(crate::db_error::storage_error)?
        .rows_affected())
}
