use std::sync::{Arc, Mutex, PoisonError};

use sea_orm::{
    DatabaseTransaction, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use strata_domain::ports::{
    AfterCommit, BoxFuture, EventEnvelope, Outbox, Outcome, Propagation, UnitOfWork,
    UnitOfWorkError,
};

use crate::Database;
use crate::outbox::SeaOrmOutbox;

tokio::task_local! {
    static AMBIENT: Arc<Scope>;
}

/// One level of a unit of work: the root transaction, or a savepoint inside it,
/// with the events and after-commit hooks recorded at this level.
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) transaction: DatabaseTransaction,
    events: Mutex<Vec<EventEnvelope>>,
    hooks: Mutex<Vec<HookSlot>>,
}

struct HookSlot(AfterCommit);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterCommit")
    }
}

impl Scope {
    fn new(transaction: DatabaseTransaction) -> Self {
        Self {
            transaction,
            events: Mutex::new(Vec::new()),
            hooks: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn record(&self, events: Vec<EventEnvelope>) {
        lock(&self.events).extend(events);
    }

    fn take_events(&self) -> Vec<EventEnvelope> {
        std::mem::take(&mut *lock(&self.events))
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

/// The scope of the unit of work running on this task, if any.
pub(crate) fn current_scope() -> Option<Arc<Scope>> {
    AMBIENT.try_with(Arc::clone).ok()
}

/// A unit of work on sea-orm transactions, made ambient for the task that runs the
/// work: every repository built on [`Database::session`] writes through it.
///
/// * [`Propagation::Required`] inside a running unit of work opens a savepoint:
///   if the inner work fails, exactly its writes, events and hooks are undone and
///   the outer work may go on; if it succeeds, they join the outer unit of work.
/// * [`Propagation::RequiresNew`] opens an independent transaction on another
///   connection. SQLite allows one writer at a time and a running unit of work
///   already holds the write lock, so there it is refused at once with
///   [`UnitOfWorkError::Begin`] rather than left to wait out the lock.
/// * At the outermost commit, the recorded events are handed to the [`Outbox`] in
///   the same transaction; after-commit hooks run once the commit has succeeded.
/// * A panic in the work drops the transaction, which rolls it back.
/// * A task spawned from the work does not inherit the unit of work (task-locals
///   are per task): its writes are its own.
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

    async fn begin(&self, parent: Option<&Scope>) -> Result<Scope, UnitOfWorkError> {
        let transaction = match parent {
            Some(parent) => parent.transaction.begin().await,
            // Taking SQLite's write lock up front makes concurrent writers queue
            // (within the busy timeout) instead of failing when a read turns into
            // a write; other engines ignore the mode.
            None => {
                self.database
                    .connection()
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await
            }
        };
        transaction
            .map(Scope::new)
            .map_err(|error| UnitOfWorkError::Begin(Box::new(error)))
    }
}

impl UnitOfWork for SeaOrmUnitOfWork {
    fn scope<'a>(
        &'a self,
        propagation: Propagation,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move {
            let parent = match propagation {
                Propagation::Required => current_scope(),
                Propagation::RequiresNew => {
                    if current_scope().is_some()
                        && self.database.connection().get_database_backend() == DbBackend::Sqlite
                    {
                        return Err(UnitOfWorkError::Begin(
                            "SQLite allows one writer at a time: a unit of work that requires \
                             a new transaction cannot run inside another one"
                                .into(),
                        ));
                    }
                    None
                }
            };
            let scope = Arc::new(self.begin(parent.as_deref()).await?);
            let is_root = parent.is_none();
            let outbox = Arc::clone(&self.outbox);
            let ambient = Arc::clone(&scope);
            let decided = AMBIENT
                .scope(Arc::clone(&scope), async move {
                    let decision = work.await;
                    if decision == Outcome::Commit && is_root {
                        // Stored inside the transaction: the events exist exactly when
                        // the state change they describe does.
                        let events = lock(&ambient.events).clone();
                        if !events.is_empty() {
                            outbox
                                .append(events)
                                .await
                                .map_err(|error| UnitOfWorkError::Commit(Box::new(error)))?;
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
            match decided {
                Ok(Outcome::Commit) => finish_commit(scope, parent.as_deref()).await,
                Ok(Outcome::Rollback) => {
                    roll_back(scope).await;
                    Ok(Outcome::Rollback)
                }
                Err(error) => {
                    roll_back(scope).await;
                    Err(error)
                }
            }
        })
    }

    fn after_commit(&self, hook: AfterCommit) -> Result<(), UnitOfWorkError> {
        let scope = current_scope().ok_or(UnitOfWorkError::NotRunning)?;
        lock(&scope.hooks).push(HookSlot(hook));
        Ok(())
    }
}

async fn finish_commit(scope: Scope, parent: Option<&Scope>) -> Result<Outcome, UnitOfWorkError> {
    let events = scope.take_events();
    let hooks = scope.take_hooks();
    scope
        .transaction
        .commit()
        .await
        .map_err(|error| UnitOfWorkError::Commit(Box::new(error)))?;
    match parent {
        // A savepoint was released: what it recorded now belongs to the outer level.
        Some(parent) => {
            parent.record(events);
            lock(&parent.hooks).extend(hooks);
        }
        None => {
            for HookSlot(hook) in hooks {
                hook().await;
            }
        }
    }
    Ok(Outcome::Commit)
}

async fn roll_back(scope: Scope) {
    if let Err(error) = scope.transaction.rollback().await {
        tracing::warn!(error = %error, "rolling back a unit of work failed");
    }
}
