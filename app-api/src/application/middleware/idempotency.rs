use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_domain::ports::{Claim, IdempotencyStore};

use crate::application::AppError;
use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseOutput};

/// How long a claim on a key protects a request that is still running; after it,
/// a retry takes the key over (the first holder is presumed dead). Longer than
/// any request may take.
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
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency").finish_non_exhaustive()
    }
}

impl Idempotency {
    /// Keys remembered in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Middleware for Idempotency {
    fn name(&self) -> &'static str {
        "idempotency"
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let (Some(plan), Some(codec)) = (invocation.idempotency.clone(), invocation.codec) else {
            return next.run(invocation).await;
        };
        match self
            .store
            .claim(&plan.key, &plan.fingerprint, IDEMPOTENCY_LEASE)
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
            Claim::Acquired => {
                let result = next.run(invocation).await;
                if result.is_err() {
                    // Nothing was committed: free the key so a retry runs.
                    if let Err(error) = self.store.release(&plan.key).await {
                        tracing::warn!(error = %crate::application::error_chain(&error), "could not free an idempotency key; a retry waits for its lease");
                    }
                }
                result
            }
        }
    }
}

/// Stores an idempotent command's result inside its unit of work, so the result
/// and the side effect commit together or not at all.
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

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let (Some(plan), Some(codec)) = (invocation.idempotency.clone(), invocation.codec) else {
            return next.run(invocation).await;
        };
        let output = next.run(invocation).await?;
        self.store
            .complete(&plan.key, &codec.encode(&output)?)
            .await?;
        Ok(output)
    }
}
