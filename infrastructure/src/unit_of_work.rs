use std::sync::{Arc, Mutex, PoisonError};

use sea_orm::{
    DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use strata_domain::RepositoryError;
use strata_domain::ports::{
    AfterCommit, BoxFuture, EventEnvelope, Outbox, Outcome, Propagation, UnitOfWork,
    UnitOfWorkError,
};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

pub use strata_domain::ports::AggregateChange;

use crate::Database;
use crate::db_error::is_busy;
use crate::outbox::SeaOrmOutbox;

tokio::task_local! {
    static AMBIENT: Ambient;
}

/// The units of work running on a task: at most one level per database, the
/// innermost. Replaced, never changed, when a scope opens, so an enclosing
/// scope's view is restored when the inner one ends.
#[derive(Clone, Default)]
struct Ambient(Arc<Vec<(u64, Level)>>);

/// What runs on a task for one database.
#[derive(Clone)]
enum Level {
    /// A unit of work: its writes go to this scope.
    Running(Arc<Scope>),
    /// Work that runs outside any unit of work ([`Propagation::NotSupported`]).
    Suspended(Arc<Suspended>),
}

/// Work running outside a unit of work: what the units of work it began
/// committed, for the audit trail, and whether it suspended one that still
/// holds its transaction.
#[derive(Debug, Default)]
pub(crate) struct Suspended {
    changes: Mutex<Vec<AggregateChange>>,
    over_running: bool,
    /// The trace the work belongs to, for the units of work it begins.
    trace: Option<String>,
}

impl Suspended {
    /// The aggregates changed by the units of work this work committed.
    pub(crate) fn changes(&self) -> Vec<AggregateChange> {
        lock(&self.changes).clone()
    }
}

impl Ambient {
    fn current() -> Self {
        AMBIENT.try_with(Clone::clone).unwrap_or_default()
    }

    /// The trace of the work running on this task, on any database.
    fn trace(&self) -> Option<String> {
        self.0.iter().rev().find_map(|(_, level)| match level {
            Level::Running(scope) => scope.trace.clone(),
            Level::Suspended(suspended) => suspended.trace.clone(),
        })
    }

    fn find(&self, database: u64) -> Option<&Level> {
        self.0
            .iter()
            .find(|(id, _)| *id == database)
            .map(|(_, level)| level)
    }

    fn with(&self, database: u64, level: Level) -> Self {
        let mut levels: Vec<_> = self
            .0
            .iter()
            .filter(|(id, _)| *id != database)
            .cloned()
            .collect();
        levels.push((database, level));
        Self(Arc::new(levels))
    }
}

/// The aggregates changed so far by the unit of work of `database` running on
/// this task — or, for work running outside one, by the units of work it
/// committed — for the audit trail.
pub(crate) fn current_changes(database: u64) -> Vec<AggregateChange> {
    match AMBIENT.try_with(|ambient| ambient.find(database).cloned()) {
        Ok(Some(Level::Running(scope))) => scope.changes(),
        Ok(Some(Level::Suspended(suspended))) => suspended.changes(),
        _ => Vec::new(),
    }
}

/// The scope of the unit of work of `database` running on this task, if any.
pub(crate) fn current_scope(database: u64) -> Option<Arc<Scope>> {
    match AMBIENT.try_with(|ambient| ambient.find(database).cloned()) {
        Ok(Some(Level::Running(scope))) => Some(scope),
        _ => None,
    }
}

/// Whether a unit of work of `database` holds a transaction for the calling
/// task: one running, or one suspended by the work running now. On SQLite that
/// transaction holds the only write lock, so another writer here would wait
/// for its own caller.
pub(crate) fn writer_held(database: u64) -> bool {
    match AMBIENT.try_with(|ambient| ambient.find(database).cloned()) {
        Ok(Some(Level::Running(_))) => true,
        Ok(Some(Level::Suspended(suspended))) => suspended.over_running,
        _ => false,
    }
}

/// The work running outside a unit of work of `database` on this task, if any.
pub(crate) fn current_suspension(database: u64) -> Option<Arc<Suspended>> {
    match AMBIENT.try_with(|ambient| ambient.find(database).cloned()) {
        Ok(Some(Level::Suspended(suspended))) => Some(suspended),
        _ => None,
    }
}

/// One level of a unit of work: the root transaction, or a savepoint inside it,
/// with the events and after-commit hooks recorded at this level.
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) transaction: DatabaseTransaction,
    events: Mutex<Vec<EventEnvelope>>,
    changes: Mutex<Vec<AggregateChange>>,
    hooks: Mutex<Vec<HookSlot>>,
    /// Taken exclusively by each nested unit of work for its whole life, and
    /// shared by each session of this scope for its statements: savepoints are a
    /// stack on one connection, so two siblings open at once, or a write of the
    /// parent while a child is open, would be undone by the other's rollback.
    turns: Arc<RwLock<()>>,
    /// The trace the work belongs to (a W3C `traceparent`), stamped on the
    /// events the root stores.
    trace: Option<String>,
    /// Whether the root stored events in the outbox, so its commit wakes the
    /// relay.
    stored_events: std::sync::atomic::AtomicBool,
}

