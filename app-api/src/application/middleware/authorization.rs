use async_trait::async_trait;

use crate::application::AppError;
use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseOutput};

/// Refuses a use case before it runs unless the caller satisfies its declared
/// [`crate::application::Access`]: 401 without a caller, 403 without the
/// permission. Nested use cases are checked too, with the same caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Authorization;

#[async_trait]
impl Middleware for Authorization {
    fn name(&self) -> &'static str {
        crate::application::dispatcher::AUTHORIZATION
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        invocation.access.check(invocation.request.principal())?;
        next.run(invocation).await
    }
}
