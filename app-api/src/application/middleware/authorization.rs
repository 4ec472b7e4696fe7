use crate::application::AppError;
use crate::application::pipeline::{Middleware, UseCaseCall};

/// Refuses a use case before it runs unless the caller satisfies its declared
/// [`crate::application::Access`]: 401 without a caller, 403 without the
/// permission. Nested use cases are checked too, with the same caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Authorization;

impl Middleware for Authorization {
    fn name(&self) -> &'static str {
        crate::application::dispatcher::AUTHORIZATION
    }

    fn guard(&self, call: &UseCaseCall) -> Option<Result<(), AppError>> {
        Some(call.access.check(call.request.principal()))
    }
}