struct HookSlot(AfterCommit);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterCommit")
    }
}

impl Scope {
    fn new(transaction: DatabaseTransaction, trace: Option<String>) -> Self {
        Self {
            transaction,
            events: Mutex::new(Vec::new()),
            changes: Mutex::new(Vec::new()),
            hooks: Mutex::new(Vec::new()),
            turns: Arc::new(RwLock::new(())),
            trace,
            stored_events: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn record(&self, events: Vec<EventEnvelope>) {
        lock(&self.events).extend(events);
    }

    /// The trace the work of this level belongs to.
    pub(crate) fn trace(&self) -> Option<String> {
        self.trace.clone()
    }

    pub(crate) fn mark_events_stored(&self) {
        self.stored_events
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn record_change(&self, change: AggregateChange) {
        lock(&self.changes).push(change);
    }

    /// The aggregates this scope (and the nested ones it kept) changed so far.
    pub(crate) fn changes(&self) -> Vec<AggregateChange> {
        lock(&self.changes).clone()
    }

    /// Waits until no nested unit of work is open on this scope, and keeps one
    /// from opening until the guard is dropped; sessions share it.
    pub(crate) async fn shared_turn(&self) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.turns).read_owned().await
    }

    /// Waits until no session of this scope and no other nested unit of work is
    /// open, and keeps them out until the guard is dropped.
    async fn exclusive_turn(&self) -> OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.turns).write_owned().await
    }

    fn take_events(&self) -> Vec<EventEnvelope> {
        std::mem::take(&mut *lock(&self.events))
    }

    fn take_changes(&self) -> Vec<AggregateChange> {
        std::mem::take(&mut *lock(&self.changes))
    }

    fn take_hooks(&self) -> Vec<HookSlot> {
        std::mem::take(&mut *lock(&self.hooks))
    }
}

// A panic while holding one of these locks leaves plain data behind, never a
// broken invariant, so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A unit of work on sea-orm transactions over one [`Database`], made ambient
/// for the task that runs the work: every repository of that database reading
/// through [`Database::reader`] or writing through [`Database::writer`] uses it.
///
/// * It belongs to its database. A service with several databases has one unit
///   of work per database, each with its own transaction; a repository of
///   database B never runs in A's transaction, and nothing is atomic across
///   databases (the outbox and distributed transactions are for that).
/// * [`Propagation::Required`] inside a running unit of work of the same
///   database opens a savepoint: if the inner work fails, exactly its writes,
///   events and hooks are undone and the outer work may go on; if it succeeds,
///   they join the outer unit of work. Nested units of work started at once
///   (`tokio::join!`) take turns: the second opens its savepoint when the first
///   has finished, so one's rollback never touches the other's writes.
/// * [`Propagation::RequiresNew`] opens an independent transaction on another
///   connection. SQLite allows one writer at a time and a running unit of work
///   already holds the write lock, so there it is refused at once with
///   [`UnitOfWorkError::Begin`] rather than left to wait out the lock. On
///   PostgreSQL, if it needs a row its caller holds, it fails after the
///   database's lock timeout ([`UnitOfWorkError::Busy`] or a busy repository
///   error) instead of waiting for ever.
/// * At the outermost commit, the recorded events are handed to the [`Outbox`] in
///   the same transaction. The commit and then the after-commit hooks run on a
///   task of their own: a caller that goes away after the work (a client that
///   disconnected) can stop neither, and a hook that panics is logged without
///   turning the committed work into a failure.
/// * A panic in the work drops the transaction, which rolls it back.
/// * A task spawned from the work does not inherit the unit of work (task-locals
///   are per task): its writes are refused unless it opens one of its own.
#[derive(Clone)]
pub struct SeaOrmUnitOfWork {
    database: Database,
    outbox: Arc<dyn Outbox>,
}

