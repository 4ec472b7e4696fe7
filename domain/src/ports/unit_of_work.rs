use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: how object-safe ports take and return async work.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a piece of work decided about its unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep everything the work wrote.
    Commit,
    /// Undo everything the work wrote.
    Rollback,
}

/// The unit of work itself failed (not the work inside it).
#[derive(Debug, thiserror::Error)]
pub enum UnitOfWorkError {
    /// The transaction could not be started.
    #[error("could not begin the unit of work")]
    Begin(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The work succeeded but its changes could not be committed; nothing was kept.
    #[error("could not commit the unit of work")]
    Commit(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Runs work so that everything it writes is kept or undone together.
///
/// Repositories bound to the unit of work (see the infrastructure adapters) write
/// through its transaction while `work` runs. A `scope` inside another scope joins
/// the outer one; only the outermost decides. If `work` panics, nothing it wrote is
/// kept.
pub trait UnitOfWork: Send + Sync {
    /// Runs `work` and commits or rolls back as it asks, returning the outcome
    /// that actually happened.
    fn scope<'a>(
        &'a self,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`UnitOfWork`]. It runs the work it is given; tests set
    /// expectations on the two points a real unit of work decides things:
    /// `begin` (fail it to simulate an unavailable database) and `finish`, which
    /// receives the work's [`Outcome`] and returns what was done.
    pub UnitOfWork {
        /// Called before the work runs.
        pub fn begin(&self) -> Result<(), UnitOfWorkError>;
        /// Called with the work's decision after it has run.
        pub fn finish(&self, decision: Outcome) -> Result<Outcome, UnitOfWorkError>;
    }
}

#[cfg(feature = "mock")]
impl UnitOfWork for MockUnitOfWork {
    fn scope<'a>(
        &'a self,
        work: BoxFuture<'a, Outcome>,
    ) -> BoxFuture<'a, Result<Outcome, UnitOfWorkError>> {
        Box::pin(async move {
            self.begin()?;
            let decision = work.await;
            self.finish(decision)
        })
    }
}

/// Runs `work` in a unit of work: committed when it returns `Ok`, rolled back when
/// it returns `Err`.
///
/// # Errors
/// The work's own error, or the unit of work's when it could not begin or commit.
pub async fn in_unit_of_work<T, E, W>(unit_of_work: &dyn UnitOfWork, work: W) -> Result<T, E>
where
    W: Future<Output = Result<T, E>> + Send,
    T: Send,
    E: From<UnitOfWorkError> + Send,
{
    let mut result = None;
    let slot = &mut result;
    let scoped = unit_of_work
        .scope(Box::pin(async move {
            let outcome = work.await;
            let decision = if outcome.is_ok() {
                Outcome::Commit
            } else {
                Outcome::Rollback
            };
            *slot = Some(outcome);
            decision
        }))
        .await;
    match (scoped, result) {
        // The work ran; a failed commit turns its success into an error, while its
        // own error wins over any trouble rolling back.
        (Err(error), Some(Ok(_))) | (Err(error), None) => Err(error.into()),
        (_, Some(outcome)) => outcome,
        (Ok(_), None) => {
            Err(UnitOfWorkError::Begin("the unit of work never ran its work".into()).into())
        }
    }
}
