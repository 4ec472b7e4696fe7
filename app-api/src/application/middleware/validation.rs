use async_trait::async_trait;

use crate::application::AppError;
use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseOutput};

/// Checks the use case's `validator` rules; invalid input never reaches the handler
/// and answers with one entry per invalid field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validation;

#[async_trait]
impl Middleware for Validation {
    fn name(&self) -> &'static str {
        "validation"
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        invocation
            .input
            .validate_input()
            .map_err(AppError::Invalid)?;
        next.run(invocation).await
    }
}
