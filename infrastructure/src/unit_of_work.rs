use std::sync::Arc;

use sea_orm::{DatabaseTransaction, TransactionTrait};
use strata_domain::ports::{BoxFuture, Outcome, UnitOfWork, UnitOfWorkError};

use crate::Database;

tokio::task_local! {
    static AMBIENT: Arc<DatabaseTransaction>;
}

/// The transaction of the unit of work running on this task, if any.
pub(crate) fn current_transaction() -> Option<Arc<DatabaseTransaction>> {
    AMBIENT.try_with(Arc::clone).ok()
}

/// A unit of work on one sea-orm transaction, made ambient for the task that runs
/// the work: every repository built on [`Database::session`] writes through it.
///
/// * A scope inside a scope joins the outer transaction; only the outermost one
///   commits or rolls back.
/// * A panic in the work drops the transaction, which rolls it back.
/// * A task spawned from the work does not inherit the transaction (task-locals are
///   per task): its writes are its own.
#[derive(Debug, Clone)]
pub struct SeaOrmUnitOfWork {
    database: Database,
}

impl SeaOrmUnitOfWork {
    /// A unit of work over `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

impl UnitOfWork for SeaOrmUnitOfWork {
    fn scope<'a>(
        &'a self,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move {
            if current_transaction().is_some() {
                return Ok(work.await);
            }
            let transaction = self
                .database
                .connection()
                .begin()
                .await
                .map_err(|error| UnitOfWorkError::Begin(Box::new(error)))?;
            let shared = Arc::new(transaction);
            let decision = AMBIENT.scope(Arc::clone(&shared), work).await;
            let transaction = Arc::try_unwrap(shared).map_err(|_| {
                UnitOfWorkError::Commit(
                    "the transaction is still in use after its work ended".into(),
                )
            })?;
            match decision {
                Outcome::Commit => transaction
                    .commit()
                    .await
                    .map(|()| Outcome::Commit)
                    .map_err(|error| UnitOfWorkError::Commit(Box::new(error))),
                Outcome::Rollback => {
                    if let Err(error) = transaction.rollback().await {
                        tracing::warn!(error = %error, "rolling back a unit of work failed");
                    }
                    Ok(Outcome::Rollback)
                }
            }
        })
    }
}