impl std::fmt::Debug for SeaOrmUnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaOrmUnitOfWork")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl SeaOrmUnitOfWork {
    /// A unit of work over `database`, storing events in its `strata_outbox` table.
    #[must_use]
    pub fn new(database: Database) -> Self {
        let outbox = Arc::new(SeaOrmOutbox::new(database.clone()));
        Self { database, outbox }
    }

    /// The same unit of work handing events to another outbox.
    #[must_use]
    pub fn with_outbox(mut self, outbox: Arc<dyn Outbox>) -> Self {
        self.outbox = outbox;
        self
    }

    async fn begin(
        &self,
        parent: Option<&Scope>,
        trace: Option<String>,
    ) -> Result<Scope, UnitOfWorkError> {
        let transaction = match parent {
            Some(parent) => parent.transaction.begin().await,
            // Taking SQLite's write lock up front makes concurrent writers queue
            // (within the lock timeout) instead of failing when a read turns into
            // a write; other engines ignore the mode.
            None => {
                self.database
                    .writer_pool()
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await
            }
        };
        transaction
            .map(|transaction| Scope::new(transaction, trace))
            .map_err(|error| failure(UnitOfWorkError::Begin, error))
    }
}

/// A database error as the unit of work's: busy when waiting longer might help.
fn failure(
    otherwise: fn(Box<dyn std::error::Error + Send + Sync>) -> UnitOfWorkError,
    error: DbErr,
) -> UnitOfWorkError {
    if is_busy(&error) {
        UnitOfWorkError::Busy(Box::new(error))
    } else {
        otherwise(Box::new(error))
    }
}

