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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use strata_domain::RepositoryError;
    use strata_domain::ports::{
        AfterCommit, CacheError, CacheStore, MockInvalidationJournal, MockUnitOfWork, Outcome,
        OwedInvalidation,
    };
    use uuid::Uuid;
    use validator::Validate;

    use super::*;
    use crate::application::{
        Access, Command, CommandHandler, Dispatcher, Invalidation, RequestContext, UseCaseContext,
        middleware,
    };

    #[derive(Debug, Validate)]
    struct Rename {
        name: String,
    }

    impl Command for Rename {
        type Output = ();
        const NAME: &'static str = "test.rename";
        const ACCESS: Access = Access::Anyone;

        fn invalidates(&self) -> Invalidation {
            Invalidation::none().key(format!("tea:{}", self.name))
        }
    }

    struct Renamer;

    #[async_trait]
    impl CommandHandler<Rename> for Renamer {
        async fn handle(&self, _cx: &UseCaseContext, _command: Rename) -> Result<(), AppError> {
            Ok(())
        }
    }

    /// Drops nothing; counts the invalidations asked of it, and refuses them
    /// while `down`.
    #[derive(Default)]
    struct Store {
        invalidations: Mutex<u32>,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl CacheStore for Store {
        async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Ok(None)
        }
        async fn put(
            &self,
            _: &str,
            _: Vec<u8>,
            _: Duration,
            _: &[String],
        ) -> Result<(), CacheError> {
            Ok(())
        }
        async fn invalidate(&self, _: &[String], _: &[String]) -> Result<(), CacheError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(CacheError::new(std::io::Error::other("connection refused")));
            }
            *self.invalidations.lock().expect("not poisoned") += 1;
            Ok(())
        }
    }

    /// What happened, in order.
    type Events = Arc<Mutex<Vec<&'static str>>>;

    /// A unit of work that ends as `outcome` says, noting its beginning and
    /// end in `events`, and keeps its after-commit hooks for the test to run.
    fn committing(
        hooks: &Arc<Mutex<Vec<AfterCommit>>>,
        outcome: Outcome,
        events: &Events,
    ) -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        let begun = Arc::clone(events);
        unit_of_work.expect_begin().times(1).returning(move |_| {
            begun.lock().expect("not poisoned").push("begin");
            Ok(())
        });
        let ended = Arc::clone(events);
        unit_of_work
            .expect_finish()
            .withf(move |decision| *decision == outcome)
            .times(1)
            .returning(move |decision| {
                ended.lock().expect("not poisoned").push("finish");
                Ok(decision)
            });
        let kept = Arc::clone(hooks);
        unit_of_work
            .expect_register_after_commit()
            .returning(move |hook| {
                kept.lock().expect("not poisoned").push(hook);
                Ok(())
            });
        unit_of_work
    }

    fn renaming(
        unit_of_work: MockUnitOfWork,
        store: &Arc<Store>,
        log: &Arc<InvalidationLog>,
    ) -> Dispatcher {
        let cache = Arc::new(Cache::new(Arc::clone(store) as Arc<dyn CacheStore>));
        Dispatcher::builder()
            .middleware(
                middleware::Standard::new(Arc::new(unit_of_work))
                    .with_cache(cache)
                    .with_invalidation_log(Arc::clone(log))
                    .build(),
            )
            .command::<Rename>(Arc::new(Renamer))
            .build()
    }

    async fn run_hooks(hooks: &Arc<Mutex<Vec<AfterCommit>>>) {
        let taken: Vec<AfterCommit> = std::mem::take(&mut *hooks.lock().expect("not poisoned"));
        for hook in taken {
            hook().await;
        }
    }

    #[tokio::test]
    async fn the_invalidation_is_written_down_in_the_unit_of_work_and_settled_once_applied() {
        let id = Uuid::now_v7();
        let mut journal = MockInvalidationJournal::new();
        let events = Events::default();
        let recorded = Arc::clone(&events);
        journal
            .expect_record()
            .withf(|keys, tags| keys == ["tea:1".to_owned()] && tags.is_empty())
            .times(1)
            .returning(move |_, _| {
                recorded.lock().expect("not poisoned").push("record");
                Ok(id)
            });
        journal
            .expect_settle()
            .withf(move |ids| ids == [id])
            .times(1)
            .returning(|_| Ok(()));
        journal.expect_owed().returning(|_, _| Ok(Vec::new()));
        let log = Arc::new(InvalidationLog::new(Arc::new(journal)));
        let (store, hooks) = (Arc::new(Store::default()), Arc::new(Mutex::new(Vec::new())));
        let dispatcher = renaming(committing(&hooks, Outcome::Commit, &events), &store, &log);

        dispatcher
            .execute(&RequestContext::background(), Rename { name: "1".into() })
            .await
            .expect("renamed");
        assert_eq!(
            *events.lock().expect("not poisoned"),
            ["begin", "record", "finish"],
            "written down inside the unit of work"
        );
        assert_eq!(
            *store.invalidations.lock().expect("not poisoned"),
            0,
            "not before the commit"
        );
        run_hooks(&hooks).await;
        assert_eq!(*store.invalidations.lock().expect("not poisoned"), 1);

        let cache = Cache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
        assert_eq!(
            log.catch_up(&cache, Duration::from_secs(10))
                .await
                .expect("caught up"),
            0
        );
    }

    #[tokio::test]
    async fn an_invalidation_the_cache_refuses_after_the_commit_stays_owed() {
        let id = Uuid::now_v7();
        let mut journal = MockInvalidationJournal::new();
        journal
            .expect_record()
            .times(1)
            .returning(move |_, _| Ok(id));
        // Nothing applied to settle; the entry is still owed.
        journal
            .expect_settle()
            .withf(|ids| ids.is_empty())
            .times(1)
            .returning(|_| Ok(()));
        journal.expect_owed().times(1).returning(move |_, _| {
            Ok(vec![OwedInvalidation {
                id,
                keys: vec!["tea:1".to_owned()],
                tags: Vec::new(),
            }])
        });
        journal
            .expect_settle()
            .withf(move |ids| ids == [id])
            .times(1)
            .returning(|_| Ok(()));
        let log = Arc::new(InvalidationLog::new(Arc::new(journal)));
        let (store, hooks) = (Arc::new(Store::default()), Arc::new(Mutex::new(Vec::new())));
        let dispatcher = renaming(
            committing(&hooks, Outcome::Commit, &Events::default()),
            &store,
            &log,
        );

        dispatcher
            .execute(&RequestContext::background(), Rename { name: "1".into() })
            .await
            .expect("renamed");
        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        // The hook meets the failure: logged, failing nothing.
        run_hooks(&hooks).await;
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);

        let cache = Cache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
        assert_eq!(
            log.catch_up(&cache, Duration::ZERO)
                .await
                .expect("caught up"),
            1
        );
        assert_eq!(*store.invalidations.lock().expect("not poisoned"), 1);
    }

    #[tokio::test]
    async fn a_command_whose_invalidation_cannot_be_written_down_rolls_back() {
        let mut journal = MockInvalidationJournal::new();
        journal
            .expect_record()
            .times(1)
            .returning(|_, _| Err(RepositoryError::storage(std::io::Error::other("disk full"))));
        let log = Arc::new(InvalidationLog::new(Arc::new(journal)));
        let (store, hooks) = (Arc::new(Store::default()), Arc::new(Mutex::new(Vec::new())));
        let dispatcher = renaming(
            committing(&hooks, Outcome::Rollback, &Events::default()),
            &store,
            &log,
        );

        let refused = dispatcher
            .execute(&RequestContext::background(), Rename { name: "1".into() })
            .await;

        assert!(
            refused.is_err(),
            "a change whose invalidation would be lost is not kept"
        );
        assert!(
            hooks.lock().expect("not poisoned").is_empty(),
            "no hook registered"
        );
    }
}
