use std::sync::Arc;

use async_trait::async_trait;
use strata_domain::UnitOfWork;
use strata_domain::ports::Propagation;

use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseCall, UseCaseOutput};
use crate::application::{AppError, Cache, InvalidationLog};

/// Serves a query's answer from the cache when its [`crate::application::Query::cache_policy`]
/// says so, loading it through the rest of the chain on a miss (one loader per
/// key under a stampede).
///
/// A query asked inside a command — through its context, or on a task where a
/// unit of work runs — reads through the cache and stores nothing: it must see
/// the command's own writes (which the cache does not hold), and what it reads
/// may yet be rolled back (which the cache must never hold).
#[derive(Clone)]
pub struct Caching {
    cache: Arc<Cache>,
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl std::fmt::Debug for Caching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caching").finish_non_exhaustive()
    }
}

impl Caching {
    /// Caching in `cache`, reading through it while a unit of work of
    /// `unit_of_work`'s kind runs.
    #[must_use]
    pub fn new(cache: Arc<Cache>, unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self {
            cache,
            unit_of_work,
        }
    }
}

#[async_trait]
impl Middleware for Caching {
    fn name(&self) -> &'static str {
        "caching"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.cache.is_some()
    }

    async fn handle(
        &self,
        mut invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let (Some(policy), Some(codec)) = (invocation.cache.take(), invocation.codec) else {
            return next.run(invocation).await;
        };
        if invocation.within_command || self.unit_of_work.is_active() {
            return next.run(invocation).await;
        }
        let bytes = self
            .cache
            .load_bytes(&policy, || async move {
                let output = next.run(invocation).await?;
                codec.encode(&output)
            })
            .await?;
        codec.decode(&bytes)
    }
}

/// Drops what a command made stale from the cache, once its unit of work has
/// really committed; a command that fails or rolls back invalidates nothing.
/// Runs inside the unit of work, where it registers an after-commit hook; a
/// command that runs outside one ([`Propagation::NotSupported`]) invalidates
/// as soon as it succeeded.
///
/// With an [`InvalidationLog`], the unit of work also writes down what it
/// makes stale, so an invalidation the process did not live to apply, or the
/// cache's server refused, is applied later by the log's catch-up.
#[derive(Clone)]
pub struct InvalidateOnCommit {
    cache: Arc<Cache>,
    unit_of_work: Arc<dyn UnitOfWork>,
    log: Option<Arc<InvalidationLog>>,
}

impl std::fmt::Debug for InvalidateOnCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidateOnCommit").finish_non_exhaustive()
    }
}

impl InvalidateOnCommit {
    /// Invalidations in `cache`, after commits of `unit_of_work`.
    #[must_use]
    pub fn new(cache: Arc<Cache>, unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self {
            cache,
            unit_of_work,
            log: None,
        }
    }

    /// The same invalidations, written down in `log` by the unit of work that
    /// owes them.
    #[must_use]
    pub fn with_log(mut self, log: Arc<InvalidationLog>) -> Self {
        self.log = Some(log);
        self
    }
}

#[async_trait]
impl Middleware for InvalidateOnCommit {
    fn name(&self) -> &'static str {
        "cache-invalidation"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        !call.invalidates.is_empty()
    }

    async fn handle(
        &self,
        mut invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let invalidation = std::mem::take(&mut invocation.invalidates);
        let outside = invocation.propagation == Some(Propagation::NotSupported);
        let output = next.run(invocation).await?;
        if invalidation.is_empty() {
            return Ok(output);
        }
        if outside {
            // No unit of work of its own: what it wrote, its nested units of
            // work have already committed.
            self.cache.invalidate(&invalidation).await;
        } else {
            let owed = match &self.log {
                Some(log) => Some((Arc::clone(log), log.record(&invalidation).await?)),
                None => None,
            };
            let cache = Arc::clone(&self.cache);
            self.unit_of_work.after_commit(Box::new(move || {
                Box::pin(async move {
                    match (cache.try_invalidate(&invalidation).await, owed) {
                        (Ok(()), Some((log, id))) => log.applied(id),
                        (Ok(()), None) => {}
                        (Err(error), owed) => tracing::warn!(
                            error = %crate::application::error_chain(&error),
                            "cache invalidation failed; {}",
                            if owed.is_some() {
                                "it stays owed and is applied by the next catch-up"
                            } else {
                                "entries expire by their TTL"
                            }
                        ),
                    }
                })
            }))?;
        }
        Ok(output)
    }
}
