use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: how object-safe ports take and return async work.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Work to run once a unit of work has really committed, such as notifying
/// in-process listeners that must see committed state.
pub type AfterCommit = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// What a piece of work decided about its unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep everything the work wrote.
    Commit,
    /// Undo everything the work wrote.
    Rollback,
}

/// How a unit of work relates to one already running on the same task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Join the running unit of work, or begin one when none runs. A joined scope
    /// runs inside a savepoint: if it rolls back, exactly its own writes (and the
    /// events and hooks it recorded) are undone, and the outer unit of work goes on;
    /// if it commits, its writes become part of the outer one and are kept only if
    /// the outermost scope commits.
    #[default]
    Required,
    /// Begin an independent unit of work that commits or rolls back on its own,
    /// whatever the running one does later.
    RequiresNew,
    /// Run outside any unit of work: a running one is suspended for the work,
    /// which reads outside its transaction and may not write; units of work the
    /// work begins are independent ones. For use cases whose slow part — a
    /// password hash, a call to another service — must not hold a transaction
    /// (and SQLite's one writer) while it runs. A suspended unit of work keeps
    /// its transaction and locks until it ends, so only a use case called from
    /// outside any unit of work runs without one; on SQLite, units of work
    /// begun inside a suspension are refused, as they would wait for the
    /// suspended one's write lock.
    NotSupported,
}

/// The unit of work itself failed (not the work inside it).
#[derive(Debug, thiserror::Error)]
pub enum UnitOfWorkError {
    /// The transaction could not be started.
    #[error("could not begin the unit of work")]
    Begin(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The storage was too busy to begin or finish in time (no connection free, a
    /// lock not granted); nothing was kept, and a retry later may succeed.
    #[error("the unit of work's storage is busy")]
    Busy(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The work succeeded but its changes could not be committed; nothing was kept.
    #[error("could not commit the unit of work")]
    Commit(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An after-commit hook was registered with no unit of work running.
    #[error("no unit of work is running on this task")]
    NotRunning,
}

/// Runs work so that everything it writes is kept or undone together.
///
/// Repositories bound to the unit of work (see the infrastructure adapters) write
/// through its transaction while `work` runs; the domain events they record are
/// handed to the [`crate::ports::Outbox`] in the same transaction. If `work` panics,
/// nothing it wrote is kept.
pub trait UnitOfWork: Send + Sync {
    /// Runs `work` and commits or rolls back as it decides, returning the outcome
    /// that actually happened.
    fn scope<'a>(
        &'a self,
        propagation: Propagation,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>>;

    /// Runs `work` as [`UnitOfWork::scope`] does, for work that belongs to the
    /// distributed trace `traceparent` (a W3C `traceparent`): the events the
    /// unit of work it begins stores carry it, so their consumers join the
    /// trace. A unit of work that keeps no events may ignore it.
    fn traced_scope<'a>(
        &'a self,
        propagation: Propagation,
        traceparent: Option<String>,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        let _ = traceparent;
        self.scope(propagation, work)
    }

    /// Runs `hook` after the outermost running unit of work commits; never if it
    /// rolls back.
    ///
    /// # Errors
    /// [`UnitOfWorkError::NotRunning`] when called outside a unit of work.
    fn after_commit(&self, hook: AfterCommit) -> Result<(), UnitOfWorkError>;

    /// Whether a unit of work of this kind runs on the calling task: reads made
    /// now may see writes that are not committed yet.
    fn is_active(&self) -> bool {
        false
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`UnitOfWork`]. It runs the work it is given; tests set
    /// expectations on the points where a real unit of work decides things:
    /// `begin` (fail it to simulate an unavailable database), `finish`, which
    /// receives the work's [`Outcome`] and returns what was done, and
    /// `register_after_commit`.
    pub UnitOfWork {
        /// Called before the work runs.
        pub fn begin(&self, propagation: Propagation) -> Result<(), UnitOfWorkError>;
        /// Called with the work's decision after it has run.
        pub fn finish(&self, decision: Outcome) -> Result<Outcome, UnitOfWorkError>;
        /// Called when the work registers an after-commit hook.
        pub fn register_after_commit(&self, hook: AfterCommit) -> Result<(), UnitOfWorkError>;
    }
}

#[cfg(feature = "mock")]
impl UnitOfWork for MockUnitOfWork {
    fn scope<'a>(
        &'a self,
        propagation: Propagation,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move {
            self.begin(propagation)?;
            let decision = work.await;
            self.finish(decision)
        })
    }

    fn after_commit(&self, hook: AfterCommit) -> Result<(), UnitOfWorkError> {
        self.register_after_commit(hook)
    }
}

/// Runs `work` in a unit of work joined or begun as `propagation` says: committed
/// when it returns `Ok`, rolled back when it returns `Err`.
///
/// # Errors
/// The work's own error, or the unit of work's when it could not begin or commit.
pub async fn in_unit_of_work<T, E, W>(
    unit_of_work: &dyn UnitOfWork,
    propagation: Propagation,
    work: W,
) -> Result<T, E>
where
    W: Future<Output = Result<T, E>> + Send,
    T: Send,
    E: From<UnitOfWorkError> + Send,
{
    in_unit_of_work_traced(unit_of_work, propagation, None, work).await
}

/// [`in_unit_of_work`] for work of the distributed trace `traceparent` (see
/// [`UnitOfWork::traced_scope`]).
///
/// # Errors
/// As [`in_unit_of_work`].
pub async fn in_unit_of_work_traced<T, E, W>(
    unit_of_work: &dyn UnitOfWork,
    propagation: Propagation,
    traceparent: Option<String>,
    work: W,
) -> Result<T, E>
where
    W: Future<Output = Result<T, E>> + Send,
    T: Send,
    E: From<UnitOfWorkError> + Send,
{
    let mut result = None;
    let slot = &mut result;
    let scoped = unit_of_work
        .traced_scope(
            propagation,
            traceparent,
            Box::pin(async move {
                let outcome = work.await;
                let decision = if outcome.is_ok() {
                    Outcome::Commit
                } else {
                    Outcome::Rollback
                };
                *slot = Some(outcome);
                decision
            }),
        )
        .await;
    match (scoped, result) {
        // The work ran; a failed commit turns its success into an error, while its
        // own error wins over any trouble rolling back.
        (Err(error), Some(Ok(_)) | None) => Err(error.into()),
        (_, Some(outcome)) => outcome,
        (Ok(_), None) => {
            Err(UnitOfWorkError::Begin("the unit of work never ran its work".into()).into())
        }
    }
}
