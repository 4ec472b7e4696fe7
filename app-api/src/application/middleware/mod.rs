//! The middleware every use case runs through, and the one place their order is
//! declared: [`standard`].

mod audit;
mod authorization;
mod caching;
mod idempotency;
mod logging;
mod transaction;
mod validation;

use std::sync::Arc;
use std::time::Duration;

pub use audit::{Audit, AuditDraft, AuditRecord};
pub use authorization::Authorization;
pub use caching::{Caching, InvalidateOnCommit};
pub use idempotency::{IDEMPOTENCY_LEASE, Idempotency, RecordResult};
pub use logging::Logging;
use strata_domain::UnitOfWork;
use strata_domain::ports::{AuditTrail, Clock, IdempotencyStore};
pub use transaction::Transactional;
pub use validation::Validation;

use super::{Cache, InvalidationLog, Middleware};

/// The standard chain, outermost first:
///
/// 1. [`Logging`] — outermost, so it times and reports every outcome, including
///    rejections by the middleware after it.
/// 2. [`Authorization`] — before validation, so a caller who may not run the use
///    case learns nothing about what valid input would look like.
/// 3. [`Validation`] — before the transaction, so invalid input never opens one.
/// 4. [`Transactional`] — innermost, so the unit of work spans exactly the
///    handler's business step.
///
/// With an audit trail, a cache and an idempotency store ([`Standard`]), the full
/// chain is: logging, audit (records a command that failed, refusals included),
/// authorization, validation, caching (queries; an answer is cached only for
/// callers who passed authorization and validation), idempotency (claims the key
/// before the unit of work), transaction, idempotency-record (stores the result
/// inside the unit of work), audit-record (records a command that succeeded,
/// inside its unit of work), cache-invalidation (registers an after-commit hook
/// inside the unit of work).
#[must_use]
pub fn standard(unit_of_work: Arc<dyn UnitOfWork>) -> Vec<Arc<dyn Middleware>> {
    Standard::new(unit_of_work).build()
}

/// The standard chain with the optional concerns a service turns on.
#[derive(Clone)]
pub struct Standard {
    unit_of_work: Arc<dyn UnitOfWork>,
    cache: Option<Arc<Cache>>,
    idempotency: Option<Arc<dyn IdempotencyStore>>,
    lease: Duration,
    audit: Option<(Arc<dyn AuditTrail>, Arc<dyn Clock>)>,
    invalidation_log: Option<Arc<InvalidationLog>>,
}

impl std::fmt::Debug for Standard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standard")
            .field("cache", &self.cache.is_some())
            .field("idempotency", &self.idempotency.is_some())
            .finish_non_exhaustive()
    }
}

impl Standard {
    /// Logging, authorization, validation and transactions over `unit_of_work`.
    #[must_use]
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self {
            unit_of_work,
            cache: None,
            idempotency: None,
            lease: IDEMPOTENCY_LEASE,
            audit: None,
            invalidation_log: None,
        }
    }

    /// Adds the audit trail, kept in `trail` (in the unit of work's database)
    /// and timed by `clock`.
    #[must_use]
    pub fn with_audit(mut self, trail: Arc<dyn AuditTrail>, clock: Arc<dyn Clock>) -> Self {
        self.audit = Some((trail, clock));
        self
    }

    /// Adds query caching and after-commit invalidation in `cache`.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Writes the cache's invalidations down in `log` (in the unit of work's
    /// database) with the changes that owe them, so none is lost between a
    /// commit and the invalidation after it. For a cache that outlives the
    /// process; the log's catch-up must run at start and on a timer.
    #[must_use]
    pub fn with_invalidation_log(mut self, log: Arc<InvalidationLog>) -> Self {
        self.invalidation_log = Some(log);
        self
    }

    /// Adds idempotency keys remembered in `store`. The store must keep its keys
    /// in the unit of work's database, so a result commits with its side effect.
    #[must_use]
    pub fn with_idempotency(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.idempotency = Some(store);
        self
    }

    /// Claims idempotency keys for `lease` rather than [`IDEMPOTENCY_LEASE`].
    #[must_use]
    pub fn idempotency_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The chain, outermost first.
    #[must_use]
    pub fn build(self) -> Vec<Arc<dyn Middleware>> {
        let mut chain: Vec<Arc<dyn Middleware>> = vec![Arc::new(Logging)];
        if let Some((trail, clock)) = &self.audit {
            chain.push(Arc::new(Audit::new(Arc::clone(trail), Arc::clone(clock))));
        }
        chain.push(Arc::new(Authorization));
        chain.push(Arc::new(Validation));
        if let Some(cache) = &self.cache {
            chain.push(Arc::new(Caching::new(
                Arc::clone(cache),
                Arc::clone(&self.unit_of_work),
            )));
        }
        if let Some(store) = &self.idempotency {
            chain.push(Arc::new(
                Idempotency::new(Arc::clone(store)).with_lease(self.lease),
            ));
        }
        chain.push(Arc::new(Transactional::new(Arc::clone(&self.unit_of_work))));
        if let Some(store) = self.idempotency {
            chain.push(Arc::new(RecordResult::new(store)));
        }
        if let Some((trail, _)) = self.audit {
            chain.push(Arc::new(AuditRecord::new(trail)));
        }
        if let Some(cache) = self.cache {
            let invalidation = InvalidateOnCommit::new(cache, self.unit_of_work);
            chain.push(Arc::new(match self.invalidation_log {
                Some(log) => invalidation.with_log(log),
                None => invalidation,
            }));
        }
        chain
    }
}
