use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_domain::ports::{Claim, Completion, IdempotencyStore};

use crate::application::AppError;
use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseCall, UseCaseOutput};

/// How long a claim on a key protects a request that is still running, unless
/// set otherwise; after it, a retry takes the key over (the first holder is
/// presumed dead). It must outlast the longest a request may take: a service
/// checks that at start-up (see `config::IdempotencySettings`). A holder that
/// outlives it anyway cannot store its result once a retry has taken over: its
/// unit of work is rolled back, so the side effect still happens once.
pub const IDEMPOTENCY_LEASE: Duration = Duration::from_secs(60);

/// Answers a retried request from the stored result of the first one with the
/// same `Idempotency-Key` instead of running it twice: the same key and input after
/// completion replays the result; while the first still runs, 409
/// `idempotency_key_in_use`; the same key with another input, 422
/// `idempotency_key_reused`. Runs before the unit of work; [`RecordResult`] stores
/// the result inside it.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    lease: Duration,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency").finish_non_exhaustive()
    }
}

impl Idempotency {
    /// Keys remembered in `store`, claimed for [`IDEMPOTENCY_LEASE`].
    #[must_use]
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            lease: IDEMPOTENCY_LEASE,
        }
    }

    /// The same, claiming keys for `lease`.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

#[async_trait]
impl Middleware for Idempotency {
    fn name(&self) -> &'static str {
        "idempotency"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.idempotency.is_some() && call.codec.is_some()
    }

    async fn handle(
        &self,
        mut invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let (Some(plan), Some(codec)) = (invocation.idempotency.clone(), invocation.codec) else {
            return next.run(invocation).await;
        };
        match self
            .store
            .claim(&plan.key, &plan.fingerprint, self.lease)
            .await?
        {
            Claim::Completed(stored) => codec.decode(&stored),
            Claim::InProgress => Err(AppError::Conflict {
                code: "idempotency_key_in_use",
                message: "a request with this idempotency key is still being processed".into(),
            }),
            Claim::Mismatch => Err(AppError::RuleViolated {
                code: "idempotency_key_reused",
                message: "this idempotency key was used with a different request".into(),
            }),
            Claim::Acquired(token) => {
                if let Some(plan) = &mut invocation.idempotency {
                    plan.token = Some(token.clone());
                }
                let result = next.run(invocation).await;
                if result.is_err() {
                    // Nothing was committed: free the key so a retry runs (unless
                    // a retry already took it over).
                    if let Err(error) = self.store.release(&plan.key, &token).await {
                        tracing::warn!(error = %crate::application::error_chain(&error), "could not free an idempotency key; a retry waits for its lease");
                    }
                }
                result
            }
        }
    }
}

/// Stores an idempotent command's result inside its unit of work, so the result
/// and the side effect commit together or not at all. If the request lost its
/// claim meanwhile (its lease ran out and a retry took the key over), it fails
/// with 409 `idempotency_key_lease_lost` and its unit of work rolls back.
#[derive(Clone)]
pub struct RecordResult {
    store: Arc<dyn IdempotencyStore>,
}

impl std::fmt::Debug for RecordResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordResult").finish_non_exhaustive()
    }
}

impl RecordResult {
    /// Results stored in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Middleware for RecordResult {
    fn name(&self) -> &'static str {
        "idempotency-record"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.idempotency.is_some() && call.codec.is_some()
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let (Some(plan), Some(codec)) = (invocation.idempotency.clone(), invocation.codec) else {
            return next.run(invocation).await;
        };
        let Some(token) = plan.token else {
            return Err(AppError::Internal(
                "an idempotent command reached its unit of work without a claim on its key".into(),
            ));
        };
        let output = next.run(invocation).await?;
        match self
            .store
            .complete(&plan.key, &token, &codec.encode(&output)?)
            .await?
        {
            Completion::Stored => Ok(output),
            Completion::LeaseLost => Err(AppError::Conflict {
                code: "idempotency_key_lease_lost",
                message: "this request took longer than its idempotency key's lease and a \
                          retry took the key over; nothing was changed"
                    .into(),
            }),
        }
    }
}