impl UnitOfWork for SeaOrmUnitOfWork {
    fn scope<'a>(
        &'a self,
        propagation: Propagation,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        self.traced_scope(propagation, None, work)
    }

    fn traced_scope<'a>(
        &'a self,
        propagation: Propagation,
        traceparent: Option<String>,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move {
            let trace = traceparent.or_else(|| Ambient::current().trace());
            let database = self.database.id();
            let running = current_scope(database);
            let suspension = current_suspension(database);
            // SQLite's one writer is the suspended unit of work's until it ends.
            let writer_held = writer_held(database);
            let parent = match propagation {
                Propagation::NotSupported => {
                    let suspended = Arc::new(Suspended {
                        changes: Mutex::new(Vec::new()),
                        over_running: writer_held,
                        trace,
                    });
                    let ambient = Ambient::current().with(database, Level::Suspended(suspended));
                    return Ok(AMBIENT.scope(ambient, work).await);
                }
                Propagation::Required => running,
                Propagation::RequiresNew => None,
            };
            if parent.is_none() && writer_held && self.database.backend() == DbBackend::Sqlite {
                return Err(UnitOfWorkError::Begin(
                    "SQLite allows one writer at a time: a unit of work cannot begin while \
                     another one on this task holds the database"
                        .into(),
                ));
            }
            // Held until this nested scope has committed or rolled back.
            let turn = match &parent {
                Some(parent) => Some(parent.exclusive_turn().await),
                None => None,
            };
            let scope = Arc::new(self.begin(parent.as_deref(), trace).await?);
            let is_root = parent.is_none();
            let outbox = Arc::clone(&self.outbox);
            let own = Arc::clone(&scope);
            let ambient = Ambient::current().with(database, Level::Running(Arc::clone(&scope)));
            let decided = AMBIENT
                .scope(ambient, async move {
                    let decision = work.await;
                    if decision == Outcome::Commit && is_root {
                        // Stored inside the transaction: the events exist exactly when
                        // the state change they describe does.
                        let mut events = lock(&own.events).clone();
                        for event in &mut events {
                            if event.traceparent.is_none() {
                                event.traceparent.clone_from(&own.trace);
                            }
                        }
                        if !events.is_empty() {
                            outbox.append(events).await.map_err(|error| match error {
                                RepositoryError::Busy(_) => UnitOfWorkError::Busy(Box::new(error)),
                                _ => UnitOfWorkError::Commit(Box::new(error)),
                            })?;
                            own.mark_events_stored();
                        }
                    }
                    Ok::<_, UnitOfWorkError>(decision)
                })
                .await;
            let scope = Arc::try_unwrap(scope).map_err(|_| {
                UnitOfWorkError::Commit(
                    "the unit of work's transaction is still in use after its work ended".into(),
                )
            })?;
            let finished = match decided {
                Ok(Outcome::Commit) => match parent.as_deref() {
                    Some(parent) => release(scope, parent).await,
                    None => {
                        let changes = scope.changes();
                        let committed = commit(scope, &self.database).await;
                        // Work outside a unit of work answers for what the ones
                        // it began committed.
                        if committed.is_ok()
                            && let Some(suspended) = &suspension
                        {
                            lock(&suspended.changes).extend(changes);
                        }
                        committed
                    }
                },
                Ok(Outcome::Rollback) => {
                    roll_back(scope).await;
                    Ok(Outcome::Rollback)
                }
                Err(error) => {
                    roll_back(scope).await;
                    Err(error)
                }
            };
            drop(turn);
            finished
        })
    }

    fn after_commit(&self, hook: AfterCommit) -> Result<(), UnitOfWorkError> {
        let scope = current_scope(self.database.id()).ok_or(UnitOfWorkError::NotRunning)?;
        lock(&scope.hooks).push(HookSlot(hook));
        Ok(())
    }

    fn is_active(&self) -> bool {
        current_scope(self.database.id()).is_some()
    }
}

/// Releases a savepoint: what it recorded now belongs to the outer level.
async fn release(scope: Scope, parent: &Scope) -> Result<Outcome, UnitOfWorkError> {
    let mut events = scope.take_events();
    // Each event keeps the trace of the work that recorded it, though the
    // root belongs to another (a consumer's batch) or to none.
    for event in &mut events {
        if event.traceparent.is_none() {
            event.traceparent.clone_from(&scope.trace);
        }
    }
    let changes = scope.take_changes();
    let hooks = scope.take_hooks();
    scope
        .transaction
        .commit()
        .await
        .map_err(|error| failure(UnitOfWorkError::Commit, error))?;
    parent.record(events);
    lock(&parent.changes).extend(changes);
    lock(&parent.hooks).extend(hooks);
    Ok(Outcome::Commit)
}

/// Commits the root transaction, then runs its hooks, on a task of its own so a
/// caller that stops waiting stops neither; the database tracks the task, so
/// shutdown waits for it ([`Database::settle`]).
async fn commit(scope: Scope, database: &Database) -> Result<Outcome, UnitOfWorkError> {
    let hooks = scope.take_hooks();
    let stored_events = scope
        .stored_events
        .load(std::sync::atomic::Ordering::Relaxed);
    let signal = database.outbox_signal();
    let finishing = database.commits().spawn(async move {
        scope
            .transaction
            .commit()
            .await
            .map_err(|error| failure(UnitOfWorkError::Commit, error))?;
        if stored_events {
            signal.notify_one();
        }
        for HookSlot(hook) in hooks {
            // Each hook on a task of its own: one that panics is logged, the
            // commit stands and the hooks after it still run.
            if let Err(error) = tokio::spawn(async move { hook().await }).await {
                tracing::error!(error = %error, "an after-commit hook failed; the unit of work it followed stays committed");
            }
        }
        Ok(Outcome::Commit)
    });
    finishing
        .await
        .unwrap_or_else(|error| Err(UnitOfWorkError::Commit(Box::new(error))))
}

async fn roll_back(scope: Scope) {
    if let Err(error) = scope.transaction.rollback().await {
        tracing::warn!(error = %error, "rolling back a unit of work failed");
    }
}
