use std::sync::Arc;

use async_trait::async_trait;
use strata_domain::UnitOfWork;
use strata_domain::ports::in_unit_of_work_traced;

use crate::application::AppError;
use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseCall, UseCaseOutput};

/// Runs each command in a unit of work — committed when the handler answers `Ok`,
/// rolled back on `Err` or a panic — and each query without one.
#[derive(Clone)]
pub struct Transactional {
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl std::fmt::Debug for Transactional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactional").finish_non_exhaustive()
    }
}

impl Transactional {
    /// Transactions from `unit_of_work`.
    #[must_use]
    pub fn new(unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self { unit_of_work }
    }
}

#[async_trait]
impl Middleware for Transactional {
    fn name(&self) -> &'static str {
        "transaction"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.propagation.is_some()
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        match invocation.propagation {
            None => next.run(invocation).await,
            Some(propagation) => {
                // Events stored by this unit of work carry the request's trace.
                let traceparent = invocation.request.trace().header_value();
                in_unit_of_work_traced(
                    self.unit_of_work.as_ref(),
                    propagation,
                    Some(traceparent),
                    next.run(invocation),
                )
                .await
            }
        }
    }
}
