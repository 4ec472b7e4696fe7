use crate::application::AppError;
use crate::application::pipeline::{Middleware, UseCaseCall};

/// Checks the use case's `validator` rules; invalid input never reaches the handler
/// and answers with one entry per invalid field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validation;

impl Middleware for Validation {
    fn name(&self) -> &'static str {
        "validation"
    }

    fn guard(&self, call: &UseCaseCall) -> Option<Result<(), AppError>> {
        Some(call.input.validate_input().map_err(AppError::Invalid))
    }
}
